"""Gaussian class data with a known shift: the truth the diagnosis tests are scored against.

K Gaussian classes with means ``sep · e_k`` in the first K coordinates and unit covariance, plus
``n_nuisance`` pure-noise coordinates. The four shifts:

* ``"covariate"`` — every target row moves by ``nuisance_shift`` along the first nuisance
  coordinate. The class means have no component there and the covariance is isotropic, so
  P(y | x) and P(y) are unchanged; only P(x) moves (a within-class nuisance direction).
* ``"label"`` — the target prior is drawn from Dirichlet(``alpha``·1), redrawn until its total
  variation distance to the source prior is at least ``min_tv`` (a label shift too small to
  matter is "none"); P(x | y) is unchanged.
* ``"concept"`` — target labels of classes 0 and 1 are swapped; P(x) is unchanged.
* ``"mixed"`` — the covariate shift and the concept shift together.
* ``"none"`` — the target is a fresh sample of the source distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from nndoctor._validation import check_choice, check_random_state

__all__ = ["KINDS", "ShiftCase", "make_shift", "make_stream", "sample_classes"]

KINDS = ("none", "covariate", "label", "concept", "mixed")


@dataclass(frozen=True, slots=True)
class ShiftCase:
    """Source and target data with a known shift.

    ``target_y`` holds NaN for unlabeled target rows (all of them when no labels were asked).
    """

    kind: str
    source_X: npt.NDArray[np.float64]
    source_y: npt.NDArray[np.int64]
    target_X: npt.NDArray[np.float64]
    target_y: npt.NDArray[np.float64]
    target_prior: npt.NDArray[np.float64]


def sample_classes(
    n: int,
    prior: npt.NDArray[np.float64],
    rng: np.random.Generator,
    *,
    sep: float = 2.5,
    n_nuisance: int = 2,
    nuisance_shift: float = 0.0,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Draw ``n`` rows of the Gaussian-class model with class prior ``prior``.

    Examples
    --------
    >>> import numpy as np
    >>> X, y = sample_classes(10, np.full(4, 0.25), np.random.default_rng(0))
    >>> X.shape, y.shape
    ((10, 6), (10,))
    """
    k = prior.size
    y = rng.choice(k, size=n, p=prior)
    X = rng.normal(size=(n, k + n_nuisance))
    X[np.arange(n), y] += sep
    if n_nuisance:
        X[:, k] += nuisance_shift
    return X, y.astype(np.int64)


def _label_prior(
    rng: np.random.Generator, k: int, alpha: float, min_tv: float
) -> npt.NDArray[np.float64]:
    p = np.full(k, 1.0 / k)
    for _ in range(1000):
        q = rng.dirichlet(np.full(k, alpha))
        if 0.5 * np.abs(q - p).sum() >= min_tv and q.min() > 0.01:
            return np.asarray(q)
    return np.asarray(q)


def make_shift(
    kind: str,
    *,
    n_source: int = 2000,
    n_target: int = 1000,
    n_target_labels: int = 0,
    n_classes: int = 4,
    nuisance_shift: float = 1.0,
    alpha: float = 1.0,
    min_tv: float = 0.15,
    random_state: Any = None,
) -> ShiftCase:
    """Source and target samples with a shift of the given kind (see the module notes).

    Examples
    --------
    >>> case = make_shift("concept", n_target_labels=50, random_state=0)
    >>> case.source_X.shape, int((~np.isnan(case.target_y)).sum())
    ((2000, 6), 50)
    """
    check_choice(kind, KINDS, name="kind")
    rng = check_random_state(random_state)
    p = np.full(n_classes, 1.0 / n_classes)
    Xs, ys = sample_classes(n_source, p, rng)
    q = _label_prior(rng, n_classes, alpha, min_tv) if kind == "label" else p
    shift = nuisance_shift if kind in ("covariate", "mixed") else 0.0
    Xt, yt_int = sample_classes(n_target, q, rng, nuisance_shift=shift)
    if kind in ("concept", "mixed"):
        yt_int = np.where(yt_int == 0, 1, np.where(yt_int == 1, 0, yt_int))
    yt = np.full(n_target, np.nan)
    if n_target_labels:
        idx = rng.choice(n_target, size=min(n_target_labels, n_target), replace=False)
        yt[idx] = yt_int[idx]
    return ShiftCase(kind, Xs, ys, Xt, yt, q)


def make_stream(
    kind: str,
    *,
    n_reference: int = 1000,
    n_batches: int = 60,
    batch_size: int = 100,
    change_at: int = 30,
    n_classes: int = 4,
    nuisance_shift: float = 1.0,
    random_state: Any = None,
) -> tuple[
    tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]],
    list[tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]],
]:
    """A reference sample and a stream of batches whose distribution changes at ``change_at``.

    Examples
    --------
    >>> ref, batches = make_stream("label", n_batches=4, change_at=2, random_state=0)
    >>> len(batches), batches[0][0].shape
    (4, (100, 6))
    """
    check_choice(kind, KINDS, name="kind")
    rng = check_random_state(random_state)
    p = np.full(n_classes, 1.0 / n_classes)
    reference = sample_classes(n_reference, p, rng)
    q = np.array([0.55] + [0.45 / (n_classes - 1)] * (n_classes - 1)) if kind == "label" else p
    batches = []
    for t in range(n_batches):
        after = t >= change_at
        prior = q if after else p
        shift = nuisance_shift if (after and kind == "covariate") else 0.0
        X, y = sample_classes(batch_size, prior, rng, nuisance_shift=shift)
        if after and kind == "concept":
            y = np.where(y == 0, 1, np.where(y == 1, 0, y))
        batches.append((X, y))
    return reference, batches
