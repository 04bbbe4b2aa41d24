"""The suite's verdict keeps its false-alarm rate at alpha, whatever the number of tests it runs."""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from nndoctor.report._section import to_sections
from nndoctor.shift._suite import compare_samples, suite_rejects

ALPHA = 0.05


def _bound(reps: int) -> float:
    """alpha plus three Monte Carlo standard deviations."""
    return ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / reps)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_holm_over_independent_tests_alarms_at_most_alpha_under_no_change(k: int) -> None:
    """k independent tests with uniform p-values (no change anywhere): "any of k at alpha"
    alarms at 1 - 0.95^k (0.14 for 3 tests); the suite's rule stays at alpha."""
    rng = np.random.default_rng(k)
    reps = 20_000
    names = ["features", "mmd", "classifier", "bbsd"][:k]
    alarms = 0
    for p in rng.uniform(size=(reps, k)):
        res = {n: SimpleNamespace(pvalue=float(v), drift_detected=v <= ALPHA)
               for n, v in zip(names, p, strict=True)}  # fmt: skip
        alarms += bool(suite_rejects(res, ALPHA))
    assert alarms / reps <= _bound(reps)
    # and not far below: with one test the rule is the test itself
    if k == 1:
        assert alarms / reps >= ALPHA - 3 * math.sqrt(ALPHA * (1 - ALPHA) / reps)


def test_holm_keeps_the_tests_own_verdict_and_steps_down() -> None:
    res = {
        "features": SimpleNamespace(pvalue=0.001, drift_detected=False),  # effect too small
        "mmd": SimpleNamespace(pvalue=0.04, drift_detected=True),
        "bbsd": SimpleNamespace(pvalue=math.nan, drift_detected=False),  # could not run
    }
    # k = 2 (the NaN is not a test): 0.001 <= 0.025 passes the first step but its own
    # verdict is "no drift"; 0.04 <= 0.05 at the second step rejects
    assert suite_rejects(res, ALPHA) == ("mmd",)
    res["features"] = SimpleNamespace(pvalue=0.03, drift_detected=True)
    assert suite_rejects(res, ALPHA) == ()  # 0.03 > 0.025: the step-down stops at once


def test_the_suite_on_tables_with_no_change_alarms_at_most_alpha() -> None:
    """End to end: per-feature tests and MMD on pairs of draws from one distribution."""
    reps = 120
    alarms = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(reps):
            rng = np.random.default_rng(seed)
            src = pd.DataFrame(rng.normal(size=(60, 3)), columns=list("abc"))
            tgt = pd.DataFrame(rng.normal(size=(60, 3)), columns=list("abc"))
            rep = compare_samples(src, tgt, n_permutations=100, random_state=seed)
            assert rep.drift_detected == bool(rep.rejected)
            alarms += rep.drift_detected
    assert alarms / reps <= _bound(reps)


def test_a_test_that_rejects_alone_is_marked_and_the_verdict_says_why() -> None:
    """A pair where one test rejects at alpha on its own and the suite does not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(200):
            rng = np.random.default_rng(seed)
            src = pd.DataFrame(rng.normal(size=(60, 3)), columns=list("abc"))
            tgt = pd.DataFrame(rng.normal(size=(60, 3)), columns=list("abc"))
            rep = compare_samples(src, tgt, n_permutations=100, random_state=seed)
            parts = [rep.features, rep.mmd]
            if not rep.drift_detected and any(p.drift_detected for p in parts):
                break
        else:
            pytest.fail("no seed where a test rejects alone")
    summary = to_sections(rep)[0]
    assert not rep.drift_detected
    assert any(row["drift"] == "- (alone only)" for row in summary.table)
    assert "Holm's correction over the 2 tests" in summary.verdict
    assert summary.payload["rejected"] == []
