"""Arrays the caller passes are read in place (no copy) and never written."""

from __future__ import annotations

import numpy as np
import pytest

from nndoctor.shift import ShiftDetector, classifier_test, compare_samples, feature_test
from nndoctor.shift._common import as_frame


def test_as_frame_is_a_read_only_view() -> None:
    x = np.arange(12.0).reshape(6, 2)
    frame = as_frame(x, "X")
    assert np.shares_memory(frame.to_numpy(), x)
    with pytest.raises(ValueError, match="read-only"):
        frame.to_numpy()[0, 0] = 1.0
    assert x.flags.writeable  # the caller's array itself stays writeable
    assert x[0, 0] == 0.0


@pytest.mark.parametrize(
    "entry", ["feature_test", "compare_samples", "classifier_test", "ShiftDetector"]
)
def test_entry_points_leave_the_callers_arrays_as_they_were(entry: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 3))
    y = rng.normal(size=(150, 3))
    y[:, 0] += 0.8
    x[::17, 1] = np.nan
    before = (x.copy(), y.copy())
    if entry == "feature_test":
        res = feature_test(x, y, random_state=0)
        assert res.features[0].drifted
    elif entry == "compare_samples":
        assert compare_samples(x, y, random_state=0).drift_detected
    elif entry == "classifier_test":
        assert classifier_test(x, y, random_state=0).pvalue < 0.05
    else:
        assert ShiftDetector("ks", random_state=0).fit(x).test(y).drift_detected
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(y, before[1])
    assert x.flags.writeable
    assert y.flags.writeable
