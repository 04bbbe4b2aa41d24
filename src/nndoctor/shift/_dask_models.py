r"""Model outputs on Dask collections: BBSD, label-shift estimates and estimated accuracy.

:func:`nndoctor.shift.bbsd_test`, :meth:`nndoctor.shift.LabelShiftEstimator.fit` /
:meth:`~nndoctor.shift.LabelShiftEstimator.estimate` and
:func:`nndoctor.shift.estimate_accuracy` hand a ``dask.array.Array`` or
``dask.dataframe.DataFrame`` / ``Series`` here. The rows never travel to the client: each
partition is reduced where it lies (``dask.delayed``, one task per partition) to a bounded
summary, and the summaries are merged in a tree, ``SPLIT_EVERY`` at a time. A model given to
:func:`bbsd_test` (a ``torch.nn.Module``, an estimator with ``predict_proba`` or a callable on
NumPy arrays) is part of the task graph, so Dask ships it to the workers, which run it on their
partitions (:func:`apply_model`).

What travels to the client, per table, with ``C`` classes:

- BBSD: the row count and the predicted-class counts (``C`` integers, **exact**: the χ² test
  equals the in-memory one to the last digit) and one KLL sketch per class of the predicted
  probability (``C`` sketches of about 50 KB; the KS parts within ``ks_error``, see
  :func:`bbsd_test`).
- Label shift, ``fit``: the row count, the label counts and (BBSE, RLLS) the ``C x C`` joint
  confusion sums (hard predictions: **exact** integer counts); ``em-bcts`` also brings the rows
  of the held-out set to the client when it has at most ``CALIBRATION_MAX_ROWS`` of them (the
  calibration is then the in-memory one), otherwise a uniform random sample of about that many
  rows (Bernoulli per row, seeded by ``random_state`` and the partition's index) on which the
  calibration is fitted, and then ``C`` sums per partition for the source prior (the mean
  calibrated posterior over **all** rows).
- Label shift, ``estimate``: BBSE/RLLS one pass, ``C`` sums per partition (hard: exact counts);
  EM one pass per iteration, ``C`` sums of reweighted posteriors per partition. The bootstrap
  (``n_bootstrap = B``) gives each row on Dask a Poisson(1) weight per replicate: ``B x C``
  sums per partition and pass (``B x C x C`` for a held-out set on Dask).
- ``estimate_accuracy`` (``confidence-based``): a few sums per partition (see
  :func:`estimate_accuracy`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from nndoctor._validation import check_int, check_probabilities
from nndoctor.exceptions import DataValidationError, InvalidParameterError
from nndoctor.shift._common import model_softmax
from nndoctor.shift._engines import is_dask, require_dask, tree_reduce
from nndoctor.shift._kll import SKETCH_K, sketch_ks

__all__ = [
    "CALIBRATION_MAX_ROWS",
    "apply_model",
    "bbsd_parts",
    "collect_rows",
    "is_dask",
    "map_rows",
    "model_outputs",
    "partition_sums",
    "require_dask",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


#: The most held-out source rows brought to the client to fit a calibration (em-bcts, and the
#: isotonic map of ``estimate_accuracy``); a larger set is sampled down to about this many.
CALIBRATION_MAX_ROWS = 200_000


# --------------------------------------------------------------------------------------------
# partitions and models


def apply_model(model: Any, X: Any, name: str) -> FloatArray:
    """Class probabilities of ``model`` on the rows ``X`` (runs on a worker for Dask inputs).

    ``model``: ``None`` (``X`` holds the probabilities already), a ``torch.nn.Module`` (softmax
    of its logits, in batches, without gradients), an object with ``predict_proba`` or a callable
    that maps a NumPy array to probabilities.
    """
    if model is None:
        return np.asarray(X, dtype=np.float64)
    import torch

    if isinstance(model, torch.nn.Module):
        x = np.require(np.asarray(X, dtype=np.float64), requirements="W")  # Dask chunks: read-only
        return model_softmax(model, x)
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(X), dtype=np.float64)
    if callable(model):
        return np.asarray(model(np.asarray(X, dtype=np.float64)), dtype=np.float64)
    raise InvalidParameterError(
        f"model must be a torch.nn.Module, have predict_proba or be callable, got "
        f"{type(model).__name__}; pass one of those, or the probabilities as {name}"
    )


def _partitions(data: Any, name: str) -> list[Any]:
    """The partitions of a Dask collection as delayed objects (an in-memory table: one)."""
    import dask.array as da
    import dask.dataframe as dd

    if isinstance(data, da.Array):
        if data.ndim not in (1, 2):
            raise DataValidationError(
                f"{name} is a Dask array with {data.ndim} dimensions; pass a 1-D or 2-D array"
            )
        if data.ndim == 2:
            data = data.rechunk({1: -1})  # type: ignore[no-untyped-call]
        return list(data.to_delayed().ravel())
    if isinstance(data, dd.DataFrame | dd.Series):
        return list(data.to_delayed())  # type: ignore[no-untyped-call]
    if is_dask(data):
        raise InvalidParameterError(
            f"{name} is a {type(data).__name__}; pass a dask.array.Array or a "
            "dask.dataframe.DataFrame / Series"
        )
    return [data]


def _paired_partitions(
    first: Any, second: Any, names: tuple[str, str]
) -> tuple[list[Any], list[Any]]:
    """Partitions of two collections with the same rows (probabilities and labels)."""
    import dask.array as da

    if isinstance(first, da.Array) and not is_dask(second):
        second = da.from_array(  # type: ignore[no-untyped-call]
            np.asarray(second), chunks=(first.chunks[0],)
        )
    elif isinstance(first, da.Array) and isinstance(second, da.Array):
        if second.chunks[0] != first.chunks[0]:
            second = second.rechunk({0: first.chunks[0]})  # type: ignore[no-untyped-call]
    elif is_dask(first) != is_dask(second):
        dask_one, other = (names[0], names[1]) if is_dask(first) else (names[1], names[0])
        raise DataValidationError(
            f"{dask_one} is a Dask collection but {other} is not; pass both as Dask "
            "collections with the same partitions (e.g. columns of one Dask frame)"
        )
    joined = _joined_partitions(first, second)
    if joined is not None:
        return joined
    a, b = _partitions(first, names[0]), _partitions(second, names[1])
    if len(a) != len(b):
        raise DataValidationError(
            f"{names[0]} has {len(a)} partitions but {names[1]} has {len(b)}; pass collections "
            "with the same partitions (e.g. columns of one Dask frame)"
        )
    return a, b


def _joined_partitions(first: Any, second: Any) -> tuple[list[Any], list[Any]] | None:
    """Partitions of two Dask frames/series cut from one table, read as one frame.

    Read apart, two column selections of one Parquet dataset may not be partitioned alike:
    Dask reads a narrow selection (the labels alone) in fewer, fused partitions than a wide
    one. Joined column-wise first (``concat(axis=1)``, partition by partition), every
    partition holds the same rows of both; each is then split back into its two parts.
    ``None`` where the two cannot be joined (not both Dask frames/series, or a different
    number of partitions): the caller checks them apart.
    """
    import dask.dataframe as dd
    from dask.delayed import delayed

    kinds = (dd.DataFrame, dd.Series)
    if not (isinstance(first, kinds) and isinstance(second, kinds)):
        return None
    if first.npartitions != second.npartitions:
        return None
    a, b = (x.to_frame() if isinstance(x, dd.Series) else x for x in (first, second))
    k = len(a.columns)
    a = a.rename(columns=dict(zip(a.columns, [f"a{i}" for i in range(k)], strict=True)))
    b = b.rename(
        columns=dict(zip(b.columns, [f"b{i}" for i in range(len(b.columns))], strict=True))
    )
    try:
        joined = dd.concat([a, b], axis=1, ignore_unknown_divisions=True)  # type: ignore[no-untyped-call]
    except ValueError:
        return None
    parts = list(joined.to_delayed())
    series = (isinstance(first, dd.Series), isinstance(second, dd.Series))
    return (
        [delayed(_split)(p, 0, k, series[0]) for p in parts],
        [delayed(_split)(p, k, None, series[1]) for p in parts],
    )


def _split(part: Any, start: int, stop: int | None, series: bool) -> Any:
    """Columns ``start:stop`` of a joined partition (a Series where a Series was given)."""
    cols = part.iloc[:, start:stop]
    return cols.iloc[:, 0] if series else cols


def _rows(part: Any) -> int:
    return int(np.shape(part)[0])


def model_outputs(model: Any, X: Any, *, name: str = "X") -> Any:
    """A lazy Dask array of ``model``'s class probabilities on each partition of ``X``.

    Nothing is computed but the model on one row (to learn the number of classes); the model
    travels with the task graph to the workers. Pass the result where a Dask array of
    probabilities is taken (:class:`~nndoctor.shift.LabelShiftEstimator`,
    :func:`~nndoctor.shift.estimate_accuracy`); each pass over it runs the model again.
    """
    require_dask()
    import dask.array as da
    from dask.delayed import delayed

    parts = _partitions(X, name)
    first = np.asarray(parts[0].compute() if is_dask(parts[0]) else parts[0])
    C = apply_model(model, first[:1], name).shape[1]
    if isinstance(X, da.Array):
        sizes: list[float] = list(X.chunks[0])
    else:
        sizes = [math.nan] * len(parts)
    blocks = [
        da.from_delayed(  # type: ignore[no-untyped-call]
            delayed(apply_model)(model, p, name), shape=(s, C), dtype=np.float64
        )
        for p, s in zip(parts, sizes, strict=True)
    ]
    return da.concatenate(blocks, axis=0)  # type: ignore[no-untyped-call]


# --------------------------------------------------------------------------------------------
# BBSD


_BBSDSummary = tuple[int, "IntArray | None", "list[bytes] | None"]


def _bbsd_summary(part: Any, model: Any, name: str, k: int) -> _BBSDSummary:
    """One partition's row count, predicted-class counts and per-class KLL sketches."""
    from datasketches import kll_doubles_sketch

    if _rows(part) == 0:
        return 0, None, None
    P = check_probabilities(apply_model(model, part, name), name=name)
    C = P.shape[1]
    counts = np.bincount(P.argmax(1), minlength=C).astype(np.int64)
    blobs = []
    for c in range(C):
        sketch = kll_doubles_sketch(k)
        sketch.update(np.ascontiguousarray(P[:, c], dtype=np.float64))
        blobs.append(sketch.serialize())
    return P.shape[0], counts, blobs


def _bbsd_merge(*parts: _BBSDSummary) -> _BBSDSummary:
    """Counts add, sketches merge (class by class)."""
    from datasketches import kll_doubles_sketch

    full = [p for p in parts if p[1] is not None]
    if not full:
        return 0, None, None
    C = {int(p[1].size) for p in full if p[1] is not None}
    if len(C) > 1:
        raise DataValidationError(
            f"partitions give different numbers of classes {sorted(C)}; pass the outputs of "
            "one model"
        )
    counts = np.sum([p[1] for p in full if p[1] is not None], axis=0).astype(np.int64)
    merged = []
    for c in range(int(counts.size)):
        sketch = kll_doubles_sketch.deserialize(full[0][2][c])  # type: ignore[index]
        for p in full[1:]:
            sketch.merge(kll_doubles_sketch.deserialize(p[2][c]))  # type: ignore[index]
        merged.append(sketch.serialize())
    return sum(p[0] for p in full), counts, merged


def bbsd_parts(
    source: Any, target: Any, *, model: Any = None, sketch_k: int = SKETCH_K
) -> tuple[IntArray, IntArray, FloatArray, FloatArray, int, int, float]:
    r"""BBSD's counts and KS parts on Dask collections (for :func:`nndoctor.shift.bbsd_test`).

    One pass over each table: per partition the model (if any) turns the rows into class
    probabilities :math:`P`, and the partition is reduced to its row count, the counts of
    :math:`\hat y = \arg\max_c P_c` and, per class, a KLL sketch of :math:`P_c`; these merge
    exactly (counts) and as sketches. What reaches the client: ``C`` integers and ``C`` sketches
    (``3 k`` retained values each, about 50 KB) per table.

    The χ² part is computed from the merged counts by the same code as in memory, so it is
    equal to the last digit. The KS part of class :math:`c` is the largest difference of the
    two sketches' CDFs, within :math:`\varepsilon = \varepsilon_x + \varepsilon_y` (the
    sketches' normalized rank errors, DataSketches' 99 % single-rank bound; 0 while a sketch
    holds every value) of the exact distance; its p-value is taken at
    :math:`\max(0, \hat D_c - \varepsilon)`, never smaller than the exact test's, so the test
    stays valid (conservative). Returns the source and target counts, the KS distances and
    p-values per class, the row counts and :math:`\max_c \varepsilon` (``ks_error``).

    Examples
    --------
    >>> import dask, dask.array as da, numpy as np
    >>> from nndoctor.shift import bbsd_test
    >>> rng = np.random.default_rng(0)
    >>> src = da.from_array(rng.dirichlet([2, 2, 2], size=600), chunks=200)
    >>> tgt = da.from_array(rng.dirichlet([5, 2, 1], size=600), chunks=200)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     res = bbsd_test(src, tgt)
    >>> res.engine, res.drift_detected, res.ks_error
    ('dask', True, 0.0)
    """
    from dask.base import compute
    from dask.delayed import delayed

    require_dask()
    k = check_int(sketch_k, name="sketch_k", minimum=8)
    trees = [
        tree_reduce(
            [delayed(_bbsd_summary)(p, model, nm, k) for p in _partitions(data, nm)], _bbsd_merge
        )
        for data, nm in ((source, "source_probs"), (target, "target_probs"))
    ]
    (m, cx, bx), (n, cy, by) = compute(*trees)  # type: ignore[no-untyped-call]
    if cx is None or cy is None:
        empty = "source_probs" if cx is None else "target_probs"
        raise DataValidationError(f"{empty} has 0 rows; pass at least 2 rows per sample")
    if cx.size != cy.size:
        raise DataValidationError(
            f"target_probs has {cy.size} classes but {cx.size} were expected; pass "
            "probabilities from the same model"
        )
    C = int(cx.size)
    ks = [sketch_ks(bx[c], by[c], m, n) for c in range(C)]
    ks_stat = np.array([r[0] for r in ks])
    ks_err = max(r[1] for r in ks)
    ks_p = np.array([r[2] for r in ks])
    return cx, cy, ks_stat, ks_p, int(m), int(n), float(ks_err)


# --------------------------------------------------------------------------------------------
# generic map-reduce steps (the label-shift and accuracy estimators pass their own kernels)

#: A partition's summary: ``None`` for an empty partition, else a tuple whose first entry is
#: the row count and whose other entries are arrays (or numbers) that add across partitions.
_Sums = tuple[Any, ...] | None


def _partition_sums(
    fn: Callable[..., tuple[Any, ...]], args: tuple[Any, ...], index: int | None, *parts: Any
) -> _Sums:
    """``(rows, *fn(*parts, *args[, index]))`` for one partition; ``None`` without rows."""
    rows = _rows(parts[0])
    if rows == 0:
        return None
    for other in parts[1:]:
        if _rows(other) != rows:
            raise DataValidationError(
                f"a partition has {rows} rows of scores but {_rows(other)} labels; pass "
                "collections with the same partitions (e.g. columns of one Dask frame)"
            )
    extra = () if index is None else (index,)
    return (rows, *fn(*parts, *args, *extra))


def _add_sums(*parts: _Sums) -> _Sums:
    """Add partition summaries entry by entry (shapes must agree: the same classes)."""
    full = [p for p in parts if p is not None]
    if not full:
        return None
    shapes = {tuple(np.shape(v) for v in p) for p in full}
    if len(shapes) > 1:
        raise DataValidationError(
            "partitions give outputs with different numbers of classes; pass the outputs of "
            "one model, with the same columns in every partition"
        )
    return tuple(sum(p[j] for p in full) for j in range(len(full[0])))


def partition_sums(
    fn: Callable[..., tuple[Any, ...]],
    data: Sequence[Any],
    names: Sequence[str],
    args: tuple[Any, ...] = (),
    *,
    indexed: bool = False,
) -> tuple[Any, ...]:
    """One pass: ``fn(*partitions, *args)`` on every partition, the results added in a tree.

    ``indexed``: ``fn`` also receives the partition's index (last), to seed per-partition
    random draws that are the same on every pass and every scheduler.

    ``data`` holds one collection, or two with the same rows (scores and labels; a NumPy array
    beside a Dask array is cut to its chunks). ``fn`` runs on the workers and returns a tuple
    of arrays of a fixed shape (``C`` or ``C x C`` numbers); what reaches the client is that
    tuple, summed, with the total row count first. Raises when every partition is empty.
    """
    from dask.base import compute
    from dask.delayed import delayed

    require_dask()
    if len(data) == 2:
        a, b = _paired_partitions(data[0], data[1], (names[0], names[1]))
        pairs: list[tuple[Any, ...]] = list(zip(a, b, strict=True))
    else:
        pairs = [(x,) for x in _partitions(data[0], names[0])]
    leaves = [
        delayed(_partition_sums)(fn, args, i if indexed else None, *p) for i, p in enumerate(pairs)
    ]
    (total,) = compute(tree_reduce(leaves, _add_sums))  # type: ignore[no-untyped-call]
    if total is None:
        raise DataValidationError(f"{names[0]} has 0 rows; pass at least 1 row")
    return tuple(total)


def _keep_rows(seed: int, index: int, fraction: float, *parts: Any) -> list[Any]:
    """A partition's rows, or (``fraction < 1``) a Bernoulli sample of them."""
    arrays = [np.asarray(p) for p in parts]
    if fraction >= 1.0:
        return arrays
    keep = np.random.default_rng([seed, index]).random(arrays[0].shape[0]) < fraction
    return [a[keep] for a in arrays]


def collect_rows(
    data: Sequence[Any], names: Sequence[str], *, fraction: float = 1.0, seed: int = 0
) -> list[Any]:
    """Bring the rows of one or two aligned collections to the client, or a sample of them.

    ``fraction < 1``: each row is kept with that probability, independently (the generator is
    seeded by ``seed`` and the partition's index, so the sample is the same on every
    scheduler); the rows keep their order. Used for the bounded calibration samples.
    """
    from dask.base import compute
    from dask.delayed import delayed

    require_dask()
    if len(data) == 2:
        a, b = _paired_partitions(data[0], data[1], (names[0], names[1]))
        parts = [
            delayed(_keep_rows)(seed, i, fraction, x, y)
            for i, (x, y) in enumerate(zip(a, b, strict=True))
        ]
    else:
        parts = [
            delayed(_keep_rows)(seed, i, fraction, x)
            for i, x in enumerate(_partitions(data[0], names[0]))
        ]
    got = compute(*parts)  # type: ignore[no-untyped-call]
    return [
        np.ascontiguousarray(np.concatenate([g[j] for g in got], axis=0)) for j in range(len(data))
    ]


def _rows_to_frame(part: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """``fn`` on a frame partition, as a frame with the same index and columns."""
    import pandas as pd

    return pd.DataFrame(fn(part, *args), index=part.index, columns=part.columns)


def map_rows(fn: Callable[..., Any], data: Any, args: tuple[Any, ...] = ()) -> Any:
    """A lazy collection of ``fn(partition, *args)``, row for row (the same shape).

    A Dask array gives an array (the columns in one chunk), a Dask frame a frame with the same
    columns and index. Nothing is computed.
    """
    require_dask()
    import dask.array as da
    import dask.dataframe as dd

    if isinstance(data, da.Array):
        whole = data.rechunk({1: -1}) if data.ndim == 2 else data  # type: ignore[no-untyped-call]
        return da.map_blocks(fn, whole, *args, dtype=np.float64)  # type: ignore[no-untyped-call]
    if isinstance(data, dd.DataFrame):
        meta = data._meta.astype(np.float64)
        return data.map_partitions(_rows_to_frame, fn, args, meta=meta)  # type: ignore[no-untyped-call]
    raise InvalidParameterError(
        f"expected a dask.array.Array or dask.dataframe.DataFrame, got {type(data).__name__}"
    )
