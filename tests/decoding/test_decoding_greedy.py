"""crnn.decoding.greedy: best-path CTC decoding, by example and as hypothesis properties."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_decoding_beam import peaked, random_path

from crnn.decoding.greedy import greedy_decode


def test_greedy_reads_peaked_paths():
    rng = np.random.default_rng(0)
    for _ in range(20):
        label = list(rng.integers(1, 6, rng.integers(1, 6)))
        path = random_path(label, 12, rng)
        res = greedy_decode(peaked(path, 6, rng))
        assert res.indices == tuple(label)
        assert all(path[f] == c for f, c in zip(res.frames, res.indices))  # each char at a frame that shows it
        assert all(f == 0 or path[f - 1] != path[f] for f in res.frames)  # ... the first of its run


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _collapse(path: np.ndarray, blank: int) -> list[int]:
    return [int(k) for k, _ in itertools.groupby(path.tolist()) if k != blank]


log_prob_matrices = hnp.arrays(
    np.float32, st.tuples(st.integers(0, 40), st.integers(1, 8)),
    elements=st.one_of(st.floats(-30, 0, width=32), st.just(-np.inf)))


@SETTINGS
@given(log_prob_matrices, st.data())
def test_greedy_decoding_properties(lp, data):
    t, c = lp.shape
    blank = data.draw(st.integers(0, c - 1), label="blank")
    res = greedy_decode(lp, blank=blank)
    assert len(res.indices) == len(res.frames)
    assert blank not in res.indices                                      # never emits the blank
    assert all(0 <= f < t for f in res.frames)                           # frames inside the matrix ...
    assert all(a < b for a, b in zip(res.frames, res.frames[1:]))        # ... strictly increasing
    best = lp.argmax(axis=1) if t else np.zeros(0, np.int64)
    assert list(res.indices) == _collapse(best, blank)                   # the collapsed best path
    assert all(best[f] == i for f, i in zip(res.frames, res.indices))    # emitted where the path has it
    for (f0, i0), (f1, i1) in zip(zip(res.frames, res.indices), zip(res.frames[1:], res.indices[1:])):
        if i0 == i1:                                                     # a repeat needs a blank in between
            assert blank in best[f0 + 1:f1].tolist()
    want = float(lp.max(axis=1).astype(np.float64).sum()) if t else 0.0
    assert res.log_prob == pytest.approx(want, rel=1e-5, abs=1e-4) or res.log_prob == want == -np.inf
    assert 0.0 <= res.confidence <= 1.0
