"""``crnn serve`` as a user starts it (a subprocess): a busy port, a body dripped byte by byte, too many
connections (issue 13). The rest of the service's limits are in serve/test_serve_app.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from crnn.checkpoint import save_checkpoint
from crnn.config import Config
from crnn.data.images import Preprocess
from crnn.models import build_model

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

from test_serve_app import wait_healthy  # noqa: E402

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    cfg = Config()
    cfg.model.rnn_hidden = 16
    cfg.data.charset = "AB"
    path = tmp_path_factory.mktemp("model") / "m.pt"
    save_checkpoint(path, {"config": cfg.to_dict(), "charset": "AB", "preprocess": Preprocess().to_dict(),
                           "model": build_model(cfg.model, 3).state_dict()})
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_busy_port_is_one_line_and_no_serving_on(model_file):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "crnn", "serve", str(model_file), "--port", str(port)],
                           capture_output=True, text=True, timeout=120, env=ENV)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == f"error: 127.0.0.1:{port}: cannot listen (Address already in use); another server " \
                               "is listening there, choose another --port"
    assert "serving" not in r.stderr and time.monotonic() - t0 < 60


@pytest.fixture(scope="module")
def server(model_file, tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "crnn", "serve", str(model_file), "--port", str(port),
                                 "--no-access-log", "--body-timeout", "1.5", "--request-timeout", "3",
                                 "--max-connections", "3", "--log-level", "warning"],
                                stdout=subprocess.DEVNULL, stderr=err, env=ENV)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(proc, url, log, 90)
    yield port, url
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _reply(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data and data.rstrip().endswith(b"}"):
            break
    return data


def test_a_body_dripped_byte_by_byte_is_cut_off_by_the_request_deadline(server):
    port, url = server
    body = b'{"images": ["' + b"A" * 200 + b'"]}'
    stop = threading.Event()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as drip:
        drip.sendall(b"POST /v1/recognize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))

        def dribble():  # one byte every 0.4 s: never a 1.5 s stall, so only the overall deadline can end it
            for b in body:
                if stop.wait(0.4):
                    return
                try:
                    drip.sendall(bytes([b]))
                except OSError:
                    return

        t = threading.Thread(target=dribble, daemon=True)
        t0 = time.monotonic()
        t.start()
        reply = _reply(drip)
        took = time.monotonic() - t0
        stop.set()
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert b"did not arrive within 3 s" in reply
    assert 2.5 < took < 20, took  # the deadline, not the 80 s the drip would take
    assert httpx.get(url + "/health", timeout=10).status_code == 200


def test_connections_beyond_the_cap_get_503_and_the_server_recovers(server):
    port, url = server
    idle = []
    try:
        for _ in range(3):  # three clients (the cap) that connect and start a request, then dawdle
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(b"POST /v1/recognize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{")
            idle.append(s)
            s.settimeout(0.3)
            with pytest.raises(socket.timeout):
                s.recv(100)  # held, not refused: within the cap
        r = httpx.get(url + "/health", timeout=10)  # the fourth
        assert r.status_code == 503
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 10
    while httpx.get(url + "/health", timeout=10).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)
