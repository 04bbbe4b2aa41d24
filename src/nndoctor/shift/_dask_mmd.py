"""The MMD test on Dask collections: random-feature mean embeddings, merged across partitions.

:func:`nndoctor.shift.mmd_test` hands a ``dask.dataframe.DataFrame`` or ``dask.array.Array``
to :func:`mmd_test` here (``method="auto"`` or ``"rff"``). The test is the random-feature
MMD of :mod:`nndoctor.shift._rff`; what runs where, and what travels to the client:

1. the kernel bandwidth (median heuristic) and, with ``standardize``, the column scales come
   from a bounded random sample of each table (about ``BANDWIDTH_SAMPLE`` rows each, drawn
   with :func:`~nndoctor.shift._dask_sample.sample_rows`); a fixed ``bandwidth`` without
   ``standardize`` needs no sample; the features are centred on the first rows of the source
   (``head``: any centre gives the same statistic, it only keeps ``cos`` accurate);
2. each partition is reduced to its row count, the mean of its ``n_features`` random
   features and their centred scatter matrix, ``n_features² + n_features + 1`` floats (about
   80 KB at the default 100 features) whatever the partition's length; summaries merge
   exactly in a tree, eight at a time;
3. the client computes the unbiased MMD² of the features and Hotelling's test.

With a fixed ``bandwidth`` and ``standardize=False`` the answer equals
``mmd_test(..., method="rff")`` on the same rows in memory with the same seed, up to rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nndoctor._validation import check_matrix, check_random_state
from nndoctor.exceptions import InvalidParameterError
from nndoctor.shift import _rff
from nndoctor.shift._common import TwoSampleResult, display_names, warn_small
from nndoctor.shift._dask import SPLIT_EVERY, _aligned, require_dask
from nndoctor.shift._dask_sample import sample_rows
from nndoctor.shift._engines import register_dask
from nndoctor.shift._mmd import _nan_result, _resolve_bandwidth, rff_result

__all__ = ["BANDWIDTH_SAMPLE", "mmd_test"]

#: Rows drawn from each table for the median heuristic and the column scales.
BANDWIDTH_SAMPLE = 1_000
#: Rows of the source's first partition that centre the features.
CENTRE_ROWS = 1_000


def _partition_summary(
    part: Any, centre: np.ndarray[Any, Any], scale: np.ndarray[Any, Any], w: Any, name: str
) -> _rff.Summary:
    """One partition's random-feature summary (this runs on a worker)."""
    if len(part) == 0:
        k = 2 * w.shape[1]
        return 0, np.zeros(k), np.zeros((k, k))
    x = check_matrix(part, name=name, min_rows=1)
    return _rff.summarize((np.asarray(x, dtype=np.float64) - centre) / scale, w)


def _merge(*parts: _rff.Summary) -> _rff.Summary:
    """Partition summaries as one (exact)."""
    out = parts[0]
    for p in parts[1:]:
        out = _rff.merge(out, p)
    return out


def _tree(leaves: list[Any]) -> Any:
    """Merge delayed summaries in a tree, ``SPLIT_EVERY`` at a time."""
    from dask.delayed import delayed

    level = leaves
    while len(level) > 1:
        level = [
            delayed(_merge)(*level[i : i + SPLIT_EVERY]) for i in range(0, len(level), SPLIT_EVERY)
        ]
    return level[0]


def mmd_test(
    X: Any,
    Y: Any,
    *,
    kernel: str = "rbf",
    bandwidth: Any = "median",
    method: str = "auto",
    n_features: int = _rff.DEFAULT_FEATURES,
    standardize: bool = False,
    alpha: float = 0.05,
    random_state: Any = None,
    names: tuple[str, str] | None = None,
) -> TwoSampleResult:
    """:func:`nndoctor.shift.mmd_test` on Dask collections (the random-feature test).

    Arguments are checked by the public function. ``method`` must be ``"auto"`` or ``"rff"``:
    the permutation and block tests need every row in one process. Only the partition
    summaries (module docstring: ``n_features² + n_features + 1`` floats each) and the
    bandwidth samples travel to the client.
    """
    if method not in ("auto", "rff"):
        raise InvalidParameterError(
            f"method {method!r} needs every row in one process and does not run on Dask; "
            "choose 'rff' (or 'auto', which picks it for Dask inputs), or pass in-memory data"
        )
    require_dask()
    from dask.base import compute
    from dask.delayed import delayed

    a, b = display_names(names)
    rng = check_random_state(random_state)
    dx, dy, cols = _aligned(X, Y, (a, b))
    first = dx.partitions[0].map_partitions(lambda part: part.head(CENTRE_ROWS)).compute()
    centre = check_matrix(first, name=a, min_rows=0).mean(0) if len(first) else np.zeros(len(cols))
    scale = np.ones(len(cols))
    pooled = np.zeros((0, len(cols)))
    if isinstance(bandwidth, str) or standardize:  # both need a look at the data
        sx, _, _ = sample_rows(dx, BANDWIDTH_SAMPLE, rng, a)
        sy, _, _ = sample_rows(dy, BANDWIDTH_SAMPLE, rng, b)
        pooled = np.concatenate((check_matrix(sx, name=a), check_matrix(sy, name=b))) - centre
    if standardize and pooled.shape[0] > 1:
        sd = pooled.std(0, ddof=1)
        scale = np.where(sd > 0, sd, 1.0)
    bw, rule = _resolve_bandwidth(bandwidth, torch.from_numpy(pooled / scale), rng)
    w = _rff.frequencies(len(cols), n_features, kernel, float(bw), rng)
    trees = [
        _tree([delayed(_partition_summary)(p, centre, scale, w, nm) for p in frame.to_delayed()])
        for frame, nm in ((dx, a), (dy, b))
    ]
    sum_x, sum_y = compute(*trees)  # type: ignore[no-untyped-call]
    m, n = sum_x[0], sum_y[0]
    if min(m, n) < 2:
        warn_small(f"the MMD needs at least 2 rows per sample, got {m} and {n}; the result is NaN")
        return _nan_result("mmd-rff", m, n, alpha, None)
    details = {"bandwidth_sample": int(pooled.shape[0]), "engine": "dask"}
    return rff_result(sum_x, sum_y, alpha, kernel, float(bw), rule, n_features, details)


def reference_bandwidth(
    X_ref: Any, bandwidth: Any, standardize: bool, rng: np.random.Generator
) -> tuple[float, str]:
    """:class:`~nndoctor.shift.ShiftDetector`'s bandwidth for a Dask reference.

    The median heuristic on a random sample of about ``BANDWIDTH_SAMPLE`` rows of the
    reference (scaled by their standard deviations with ``standardize``); a number is
    checked and kept. Only the sample travels to the client.
    """
    if not isinstance(bandwidth, str):
        return _resolve_bandwidth(bandwidth, torch.zeros((0, 1), dtype=torch.float64), rng)
    sample, _, _ = sample_rows(X_ref, BANDWIDTH_SAMPLE, rng, "X_ref")
    z = check_matrix(sample, name="X_ref")
    z = z - z.mean(0)
    if standardize and z.shape[0] > 1:
        sd = z.std(0, ddof=1)
        z = z / np.where(sd > 0, sd, 1.0)
    return _resolve_bandwidth(bandwidth, torch.from_numpy(np.ascontiguousarray(z)), rng)


register_dask(mmd_test=mmd_test, mmd_reference_bandwidth=reference_bandwidth)
