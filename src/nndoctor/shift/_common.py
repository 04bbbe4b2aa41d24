"""What the two-sample tests share: the generic result type and the input checks.

Nothing here is public on its own; :mod:`nndoctor.shift.two_sample` re-exports
:class:`TwoSampleResult`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch

from nndoctor._results import ResultMixin
from nndoctor._validation import (
    check_matrix,
    check_no_nonfinite,
    check_same_features,
    check_table_shape,
    check_unit_interval,
    forward_errors,
)
from nndoctor.exceptions import DataValidationError, InvalidParameterError, SmallSampleWarning

__all__ = [
    "TwoSampleResult",
    "aligned_frames",
    "as_float_tensors",
    "as_frame",
    "canonical_order",
    "check_alpha",
    "column_names",
    "display_names",
    "infinite_values_error",
    "inverse_order",
    "is_categorical",
    "limit_threads",
    "model_softmax",
    "same_order",
    "smallest_pvalue",
    "smallest_pvalues",
    "warn_small",
]

#: The smallest p-value an asymptotic test reports (the smallest positive normal double), so
#: that no p-value is ever exactly 0.
_TINY = float(np.finfo(np.float64).tiny)


def smallest_pvalue(p: float) -> float:
    """Clip an asymptotic p-value into ``[tiny, 1]`` so that it is never exactly 0.

    Examples
    --------
    >>> smallest_pvalue(0.0) > 0
    True
    """
    if np.isnan(p):
        return float("nan")
    return float(min(1.0, max(p, _TINY)))


def smallest_pvalues(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """:func:`smallest_pvalue` elementwise (NaN stays NaN)."""
    return np.clip(p, _TINY, 1.0)


@dataclass(frozen=True, slots=True)
class TwoSampleResult(ResultMixin):
    """The outcome of a two-sample test (H0: both samples come from one distribution).

    Attributes
    ----------
    statistic : float
        The test statistic (for MMD: the unbiased estimate of MMD²).
    pvalue : float
        The p-value; never exactly 0 (a permutation p-value is ``(1 + #{T* >= T}) / (1 + B)``).
    method : str
        Which test produced it, e.g. ``"mmd-permutation"`` or ``"mmd-block"``.
    n_permutations : int or None
        Number of permutations ``B`` (``None`` for an asymptotic test).
    null_distribution : ndarray or None
        The ``B`` permuted statistics (``None`` for an asymptotic test).
    n_source, n_target : int
        Sample sizes.
    alpha : float
        Level of the decision.
    drift_detected : bool
        ``pvalue <= alpha``.
    details : dict
        Method-specific numbers (kernel, bandwidth, block size, ...).
    """

    statistic: float
    pvalue: float
    method: str
    n_permutations: int | None = None
    null_distribution: npt.NDArray[np.float64] | None = None
    n_source: int = 0
    n_target: int = 0
    alpha: float = 0.05
    drift_detected: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)


def canonical_order(*parts: Any) -> npt.NDArray[np.intp]:
    """Row indices that put the rows of ``parts`` in an order fixed by their content alone.

    ``parts`` are what travels with a row (a matrix of features, its labels, its predicted
    probabilities, its weight; ``None`` is skipped), all with the same number of rows. Each
    numeric column is replaced by the ranks of its values (dense ranks: equal values share one,
    every NaN is one value, ``-0.0`` is ``0.0``), any other column by a hash of each value; each
    row of ranks and hashes gets a 64-bit hash (:func:`pandas.util.hash_pandas_object`, stable
    across runs and platforms), and the rows are sorted by these keys with a stable sort.

    So ``X[canonical_order(X)]`` is the same array however the rows of ``X`` were ordered (two
    rows with equal keys are, almost surely, equal rows, whose order cannot matter), and the
    same order of the rows after any change of a column's units or sign (``a * x + b``,
    ``a != 0``: the ranks do not move; a column whose skewness is negative is ranked from its
    largest value, so that ``-x`` is ranked as ``x``). An estimator that runs on its rows in
    this order gives the same result for the same *set* of rows. The hash order is unrelated
    to the values; a procedure that needs a random order still draws it from its
    ``random_state``. (A column symmetric about its mean, skewness 0, keeps its increasing
    ranks, so for it ``-x`` can give another order.)

    Examples
    --------
    >>> X = np.array([[3.0, 0.0], [1.0, np.nan], [2.0, 2.0]])
    >>> y = np.array([0, 1, 1])
    >>> a = canonical_order(X, y)
    >>> b = canonical_order(X[[2, 0, 1]], y[[2, 0, 1]])
    >>> np.array_equal(X[a], X[[2, 0, 1]][b], equal_nan=True)
    True
    >>> np.array_equal(a, canonical_order(X * 1000.0 - 7.0, y))  # other units, same order
    True
    >>> Z = np.array([[1.0], [2.0], [7.0], [3.0]])  # a skewed column: -Z is ranked as Z
    >>> np.array_equal(canonical_order(Z), canonical_order(-Z))
    True
    """
    keys: list[npt.NDArray[np.uint64]] = []
    n_rows: int | None = None
    for part in parts:
        if part is None:
            continue
        key = _row_hashes(part)
        if n_rows is not None and key.shape[0] != n_rows:
            raise DataValidationError(
                f"the parts of a row have {n_rows} and {key.shape[0]} rows; pass one row of "
                "each part per row"
            )
        n_rows = key.shape[0]
        keys.append(key)
    if not keys:
        return np.arange(0, dtype=np.intp)
    return np.asarray(np.lexsort(keys[::-1]), dtype=np.intp)  # stable; the first part leads


def _row_hashes(part: Any) -> npt.NDArray[np.uint64]:
    """One 64-bit hash per row of a frame, series, array or tensor: of the ranks of its numeric
    values within their column, and of its other values themselves."""
    if hasattr(part, "detach"):
        part = part.detach().cpu().numpy()
    if isinstance(part, pd.Series):
        part = part.to_frame()
    if isinstance(part, pd.DataFrame):
        columns: list[Any] = [part.iloc[:, j] for j in range(part.shape[1])]
        n = part.shape[0]
    else:
        arr = np.asarray(part)
        arr = arr.reshape(arr.shape[0], -1)
        columns, n = [arr[:, j] for j in range(arr.shape[1])], arr.shape[0]
    keys = np.empty((n, len(columns)), dtype=np.uint64)
    for j, col in enumerate(columns):
        keys[:, j] = _column_key(col)
    return np.asarray(
        pd.util.hash_pandas_object(pd.DataFrame(keys), index=False).to_numpy(), dtype=np.uint64
    )


def _column_key(col: Any) -> npt.NDArray[np.uint64]:
    """Dense ranks of a numeric column (NaN one value, ranked last), hashes of any other."""
    series = col if isinstance(col, pd.Series) else None
    if series is not None and pd.api.types.is_numeric_dtype(series.dtype):
        values: Any = series.to_numpy(dtype=np.float64, na_value=np.nan)
    elif series is None and np.asarray(col).dtype.kind in "biuf":
        values = np.asarray(col, dtype=np.float64)
    else:
        hashed = pd.util.hash_pandas_object(pd.Series(np.asarray(col, dtype=object)), index=False)
        return np.asarray(hashed.to_numpy(), dtype=np.uint64)
    uniques, ranks, counts = np.unique(values, return_inverse=True, return_counts=True)
    ranks = ranks.reshape(-1)  # dense ranks; every NaN one value, ranked last (NumPy >= 1.24)
    observed = ~np.isnan(uniques)
    if _decreasing(uniques[observed], counts[observed]):
        k = int(observed.sum())
        ranks = np.where(ranks < k, k - 1 - ranks, ranks)
    return np.asarray(ranks, dtype=np.uint64)


def _decreasing(values: npt.NDArray[np.float64], counts: npt.NDArray[np.intp]) -> bool:
    """Whether a column counts as pointing the other way: its skewness is negative (or, when
    it is 0 to rounding, its sorted value counts read the other way round). The same answer
    for the same values in any order (exact sums of the distinct values), and the opposite one
    for ``-x``, so that a column's ranks are the same after ``a * x + b`` for any ``a != 0``
    (an exactly symmetric column keeps its increasing order)."""
    if values.size < 2:
        return False
    # sums over the sorted distinct values: the same terms in the same order for any order of
    # the rows; under -x the same terms reversed and negated, equal to rounding, which the
    # margin below covers
    n = float(counts.sum())
    mean = float(np.sum(counts * values)) / n
    z = values - mean
    spread = float(np.sum(counts * z * z)) / n
    third = float(np.sum(counts * z**3)) / n
    if abs(third) > 1e-9 * spread**1.5:
        return third < 0
    as_listed, reversed_ = counts.tolist(), counts[::-1].tolist()
    return bool(reversed_ > as_listed)


def inverse_order(order: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """The permutation that undoes ``order``: ``a[order][inverse_order(order)]`` is ``a``."""
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size, dtype=order.dtype)
    return inverse


def check_alpha(alpha: Any) -> float:
    """Return ``alpha`` as a float in (0, 1)."""
    return check_unit_interval(alpha, name="alpha")


def display_names(names: Any, default: tuple[str, str] = ("X", "Y")) -> tuple[str, str]:
    """The names two tables go by in error messages: ``names`` when given, else ``default``.

    A caller that knows where its tables came from (the command line: ``"the source table
    (src.csv)"``) passes ``names`` to a public function, which hands them to its checks.

    Examples
    --------
    >>> display_names(None)
    ('X', 'Y')
    >>> display_names(("the source table (a.csv)", "the target table (b.csv)"))[1]
    'the target table (b.csv)'
    """
    if names is None:
        return default
    if (
        not isinstance(names, tuple | list)
        or len(names) != 2
        or not all(isinstance(n, str) and n for n in names)
    ):
        raise InvalidParameterError(
            f"names must be a pair of non-empty strings (how error messages call the two "
            f"tables), got {names!r}; pass e.g. ('the source table', 'the target table')"
        )
    return (names[0], names[1])


def warn_small(what: str) -> None:
    """Emit a :class:`SmallSampleWarning` that names the problem."""
    warnings.warn(what, SmallSampleWarning, stacklevel=3)


def _tensor_or_array(data: Any, name: str) -> torch.Tensor:
    if isinstance(data, torch.Tensor):
        t = data.detach()
        if t.is_complex():
            raise DataValidationError(
                f"{name} is a tensor of dtype {t.dtype}; pass real-valued features"
            )
        if t.ndim == 1:
            t = t[:, None]
        check_table_shape(tuple(t.shape), name=name)
        t = t.to(torch.float64)
        # one host sync per call, at validation
        check_no_nonfinite(int((~torch.isfinite(t)).sum().item()), name=name)
        return t
    arr = check_matrix(data, name=name, min_rows=1)
    if not (arr.flags.writeable and arr.flags.c_contiguous):
        arr = np.array(arr, order="C")  # torch cannot share read-only or reversed (x[::-1]) memory
    return torch.from_numpy(arr)


def same_order(X: pd.DataFrame, Y: pd.DataFrame, names: tuple[str, str]) -> pd.DataFrame:
    """``Y`` with ``X``'s columns in ``X``'s order (two frames are matched by column name)."""
    if list(Y.columns) == list(X.columns):
        return Y
    missing = [c for c in X.columns if c not in Y.columns]
    extra = [c for c in Y.columns if c not in X.columns]
    if missing or extra:
        raise DataValidationError(
            f"{names[0]} and {names[1]} have different columns (only in {names[0]}: "
            f"{missing[:5]}, only in {names[1]}: {extra[:5]}); pass tables with the same columns"
        )
    return Y[list(X.columns)]


def as_float_tensors(
    X: Any, Y: Any, *, names: tuple[str, str] = ("X", "Y")
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate two samples and return them as float64 tensors on one device.

    When either input is a tensor the computation happens on that tensor's device (a CUDA
    tensor keeps the work on the GPU); NumPy arrays and pandas frames go to the CPU.
    """
    if isinstance(X, pd.DataFrame) and isinstance(Y, pd.DataFrame):
        Y = same_order(X, Y, names)
    x = _tensor_or_array(X, names[0])
    y = _tensor_or_array(Y, names[1])
    check_same_features(x, y, names=names)
    device = x.device if isinstance(X, torch.Tensor) else y.device
    return x.to(device), y.to(device)


def column_names(data: Any, n_columns: int) -> list[str]:
    """The column names of a frame, or ``x0, x1, ...`` for arrays."""
    cols = getattr(data, "columns", None)
    if cols is not None and len(cols) == n_columns:
        return [str(c) for c in cols]
    return [f"x{j}" for j in range(n_columns)]


#: Below this many multiply-adds a CPU computation runs on one thread: thread-pool start-up
#: costs more than it saves on small problems, and far more on a busy machine.
SMALL_WORK = 2e7


@contextlib.contextmanager
def limit_threads(work: float, device: torch.device) -> Iterator[None]:
    """Run a small CPU computation single-threaded (restoring the thread count afterwards)."""
    old = torch.get_num_threads()
    if device.type != "cpu" or work > SMALL_WORK or old == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def as_frame(data: Any, name: str) -> pd.DataFrame:
    """``data`` as a DataFrame (arrays, tensors and Series become numbered columns)."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if hasattr(data, "detach") and hasattr(data, "cpu"):
        data = data.detach().cpu().numpy()
    arr = np.asarray(data)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataValidationError(
            f"{name} has {arr.ndim} dimensions (shape {arr.shape}); pass a 2-D table "
            "(rows are samples, columns are features)"
        )
    # no copy (a table of 356,000 x 100 floats took 1 s to copy, most of it page faults): a
    # read-only view, so that nothing downstream can write into the caller's array
    view = arr.view()
    view.flags.writeable = False
    return pd.DataFrame(view, columns=column_names(data, arr.shape[1]), copy=False)


def is_categorical(s: pd.Series) -> bool:
    """True for categorical, object and string columns (tested with χ², not KS)."""
    return bool(
        isinstance(s.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(s.dtype)
        or pd.api.types.is_string_dtype(s.dtype)
        or pd.api.types.is_bool_dtype(s.dtype)
    )


def aligned_frames(
    X: Any, Y: Any, *, names: tuple[str, str] = ("X", "Y")
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``X`` and ``Y`` as frames with the same columns in the same order.

    Two frames are matched by column name; otherwise ``Y`` takes ``X``'s column names.
    ``names`` are what error messages call the two tables.
    """
    a, b = names
    fx = as_frame(X, a)
    fy = as_frame(Y, b)
    if fx.shape[1] == 0:
        raise DataValidationError(f"{a} has no columns; pass at least one feature")
    check_same_features(fx, fy, names=names)
    if isinstance(X, pd.DataFrame) and isinstance(Y, pd.DataFrame):
        missing = [c for c in fx.columns if c not in fy.columns]
        if missing:
            raise DataValidationError(
                f"{b} lacks column(s) {missing[:5]} of {a}; pass tables with the same columns"
            )
        return fx, fy[list(fx.columns)]
    return fx, fy.set_axis(fx.columns, axis=1)


def infinite_values_error(count: int, name: str, column: Any) -> DataValidationError:
    """The error for infinite values in a column: infinity is not a missing value."""
    return DataValidationError(
        f"column {column!r} of {name} holds {count} infinite value(s); infinity is not a "
        "missing value (NaN, None and NA are): replace it with NaN to count it as missing, "
        "or clip it to a finite value first"
    )


def model_softmax(
    model: torch.nn.Module, X: npt.NDArray[Any], batch: int = 4096
) -> npt.NDArray[np.float64]:
    """Class probabilities ``softmax(model(x))`` of a network on the rows ``X``, in batches.

    Runs in eval mode without gradients, on the model's device and floating dtype (float32 for
    a model without floating parameters), with the softmax in float64 and one transfer to the
    host per batch; the model's training mode is restored afterwards, so the user's model is
    left as it was. A forward-pass error, or an output that is not one logit per class
    ``(batch, C)`` with ``C >= 2``, is a :class:`DataValidationError`.

    >>> net = torch.nn.Linear(3, 2)
    >>> model_softmax(net, np.zeros((5, 3))).sum(axis=1)
    array([1., 1., 1., 1., 1.])
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, X.shape[0], batch):
                # a copy of the batch (the caller's array may be read-only: a Dask chunk, a
                # pandas .to_numpy() view), converted to the model's dtype
                xb = torch.tensor(X[start : start + batch], dtype=dtype, device=device)
                with forward_errors(model, (xb,)):
                    logits = model(xb)
                if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[1] < 2:
                    shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else None
                    raise DataValidationError(
                        f"the model returned {type(logits).__name__} of shape {shape}; pass a "
                        "model that returns a tensor of logits (batch, C) with C >= 2"
                    )
                out.append(torch.softmax(logits.double(), dim=1).cpu())
    finally:
        model.train(was_training)
    return np.asarray(torch.cat(out).numpy(), dtype=np.float64)
