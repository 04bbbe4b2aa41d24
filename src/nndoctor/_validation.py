"""Input checks shared by every part of nndoctor.

Each function either returns a cleaned object or raises a typed error whose message names what was
wrong, what was expected and the fix. Nothing here asserts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from nndoctor.exceptions import (
    DataValidationError,
    InvalidParameterError,
    NNDoctorError,
    NotFittedError,
)

__all__ = [
    "check_callable",
    "check_choice",
    "check_finite_tensor",
    "check_fitted",
    "check_inputs",
    "check_int",
    "check_labels",
    "check_matrix",
    "check_module",
    "check_number",
    "check_probabilities",
    "check_random_state",
    "check_same_features",
    "check_unit_interval",
    "check_weights",
    "forward_errors",
    "to_numpy",
]


def to_numpy(data: Any, *, name: str = "data") -> npt.NDArray[Any]:
    """Convert a NumPy array, pandas object, torch tensor or nested sequence to a NumPy array.

    Examples
    --------
    >>> import torch
    >>> to_numpy(torch.ones(2, 2)).shape
    (2, 2)
    """
    if isinstance(data, torch.Tensor):
        return np.asarray(data.detach().cpu().numpy())
    if hasattr(data, "to_numpy"):
        return np.asarray(data.to_numpy())
    try:
        return np.asarray(data)
    except (TypeError, ValueError) as err:
        raise DataValidationError(
            f"{name} could not be read as an array ({err}); pass a NumPy array, a pandas "
            "DataFrame or a torch tensor"
        ) from err


def check_matrix(
    data: Any,
    *,
    name: str = "X",
    min_rows: int = 1,
    allow_nan: bool = False,
    dtype: type[np.floating[Any]] = np.float64,
) -> npt.NDArray[np.floating[Any]]:
    """Return ``data`` as a finite 2-D float array; a 1-D input becomes one column.

    Raises
    ------
    DataValidationError
        When the data are not numeric, have more than two dimensions, too few rows, or hold NaN or
        infinity (NaN allowed with ``allow_nan``).

    Examples
    --------
    >>> check_matrix([1.0, 2.0, 3.0]).shape
    (3, 1)
    >>> check_matrix([[1.0, float("nan")]])
    Traceback (most recent call last):
    ...
    nndoctor.exceptions.DataValidationError: X holds 1 NaN or infinite value(s); ...
    """
    columns = getattr(data, "columns", None)  # a DataFrame's names, to say which column is bad
    arr = to_numpy(data, name=name)
    if arr.dtype.kind not in "biuf":
        if arr.dtype.kind == "O" or arr.dtype.kind in "USV":
            try:
                arr = arr.astype(dtype)
            except (TypeError, ValueError) as err:
                raise DataValidationError(
                    f"{name} holds non-numeric values (dtype {arr.dtype}); pass numeric "
                    "features, or encode text columns before testing them"
                ) from err
        else:
            raise DataValidationError(
                f"{name} has dtype {arr.dtype}; pass numeric (integer or float) features"
            )
    arr = np.asarray(arr, dtype=dtype)
    if arr.ndim == 1:
        arr = arr[:, None]
    check_table_shape(tuple(arr.shape), name=name, min_rows=min_rows)
    if not allow_nan:
        bad = ~np.isfinite(arr)
        where = None
        if columns is not None and len(columns) == arr.shape[1]:
            where = [str(c) for c, n in zip(columns, bad.sum(axis=0), strict=True) if n]
        check_no_nonfinite(int(np.count_nonzero(bad)), name=name, columns=where)
    return arr


def label_spelling_hint(unseen: Iterable[Any], classes: Iterable[Any]) -> str:
    """A clause naming the source labels that ``unseen`` target labels differ from only in
    case or surrounding spaces (``''`` when none do), for the "class never seen" errors.

    Examples
    --------
    >>> label_spelling_hint(["Benign", "x"], ["benign", "malignant"])
    " ('Benign' is written 'benign' in the source: write the labels the same way in both tables)"
    """
    spelled = {str(c).strip().casefold(): str(c) for c in classes}
    pairs = [
        (str(u), spelled[str(u).strip().casefold()])
        for u in unseen
        if str(u).strip().casefold() in spelled
    ]
    if not pairs:
        return ""
    said = ", ".join(f"{u!r} is written {c!r}" for u, c in pairs[:5])
    return f" ({said} in the source: write the labels the same way in both tables)"


def check_table_shape(shape: tuple[int, ...], *, name: str, min_rows: int = 1) -> None:
    """Raise unless ``shape`` is that of a 2-D table with ``min_rows`` rows and a column.

    Examples
    --------
    >>> check_table_shape((3, 2), name="X")
    >>> check_table_shape((3, 2, 1), name="X")
    Traceback (most recent call last):
    ...
    nndoctor.exceptions.DataValidationError: X has 3 dimensions (shape (3, 2, 1)); ...
    """
    if len(shape) != 2:
        raise DataValidationError(
            f"{name} has {len(shape)} dimensions (shape {shape}); pass a 2-D table "
            "(rows are samples, columns are features)"
        )
    if shape[0] < min_rows:
        raise DataValidationError(f"{name} has {shape[0]} row(s); pass at least {min_rows} row(s)")
    if shape[1] == 0:
        raise DataValidationError(f"{name} has no columns; pass at least one feature")


def check_no_nonfinite(count: int, *, name: str, columns: list[str] | None = None) -> None:
    """Raise when ``count`` (the number of NaN or infinite entries of ``name``) is not 0.

    ``columns``, when known, names the columns that hold them (the message then says where).
    """
    if count:
        where = ""
        if columns:
            shown = ", ".join(repr(c) for c in columns[:5])
            more = f" and {len(columns) - 5} more" if len(columns) > 5 else ""
            where = f" in column(s) {shown}{more}"
        raise DataValidationError(
            f"{name} holds {count} NaN or infinite value(s){where}; drop or impute them first"
        )


def check_same_features(a: Any, b: Any, *, names: tuple[str, str] = ("source", "target")) -> None:
    """Raise when two 2-D tables (arrays, tensors, frames) do not have the same number of columns.

    Examples
    --------
    >>> import numpy as np
    >>> check_same_features(np.zeros((3, 2)), np.zeros((4, 3)))
    Traceback (most recent call last):
    ...
    nndoctor.exceptions.DataValidationError: target has 3 features but source has 2; ...
    """
    if a.shape[1] != b.shape[1]:
        raise DataValidationError(
            f"{names[1]} has {b.shape[1]} features but {names[0]} has {a.shape[1]}; "
            "pass tables with the same columns"
        )


def check_labels(
    labels: Any, *, name: str = "labels", n_rows: int | None = None
) -> npt.NDArray[Any]:
    """Return labels as a 1-D array, checking the length and that no label is missing.

    Examples
    --------
    >>> check_labels([0, 1, 1]).tolist()
    [0, 1, 1]
    """
    arr = to_numpy(labels, name=name)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataValidationError(
            f"{name} has shape {arr.shape}; pass a 1-D array with one label per row"
        )
    if n_rows is not None and arr.shape[0] != n_rows:
        raise DataValidationError(
            f"{name} has {arr.shape[0]} entries but the data have {n_rows} rows; "
            "pass one label per row"
        )
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise DataValidationError(f"{name} holds NaN; drop the unlabeled rows first")
    return arr


def check_class_indices(
    labels: Any,
    *,
    name: str,
    n_rows: int,
    n_classes: int,
    what: str = "class indices",
    dtype_hint: str = "",
) -> npt.NDArray[np.int64]:
    """Return labels as int64 class indices ``0 .. n_classes - 1`` (one per row).

    Integral floats (``1.0``) are accepted; other floats, non-numeric dtypes and indices outside
    the range of the probability columns raise. ``what`` names the indices in the messages
    ("class indices", "predicted class indices"); ``dtype_hint`` is appended to the dtype error.

    Examples
    --------
    >>> check_class_indices([0.0, 1.0, 2.0], name="y", n_rows=3, n_classes=3).tolist()
    [0, 1, 2]
    >>> check_class_indices([0, 3], name="y", n_rows=2, n_classes=3)
    Traceback (most recent call last):
    ...
    nndoctor.exceptions.DataValidationError: y range from 0 to 3 but the probabilities have 3 ...
    """
    y = check_labels(labels, name=name, n_rows=n_rows)
    if y.dtype.kind == "f":
        if not np.all(y == np.round(y)):
            raise DataValidationError(
                f"{name} hold non-integer values; pass {what} 0 .. {n_classes - 1}"
            )
    elif y.dtype.kind not in "iub":
        raise DataValidationError(
            f"{name} have dtype {y.dtype}; pass {what} 0 .. {n_classes - 1} in the order of the "
            f"probability columns{dtype_hint}"
        )
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataValidationError(
            f"{name} range from {y.min()} to {y.max()} but the probabilities have {n_classes} "
            f"columns; pass {what} 0 .. {n_classes - 1}"
        )
    return y


def check_probabilities(
    probs: Any, *, name: str = "probs", n_classes: int | None = None, atol: float = 1e-4
) -> npt.NDArray[np.float64]:
    """Return a 2-D array of class probabilities whose rows sum to one.

    Examples
    --------
    >>> check_probabilities([[0.2, 0.8], [0.5, 0.5]]).shape
    (2, 2)
    >>> check_probabilities([[0.2, 0.7]])
    Traceback (most recent call last):
    ...
    nndoctor.exceptions.DataValidationError: probs rows must sum to 1 ...
    """
    arr = check_matrix(probs, name=name)
    if arr.shape[1] < 2:
        raise DataValidationError(
            f"{name} has {arr.shape[1]} column; pass one column per class (at least 2)"
        )
    if n_classes is not None and arr.shape[1] != n_classes:
        raise DataValidationError(
            f"{name} has {arr.shape[1]} classes but {n_classes} were expected; "
            "pass probabilities from the same model"
        )
    if np.any(arr < -atol) or np.any(arr > 1 + atol):
        raise DataValidationError(f"{name} holds values outside [0, 1]; pass probabilities")
    sums = arr.sum(axis=1)
    worst = float(np.max(np.abs(sums - 1.0)))
    if worst > atol:
        raise DataValidationError(
            f"{name} rows must sum to 1 (worst row sums to "
            f"{sums[np.argmax(np.abs(sums - 1))]:.4g}); "
            "apply softmax to logits first"
        )
    return np.clip(arr, 0.0, 1.0)


def check_choice(value: Any, choices: Iterable[str], *, name: str) -> str:
    """Return ``value`` when it is one of ``choices``; otherwise list them in the error.

    Examples
    --------
    >>> check_choice("xavier", ["kaiming_normal", "constant"], name="scheme")
    Traceback (most recent call last):
    ...
    nndoctor.exceptions.InvalidParameterError: scheme 'xavier' is unknown; choose one of: ...
    """
    options = sorted(choices)
    if not isinstance(value, str) or value not in options:
        raise InvalidParameterError(
            f"{name} {value!r} is unknown; choose one of: {', '.join(options)}"
        )
    return value


def check_int(value: Any, *, name: str, minimum: int | None = None) -> int:
    """Return ``value`` as an ``int`` after checking its type and lower bound.

    Examples
    --------
    >>> check_int(5, name="n_permutations", minimum=1)
    5
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidParameterError(
            f"{name} must be an integer, got {type(value).__name__} {value!r}; pass an int"
            + ("" if minimum is None else f" >= {minimum}")
        )
    if minimum is not None and value < minimum:
        raise InvalidParameterError(
            f"{name} must be >= {minimum}, got {value}; pass an integer >= {minimum}"
        )
    return int(value)


def check_number(
    value: Any,
    *,
    name: str,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
) -> float:
    """Return ``value`` as a finite ``float`` after checking its type and bounds.

    Bounds are inclusive unless ``exclusive_minimum`` / ``exclusive_maximum`` say otherwise.

    Examples
    --------
    >>> check_number(2, name="sigma_w2", minimum=0.0)
    2.0
    >>> check_number(-1.0, name="sigma_w2", minimum=0.0)
    Traceback (most recent call last):
    ...
    nndoctor.exceptions.InvalidParameterError: sigma_w2 must be >= 0.0, got -1.0; ...
    """
    lo = "" if minimum is None else f"{'>' if exclusive_minimum else '>='} {minimum}"
    hi = "" if maximum is None else f"{'<' if exclusive_maximum else '<='} {maximum}"
    wanted = " and ".join(part for part in (lo, hi) if part) or "finite"
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidParameterError(
            f"{name} must be a number ({wanted}), got {type(value).__name__} {value!r}; "
            "pass a float"
        )
    v = float(value)
    if not np.isfinite(v):
        raise InvalidParameterError(f"{name} must be a finite number, got {v}; pass a float")
    too_low = minimum is not None and (v <= minimum if exclusive_minimum else v < minimum)
    too_high = maximum is not None and (v >= maximum if exclusive_maximum else v > maximum)
    if too_low or too_high:
        raise InvalidParameterError(f"{name} must be {wanted}, got {v}; pass a value in range")
    return v


def check_callable(value: Any, *, name: str, expected: str) -> Any:
    """Return ``value`` when it is callable; ``expected`` says what it should be.

    Examples
    --------
    >>> check_callable("mse", name="loss_fn", expected="a function of the model's output")
    Traceback (most recent call last):
    ...
    nndoctor.exceptions.InvalidParameterError: loss_fn must be callable ...
    """
    if not callable(value):
        raise InvalidParameterError(
            f"{name} must be callable ({expected}), got {type(value).__name__} {value!r}; pass "
            "a function"
        )
    return value


def check_fitted(estimator: Any, attribute: str, *, fit_call: str) -> None:
    """Raise :class:`~nndoctor.exceptions.NotFittedError` unless ``estimator`` has ``attribute``.

    Examples
    --------
    >>> class Est: pass
    >>> check_fitted(Est(), "weights_", fit_call="fit(X_source, X_target)")
    Traceback (most recent call last):
    ...
    nndoctor.exceptions.NotFittedError: this Est is not fitted yet; call fit(X_source, X_target) ...
    """
    if not hasattr(estimator, attribute):
        raise NotFittedError(
            f"this {type(estimator).__name__} is not fitted yet; call {fit_call} first"
        )


def check_weights(
    weights: Any,
    *,
    name: str = "weights",
    n_rows: int | None = None,
    allow_zero_sum: bool = True,
    per: str = "row",
) -> npt.NDArray[np.float64]:
    """Return weights as a 1-D float array: finite and non-negative, one per row (or ``per``).

    Examples
    --------
    >>> check_weights([1, 2]).tolist()
    [1.0, 2.0]
    >>> check_weights([1.0, -2.0])
    Traceback (most recent call last):
    ...
    nndoctor.exceptions.DataValidationError: weights holds 1 negative value(s); ...
    """
    arr = to_numpy(weights, name=name)
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise DataValidationError(
                f"{name} holds non-numeric values (dtype {arr.dtype}); pass one number per {per}"
            ) from err
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise DataValidationError(
            f"{name} has shape {arr.shape}; pass a 1-D array with one weight per {per}"
        )
    if n_rows is not None and arr.shape[0] != n_rows:
        raise DataValidationError(
            f"{name} has {arr.shape[0]} entries but the data have {n_rows} rows; "
            "pass one weight per row"
        )
    check_no_nonfinite(int(np.count_nonzero(~np.isfinite(arr))), name=name)
    negative = int(np.count_nonzero(arr < 0))
    if negative:
        raise DataValidationError(
            f"{name} holds {negative} negative value(s); pass non-negative weights"
        )
    if not allow_zero_sum and arr.size and not arr.sum() > 0:
        raise DataValidationError(f"{name} are all zero; pass at least one positive weight")
    return arr


def check_unit_interval(value: Any, *, name: str, open_: bool = True) -> float:
    """Return ``value`` as a float in (0, 1) (or [0, 1] with ``open_=False``).

    Examples
    --------
    >>> check_unit_interval(0.05, name="alpha")
    0.05
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise InvalidParameterError(
            f"{name} must be a number in (0, 1), got {type(value).__name__} {value!r}; pass a "
            "float such as 0.05"
        )
    v = float(value)
    ok = (0.0 < v < 1.0) if open_ else (0.0 <= v <= 1.0)
    if not ok:
        bounds = "(0, 1)" if open_ else "[0, 1]"
        raise InvalidParameterError(
            f"{name} must lie in {bounds}, got {v}; pass a value in {bounds}"
        )
    return v


def check_random_state(random_state: Any) -> np.random.Generator:
    """Return a NumPy ``Generator`` from ``None``, an int, a ``SeedSequence`` or a ``Generator``.

    Examples
    --------
    >>> bool(check_random_state(0).integers(10) == check_random_state(0).integers(10))
    True
    """
    if isinstance(random_state, int | np.integer) and not isinstance(random_state, bool):
        if random_state < 0:
            raise InvalidParameterError(
                f"random_state must be a non-negative int, got {random_state}; pass e.g. 0"
            )
        return np.random.default_rng(int(random_state))
    if random_state is None or isinstance(random_state, np.random.SeedSequence):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    raise InvalidParameterError(
        "random_state must be None, a non-negative int or a numpy Generator, got "
        f"{type(random_state).__name__} {random_state!r}; pass e.g. random_state=0"
    )


def check_module(model: Any, *, name: str = "model", need_parameters: bool = True) -> nn.Module:
    """Return ``model`` if it is an ``nn.Module`` (with parameters, unless told otherwise).

    Examples
    --------
    >>> check_module(nn.ReLU())
    Traceback (most recent call last):
    ...
    nndoctor.exceptions.DataValidationError: model has no parameters; ...
    """
    if not isinstance(model, nn.Module):
        raise InvalidParameterError(
            f"{name} must be a torch.nn.Module, got {type(model).__name__}; pass the network "
            "itself (not its state_dict or a function)"
        )
    if need_parameters and next(model.parameters(), None) is None:
        raise DataValidationError(
            f"{name} has no parameters; pass a network with at least one layer that has weights"
        )
    return model


def check_finite_tensor(tensor: torch.Tensor, *, name: str = "inputs") -> torch.Tensor:
    """Raise when a floating tensor holds NaN or infinity.

    Examples
    --------
    >>> check_finite_tensor(torch.tensor([1.0, float("inf")]))
    Traceback (most recent call last):
    ...
    nndoctor.exceptions.DataValidationError: inputs hold 1 NaN or infinite value(s); ...
    """
    if not isinstance(tensor, torch.Tensor):
        raise InvalidParameterError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.is_floating_point() or tensor.is_complex():
        bad = int((~torch.isfinite(tensor)).sum().item())
        if bad:
            raise DataValidationError(
                f"{name} hold {bad} NaN or infinite value(s); clean the batch before probing"
            )
    return tensor


def check_inputs(args: tuple[Any, ...]) -> None:
    """Raise unless ``args`` are non-empty, finite batch tensors (the first dim = samples)."""
    if not args:
        raise DataValidationError("inputs are empty; pass a batch tensor (first dim = samples)")
    for i, a in enumerate(args):
        name = "inputs" if len(args) == 1 else f"inputs[{i}]"
        if not isinstance(a, torch.Tensor):
            raise InvalidParameterError(
                f"{name} must be a torch.Tensor, got {type(a).__name__}; pass a batch tensor "
                "(torch.as_tensor(x, dtype=torch.float32) converts an array)"
            )
        if a.dim() == 0 or a.shape[0] == 0:
            raise DataValidationError(
                f"{name} has shape {tuple(a.shape)}; pass a batch with at least one sample "
                "along the first dimension"
            )
        check_finite_tensor(a, name=name)


def _arity_hint(model: nn.Module, args: tuple[Any, ...]) -> str:
    """Say so when ``model.forward`` needs more positional inputs than it is given."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):  # a builtin or C forward: nothing to say
        return ""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    needed = [p.name for p in params if p.kind in kinds and p.default is inspect.Parameter.empty]
    if len(needed) <= len(args):
        return ""
    return (
        f"; the model's forward needs {len(needed)} inputs ({', '.join(needed)}) but is given "
        f"{len(args)}: wrap it in a module whose forward takes one batch and supplies the rest"
    )


_INPUT_LAYERS = (
    nn.Linear,
    nn.Bilinear,
    nn.modules.conv._ConvNd,
    nn.Embedding,
    nn.EmbeddingBag,
    nn.RNNBase,
    nn.MultiheadAttention,
)


def _shape_hint(model: nn.Module, args: tuple[Any, ...]) -> str:
    arity = _arity_hint(model, args)
    if arity:
        return arity
    # the first layer that takes an input: a hint about a Linear or Conv2d only when that is it
    # (a wav2vec2's first Linear comes after its Conv1d feature encoder)
    first = next((m for m in model.modules() if isinstance(m, _INPUT_LAYERS)), None)
    x = args[0]
    weight = next((p for p in model.parameters() if p.is_floating_point()), None)
    if isinstance(first, nn.Embedding | nn.EmbeddingBag):
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            return (
                f"; the model starts with an Embedding, which takes integer indices (torch.long) "
                f"below {first.num_embeddings}, but the inputs are {x.dtype}: pass a batch of "
                "token ids, not features"
            )
        return ""
    if isinstance(x, torch.Tensor) and not x.is_floating_point() and weight is not None:
        return (
            f"; the inputs are {x.dtype} but the model's weights are {weight.dtype}: pass "
            "floating inputs (x.float())"
        )
    if (
        isinstance(first, nn.Linear)
        and isinstance(x, torch.Tensor)
        and (x.dim() == 0 or x.shape[-1] != first.in_features)
    ):
        return (
            f"; the first Linear layer expects {first.in_features} features in the last "
            f"dimension, the inputs have {x.shape[-1] if x.dim() else 0}"
        )
    if (
        isinstance(first, nn.Conv2d)
        and isinstance(x, torch.Tensor)
        and (x.dim() != 4 or x.shape[1] != first.in_channels)
    ):
        return (
            f"; the first Conv2d expects (batch, {first.in_channels}, H, W), "
            f"the inputs have {tuple(x.shape)}"
        )
    return ""


@contextlib.contextmanager
def forward_errors(model: nn.Module, args: tuple[Any, ...]) -> Iterator[None]:
    """Turn an error raised by the model's forward pass into a :class:`DataValidationError`
    that names the input shapes and what the first layer expects (nndoctor's own errors pass)."""
    try:
        yield
    except NNDoctorError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError, KeyError, AttributeError) as err:
        shapes = ", ".join(
            str(tuple(a.shape)) if isinstance(a, torch.Tensor) else type(a).__name__ for a in args
        )
        hint = _shape_hint(model, args)
        fix = (
            ""
            if hint.endswith(("supplies the rest", "not features"))
            else "; pass a batch of the shape the model expects"
        )
        raise DataValidationError(
            f"the model's forward pass failed on inputs of shape {shapes} "
            f"({type(err).__name__}: {err}){hint}{fix}"
        ) from err
