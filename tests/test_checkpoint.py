"""Model files: atomic writes, safe loading, clear errors for anything that is not ours."""

import os
import pickle

import pytest
import torch

from crnn import Recognizer
from crnn.checkpoint import FORMAT, VERSION, load_checkpoint, save_checkpoint
from crnn.config import Config
from crnn.errors import ModelFileError
from crnn.models import build_model


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
