"""The peers the benchmarks measure ours against, each run the same way everywhere: Tesseract 5 (``--psm 7``,
one thread, over a list file so start-up is paid once) and PP-OCRv4's recognizer (rapidocr-onnxruntime, one
thread); and our model's exported ONNX file on ONNX Runtime. Shared by ``printed_words.py``,
``real_benchmarks.py`` and ``infer_throughput.py``."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image


@dataclass
class Sample:
    path: Path
    label: str  # labels.tsv (standard protocol)
    label_cs: str  # labels_casesensitive.tsv where present, else the same as ``label``


System = Callable[[list[Sample]], tuple[list[str], float]]


def run_tesseract(samples, scale: int = 1) -> tuple[list[str], float]:
    exe = shutil.which("tesseract")
    if exe is None:
        raise SystemExit("tesseract not found: apt-get install tesseract-ocr tesseract-ocr-eng")
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, (p, _) in enumerate(samples):
            if scale != 1:
                img = Image.open(p)
                q = Path(tmp) / f"{i:05d}.png"
                img.resize((img.width * scale, img.height * scale), Image.Resampling.BICUBIC).save(q)
                paths.append(str(q))
            else:
                paths.append(str(p))
        lst = Path(tmp) / "list.txt"
        lst.write_text("\n".join(paths[:1]) + "\n")
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        t0 = time.perf_counter()
        subprocess.run([exe, str(lst), str(Path(tmp) / "warm"), "--psm", "7"], env=env, capture_output=True)
        startup = time.perf_counter() - t0
        lst.write_text("\n".join(paths) + "\n")
        t0 = time.perf_counter()
        subprocess.run([exe, str(lst), str(Path(tmp) / "out"), "--psm", "7"], env=env, capture_output=True,
                       check=True)
        elapsed = time.perf_counter() - t0 - startup
        pages = (Path(tmp) / "out.txt").read_text(encoding="utf-8").split("\f")
    texts = [" ".join(p.split()) for p in pages[: len(samples)]]
    texts += [""] * (len(samples) - len(texts))
    return texts, len(samples) / max(elapsed, 1e-9)


def onnx_twin(rec, folder: Path):
    """``rec`` exported to ``folder/model.onnx`` and loaded with ONNX Runtime on one thread."""
    from crnn.export.onnx import export_onnx
    from crnn.inference.onnx import OnnxRecognizer

    path = folder / "model.onnx"
    export_onnx(rec, path)
    return OnnxRecognizer.load(path, threads=1)


def tesseract(samples: list[Sample]) -> tuple[list[str], float]:
    return run_tesseract([(s.path, s.label) for s in samples])


def ppocr_v4(samples: list[Sample]) -> tuple[list[str], float]:
    """PP-OCRv4's recognizer from rapidocr-onnxruntime, one thread, images loaded as RGB by Pillow."""
    import numpy as np
    import rapidocr_onnxruntime
    from PIL import Image
    from rapidocr_onnxruntime.ch_ppocr_rec import TextRecognizer
    from rapidocr_onnxruntime.utils import read_yaml

    pkg = Path(rapidocr_onnxruntime.__file__).parent
    cfg = read_yaml(str(pkg / "config.yaml"))["Rec"]
    cfg.update(model_path=str(pkg / cfg["model_path"]), intra_op_num_threads=1, inter_op_num_threads=1)
    rec = TextRecognizer(cfg)
    # its arrays are BGR, as cv2 reads them
    images = [np.ascontiguousarray(np.asarray(Image.open(s.path).convert("RGB"))[:, :, ::-1]) for s in samples]
    rec(images[:8])  # warm-up
    t0 = time.perf_counter()
    results, _ = rec(images)
    elapsed = time.perf_counter() - t0
    return [text for text, _ in results], len(images) / elapsed


def available_peers() -> dict[str, System | str]:
    """Each peer, or the reason it cannot run here."""
    peers: dict[str, System | str] = {}
    peers["Tesseract 5 --psm 7"] = (tesseract if shutil.which("tesseract") else
                                    "tesseract not found (apt-get install tesseract-ocr tesseract-ocr-eng)")
    try:
        import rapidocr_onnxruntime  # noqa: F401

        peers["PP-OCRv4 rec (rapidocr-onnxruntime)"] = ppocr_v4
    except ImportError:
        peers["PP-OCRv4 rec (rapidocr-onnxruntime)"] = ("rapidocr-onnxruntime not installed "
                                                        "(pip install rapidocr-onnxruntime)")
    return peers
