"""BBSE's constrained maximum-likelihood solve: exact constraints, optimality, and accuracy.

When the exact solution :math:`C^{-1}\\mu` has negative weights, ``bbse-hard`` returns
:math:`\\arg\\max_{w \\ge 0, p^\\top w = 1} \\sum_i \\mu_i \\log (Cw)_i` (Garg et al., 2020)
instead of clipping negatives and rescaling. Synthetic problems are drawn from a known
confusion model, :math:`P(\\hat y = i \\mid y = j) = M_{ij}`, straight as class counts (fast).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.stats import binomtest

from nndoctor.exceptions import IllConditionedWarning
from nndoctor.shift import LabelShiftEstimator


def _onehots(label_counts: Any, M: Any, rng: np.random.Generator) -> tuple[Any, Any]:
    """Hard predictions (one-hot rows) and labels for the given count of each label."""
    k = len(label_counts)
    preds, labels = [], []
    for j, nj in enumerate(label_counts):
        preds.append(np.repeat(np.arange(k), rng.multinomial(nj, M[:, j])))
        labels.append(np.full(nj, j))
    return np.eye(k)[np.concatenate(preds)], np.concatenate(labels)


def _problem(seed: int, *, k: int = 10, recall: float = 0.8, n_s: int = 300, n_t: int = 1000,
             alpha: float = 0.1) -> tuple[Any, Any, Any, Any]:  # fmt: skip
    rng = np.random.default_rng(seed)
    M = np.full((k, k), (1 - recall) / (k - 1))
    np.fill_diagonal(M, recall)
    Ps, ys = _onehots(np.maximum(rng.multinomial(n_s, np.full(k, 1 / k)), 1), M, rng)
    counts = rng.multinomial(n_t, rng.dirichlet(np.full(k, alpha)))
    Pt, _ = _onehots(counts, M, rng)
    return Ps, ys, Pt, counts


def _clip_and_rescale(C: Any, mu: Any, p: Any) -> Any:
    """The first release's rule: least squares, negatives clipped to 0, then renormalized."""
    w = 1.0 + np.linalg.lstsq(C, mu - C.sum(axis=1), rcond=1e-10)[0]
    w = np.maximum(w, 0.0)
    return w / (w @ p)


def _loglik(C: Any, mu: Any, w: Any) -> float:
    rows = mu > 0
    return float(mu[rows] @ np.log(np.maximum((C @ w)[rows], 1e-300)))


def test_constrained_solution_is_feasible_and_optimal() -> None:
    """KKT oracle: with q = p * w and g_j = sum_i mu_i M_ij / (M q)_i (M = C / p), the
    maximum satisfies g_j = 1 where q_j > 0 and g_j <= 1 where q_j = 0."""
    n_constrained = 0
    for seed in range(12):
        Ps, ys, Pt, _ = _problem(seed)
        est = LabelShiftEstimator("bbse-hard", n_bootstrap=0, tol=1e-11, max_iter=100_000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IllConditionedWarning)
            res = est.fit(Ps, ys).estimate(Pt)
        w, p = res.weights, res.source_prior
        assert np.all(w >= 0)
        assert abs(float(w @ p) - 1.0) < 1e-12
        if not res.clipped_classes:
            continue
        n_constrained += 1
        assert res.converged
        assert res.n_iter > 0
        C, mu = est.confusion_matrix_, Pt.mean(axis=0)
        rows = mu > 0
        M, q = (C / p)[rows], w * p
        g = M.T @ (mu[rows] / (M @ q))
        free = q > 1e-6
        np.testing.assert_allclose(g[free], 1.0, atol=1e-5)
        assert np.all(g[~free] <= 1.0 + 1e-5)
        # the clip-and-rescale rule is feasible too, but its likelihood is lower
        w_old = _clip_and_rescale(C, mu, p)
        assert _loglik(C, mu, w) >= _loglik(C, mu, w_old) - 1e-12
    assert n_constrained >= 6  # at alpha = 0.1 most problems need the constraints


def test_exact_solution_is_kept_when_feasible() -> None:
    """A mild shift (alpha = 10) rarely makes C^-1 mu negative; then nothing changes."""
    kept = 0
    for seed in range(10):
        Ps, ys, Pt, _ = _problem(seed, alpha=10.0, recall=0.9)
        est = LabelShiftEstimator("bbse-hard", n_bootstrap=0).fit(Ps, ys)
        res = est.estimate(Pt)
        if res.clipped_classes:
            continue
        kept += 1
        C, mu = est.confusion_matrix_, Pt.mean(axis=0)
        np.testing.assert_allclose(res.weights, np.linalg.solve(C, mu), atol=1e-10)
        assert res.n_iter == 0
    assert kept >= 8


def test_constrained_solve_beats_clip_and_rescale_over_many_seeds() -> None:
    """Strong shift (alpha = 0.1), 10 classes, recall 0.8, 300 held-out rows: over 150 seeded
    problems the constrained solution is closer to the truth more often than not (sign test)
    and its median weight MSE is lower (measured: ~0.064 vs ~0.073, wins 65%, losses 32%)."""
    new, old = [], []
    for seed in range(150):
        Ps, ys, Pt, counts = _problem(seed)
        est = LabelShiftEstimator("bbse-hard", n_bootstrap=0).fit(Ps, ys)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IllConditionedWarning)
            res = est.estimate(Pt)
        truth = counts / counts.sum() / res.source_prior
        w_old = _clip_and_rescale(est.confusion_matrix_, Pt.mean(axis=0), res.source_prior)
        new.append(float(np.mean((res.weights - truth) ** 2)))
        old.append(float(np.mean((w_old - truth) ** 2)))
    diff = np.asarray(new) - np.asarray(old)
    wins, losses = int(np.sum(diff < -1e-12)), int(np.sum(diff > 1e-12))
    assert binomtest(wins, wins + losses, alternative="greater").pvalue < 0.01
    assert np.median(new) < np.median(old)
    assert np.mean(new) < np.mean(old)
