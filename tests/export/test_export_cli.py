"""crnn.export.cli: ``crnn export`` and where it writes by default."""

from __future__ import annotations

import argparse
import json

from conftest import needs_onnx, render_text
from crnn import Recognizer
from crnn.export.cli import register as register_export
from crnn.export.onnx import export_onnx
from crnn.export.torchscript import export_torchscript


def _export_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="crnn")
    register_export(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@needs_onnx
def test_export_cli_and_predict_backend_onnx(model_path, tmp_path, capsys):
    from crnn.cli import main

    out = tmp_path / "cli.onnx"
    assert _export_cli(["export", str(model_path), "--format", "onnx", "--out", str(out)]) == 0
    assert "checked against PyTorch" in capsys.readouterr().out and out.is_file()
    assert _export_cli(["export", str(model_path), "--format", "torchscript", "--out", str(tmp_path / "m.ts")]) == 0
    assert "torchscript" in capsys.readouterr().out
    img = tmp_path / "AB.png"
    render_text("AB").save(img)
    assert main(["predict", str(out), str(img), "--backend", "onnx", "--format", "json"]) == 0
    got = json.loads(capsys.readouterr().out)
    ref = Recognizer.load(model_path).predict([img])[0]
    assert len(got) == 1 and got[0]["name"] == str(img) and got[0]["text"] == ref.text
    assert abs(got[0]["confidence"] - ref.confidence) < 1e-4
    # without --backend the file type decides: .onnx -> ONNX Runtime, .torchscript.pt -> TorchScript
    (tmp_path / "m.ts").rename(tmp_path / "m.torchscript.pt")
    for model in (out, tmp_path / "m.torchscript.pt"):
        assert main(["predict", str(model), str(img), "--format", "json"]) == 0
        auto = json.loads(capsys.readouterr().out)
        assert auto[0]["text"] == ref.text and abs(auto[0]["confidence"] - ref.confidence) < 1e-4


@needs_onnx
def test_default_output_paths(model_path, tmp_path):
    import shutil

    src = tmp_path / "best.pt"
    shutil.copy(model_path, src)
    assert export_onnx(src, verify=False).path == tmp_path / "best.onnx"
    assert export_torchscript(src, verify=False).path == tmp_path / "best.torchscript.pt"
