"""crnn.inference.load: any model path opened with the right runtime, untrusted files refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import error_line, render_text
from crnn.checkpoint import save_checkpoint
from crnn.cli import main
from crnn.config import Config
from crnn.data.images import Preprocess
from crnn.models import build_model

CHARSET = "-7ABx"


# tests/test_checkpoint.py covers: a __reduce__ payload in a checkpoint and a raw pickle, truncation at one
# point, random bytes, text, a bare state_dict, a newer format version, charset/output-layer mismatch, a
# missing file, a folder and an empty file. These add what it leaves out.
class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def _payload(**changes) -> dict:
    cfg = Config()
    cfg.model.rnn_hidden = 16
    model = build_model(cfg.model, len(CHARSET) + 1)
    p = {"format": "crnn-ocr-checkpoint", "version": 1, "config": cfg.to_dict(), "charset": CHARSET,
         "preprocess": Preprocess().to_dict(), "model": model.state_dict()}
    p.update(changes)
    return p


def _bad_model(kind: str, path: Path, marker: Path) -> None:
    import torch

    if kind == "evil legacy format":  # the pre-zip torch.save format, with code in it
        torch.save({**_payload(), "meta": _Evil(marker)}, path, _use_new_zipfile_serialization=False)
    elif kind == "evil inside the weights":
        torch.save(_payload(model={"fc.weight": _Evil(marker)}), path)
    elif kind == "torchscript":
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    elif kind == "zip":
        import zipfile

        with zipfile.ZipFile(path, "w") as z:
            z.writestr("data.pkl", b"not a pickle")
    elif kind == "npy":
        np.save(path.open("wb"), np.zeros(10))
    elif kind == "version is text":
        torch.save(_payload(version="1"), path)
    elif kind == "model is a list":
        torch.save(_payload(model=[1, 2, 3]), path)
    elif kind == "charset is a number":
        torch.save(_payload(charset=5), path)
    elif kind == "charset has control chars":
        torch.save(_payload(charset="ab\x00\x01-"), path)
    elif kind == "config is garbage":
        torch.save(_payload(config={"model": {"bogus": 1}}), path)
    elif kind == "weights of another size":
        cfg = Config()
        cfg.model.rnn_hidden = 24
        torch.save(_payload(model=build_model(cfg.model, len(CHARSET) + 1).state_dict()), path)
    elif kind == "config claims a huge model":
        cfg = Config()
        cfg.model.rnn_hidden = 3_000_000  # ~100 GB of weights if built: must be refused before allocating
        torch.save(_payload(config=cfg.to_dict()), path)
    elif kind.startswith("truncated at "):
        save_checkpoint(path, _payload())
        data = path.read_bytes()
        cut = {"truncated at 1%": len(data) // 100, "truncated at 50%": len(data) // 2,
               "truncated at 99%": len(data) * 99 // 100, "truncated at -1 byte": len(data) - 1}[kind]
        path.write_bytes(data[:cut])


BAD_MODELS = {
    "evil legacy format": "refused", "evil inside the weights": "refused", "torchscript": "is a TorchScript program",
    "zip": "not a readable model", "npy": "not a readable model", "version is text": "not a number",
    "model is a list": "'model' is a list", "charset is a number": "'charset' is a int",
    "charset has control chars": "control character", "config is garbage": "config is not understood",
    "weights of another size": "weights do not fit", "config claims a huge model": "weights do not fit",
    "truncated at 1%": "not a readable model", "truncated at 50%": "not a readable model",
    "truncated at 99%": "not a readable model", "truncated at -1 byte": "not a readable model",
}


@pytest.mark.parametrize("kind", list(BAD_MODELS))
def test_untrusted_model_files_are_refused_with_one_line(kind, tmp_path, capsys, monkeypatch):
    import resource
    import time

    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    _bad_model(kind, path, marker)
    render_text("AB").save(tmp_path / "AB.png")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    for argv in (["predict", str(path), str(tmp_path / "AB.png")], ["eval", str(path), str(tmp_path)]):
        capsys.readouterr()
        assert main(argv) == 2, kind
        line = error_line(capsys.readouterr().err)
        assert line.startswith(f"error: {path}: ") and BAD_MODELS[kind] in line, line
    assert not marker.exists()  # the payload never ran
    assert time.perf_counter() - t < 20
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 500_000  # KB: nothing huge was built


def test_eval_runs_an_onnx_file_like_its_checkpoint(onnx_file, model_file, images, capsys):

    assert main(["eval", str(model_file), str(images), "--json"]) == 0
    torch_summary = json.loads(capsys.readouterr().out)
    assert main(["eval", str(onnx_file), str(images), "--json"]) == 0
    onnx_summary = json.loads(capsys.readouterr().out)
    assert onnx_summary["samples"] == torch_summary["samples"] == 3
    assert onnx_summary["word_accuracy"] == torch_summary["word_accuracy"]
    assert onnx_summary["cer"] == pytest.approx(torch_summary["cer"])
    assert [e["pred"] for e in onnx_summary["worst_errors"]] == [e["pred"] for e in torch_summary["worst_errors"]]
