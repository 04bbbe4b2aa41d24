"""Black-box shift detection (BBSD): two-sample tests on a model's outputs.

A change of the label distribution P(y) with P(x | y) fixed moves the distribution of the
model's predicted classes and probabilities, even when no single input feature moves much.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from nndoctor._results import ResultMixin
from nndoctor._validation import check_choice, check_probabilities
from nndoctor.shift._common import check_alpha, smallest_pvalue, warn_small
from nndoctor.shift._dask_models import apply_model, bbsd_parts, is_dask
from nndoctor.shift._univariate import _ks_2samp, merge_rare

__all__ = ["BBSDResult", "bbsd_test"]

BBSDMethod = Literal["both", "chi2", "ks"]


@dataclass(frozen=True, slots=True)
class BBSDResult(ResultMixin):
    """The outcome of black-box shift detection.

    Attributes
    ----------
    statistic : float
        χ² on the predicted-class counts (``method`` "both" or "chi2"); the largest per-class
        KS distance for ``method="ks"``.
    pvalue : float
        ``method="both"``: ``min(1, 2 min(p_chi2, p_ks))`` (Bonferroni over the two parts).
    method : str
    chi2_statistic, chi2_pvalue : float
        Pearson's χ² of homogeneity on the 2 x C table of predicted-class counts (classes with an
        expected count below 5 merged; never a randomized test).
    chi2_dof : int
    ks_statistics, ks_pvalues : ndarray of shape (C,)
        Per-class KS test on the predicted probability of that class.
    ks_pvalue : float
        ``min(1, C · min_c p_c)`` (Bonferroni).
    source_counts, target_counts : ndarray of shape (C,)
        Predicted-class counts before merging.
    n_source, n_target, n_classes : int
    alpha : float
    drift_detected : bool
    ks_error : float
        Bound on ``|KS statistic - exact KS statistic|`` for every class: 0 in memory; on Dask
        the two KLL sketches' normalized rank errors added (0 while a sketch holds every
        value). The KS p-values are then taken at ``max(0, D - ks_error)`` (conservative).
    engine : str
        ``"in-memory"`` or ``"dask"``.
    """

    statistic: float
    pvalue: float
    method: str
    chi2_statistic: float
    chi2_pvalue: float
    chi2_dof: int
    ks_statistics: npt.NDArray[np.float64]
    ks_pvalues: npt.NDArray[np.float64]
    ks_pvalue: float
    source_counts: npt.NDArray[np.int64]
    target_counts: npt.NDArray[np.int64]
    n_source: int
    n_target: int
    n_classes: int
    alpha: float
    drift_detected: bool
    ks_error: float = 0.0
    engine: str = "in-memory"


def bbsd_test(
    source_probs: Any,
    target_probs: Any,
    *,
    method: BBSDMethod = "both",
    alpha: float = 0.05,
    model: Any = None,
) -> BBSDResult:
    """Black-box shift detection on predicted class probabilities.

    H0: the model's outputs have the same distribution on source and target. Two parts:

    * χ² of homogeneity on the predicted classes ``ŷ = argmax p``: with ``O`` the 2 x C table of
      counts and ``E`` its expected counts, :math:`\\chi^2 = \\sum (O - E)^2 / E` on
      (C' - 1) degrees of freedom, C' the number of classes left after merging those with an
      expected count below 5 (empty classes included). This is the part that sees label shift.
    * per class c, the two-sample KS test on ``p_c``, Bonferroni-corrected:
      :math:`p_{KS} = \\min(1, C \\min_c p_c)`.

    With ``method="both"`` the p-value is :math:`\\min(1, 2\\min(p_{\\chi^2}, p_{KS}))`.

    Parameters
    ----------
    source_probs, target_probs : array-like of shape (m, C) and (n, C)
        Rows of class probabilities (softmax outputs) on source and target inputs; or, with
        ``model``, the source and target inputs themselves. A ``dask.array.Array`` or
        ``dask.dataframe.DataFrame`` runs per partition (``nndoctor.shift._dask_models``):
        the predicted-class counts are exact, the KS parts come from KLL sketches within
        ``ks_error``; only the counts and ``C`` sketches per table travel to the client.
    method : {"both", "chi2", "ks"}
    alpha : float
    model : torch.nn.Module, estimator with ``predict_proba``, or callable, optional
        Applied to the inputs (a network's logits go through a softmax; a callable must return
        probabilities). On Dask it is shipped to the workers and run on each partition.

    Returns
    -------
    BBSDResult

    Notes
    -----
    Fewer than 2 rows in a sample warns and returns NaN.

    References
    ----------
    Lipton, Z., Wang, Y.-X., Smola, A. (2018). Detecting and correcting for label shift with
    black box predictors. ICML. Rabanser, S., Günnemann, S., Lipton, Z. (2019). Failing loudly.
    NeurIPS.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> src = rng.dirichlet([2, 2, 2], size=500)
    >>> tgt = rng.dirichlet([5, 2, 1], size=500)
    >>> res = bbsd_test(src, tgt)
    >>> res.drift_detected, res.n_classes
    (True, 3)
    """
    check_choice(method, ("both", "chi2", "ks"), name="method")
    alpha = check_alpha(alpha)
    if is_dask(source_probs) or is_dask(target_probs):
        cx, cy, ks_stat, ks_p, m, n, err = bbsd_parts(source_probs, target_probs, model=model)
        return _bbsd_result(cx, cy, ks_stat, ks_p, m, n, method, alpha, ks_error=err, engine="dask")
    if model is not None:
        source_probs = apply_model(model, source_probs, "source_probs")
        target_probs = apply_model(model, target_probs, "target_probs")
    p = check_probabilities(source_probs, name="source_probs")
    q = check_probabilities(target_probs, name="target_probs", n_classes=p.shape[1])
    m, n, C = p.shape[0], q.shape[0], p.shape[1]
    cx = np.bincount(p.argmax(1), minlength=C).astype(np.int64)
    cy = np.bincount(q.argmax(1), minlength=C).astype(np.int64)
    ks = [_ks_2samp(np.sort(p[:, c]), np.sort(q[:, c])) for c in range(C)] if min(m, n) >= 2 else []
    ks_stat = np.array([float(r.statistic) for r in ks])
    ks_p = np.array([float(r.pvalue) for r in ks])
    return _bbsd_result(cx, cy, ks_stat, ks_p, m, n, method, alpha)


def _bbsd_result(
    cx: npt.NDArray[np.int64],
    cy: npt.NDArray[np.int64],
    ks_stat: npt.NDArray[np.float64],
    ks_p: npt.NDArray[np.float64],
    m: int,
    n: int,
    method: str,
    alpha: float,
    *,
    ks_error: float = 0.0,
    engine: str = "in-memory",
) -> BBSDResult:
    """The tests from the predicted-class counts and the per-class KS results (both engines)."""
    C = cx.size
    if min(m, n) < 2:
        warn_small(f"BBSD needs at least 2 rows per sample, got {m} and {n}; the result is NaN")
        nan_c = np.full(C, np.nan)
        return BBSDResult(
            math.nan, math.nan, method, math.nan, math.nan, 0, nan_c, nan_c.copy(), math.nan,
            cx, cy, m, n, C, alpha, False, ks_error, engine,
        )  # fmt: skip
    mx, my = merge_rare(cx.astype(np.float64), cy.astype(np.float64))
    if mx.size >= 2:
        res = stats.chi2_contingency(np.vstack((mx, my)), correction=False)
        chi2, chi2_p, dof = float(res.statistic), smallest_pvalue(float(res.pvalue)), int(res.dof)
    else:
        chi2, chi2_p, dof = 0.0, 1.0, 0
    ks_p = np.array([smallest_pvalue(float(v)) for v in ks_p])
    ks_comb = smallest_pvalue(float(min(1.0, C * ks_p.min())))
    if method == "both":
        pvalue, statistic = smallest_pvalue(min(1.0, 2.0 * min(chi2_p, ks_comb))), chi2
    elif method == "chi2":
        pvalue, statistic = chi2_p, chi2
    else:
        pvalue, statistic = ks_comb, float(ks_stat.max())
    return BBSDResult(
        statistic=statistic,
        pvalue=pvalue,
        method=f"bbsd-{method}",
        chi2_statistic=chi2,
        chi2_pvalue=chi2_p,
        chi2_dof=dof,
        ks_statistics=ks_stat,
        ks_pvalues=ks_p,
        ks_pvalue=ks_comb,
        source_counts=cx,
        target_counts=cy,
        n_source=m,
        n_target=n,
        n_classes=C,
        alpha=alpha,
        drift_detected=bool(pvalue <= alpha),
        ks_error=float(ks_error),
        engine=engine,
    )
