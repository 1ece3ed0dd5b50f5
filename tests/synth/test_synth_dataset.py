"""``--train synth:CONFIG``: on-the-fly synthetic data, alone and mixed with real data."""

from crnn.checkpoint import load_checkpoint
from crnn.config import Config, apply_overrides
from crnn.data.images import Preprocess
from crnn.synth import sample_at
from crnn.synth.dataset import load_synth
from crnn.training.loop import train

SYNTH = 'system_fonts = false\ntext = "regex:[AB7x-]{1,4}"\ncharset = "AB7x-"\n'


def _cfg(*extra):
    return apply_overrides(Config(), ["data.height=32", "model.rnn_hidden=32", "train.batch_size=16",
                                      "data.synth_epoch_size=48",
                                      "data.max_val=16", "train.epochs=2", *extra])


def test_synth_only_run(tmp_path):
    (tmp_path / "s.toml").write_text(SYNTH)
    messages = []
    res = train(_cfg(), f"synth:{tmp_path / 's.toml'}", tmp_path / "run", progress=False, log=messages.append)
    assert res.epochs == 2 and res.steps == 6
    assert any("16 synthetic samples" in m for m in messages)
    assert load_checkpoint(res.best_path)["charset"] == "-7ABx"


def test_synth_mixed_with_real_data(tmp_path, toy_data):
    (tmp_path / "s.toml").write_text(SYNTH)
    res = train(_cfg(), [toy_data / "train", f"synth:{tmp_path / 's.toml'}"], tmp_path / "run", progress=False,
                log=lambda *a: None)
    # 228 real (12 held out for validation) + 48 synthetic per epoch, batches of 16 (the last one dropped)
    assert res.steps == 2 * ((228 + 48) // 16)


def test_epochs_draw_new_samples(tmp_path):
    (tmp_path / "s.toml").write_text(SYNTH)
    cfg = load_synth(f"synth:{tmp_path / 's.toml'}", Preprocess(), None)
    from crnn.charset import Charset
    from crnn.synth.dataset import SynthDataset

    ds = SynthDataset(cfg, 0, 8, Preprocess(), Charset("AB7x-"))
    first = [ds[i][2] for i in range(8)]
    ds.set_epoch(1)
    second = [ds[i][2] for i in range(8)]
    assert first != second
    assert first[3] == sample_at(cfg, 0, 3).text
