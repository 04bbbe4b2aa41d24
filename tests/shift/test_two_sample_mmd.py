"""MMD two-sample test: exact statistic, valid p-values, power, batching, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import nndoctor.shift._mmd as mmd_module
from nndoctor.exceptions import DataValidationError, InvalidParameterError, SmallSampleWarning
from nndoctor.shift import mmd_test
from nndoctor.shift.two_sample import median_bandwidth

ALPHA = 0.05
REPS = 500
SE = (ALPHA * (1 - ALPHA) / REPS) ** 0.5


def _brute_mmd2(x: np.ndarray, y: np.ndarray, bw: float, kernel: str = "rbf") -> float:
    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * bw**2)) if kernel == "rbf" else np.exp(-np.sqrt(d2) / bw)

    m, n = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2 * kxy.mean()
    )


@pytest.mark.parametrize("kernel", ["rbf", "laplacian"])
def test_statistic_equals_brute_force(kernel: str) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(17, 3)), rng.normal(size=(11, 3)) + 0.4
    res = mmd_test(x, y, kernel=kernel, bandwidth=1.7, n_permutations=20, random_state=0)  # type: ignore[arg-type]
    assert res.statistic == pytest.approx(_brute_mmd2(x, y, 1.7, kernel), rel=1e-10, abs=1e-13)


def test_null_values_are_real_splits_and_blocks_do_not_matter() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 2)), rng.normal(size=(9, 2))
    whole = mmd_test(x, y, bandwidth=1.0, n_permutations=30, random_state=3)
    tiny = mmd_test(x, y, bandwidth=1.0, n_permutations=30, random_state=3, max_block_bytes=1024)
    assert whole.null_distribution is not None
    assert tiny.null_distribution is not None
    np.testing.assert_allclose(whole.null_distribution, tiny.null_distribution, atol=1e-13)
    # every null value is the brute-force MMD² of some split of the pooled sample
    z = np.vstack((x, y))
    A = mmd_module._indicators(21, 12, 30, np.random.default_rng(7), torch.device("cpu"))
    vals = mmd_module._permutation_statistics(torch.from_numpy(z), 12, A, "rbf", 1.0, 10**6).numpy()
    for j in (0, 1, 17):
        a = A[:, j].numpy().astype(bool)
        assert vals[j] == pytest.approx(_brute_mmd2(z[a], z[~a], 1.0), abs=1e-12)


def test_median_bandwidth_is_median_distance() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(size=(40, 3))
    d = np.sqrt(((z[:, None] - z[None]) ** 2).sum(-1))[np.triu_indices(40, 1)]
    assert median_bandwidth(z) == pytest.approx(np.median(d), rel=0.05)


def test_pvalue_never_zero_and_formula() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(30, 2)) + 5.0
    res = mmd_test(x, y, n_permutations=99, random_state=0)
    assert res.pvalue == pytest.approx(1 / 100)
    assert res.null_distribution is not None
    expected = (1 + np.sum(res.null_distribution >= res.statistic)) / 100
    assert res.pvalue == pytest.approx(expected)
    assert res.drift_detected
    assert res.to_dict()["n_permutations"] == 99


def test_same_seed_same_pvalue() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(35, 3)) + 0.2
    a = mmd_test(x, y, n_permutations=200, random_state=11)
    b = mmd_test(x, y, n_permutations=200, random_state=11)
    assert a.pvalue == b.pvalue
    assert a.statistic == b.statistic


def test_permutation_fpr_under_h0() -> None:
    rng = np.random.default_rng(5)
    pvals = np.array(
        [
            mmd_test(
                rng.normal(size=(20, 2)), rng.normal(size=(20, 2)), n_permutations=99,
                random_state=r,
            ).pvalue
            for r in range(REPS)
        ]
    )  # fmt: skip
    assert pvals.min() > 0
    assert abs(np.mean(pvals <= ALPHA) - ALPHA) < 3 * SE


def test_block_fpr_under_h0() -> None:
    rng = np.random.default_rng(6)
    pvals = np.array(
        [
            mmd_test(
                rng.normal(size=(200, 2)), rng.normal(size=(200, 2)), method="block",
                random_state=r,
            ).pvalue
            for r in range(REPS)
        ]
    )  # fmt: skip
    assert pvals.min() > 0
    assert abs(np.mean(pvals <= ALPHA) - ALPHA) < 3 * SE


def test_power_mean_shift_one_of_ten_dimensions() -> None:
    rng = np.random.default_rng(7)
    hits = 0
    for r in range(10):
        x = rng.normal(size=(500, 10))
        y = rng.normal(size=(500, 10))
        y[:, 0] += 0.5
        hits += mmd_test(x, y, n_permutations=100, random_state=r).pvalue <= ALPHA
    assert hits >= 9


def test_auto_switches_to_linear_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mmd_module, "LINEAR_TIME_THRESHOLD", 500)
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(600, 3)), rng.normal(size=(600, 3))
    y[:, 0] += 0.5
    res = mmd_test(x, y, random_state=0)
    assert res.method == "mmd-block"
    assert res.n_permutations is None
    assert res.details["n_blocks"] >= 100
    assert res.drift_detected


def test_tensor_and_frame_inputs_agree_with_numpy() -> None:
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(25, 2)), rng.normal(size=(20, 2))
    a = mmd_test(x, y, n_permutations=50, random_state=1)
    b = mmd_test(torch.from_numpy(x), torch.from_numpy(y), n_permutations=50, random_state=1)
    c = mmd_test(pd.DataFrame(x), pd.DataFrame(y), n_permutations=50, random_state=1)
    assert a.pvalue == b.pvalue == c.pvalue
    assert a.statistic == pytest.approx(b.statistic) == pytest.approx(c.statistic)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.array([[1.0, np.nan]] * 3), np.zeros((3, 2)), "NaN or infinite"),
        (np.zeros((3, 2)), np.array([[1.0, np.inf]] * 3), "NaN or infinite"),
        (np.zeros((3, 2)), np.zeros((3, 3)), "3 features but X has 2"),
        (np.zeros((0, 2)), np.zeros((3, 2)), "0 row"),
        (np.array([["a", "b"]] * 3), np.zeros((3, 2)), "non-numeric"),
        (torch.full((3, 2), float("nan")), torch.zeros(3, 2), "NaN or infinite"),
    ],
)
def test_bad_input_raises(x: object, y: object, match: str) -> None:
    with pytest.raises(DataValidationError, match=match):
        mmd_test(x, y)


def test_bad_parameters_raise() -> None:
    x = np.zeros((5, 2))
    with pytest.raises(InvalidParameterError, match="kernel 'cosine' is unknown"):
        mmd_test(x, x, kernel="cosine")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="bandwidth"):
        mmd_test(x, x, bandwidth=-1.0)
    with pytest.raises(InvalidParameterError, match="n_permutations"):
        mmd_test(x, x, n_permutations=0)


def test_one_row_warns_and_returns_nan() -> None:
    with pytest.warns(SmallSampleWarning, match="at least 2 rows"):
        res = mmd_test(np.zeros((1, 2)), np.ones((5, 2)))
    assert np.isnan(res.pvalue)
    assert not res.drift_detected
    with pytest.warns(SmallSampleWarning, match="4 blocks"):
        res = mmd_test(np.zeros((5, 2)), np.ones((5, 2)), method="block")
    assert np.isnan(res.statistic)


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(2, 12),
    n=st.integers(2, 12),
    d=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    scale=st.floats(1e-3, 1e3),
)
def test_property_any_shape_gives_a_valid_pvalue(
    m: int, n: int, d: int, seed: int, scale: float
) -> None:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(m, d)) * scale, rng.normal(size=(n, d)) * scale
    res = mmd_test(x, y, n_permutations=19, random_state=seed)
    assert np.isfinite(res.statistic)
    assert res.null_distribution is not None
    assert res.null_distribution.shape == (19,)
    # the permutation p-value, recomputed from the null it reports (ties within rounding
    # count as >= T): never 0, at most 1
    tie = 1e-12 * max(1.0, abs(res.statistic))
    expected = (1 + np.sum(res.null_distribution >= res.statistic - tie)) / 20
    assert res.pvalue == pytest.approx(expected)
    # the statistic depends on the two samples, not on the order of their rows
    shuffled = mmd_test(x[::-1], y[rng.permutation(n)], n_permutations=19, random_state=seed)
    assert shuffled.statistic == pytest.approx(res.statistic, rel=1e-9, abs=1e-12)
    bad = x.copy()
    bad[rng.integers(m), rng.integers(d)] = np.nan
    with pytest.raises(DataValidationError, match="NaN"):
        mmd_test(bad, y)


def test_constant_data_gives_pvalue_one() -> None:
    res = mmd_test(np.ones((10, 2)), np.ones((8, 2)), n_permutations=50, random_state=0)
    assert res.statistic == pytest.approx(0.0, abs=1e-12)
    assert res.pvalue == 1.0


def test_permutations_over_the_maximum_are_refused_with_the_reason() -> None:
    from nndoctor.shift._mmd import MAX_PERMUTATIONS

    X = np.zeros((10, 2))
    with pytest.raises(InvalidParameterError, match=r"maximum of 1,000,000.*steps of 1/"):
        mmd_test(X, X + 1, n_permutations=MAX_PERMUTATIONS + 1)


def test_permutations_are_evaluated_in_memory_bounded_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The split-indicator matrix is built a chunk of columns at a time (it was N x (B + 1) at
    once: 45 GB for 10^7 permutations of a few hundred rows); the p-value agrees with one pass
    to Monte-Carlo error, and progress is reported per chunk."""
    from nndoctor.shift import _mmd

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(30, 2)), rng.normal(size=(30, 2)) + np.array([0.4, 0.0])
    one = mmd_test(X, Y, n_permutations=3000, random_state=0)
    widths: list[int] = []
    real = _mmd._indicators

    def spy(N: int, m: int, B: int, g: np.random.Generator, device: torch.device) -> torch.Tensor:
        A = real(N, m, B, g, device)
        widths.append(A.shape[1])
        return A

    monkeypatch.setattr(_mmd, "INDICATOR_BYTES", 8 * 60 * 200)  # 200 columns of 60 rows
    monkeypatch.setattr(_mmd, "_indicators", spy)
    seen: list[float] = []
    res = mmd_test(X, Y, n_permutations=3000, random_state=0,
                   progress=lambda f, text: seen.append(f))  # fmt: skip
    assert max(widths) <= 201
    assert len(widths) == 15
    assert res.statistic == pytest.approx(one.statistic, rel=1e-12)
    assert res.null_distribution is not None
    assert res.null_distribution.shape == (3000,)
    assert abs(res.pvalue - one.pvalue) < 4 * np.sqrt(one.pvalue * (1 - one.pvalue) / 3000) + 1e-3
    assert seen == sorted(seen)
    assert seen[-1] == 1.0


@pytest.mark.parametrize("method", ["permutation", "block"])
@pytest.mark.parametrize("seed", range(3))
def test_the_p_value_does_not_depend_on_the_order_of_the_rows(method: str, seed: int) -> None:
    """The same rows in another order give the same statistic and the same p-value (the
    permutations, the bandwidth's subsample and the linear-time pairs see canonical rows)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(700, 3))
    y = rng.normal(size=(650, 3)) + np.array([0.1, 0.0, 0.0])
    kw = {"method": method, "n_permutations": 200, "random_state": 5}
    a = mmd_test(x, y, **kw)
    b = mmd_test(x[rng.permutation(700)], y[rng.permutation(650)], **kw)
    assert a.pvalue == b.pvalue
    assert a.statistic == pytest.approx(b.statistic, rel=1e-12, abs=1e-15)
    assert a.details.get("bandwidth") == pytest.approx(b.details.get("bandwidth"), rel=1e-12)
