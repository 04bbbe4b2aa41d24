"""Per-feature shift tests on Dask collections: statistics per partition, merged on the client.

:func:`nndoctor.shift.ks_test`, :func:`~nndoctor.shift.chi2_test` and
:func:`~nndoctor.shift.feature_test` hand a ``dask.dataframe.DataFrame`` or ``dask.array.Array``
to :func:`feature_test` here. Each partition is reduced to a bounded summary; summaries are
merged in a tree by Dask (``dask.delayed``, eight at a time), so the rows never travel to the
client. Per column and table the summary holds:

- the row count and the column's missing count (two integers): **exact**;
- categorical columns: the count of every category (one integer per distinct value, so its
  size is the column's cardinality): **exact**, the χ² test equals the in-memory one to the
  last digit;
- numeric columns: a bottom-k sample of the distinct values (the ``k = SKETCH_K`` with the
  smallest hash, :mod:`nndoctor.shift._ksgrid`), a KLL quantile sketch of the observed values
  (Apache DataSketches' ``kll_doubles_sketch`` with ``k = SKETCH_K``; about ``3 k`` retained
  values, some 50 KB, at any row count), plus count, mean and sum of squared deviations (Chan's
  merge) for the standard deviation.

A second pass counts, per partition and numeric column, the values at most and below each point
of the grid made of both tables' samples (two integers per point): the KS distance on the grid
is a lower bound of the exact one, and the counts bound it from above
(:func:`nndoctor.shift._ksgrid.grid_ks`); the difference is ``FeatureDrift.statistic_error``
(0 when every distinct value is on the grid), and the p-value is the KS p-value at the lower
bound: never smaller than the exact test's. Nothing in it is random, so the KS distance and
p-value are the same on every run, scheduler and partitioning; a column in other units hashes to
another grid, so its lower bound may differ there (within ``statistic_error``). The
Wasserstein distance and PSI come from the two KLL sketches (approximate), whose compaction
draws random bits that the Python binding of DataSketches does not let us seed: they may differ
between runs in their last digits. Counts, χ² tests and missing-rate tests are exact and the
same on every run.
"""

from __future__ import annotations

import functools
import glob
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from nndoctor._validation import check_int, check_random_state
from nndoctor.exceptions import DataValidationError, InvalidParameterError
from nndoctor.shift._common import (
    display_names,
    is_categorical,
    smallest_pvalue,
)
from nndoctor.shift._engines import is_dask, register_dask, require_dask, tree_reduce
from nndoctor.shift._kll import SKETCH_K, cdf_at, ks_pvalue, weighted_cdf
from nndoctor.shift._ksgrid import grid_counts, grid_ks, hash_sample, merge_samples

if TYPE_CHECKING:
    from nndoctor.shift._univariate import FeatureTestResult

__all__ = [
    "SKETCH_K",
    "feature_test",
    "is_dask",
    "read_parquet",
    "require_dask",
]


# --------------------------------------------------------------------------------------------
# per-partition summaries (these run on the workers)

#: One column's summary: (kind, n_missing, payload). Numeric payload: (sketch bytes, count,
#: mean, M2); categorical payload: {category text: count}.
_ColSummary = tuple[str, int, Any]


def _summarize(
    part: Any, cols: list[str], kinds: list[str], name: str, missing: str, k: int
) -> tuple[int, list[_ColSummary]]:
    """The summary of one partition: its row count and one bounded summary per column."""
    from datasketches import kll_doubles_sketch

    from nndoctor.shift._univariate import _categorical_values, _numeric_values

    frame = part if isinstance(part, pd.DataFrame) else pd.DataFrame(np.asarray(part), columns=cols)
    out: list[_ColSummary] = []
    for col, kind in zip(cols, kinds, strict=True):
        s = frame[col]
        if kind == "numeric":
            vals, n_miss = _numeric_values(s, name, col, missing)
            sketch = kll_doubles_sketch(k)
            if vals.size:
                sketch.update(np.array(vals, dtype=np.float64, order="C", copy=True))
            mean = float(vals.mean()) if vals.size else 0.0
            m2 = float(np.sum((vals - mean) ** 2)) if vals.size else 0.0
            sample = hash_sample(vals, k)
            out.append(("numeric", n_miss, (sketch.serialize(), int(vals.size), mean, m2, sample)))
        else:
            text, n_miss = _categorical_values(s, name, col, missing)
            cats, counts = np.unique(text.astype(str), return_counts=True)
            out.append(
                ("categorical", n_miss, dict(zip(cats.tolist(), counts.tolist(), strict=True)))
            )
    return len(frame), out


def _merge(*parts: tuple[int, list[_ColSummary]], k: int) -> tuple[int, list[_ColSummary]]:
    """Merge partition summaries: counts add, sketches merge, moments combine (Chan et al.),
    hash samples keep their ``k`` smallest."""
    from datasketches import kll_doubles_sketch

    rows = sum(p[0] for p in parts)
    merged: list[_ColSummary] = []
    for j, (kind, _, _) in enumerate(parts[0][1]):
        n_miss = sum(p[1][j][1] for p in parts)
        if kind == "numeric":
            sketch = kll_doubles_sketch.deserialize(parts[0][1][j][2][0])
            _, cnt, mean, m2, _ = parts[0][1][j][2]
            sample = merge_samples([p[1][j][2][4] for p in parts], k)
            for p in parts[1:]:
                blob, c2, mean2, m2b, _ = p[1][j][2]
                sketch.merge(kll_doubles_sketch.deserialize(blob))
                if c2:
                    total = cnt + c2
                    delta = mean2 - mean
                    m2 = m2 + m2b + delta * delta * cnt * c2 / total
                    mean = mean + delta * c2 / total
                    cnt = total
            merged.append((kind, n_miss, (sketch.serialize(), cnt, mean, m2, sample)))
        else:
            counts: dict[str, int] = {}
            for p in parts:
                for cat, c in p[1][j][2].items():
                    counts[cat] = counts.get(cat, 0) + c
            merged.append((kind, n_miss, counts))
    return rows, merged


def _grid_counts(
    part: Any, cols: list[str], grids: dict[str, Any], name: str, missing: str
) -> dict[str, tuple[Any, Any]]:
    """The second pass over one partition: exact counts at each numeric column's KS grid."""
    from nndoctor.shift._univariate import _numeric_values

    frame = part if isinstance(part, pd.DataFrame) else pd.DataFrame(np.asarray(part), columns=cols)
    out = {}
    for col, grid in grids.items():
        vals, _ = _numeric_values(frame[col], name, col, missing)
        out[col] = grid_counts(vals, grid)
    return out


def _add_counts(*parts: dict[str, tuple[Any, Any]]) -> dict[str, tuple[Any, Any]]:
    """Counts at the grid points add across partitions."""
    return {col: (sum(p[col][0] for p in parts), sum(p[col][1] for p in parts)) for col in parts[0]}


# --------------------------------------------------------------------------------------------
# the client side


def _as_dask_frame(data: Any, name: str) -> Any:
    """A ``dask.dataframe.DataFrame`` for a Dask frame, Dask array or in-memory table."""
    import dask.array as da
    import dask.dataframe as dd

    from nndoctor.shift._common import as_frame

    if isinstance(data, dd.DataFrame):
        return data
    if isinstance(data, da.Array):
        if data.ndim != 2:
            raise DataValidationError(
                f"{name} is a Dask array with {data.ndim} dimension(s); pass a 2-D array "
                "(rows are samples, columns are features)"
            )
        cols = [f"x{j}" for j in range(data.shape[1])]
        whole_rows = data.rechunk({1: -1})  # type: ignore[no-untyped-call]
        return dd.from_dask_array(whole_rows, columns=cols)
    if isinstance(data, dd.Series):
        return data.to_frame()
    return dd.from_pandas(as_frame(data, name), npartitions=1)  # type: ignore[no-untyped-call]


def _aligned(X: Any, Y: Any, names: tuple[str, str]) -> tuple[Any, Any, list[str]]:
    a, b = names
    dx, dy = _as_dask_frame(X, a), _as_dask_frame(Y, b)
    cols = [str(c) for c in dx.columns]
    if not cols:
        raise DataValidationError(f"{a} has no columns; pass at least one feature")
    other = [str(c) for c in dy.columns]
    if sorted(cols) != sorted(other):
        miss = sorted(set(cols) - set(other))[:5]
        extra = sorted(set(other) - set(cols))[:5]
        raise DataValidationError(
            f"{b} has columns {other[:10]} but {a} has {cols[:10]} (missing from {b}: {miss}; "
            f"not in {a}: {extra}); pass tables with the same columns"
        )
    dx = dx.rename(columns={c: str(c) for c in dx.columns})
    dy = dy.rename(columns={c: str(c) for c in dy.columns})[cols]
    return dx, dy, cols


def _kinds(
    dx: Any, dy: Any, cols: list[str], kinds: str | None, categorical: Sequence[str] | None, a: str
) -> list[str]:
    if isinstance(kinds, str):
        return [kinds] * len(cols)
    if isinstance(categorical, str):
        raise InvalidParameterError(
            f"categorical must be a list of column names, got the string {categorical!r}; "
            f"pass [{categorical!r}]"
        )
    cat = set(categorical or ())
    unknown = sorted(cat - set(cols))
    if unknown:
        raise InvalidParameterError(
            f"categorical names column(s) {unknown} that {a} does not have; pass names from "
            f"{cols[:10]}"
        )
    mx, my = dx._meta, dy._meta
    return [
        "categorical" if c in cat or is_categorical(mx[c]) or is_categorical(my[c]) else "numeric"
        for c in cols
    ]


def _ks_bounds(
    dx: Any,
    dy: Any,
    cols: list[str],
    sum_x: list[_ColSummary],
    sum_y: list[_ColSummary],
    names: tuple[str, str],
    missing: str,
) -> dict[str, tuple[float, float]]:
    """The second pass: per numeric column, the KS distance's bounds from exact counts on the
    grid of both tables' hash samples (:mod:`nndoctor.shift._ksgrid`)."""
    from dask.base import compute
    from dask.delayed import delayed

    grids = {
        col: np.union1d(sx[2][4][1], sy[2][4][1])
        for col, sx, sy in zip(cols, sum_x, sum_y, strict=True)
        if sx[0] == "numeric" and min(sx[2][1], sy[2][1]) >= 2
    }
    if not grids:
        return {}
    trees = [
        tree_reduce(
            [delayed(_grid_counts)(p, cols, grids, nm, missing) for p in frame.to_delayed()],
            _add_counts,
        )
        for frame, nm in zip((dx, dy), names, strict=True)
    ]
    cx, cy = compute(*trees)  # type: ignore[no-untyped-call]
    bounds = {}
    for col, sx, sy in zip(cols, sum_x, sum_y, strict=True):
        if col in grids:
            m, n = sx[2][1], sy[2][1]
            (le_x, lt_x), (le_y, lt_y) = cx[col], cy[col]
            bounds[col] = grid_ks(grids[col], le_x, lt_x, m, le_y, lt_y, n)
    return bounds


def _numeric_from_sketches(
    sx: tuple[Any, ...], sy: tuple[Any, ...], confidence: float, ks_bounds: tuple[float, float]
) -> tuple[float, float, dict[str, float], dict[str, tuple[float, float]], float]:
    """KS (from the exact counts on the grid: ``ks_bounds``, conservative p-value), and the
    Wasserstein distance, PSI and the KS interval from the two sketches."""
    from nndoctor.shift._univariate import PSI_BINS, _psi

    vx, wx, _ = weighted_cdf(sx[0])
    vy, wy, _ = weighted_cdf(sy[0])
    m, n = sx[1], sy[1]
    grid = np.unique(np.concatenate((vx, vy)))
    fx, fy = cdf_at(vx, wx, grid), cdf_at(vy, wy, grid)
    diff = np.abs(fx - fy)
    d, upper = ks_bounds
    err = upper - d
    pvalue = smallest_pvalue(ks_pvalue(d, m, n))
    w1 = float(np.dot(diff[:-1], np.diff(grid)))
    scale = math.sqrt(sx[3] / m) if m else 0.0
    w1_std = w1 / scale if scale > 0 else (0.0 if w1 == 0 else float("inf"))
    # PSI on the source's deciles, read from the source sketch
    ranks = wx / wx[-1]
    idx = np.minimum(np.searchsorted(ranks, np.linspace(0, 1, PSI_BINS + 1)[1:-1]), vx.size - 1)
    edges = np.unique(vx[idx])
    cdf_x, cdf_y = cdf_at(vx, wx, edges), cdf_at(vy, wy, edges)
    px = np.diff(np.concatenate(([0.0], cdf_x, [1.0])))
    py = np.diff(np.concatenate(([0.0], cdf_y, [1.0])))
    psi = float(_psi(px, py))
    level = 1.0 - confidence
    dkw = math.sqrt(math.log(4.0 / level) / (2 * m)) + math.sqrt(math.log(4.0 / level) / (2 * n))
    nan2 = (math.nan, math.nan)
    cis = {
        "ks": (max(0.0, d - dkw), min(1.0, d + dkw + err)),  # d is a lower bound of D
        "psi": nan2,
        "wasserstein": nan2,
        "wasserstein_std": nan2,
    }
    effects = {"ks": d, "wasserstein": w1, "wasserstein_std": w1_std, "psi": psi}
    return d, pvalue, effects, cis, err


def feature_test(X: Any, Y: Any, *, kinds: str | None, **options: Any) -> FeatureTestResult:
    """Per-feature tests on Dask collections; the same result type as in memory.

    ``options`` are those of :func:`_feature_test_rows` (``categorical``, ``correction``,
    ``alpha``, ``min_effect``, ``confidence``, ``n_bootstrap``, ``random_state``, ``missing``,
    ``names``, ``sketch_k``), with the in-memory functions' defaults. ``kinds`` is
    ``"numeric"`` (:func:`ks_test`), ``"categorical"`` (:func:`chi2_test`) or
    ``None`` (:func:`feature_test`: from the dtypes and ``categorical``). Two passes over each
    table compute the partition summaries and the counts on the KS grid (module docstring:
    what travels and how big); the client then runs the tests. χ² tests, missing counts and
    missing-rate tests are exact and equal to the in-memory result (the same seeds, so the same
    bootstrap intervals); the KS distance is the grid's lower bound :math:`D_{grid} \\le D`,
    ``statistic_error`` the distance to its upper bound, and the p-value is taken at the lower
    bound, so it is conservative and the same on every run:

    .. math:: p = P_{KS}(D' \\ge D_{grid}) \\ge P_{KS}(D' \\ge D),
              \\qquad D_{grid} \\le D \\le D_{grid} + \\texttt{statistic\\_error}.

    The Wasserstein and PSI values are read from KLL sketches; their bootstrap intervals
    are not computed on Dask (NaN), the KS interval is the DKW interval widened by
    ``statistic_error``.

    References
    ----------
    Karnin, Z., Lang, K., Liberty, E. (2016). Optimal quantile approximation in streams.
    FOCS. Apache DataSketches, KLL sketch (https://datasketches.apache.org). Cohen, E.,
    Kaplan, H. (2007). Summarizing data using bottom-k sketches. PODC.

    Examples
    --------
    >>> import dask, numpy as np, pandas as pd, dask.dataframe as dd
    >>> from nndoctor.shift import feature_test
    >>> rng = np.random.default_rng(0)
    >>> src = dd.from_pandas(pd.DataFrame({"a": rng.normal(size=400)}), npartitions=4)
    >>> tgt = dd.from_pandas(pd.DataFrame({"a": rng.normal(1, 1, 400)}), npartitions=4)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     res = feature_test(src, tgt, random_state=0)
    >>> res.engine, res.features[0].drifted, res.features[0].statistic_error
    ('dask', True, 0.0)
    """
    return _feature_test_rows(X, Y, kinds=kinds, **options)[0]


def _feature_test_rows(
    X: Any,
    Y: Any,
    *,
    kinds: str | None,
    categorical: Sequence[str] | None = None,
    correction: Any = "holm",
    alpha: Any = 0.05,
    min_effect: float | None = None,
    confidence: float = 0.95,
    n_bootstrap: int = 200,
    random_state: Any = None,
    missing: Any = "test",
    names: tuple[str, str] | None = None,
    sketch_k: int = SKETCH_K,
) -> tuple[FeatureTestResult, int, int]:
    """:func:`feature_test` and the row counts of the two tables."""
    from nndoctor.shift._univariate import (
        _assemble,
        _categorical_counts,
        _check_options,
        _rate_tested,
        _warn_thin,
    )

    require_dask()
    from dask.base import compute
    from dask.delayed import delayed

    alpha_f, n_bootstrap = _check_options(
        correction, missing, alpha, confidence, n_bootstrap, min_effect
    )
    k = check_int(sketch_k, name="sketch_k", minimum=8)
    rng = check_random_state(random_state)
    a, b = display_names(names)
    dx, dy, cols = _aligned(X, Y, (a, b))
    kind_list = _kinds(dx, dy, cols, kinds, categorical, a)
    trees = [
        tree_reduce(
            [
                delayed(_summarize)(p, cols, kind_list, nm, str(missing), k)
                for p in frame.to_delayed()
            ],
            functools.partial(_merge, k=k),
        )
        for frame, nm in ((dx, a), (dy, b))
    ]
    (m, sum_x), (n, sum_y) = compute(*trees)  # type: ignore[no-untyped-call]
    for nm, rows in ((a, m), (b, n)):
        if rows == 0:
            raise DataValidationError(f"{nm} has 0 rows; pass at least 1 row per sample")
    bounds = _ks_bounds(dx, dy, cols, sum_x, sum_y, (a, b), str(missing))
    # the same seeds as in memory, so categorical columns get the same bootstrap draws
    seeds = rng.integers(0, 2**63 - 1, size=len(cols))
    n_miss = np.array([[sx[1], sy[1]] for sx, sy in zip(sum_x, sum_y, strict=True)], np.int64)
    n_used = np.zeros((len(cols), 2), dtype=np.int64)
    rate_tested = np.zeros(len(cols), dtype=bool)
    raw: list[tuple[str, str, float, float, dict[str, float], dict[str, tuple[float, float]]]] = []
    errors: list[float] = []
    thin: list[str] = []
    for j, col in enumerate(cols):
        kind = kind_list[j]
        px, py = sum_x[j][2], sum_y[j][2]
        if kind == "numeric":
            n_used[j] = (px[1], py[1])
        else:
            n_used[j] = (sum(px.values()), sum(py.values()))
        rate_tested[j] = _rate_tested(n_miss[j], missing, kind)
        err = 0.0
        if min(n_used[j]) < 2:
            thin.append(f"{col!r} ({n_used[j, 0]} and {n_used[j, 1]})")
            raw.append((col, kind, math.nan, math.nan, {}, {}))
        elif kind == "numeric":
            stat, p, eff, cis, err = _numeric_from_sketches(px, py, float(confidence), bounds[col])
            raw.append((col, kind, stat, p, eff, cis))
        else:
            cats = sorted(set(px) | set(py))
            cx = np.array([px.get(c, 0) for c in cats], dtype=np.float64)
            cy = np.array([py.get(c, 0) for c in cats], dtype=np.float64)
            gen = np.random.default_rng(int(seeds[j]))
            stat, p, eff, cis = _categorical_counts(cx, cy, gen, n_bootstrap, float(confidence))
            raw.append((col, kind, stat, p, eff, cis))
        errors.append(err)
    _warn_thin(thin, (a, b))
    result = _assemble(raw, n_miss, n_used, rate_tested, int(m), int(n), alpha_f, correction,
                     min_effect, float(confidence), str(missing), errors=errors,
                     engine="dask")  # fmt: skip
    return result, int(m), int(n)


# --------------------------------------------------------------------------------------------
# Parquet datasets (the command line's --engine dask)


def read_parquet(spec: str, name: str) -> Any:
    """A lazy Dask frame over a Parquet file, a directory of them or a glob.

    A local path that matches no Parquet file raises
    :class:`~nndoctor.exceptions.InvalidParameterError` naming it (a file the user named that
    does not exist). The local files' schemas are read from their footers (no rows) and
    compared: a file whose columns, or the kind of a column's type (number, text, boolean,
    time), differ from the first file's raises
    :class:`~nndoctor.exceptions.DataValidationError` naming the file and the column. Remote
    URLs (``s3://...``) go to Dask as they are, unchecked.
    """
    require_dask()
    import dask.dataframe as dd

    if "://" not in spec:
        path = Path(spec)
        if glob.has_magic(spec):
            files = sorted(Path(f) for f in glob.glob(spec, recursive=True))
        elif path.is_dir():
            files = sorted(path.rglob("*.parquet"))
        else:
            files = [path] if path.is_file() else []
        if not files:
            raise InvalidParameterError(
                f"{name}: {spec!r} matches no Parquet file; pass a Parquet file, a directory "
                "holding .parquet files or a glob such as 'data/train/*.parquet' (quoted, so "
                "that the shell does not expand it)"
            )
        _check_schemas(files, name)
    return dd.read_parquet(spec)


def _type_kind(arrow_type: Any) -> str:
    """The kind of an Arrow type that decides the test: number, text, boolean, time or other."""
    import pyarrow as pa

    t = pa.types
    if t.is_null(arrow_type):
        return "null"
    if t.is_boolean(arrow_type):
        return "boolean"
    if t.is_integer(arrow_type) or t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return "number"
    if t.is_string(arrow_type) or t.is_large_string(arrow_type) or t.is_dictionary(arrow_type):
        return "text"
    if t.is_temporal(arrow_type):
        return "time"
    return str(arrow_type)


def _check_schemas(files: list[Path], name: str) -> None:
    """Every file has the first file's columns, each of the same kind (footers only)."""
    import pyarrow.parquet as pq

    def columns(f: Path) -> dict[str, str]:
        try:
            schema = pq.read_schema(f)
        except (OSError, ValueError) as err:
            raise DataValidationError(
                f"{name}: {str(f)!r} cannot be read as Parquet ({err}); remove it from the "
                "dataset or rewrite it"
            ) from err
        return {
            field.name: _type_kind(field.type)
            for field in schema
            if not field.name.startswith("__index_level_")
        }

    first = columns(files[0])
    for f in files[1:]:
        cols = columns(f)
        if cols.keys() != first.keys():
            miss = sorted(first.keys() - cols.keys())[:5]
            extra = sorted(cols.keys() - first.keys())[:5]
            raise DataValidationError(
                f"{name}: file {str(f)!r} has different columns from {str(files[0])!r} "
                f"(missing: {miss}; extra: {extra}); every file of a dataset needs the same "
                "columns"
            )
        for col, kind in cols.items():
            if "null" not in (kind, first[col]) and kind != first[col]:
                raise DataValidationError(
                    f"{name}: column {col!r} holds {kind} in file {str(f)!r} but "
                    f"{first[col]} in {str(files[0])!r}; every file of a dataset needs the same "
                    "kind of values in a column (cast it when writing)"
                )


register_dask(feature_test=feature_test)
