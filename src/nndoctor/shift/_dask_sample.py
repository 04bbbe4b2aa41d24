"""The shift tests that need all rows in one process, on a bounded random sample of a Dask table.

The classifier two-sample test (:func:`nndoctor.shift.classifier_test`) and the diagnosis
(:func:`nndoctor.shift.diagnose`) fit models on the rows themselves, so on Dask they run on a
random sample of each table, drawn where the data live:

1. one small pass counts the rows of every partition (one integer per partition travels);
2. each table is sampled with ``frac = min(1, size / rows)`` by Dask's own
   ``DataFrame.sample`` (``round(frac · len)`` rows of each partition, drawn without
   replacement with a seed derived from ``random_state``, so the same seed gives the same
   rows on any scheduler);
3. only the sample travels to the client: about ``size`` rows per table (at most ``size`` plus
   one row per partition), whatever the table's length.

The in-memory function then runs on the samples, and the result states both the sample sizes
(``n_source``, ``n_target``) and the tables' row counts (``sampled_from``). A table with no
more rows than ``size`` is collected whole and nothing is sampled (``sampled_from`` still says
the row counts).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from nndoctor._validation import check_int, check_random_state
from nndoctor.exceptions import DataValidationError
from nndoctor.shift._common import display_names
from nndoctor.shift._dask import _as_dask_frame, require_dask
from nndoctor.shift._engines import DASK_SAMPLE_SIZE, is_dask, register_dask

__all__ = ["classifier_test", "count_rows", "diagnose", "sample_rows"]

#: The column that carries a table's labels through the sampling (dropped afterwards).
_LABEL = "__nndoctor_label__"


def _attach_labels(part: pd.DataFrame, labels: Any) -> pd.DataFrame:
    """One partition of the features with its labels as one more column (same rows)."""
    values = labels.to_numpy() if hasattr(labels, "to_numpy") else np.asarray(labels)
    if values.ndim != 1 or values.shape[0] != len(part):
        raise DataValidationError(
            f"a partition of the labels has {values.shape[0]} row(s) but the matching partition "
            f"of the features has {len(part)}; pass labels partitioned like the features "
            "(for instance both as columns of one Dask frame)"
        )
    return part.assign(**{_LABEL: values})


def _with_labels(frame: Any, labels: Any, name: str) -> Any:
    """``frame`` with ``labels`` (a Dask series or 1-D array, partitioned alike) as a column."""
    import dask.array as da
    import dask.dataframe as dd

    if not is_dask(labels):
        raise DataValidationError(
            f"the features of {name} are a Dask collection but its labels are "
            f"{type(labels).__name__}; pass the labels as a Dask series or array partitioned "
            "like the features"
        )
    if isinstance(labels, da.Array):
        if labels.ndim != 1:
            raise DataValidationError(
                f"the labels of {name} have {labels.ndim} dimensions; pass a 1-D array"
            )
        labels = dd.from_dask_array(labels)
    elif isinstance(labels, dd.DataFrame):
        if len(labels.columns) != 1:
            raise DataValidationError(
                f"the labels of {name} are a frame with {len(labels.columns)} columns; pass "
                "one column (a Dask series)"
            )
        labels = labels[labels.columns[0]]
    if labels.npartitions != frame.npartitions:
        raise DataValidationError(
            f"the labels of {name} have {labels.npartitions} partitions but its features "
            f"have {frame.npartitions}; pass labels partitioned like the features (for "
            "instance both as columns of one Dask frame)"
        )
    meta = frame._meta.assign(**{_LABEL: labels._meta.to_numpy()})
    return dd.map_partitions(  # type: ignore[no-untyped-call]
        _attach_labels, frame, labels, meta=meta, align_dataframes=False
    )


def sample_rows(
    data: Any, size: int, rng: np.random.Generator, name: str, labels: Any = None
) -> tuple[pd.DataFrame, Any, int]:
    """A random sample of about ``size`` rows of a Dask table, its labels and the row count.

    ``frac = min(1, size / rows)`` from the partitions' lengths (one integer per partition
    travels), then ``DataFrame.sample(frac=frac, random_state=seed)`` with a seed drawn from
    ``rng``; the sample (about ``size`` rows) is the only data that travels. ``labels`` (a
    Dask series or 1-D array partitioned like ``data``), when given, are sampled on the same
    rows and returned as a NumPy array (else ``None``).

    Examples
    --------
    >>> import dask, numpy as np, pandas as pd, dask.dataframe as dd
    >>> frame = dd.from_pandas(pd.DataFrame({"a": np.arange(1000.0)}), npartitions=4)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     sample, _, rows = sample_rows(frame, 100, np.random.default_rng(0), "X")
    >>> len(sample), rows
    (100, 1000)
    """
    require_dask()
    frame = _as_dask_frame(data, name)
    if labels is not None:
        frame = _with_labels(frame, labels, name)
    lengths = frame.map_partitions(len).compute()
    rows = int(lengths.sum())
    if rows > size:  # a table that fits is taken whole and draws nothing from rng
        seed = int(rng.integers(0, 2**32 - 1))
        frame = frame.sample(frac=size / rows, replace=False, random_state=seed)
    sample = frame.compute().reset_index(drop=True)
    y = None
    if labels is not None:
        y = sample.pop(_LABEL).to_numpy()
    return sample, y, rows


def _sample_pair(
    X: Any, Y: Any, size: Any, random_state: Any, names: tuple[str, str]
) -> tuple[pd.DataFrame, pd.DataFrame, tuple[int, int], np.random.Generator]:
    """Samples of both tables, their row counts and the generator left for the test."""
    size = check_int(size, name="sample_size", minimum=2)
    rng = check_random_state(random_state)
    xs, _, m = sample_rows(X, size, rng, names[0])
    ys, _, n = sample_rows(Y, size, rng, names[1])
    return xs, ys, (m, n), rng


def classifier_test(
    X: Any,
    Y: Any,
    *,
    sample_size: int = DASK_SAMPLE_SIZE,
    random_state: Any = None,
    names: tuple[str, str] | None = None,
    **options: Any,
) -> Any:
    """:func:`nndoctor.shift.classifier_test` on a random sample of each Dask table.

    About ``sample_size`` rows of each table travel to the client (module docstring); the
    in-memory test runs on them, seeded from the same generator, and ``sampled_from`` states
    the tables' row counts (``n_source`` and ``n_target`` are the sample sizes).
    """
    from nndoctor.shift._classifier_test import classifier_test as in_memory

    shown = display_names(names)
    xs, ys, rows, rng = _sample_pair(X, Y, sample_size, random_state, shown)
    res = in_memory(xs, ys, random_state=rng, names=shown, **options)
    return dataclasses.replace(res, sampled_from=rows)


def diagnose(
    source_X: Any,
    source_y: Any,
    target_X: Any,
    target_y: Any = None,
    *,
    sample_size: int = DASK_SAMPLE_SIZE,
    random_state: Any = None,
    names: tuple[str, str] | None = None,
    **options: Any,
) -> Any:
    """:func:`nndoctor.shift.diagnose` on a random sample of each Dask table (with its labels).

    The source rows are sampled with their labels, the target rows with theirs when
    ``target_y`` is given (missing labels stay missing); about ``sample_size`` rows of each
    table travel to the client. The in-memory diagnosis runs on the samples, and
    ``sampled_from`` states the tables' row counts.
    """
    from nndoctor.shift.diagnose import diagnose as in_memory

    size = check_int(sample_size, name="sample_size", minimum=2)
    rng = check_random_state(random_state)
    a, b = display_names(names, ("the source table", "the target table"))
    xs, ys, m = sample_rows(source_X, size, rng, a, labels=source_y)
    xt, yt, n = sample_rows(target_X, size, rng, b, labels=target_y)
    res = in_memory(xs, ys, xt, yt, random_state=rng, names=names, **options)
    return dataclasses.replace(res, sampled_from=(m, n))


def count_rows(data: Any, name: str) -> int:
    """The row count of a Dask table (one integer per partition travels)."""
    require_dask()
    return int(_as_dask_frame(data, name).map_partitions(len).compute().sum())


register_dask(classifier_test=classifier_test, diagnose=diagnose, count_rows=count_rows)
