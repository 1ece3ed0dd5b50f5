"""``python -m crnn`` (and ``torchrun -m crnn train ...``)."""

from crnn.cli import run

if __name__ == "__main__":
    raise SystemExit(run())
