"""Shared machinery for result objects: every result is a frozen dataclass with ``to_dict()``.

:func:`to_jsonable` turns dataclasses, NumPy scalars and arrays, tensors, enums and paths into
plain JSON types; non-finite floats become strings (``"nan"``, ``"inf"``, ``"-inf"``) so that the
output is strict JSON and a NaN is never mistaken for a missing value.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nndoctor._display import notebook_renderer

__all__ = ["ResultMixin", "dumps", "to_jsonable"]


def _float(value: float) -> float | str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def to_jsonable(obj: Any) -> Any:
    """Convert ``obj`` to plain JSON types (dict, list, str, int, float, bool, None).

    Examples
    --------
    >>> import numpy as np
    >>> to_jsonable({"a": np.float32(0.5), "b": np.array([1, 2]), "c": float("nan")})
    {'a': 0.5, 'b': [1, 2], 'c': 'nan'}
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int) and not isinstance(obj, bool):
        return obj
    if isinstance(obj, float):
        return _float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return _float(float(obj))
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()] if obj.dtype.kind == "f" else obj.tolist()
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # torch.Tensor without importing torch
        return to_jsonable(obj.detach().cpu().numpy())
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if isinstance(obj, Path):
        return str(obj)
    if (
        hasattr(obj, "to_dict")
        and not isinstance(obj, type)
        and (
            not dataclasses.is_dataclass(obj)
            or getattr(type(obj), "to_dict", None) is not ResultMixin.to_dict
        )
    ):  # a result that overrides ``to_dict`` (e.g. to leave out its tables) is taken at its word
        return to_jsonable(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in obj]
    return str(obj)


def dumps(obj: Any, *, indent: int | None = 2) -> str:
    """Serialise ``obj`` to strict JSON (no NaN literals).

    Examples
    --------
    >>> dumps({"x": float("inf")}, indent=None)
    '{"x": "inf"}'
    """
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)


_REPR_FULL = 120  # characters: a dataclass repr up to this long is shown whole
_REPR_FIELDS = 6  # scalar fields shown in the short repr
_REPR_TEXT = 32  # characters of a string field shown in the short repr


def _result_repr(self: Any) -> str:
    """The dataclass repr when it is short, else one line ``<Name field=value ...>``.

    The one line shows the first scalar fields (numbers, flags, short strings; ``None`` is left
    out) and counts the others; ``to_dict()`` and the notebook view have everything.
    """
    fields = [f for f in dataclasses.fields(self) if f.repr]
    name = type(self).__name__
    full = f"{name}({', '.join(f'{f.name}={getattr(self, f.name)!r}' for f in fields)})"
    if len(full) <= _REPR_FULL and "\n" not in full:
        return full
    shown: list[str] = []
    for f in fields:
        value = getattr(self, f.name)
        if isinstance(value, bool | int | float | np.bool_ | np.integer | np.floating):
            text = f"{value:.4g}" if isinstance(value, float | np.floating) else str(value)
        elif isinstance(value, enum.Enum):
            text = repr(value.value)
        elif isinstance(value, str):
            one = value.replace("\n", " ")
            text = repr(one if len(one) <= _REPR_TEXT else one[: _REPR_TEXT - 1] + "…")
        else:
            continue
        shown.append(f"{f.name}={text}")
        if len(shown) == _REPR_FIELDS:
            break
    more = len(fields) - len(shown)
    tail = f" (+{more} fields)" if more else ""
    return f"<{name} {' '.join(shown)}{tail}>" if shown else f"<{name}{tail}>"


class ResultMixin:
    """Adds ``to_dict()`` and ``to_json()`` to a frozen result dataclass.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True, slots=True)
    ... class R(ResultMixin):
    ...     statistic: float
    ...     flag: bool
    >>> R(1.5, True).to_dict()
    {'statistic': 1.5, 'flag': True}
    """

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # nndoctor's results get the short terminal repr; a __repr__ in the class body (ours or
        # the class's own) also keeps @dataclass from generating its long one
        if cls.__module__.startswith("nndoctor.") and "__repr__" not in cls.__dict__:
            cls.__repr__ = _result_repr  # type: ignore[method-assign]

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a dict of plain JSON types."""
        fields = dataclasses.fields(self)  # type: ignore[arg-type]  # subclasses are dataclasses
        return {f.name: to_jsonable(getattr(self, f.name)) for f in fields}

    def to_json(self, *, indent: int | None = 2) -> str:
        """Return the result as strict JSON text."""
        return dumps(self.to_dict(), indent=indent)

    # The two methods below draw through the report's notebook renderer, which sits layers
    # above this foundation module: they look it up in the registry of nndoctor._display (the
    # root package registers it; it is imported on first display).
    def _repr_html_(self) -> str:
        """The notebook view: the report's sections (verdict, table, plot) as escaped HTML.

        Never raises: on a rendering error it warns and shows the escaped plain ``repr``.
        """
        return notebook_renderer().display_html(self)

    def plot(self) -> Any:
        """Return the matplotlib ``Figure`` of the result's main picture (as in its report).

        Raises
        ------
        InvalidParameterError
            When this kind of result has no plot in its report.
        """
        return notebook_renderer().result_figure(self)
