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

__all__ = [
    "KINDS",
    "RIVER_STREAMS",
    "DriftStream",
    "ShiftCase",
    "make_river_stream",
    "make_shift",
    "make_stream",
    "sample_classes",
]

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


RIVER_STREAMS = ("sea", "agrawal", "label", "covariate", "none")


@dataclass(frozen=True, slots=True)
class DriftStream:
    """A stream whose distribution changes at a known row, with data to train and to refer to.

    ``train`` fits the model, ``reference`` (drawn like ``train``, not used to fit) is what the
    monitor is fitted on, ``X``/``y`` is the stream; its rows from ``change_at`` on follow the
    changed distribution. ``kind`` is the truth: ``"concept"``, ``"label"``, ``"covariate"`` or
    ``"none"``.
    """

    name: str
    kind: str
    train: tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]
    reference: tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]
    X: npt.NDArray[np.float64]
    y: npt.NDArray[np.int64]
    change_at: int


def _take(dataset: Any, n: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    rows = list(dataset.take(n))
    keys = list(rows[0][0])
    X = np.array([[float(x[k]) for k in keys] for x, _ in rows], dtype=np.float64)
    y = np.array([int(bool(label)) for _, label in rows], dtype=np.int64)
    return X, y


def make_river_stream(
    name: str,
    *,
    n_train: int = 1000,
    n_reference: int = 1000,
    n_stream: int = 3000,
    change_at: int = 1500,
    before: int = 0,
    after: int | None = None,
    noise: float = 0.1,
    random_state: int = 0,
) -> DriftStream:
    """River's synthetic streams (and two built from SEA's) with a change at a known row.

    * ``"sea"`` — river's SEA (Street & Kim 2001) with class noise ``noise``: the threshold of
      ``x0 + x1`` switches from variant ``before`` to ``after`` (default 2) at ``change_at``. P(x)
      is fixed; P(y | x), and with it P(y), change — concept shift.
    * ``"agrawal"`` — river's Agrawal (Agrawal et al. 1993): the classification function switches
      from ``before`` to ``after`` (default 2). Concept shift.
    * ``"label"`` — pure label shift: SEA (variant ``before``) rows drawn class by class, so
      P(x | y) is SEA's; the share of class 1 moves from SEA's own (about 0.64 with noise 0.1) to
      ``after / 10`` (default 0.3) at ``change_at``.
    * ``"covariate"`` — SEA (variant ``before``) rows kept with probability ``x0 / 10`` after the
      change: P(x) moves (and P(y) with it), P(y | x) is SEA's throughout.
    * ``"none"`` — SEA (variant ``before``) throughout.

    River's generators are seeded from ``random_state`` (two seeds: before and after).

    Examples
    --------
    >>> s = make_river_stream("label", n_stream=400, change_at=200, random_state=0)
    >>> s.X.shape, s.kind, bool(s.y[:200].mean() > s.y[200:].mean())
    ((400, 3), 'label', True)
    """
    from river.datasets import synth

    check_choice(name, RIVER_STREAMS, name="stream")
    seed = 2 * int(random_state)
    n_pre = n_train + n_reference + change_at
    n_post = n_stream - change_at
    if name == "agrawal":
        fn_after = 2 if after is None else after
        X0, y0 = _take(synth.Agrawal(classification_function=before, seed=seed), n_pre)
        X1, y1 = _take(synth.Agrawal(classification_function=fn_after, seed=seed + 1), n_post)
        kind = "concept"
    elif name == "sea":
        v_after = 2 if after is None else after
        X0, y0 = _take(synth.SEA(variant=before, noise=noise, seed=seed), n_pre)
        X1, y1 = _take(synth.SEA(variant=v_after, noise=noise, seed=seed + 1), n_post)
        kind = "concept"
    else:
        X0, y0 = _take(synth.SEA(variant=before, noise=noise, seed=seed), n_pre)
        pool_X, pool_y = _take(synth.SEA(variant=before, noise=noise, seed=seed + 1), 4 * n_post)
        rng = np.random.default_rng(seed + 1)
        if name == "label":
            share = (3 if after is None else after) / 10
            want = (rng.random(n_post) < share).astype(np.int64)
            idx = np.empty(n_post, dtype=np.int64)
            for k in (0, 1):
                rows = np.flatnonzero(pool_y == k)[: int((want == k).sum())]
                idx[want == k] = rows
            kind = "label"
        elif name == "covariate":
            keep = np.flatnonzero(rng.random(pool_y.size) < pool_X[:, 0] / 10.0)
            idx = keep[:n_post]
            kind = "covariate"
        else:
            idx = np.arange(n_post)
            kind = "none"
        X1, y1 = pool_X[idx], pool_y[idx]
    a, b = n_train, n_train + n_reference
    return DriftStream(
        name=name,
        kind=kind,
        train=(X0[:a], y0[:a]),
        reference=(X0[a:b], y0[a:b]),
        X=np.vstack([X0[b:], X1]),
        y=np.concatenate([y0[b:], y1]),
        change_at=change_at,
    )
