"""``crnn demo`` / ``make demo``: the whole job end to end on generated CAPTCHA images.

By default the demo fine-tunes the shipped ``builtin:en`` model, which is what we tell a user
with a couple of thousand images to do: from scratch, a CTC model spends its first minute or two
emitting only blanks, so a three-minute run on a slow or busy 2-core machine can end before it has
learned anything (0 % held-out). ``scratch=True`` (``crnn demo --scratch``) shows that path instead.
"""

from __future__ import annotations

import time
from pathlib import Path

from crnn.config import Config, parse_duration
from crnn.data.captcha import generate_captchas
from crnn.errors import CrnnError
from crnn.fileio import check_output_folder


def _ensure(folder: Path, count: int, seed: int, exclude: set[str] | None = None) -> set[str]:
    have = {p.stem for p in folder.glob("*.png")} if folder.is_dir() else set()
    if len(have) >= count:
        print(f"using {len(have)} existing images in {folder}")
        return have
    print(f"generating {count} CAPTCHA images in {folder} ...")
    try:
        return set(generate_captchas(folder, count, seed=seed, exclude=exclude))
    except OSError as e:
        raise CrnnError(f"{folder}: cannot write the demo images ({e.strerror or e})") from None


DEMO_EPOCHS = 6
"""The demo's training is counted in work, not seconds: 6 passes over the 1,900 training CAPTCHAs (about 3
minutes on 2 quiet cores), so a slower or busier machine reaches the same accuracy, only later (a
3-minute wall-clock budget gave 80-85 % on a quiet machine and 60 % on a busy one)."""


def run_demo(root: Path, time_budget: str | None = None, count: int = 2000, test_count: int = 300,
             scratch: bool = False, epochs: int = DEMO_EPOCHS) -> int:
    from crnn import Recognizer
    from crnn.training.loop import train

    # check the arguments before minutes of image generation, not after
    budget = parse_duration(time_budget) if time_budget is not None else None
    if epochs < 1:
        raise CrnnError(f"demo needs at least one epoch (got {epochs})")
    if count < 1 or test_count < 1:
        raise CrnnError(f"demo needs at least one training and one test image (got {count} and {test_count})")
    root = Path(root)
    check_output_folder(root, "demo")
    train_dir, test_dir = root / "data" / "train", root / "data" / "test"
    train_texts = _ensure(train_dir, count, seed=1)
    _ensure(test_dir, test_count, seed=2, exclude=train_texts)
    run = root / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    cfg = Config()
    cfg.train.time_budget = budget
    cfg.train.epochs = epochs if budget is None else cfg.train.epochs
    cfg.data.init_charset = "restrict"  # a CAPTCHA reader answers only with the CAPTCHA alphabet
    init = None if scratch else "builtin:en"
    if init:
        before, _, _ = Recognizer.load(init).evaluate(test_dir)
        print(f"\n== {init} as shipped (printed text, never saw these CAPTCHAs): held-out word accuracy "
              f"{before.accuracy:.2%}, CER {before.cer:.4f}")
    length = f"{time_budget}" if budget is not None else f"{epochs} epochs"
    print(f"\n== {'fine-tuning ' + init if init else 'training from scratch'} for {length} into {run}")
    result = train(cfg, train_dir, run, init=init)
    print(f"\n== evaluating {result.best_path} on {test_dir}")
    rec = Recognizer.load(result.best_path)
    metrics, _, preds = rec.evaluate(test_dir)
    print(f"held-out word accuracy {metrics.accuracy:.2%}, CER {metrics.cer:.4f} on {metrics.n} images")
    if metrics.accuracy < 0.5:
        why = "" if init else " to get past the blank-only start of CTC training"
        print(f"   (low: {length} was too short{why};"
              f" try `crnn demo --epochs 20`{'' if init else ' or drop --scratch'})")
    print("\n== a few predictions (file -> text, confidence)")
    for p in preds[:8]:
        mark = "ok " if Path(p.name).stem == p.text else "ERR"
        print(f"  {mark} {Path(p.name).name:>12} -> {p.text:<8} {p.confidence:.3f}")
    from crnn.insight.visualize import explain, render_explanation

    first = Path(preds[0].name)
    figure = render_explanation(explain(rec, first), run / f"explain-{first.stem}.png")
    print(f"\n== what the model sees: {figure}\n   (input, feature maps, where each character was read, saliency;"
          " see README 'See what the model sees')")
    print(f"\nmodel: {result.best_path}\ntry:   .venv/bin/crnn predict {result.best_path} {test_dir} --format tsv")
    return 0
