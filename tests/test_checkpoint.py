"""Model files: atomic writes, safe loading, clear errors for anything that is not ours."""

from __future__ import annotations

import errno
import os
import pickle

import pytest
import torch

from conftest import ARGS, EPOCHS, RAN
from crnn import Recognizer
from crnn.checkpoint import FORMAT, VERSION, CheckpointWriteError, load_checkpoint, save_checkpoint
from crnn.cli import main
from crnn.config import Config
from crnn.errors import CrnnError, ModelFileError
from crnn.models import build_model

pytestmark = pytest.mark.usefixtures("no_curves")  # no curves.png drawn (see conftest.py)


def _payload(charset="ab"):
    cfg = Config()
    cfg.model.rnn_hidden = 8
    model = build_model(cfg.model, len(charset) + 1)
    return {"config": cfg.to_dict(), "charset": charset, "preprocess": {"height": 32, "channels": 1},
            "model": model.state_dict()}


def test_round_trip(tmp_path):
    save_checkpoint(tmp_path / "m.pt", _payload())
    ckpt = load_checkpoint(tmp_path / "m.pt")
    assert ckpt["format"] == FORMAT and ckpt["version"] == VERSION and ckpt["charset"] == "ab"
    assert [p.text for p in Recognizer.load(tmp_path / "m.pt").predict([torch.zeros(32, 40).numpy()])] != [None]


class Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_malicious_pickle_is_refused_and_never_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    payload = {**_payload(), "format": FORMAT, "version": VERSION, "meta": Evil()}
    torch.save(payload, tmp_path / "evil.pt")
    with pytest.raises(ModelFileError, match="refused"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()
    with open(tmp_path / "raw.pkl", "wb") as f:
        pickle.dump(Evil(), f)
    with pytest.raises(ModelFileError):
        load_checkpoint(tmp_path / "raw.pkl")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("kind", ["truncated", "random", "text", "state_dict", "newer", "mismatch", "missing",
                                  "folder", "empty"])
def test_bad_model_files_get_one_clear_line(tmp_path, kind):
    path = tmp_path / "m.pt"
    save_checkpoint(path, _payload())
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[:3000])
    elif kind == "random":
        path.write_bytes(os.urandom(5000))
    elif kind == "text":
        path.write_text("hello, I am a README")
    elif kind == "state_dict":
        torch.save(build_model(Config().model, 3).state_dict(), path)
    elif kind == "newer":
        torch.save({**_payload(), "format": FORMAT, "version": VERSION + 1}, path)
    elif kind == "mismatch":
        torch.save({**_payload(), "format": FORMAT, "version": VERSION, "charset": "abc"}, path)
    elif kind == "missing":
        path = tmp_path / "nope.pt"
    elif kind == "folder":
        path = tmp_path
    elif kind == "empty":
        path.write_bytes(b"")
    with pytest.raises(ModelFileError) as e:
        Recognizer.load(path)
    msg = str(e.value)
    assert msg.startswith(str(path)) and "\n" not in msg
    expected = {"newer": "newer", "mismatch": "output layer", "state_dict": "not a checkpoint", "missing": "not found",
                "folder": "folder"}.get(kind)
    if expected:
        assert expected in msg


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, _payload("ab"))
    before = path.read_bytes()

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError):
        save_checkpoint(path, _payload("xy"))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_full_disk_while_saving_keeps_the_previous_checkpoint(data, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    real_save = torch.save
    calls = {"n": 0}

    def fills_up(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:  # epoch 1 saves best.pt and last.pt; the disk is full from then on
            f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", fills_up)
    argv = ["train", "--train", str(data), "--out", str(run), *ARGS, "--set", "train.checkpoint_every=0"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"{run}" in err and "could not write the checkpoint (No space left on device)" in err
    assert "the previous file is kept" in err
    before = load_checkpoint(run / "last.pt")
    assert before["train_state"]["epoch"] == 1
    assert sorted(p.name for p in run.glob("*.pt*")) == ["best.pt", "last.pt"]  # no torn or temporary files
    assert not list(run.glob(".*.tmp"))

    monkeypatch.setattr(torch, "save", real_save)  # space freed: the run continues from epoch 1
    assert main(["train", "--train", str(data), "--out", str(run), "--resume", *ARGS]) in RAN
    assert load_checkpoint(run / "last.pt")["train_state"]["epoch"] == EPOCHS


def test_checkpoint_write_error_is_an_oserror_and_a_user_error(tmp_path, monkeypatch):
    from crnn.checkpoint import save_checkpoint

    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EDQUOT, "Quota")))
    with pytest.raises(CheckpointWriteError) as e:
        save_checkpoint(tmp_path / "m.pt", {"x": 1})
    assert isinstance(e.value, OSError) and isinstance(e.value, CrnnError) and e.value.errno == errno.EDQUOT
    assert "nothing was saved" in str(e.value) and not list(tmp_path.iterdir())
