"""The HTTP service, for real: uvicorn on 127.0.0.1 (a free port), called with httpx.

Only loopback traffic; every request has a timeout and every loop a fixed count.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from conftest import ServerThread, render_text

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from crnn import Recognizer  # noqa: E402
from crnn.serve.app import ServeSettings, create_app  # noqa: E402

TIMEOUT = 60.0
SETTINGS = ServeSettings(max_request_bytes=300_000, max_images=8, max_pixels=200_000, max_side=3000,
                         max_batch_images=16, max_wait_ms=25.0, body_timeout_s=1.0)


def wait_healthy(proc: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    """Wait until the ``crnn serve`` subprocess answers ``/health``; fail with its log if it dies or is late."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "server did not come up: " + log.read_text()
        time.sleep(0.2)


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def fixed_width(text: str, width: int = 96) -> Image.Image:
    """``text`` on a canvas of a fixed width, so batching adds no padding (exact comparisons)."""
    line = render_text(text)
    canvas = Image.new("L", (width, 32), 255)
    canvas.paste(line.crop((0, 0, min(line.width, width), 32)), (0, 0))
    return canvas


TEXTS = ["AB", "x7", "B-A", "7", "xx", "AAx", "-7B", "x-x", "BB", "7A", "A", "Bx7"]


@pytest.fixture(scope="module")
def rec(model_path) -> Recognizer:
    return Recognizer.load(model_path)


@pytest.fixture(scope="module")
def server(model_path):
    with ServerThread(create_app(Recognizer.load(model_path), SETTINGS)) as s:
        yield s


@pytest.fixture()
def client(server):
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        yield c


def stats(client) -> dict:
    return client.get("/health").json()["batching"]


def test_health_metrics_and_openapi(client, rec):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["backend"] == rec.backend and h["charset"] == rec.charset.chars
    assert h["limits"]["max_images"] == 8 and "batches" in h["batching"]
    m = client.get("/metrics")
    assert m.status_code == 200 and "crnn_batches_total" in m.text
    assert m.headers["content-type"].startswith("text/plain")
    schema = client.get("/openapi.json").json()
    op = schema["paths"]["/v1/recognize"]["post"]
    assert set(op["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert {"200", "413", "415", "422"} <= set(op["responses"])
    assert "/v1/explain" in schema["paths"] and "/health" in schema["paths"]


def test_recognize_multipart_one_and_many(client, rec):
    one = render_text("AB-7")
    r = client.post("/v1/recognize", files={"file": ("line.png", png(one), "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    ref = rec.predict([one])[0]
    assert body["results"] == [{"text": ref.text, "confidence": pytest.approx(ref.confidence, abs=1e-5),
                                "name": "line.png"}]
    assert set(body["timing_ms"]) == {"read", "queue", "model", "total"} and body["batch"]["images"] == 1

    imgs = [render_text(t) for t in ("A", "x7x7", "B-A", "7")]  # different widths, one padded batch
    r = client.post("/v1/recognize", files=[("files", (f"{i}.png", png(im), "image/png")) for i, im in enumerate(imgs)])
    assert r.status_code == 200, r.text
    refs = rec.predict(imgs)
    assert [x["text"] for x in r.json()["results"]] == [p.text for p in refs]
    assert [x["name"] for x in r.json()["results"]] == ["0.png", "1.png", "2.png", "3.png"]
    assert [x["confidence"] for x in r.json()["results"]] == pytest.approx([p.confidence for p in refs], abs=1e-5)


def test_recognize_json_base64(client, rec):
    imgs = [render_text(t) for t in ("xA", "-B7", "A")]
    b64 = [base64.b64encode(png(im)).decode() for im in imgs]
    b64[1] = "data:image/png;base64," + b64[1]  # data: URLs, as a browser's FileReader gives them
    r = client.post("/v1/recognize", json={"images": b64})
    assert r.status_code == 200, r.text
    assert [x["text"] for x in r.json()["results"]] == [p.text for p in rec.predict(imgs)]
    assert [x["name"] for x in r.json()["results"]] == ["images[0]", "images[1]", "images[2]"]
    r = client.post("/v1/recognize", json={"image": b64[0]})  # a single image
    assert r.status_code == 200 and len(r.json()["results"]) == 1


def _error(r, status: int, code: str, index: int | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["code"] == code and body["detail"]
    assert body.get("index") == index
    return body


def test_request_too_large(client):
    big = os.urandom(400_000)
    _error(client.post("/v1/recognize", files={"file": ("big.png", big)}), 413, "request_too_large")

    def chunks():  # no Content-Length: the body is counted as it arrives
        for _ in range(10):
            yield b"x" * 50_000

    body = _error(client.post("/v1/recognize", content=chunks(), headers={"content-type": "application/json"}),
                  413, "request_too_large")
    assert "300,000" in body["detail"]


def test_too_many_images(client):
    tiny = png(render_text("A"))
    _error(client.post("/v1/recognize", files=[("files", (f"{i}.png", tiny)) for i in range(9)]), 413,
           "too_many_images")
    b64 = base64.b64encode(tiny).decode()
    _error(client.post("/v1/recognize", json={"images": [b64] * 9}), 413, "too_many_images")
    assert client.post("/v1/recognize", json={"images": [b64] * 8}).status_code == 200


def test_image_too_large(client):
    ok = png(render_text("A"))
    body = _error(client.post("/v1/recognize", files=[("files", ("a.png", ok)), ("files", ("b.png", png(
        Image.new("L", (600, 400), 255))))]), 413, "image_too_large", 1)
    assert "600x400" in body["detail"] and "b.png" in body["detail"]
    body = _error(client.post("/v1/recognize", files={"file": ("wide.png", png(Image.new("L", (3500, 8), 255)))}),
                  413, "image_too_large", 0)
    assert "3000" in body["detail"]


def _read_response(sock: socket.socket) -> bytes:
    """One whole HTTP response: headers and body may arrive in separate TCP segments."""
    reply = b""
    while b"\r\n\r\n" not in reply or len(reply.partition(b"\r\n\r\n")[2]) < _content_length(reply):
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply


def _content_length(reply: bytes) -> int:
    for line in reply.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_slow_client_gets_408_and_the_server_stays_healthy(server, client):
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as slow:
        slow.sendall(b"POST /v1/recognize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"images\": [")  # ... and then nothing more
        assert client.get("/health").status_code == 200  # others are served while it stalls
        reply = _read_response(slow)
    assert reply.startswith(b"HTTP/1.1 408") and b"request_timeout" in reply


def test_not_an_image_names_the_index(client):
    ok = png(render_text("A"))
    body = _error(client.post("/v1/recognize", files=[("files", ("a.png", ok)), ("files", ("notes.txt", b"hello")),
                                                       ("files", ("c.png", ok))]), 422, "not_an_image", 1)
    assert "image 1 (notes.txt)" in body["detail"]
    truncated = ok[: len(ok) // 2]
    _error(client.post("/v1/recognize", files={"file": ("t.png", truncated)}), 422, "bad_image", 0)
    _error(client.post("/v1/recognize", files={"file": ("empty.png", b"")}), 422, "not_an_image", 0)
    b64 = base64.b64encode(ok).decode()
    _error(client.post("/v1/recognize", json={"images": [b64, b64, "%%% not base64"]}), 422, "bad_base64", 2)
    _error(client.post("/v1/recognize", json={"images": [b64, 7]}), 422, "bad_base64", 1)
    _error(client.post("/v1/recognize", json={"images": [base64.b64encode(b"GIF89a junk").decode()]}), 422,
           "not_an_image", 0)


def test_bad_requests(client):
    _error(client.post("/v1/recognize", content=b"hello", headers={"content-type": "text/plain"}), 415,
           "unsupported_media_type")
    _error(client.post("/v1/recognize", content=png(render_text("A")), headers={"content-type": "image/png"}),
           415, "unsupported_media_type")
    _error(client.post("/v1/recognize", content=b"{oops", headers={"content-type": "application/json"}), 400,
           "bad_json")
    _error(client.post("/v1/recognize", json={"pictures": []}), 422, "bad_json")
    _error(client.post("/v1/recognize", json={"images": []}), 422, "no_images")
    _error(client.post("/v1/recognize", files={"image": ("a.png", png(render_text("A")))}), 422,
           "unexpected_field", 0)
    _error(client.post("/v1/recognize", data={"note": "no files"}, files={}), 415, "unsupported_media_type")
    assert client.get("/v1/recognize").status_code == 405


def test_concurrent_requests_are_micro_batched(client, server, rec):
    imgs = [fixed_width(t) for t in TEXTS]
    refs = [p.text for p in rec.predict(imgs)]
    assert refs == [rec.predict([im])[0].text for im in imgs]  # same width: no padding, batching cannot matter
    blobs = [png(im) for im in imgs]
    before = stats(client)
    n_requests = 36

    def call(i: int) -> tuple[int, list[str]]:
        k = 1 + i % 3  # 1 to 3 images per request
        idx = [(i + j) % len(blobs) for j in range(k)]
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
            r = c.post("/v1/recognize", files=[("files", (f"{j}.png", blobs[j], "image/png")) for j in idx])
        assert r.status_code == 200, r.text
        assert [x["text"] for x in r.json()["results"]] == [refs[j] for j in idx]
        return r.json()["batch"]["requests"], idx

    with ThreadPoolExecutor(12) as pool:
        shared = [n for n, _ in pool.map(call, range(n_requests))]
    after = stats(client)
    requests = after["requests"] - before["requests"]
    batches = after["batches"] - before["batches"]
    assert requests == n_requests
    assert after["images"] - before["images"] == sum(1 + i % 3 for i in range(n_requests))
    assert batches < requests, (batches, requests)
    assert max(shared) > 1 and after["max_batch_images"] <= SETTINGS.max_batch_images


def test_explain(client):
    r = client.post("/v1/explain", files={"file": ("a.png", png(render_text("AB")))})
    try:
        import crnn.insight.visualize  # noqa: F401
    except ImportError:
        _error(r, 501, "not_available")
        return
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png" and r.content.startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(r.content)).width > 100
    _error(client.post("/v1/explain", files=[("files", ("a.png", png(render_text("A"))))] * 2), 422, "one_image")
    _error(client.post("/v1/explain", files={"file": ("a.txt", b"text")}), 422, "not_an_image", 0)


def test_explain_without_the_insight_module_is_501(client, monkeypatch):
    monkeypatch.setitem(sys.modules, "crnn.insight.visualize", None)  # import now raises ImportError
    body = _error(client.post("/v1/explain", files={"file": ("a.png", png(render_text("AB")))}), 501,
                  "not_available")
    assert "not available" in body["detail"]


def test_page_is_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    for element_id in ("file", "text", "confidence", "explain", "error", "b64"):
        assert f'id="{element_id}"' in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html), "external asset in the page"
    assert "/v1/recognize" in html and "/v1/explain" in html
    assert "default-src 'self'" in r.headers["content-security-policy"]


@pytest.fixture(scope="module")
def onnx_model(model_path, tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from crnn.export.onnx import export_onnx

    return export_onnx(model_path, tmp_path_factory.mktemp("serve_onnx") / "tiny.onnx").path


def test_onnx_backend_serves_the_same_texts(onnx_model, rec):
    from crnn.inference.onnx import OnnxRecognizer

    imgs = [render_text(t) for t in TEXTS[:6]]
    with ServerThread(create_app(OnnxRecognizer.load(onnx_model, threads=1), SETTINGS)) as s, \
            httpx.Client(base_url=s.url, timeout=TIMEOUT) as c:
        assert c.get("/health").json()["backend"] == "onnx"
        r = c.post("/v1/recognize", files=[("files", (f"{i}.png", png(im))) for i, im in enumerate(imgs)])
        assert r.status_code == 200, r.text
        refs = rec.predict(imgs)
        assert [x["text"] for x in r.json()["results"]] == [p.text for p in refs]
        assert [x["confidence"] for x in r.json()["results"]] == pytest.approx([p.confidence for p in refs],
                                                                               abs=1e-4)
        _error(c.post("/v1/explain", files={"file": ("a.png", png(imgs[0]))}), 501, "not_available")


def test_language_model_is_built_once_and_decodes_as_the_api_does(model_path, rec, tmp_path):
    import dataclasses

    from crnn.decoding.charlm import CharLM, LMScorer
    from crnn.errors import ConfigError

    words = tmp_path / "words.txt"
    words.write_text("AB BBA x xx\n", encoding="utf-8")
    imgs = [render_text(t) for t in TEXTS[:6]]
    settings = dataclasses.replace(SETTINGS, lm=str(words), lm_weight=0.6)
    with ServerThread(create_app(rec, settings)) as s, httpx.Client(base_url=s.url, timeout=TIMEOUT) as c:
        r = c.post("/v1/recognize", files=[("files", (f"{i}.png", png(im))) for i, im in enumerate(imgs)])
        assert r.status_code == 200, r.text
    refs = rec.predict(imgs, lm=LMScorer(CharLM.from_file(words), rec.charset, weight=0.6))
    assert [x["text"] for x in r.json()["results"]] == [p.text for p in refs]
    with pytest.raises(ConfigError, match="not both"):
        create_app(rec, dataclasses.replace(SETTINGS, lm=str(words), lexicon=str(words)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_cli_onnx_backend_without_torch(onnx_model, rec, tmp_path):
    """``crnn serve MODEL.onnx`` in a subprocess: it answers, stops on SIGINT, and never imports torch."""
    port = _free_port()
    script = ("import argparse, sys\n"
              "from crnn.serve.cli import register\n"
              "p = argparse.ArgumentParser(prog='crnn')\n"
              "register(p.add_subparsers(dest='command', required=True))\n"
              "a = p.parse_args(sys.argv[1:])\n"
              "rc = a.func(a)\n"
              "print('TORCH_IMPORTED', 'torch' in sys.modules, file=sys.stderr)\n"
              "sys.exit(rc)\n")
    log = tmp_path / "serve.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", script, "serve", str(onnx_model), "--port", str(port),
                                 "--threads", "1", "--no-access-log", "--max-images", "4"],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(proc, url, log, 60)
        img = render_text("B-7")
        r = httpx.post(url + "/v1/recognize", files={"file": ("a.png", png(img))}, timeout=TIMEOUT)
        assert r.status_code == 200 and r.json()["results"][0]["text"] == rec.predict([img])[0].text
        tiny = png(render_text("A"))
        r = httpx.post(url + "/v1/recognize", files=[("files", ("a.png", tiny))] * 5, timeout=TIMEOUT)
        assert r.status_code == 413 and json.loads(r.text)["code"] == "too_many_images"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    text = log.read_text()
    assert "serving" in text and "TORCH_IMPORTED False" in text, text


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_load_recognizer_picks_by_file_type(model_path, rec, tmp_path):
    from crnn.export.torchscript import export_torchscript
    from crnn.inference.load import load_recognizer
    from crnn.inference.torchscript import TorchScriptRecognizer

    ts = export_torchscript(model_path, tmp_path / "m.torchscript.pt").path
    backend = load_recognizer(str(ts))
    assert isinstance(backend, TorchScriptRecognizer) and isinstance(load_recognizer(str(model_path)), Recognizer)
    img = render_text("7xB")
    with ServerThread(create_app(backend, SETTINGS)) as s, httpx.Client(base_url=s.url, timeout=TIMEOUT) as c:
        assert c.get("/health").json()["backend"] == "torchscript"
        r = c.post("/v1/recognize", files={"file": ("a.png", png(img))})
        assert r.status_code == 200 and r.json()["results"][0]["text"] == rec.predict([img])[0].text
        _error(c.post("/v1/explain", files={"file": ("a.png", png(img))}), 501, "not_available")
