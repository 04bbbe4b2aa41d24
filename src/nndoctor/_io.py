"""Loading what the command line is pointed at: models and tables.

Models: ``path/to/file.py:factory`` or ``package.module:factory`` names a callable returning an
``nn.Module``; a ``.pt``/``.pth`` file is loaded with ``torch.load(..., weights_only=True)`` (a
state dict needs a factory: ``--model file.py:factory --weights state.pt``). Tables: CSV or
Parquet.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.util
import inspect
import os
import random
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from nndoctor.exceptions import DataValidationError, InvalidParameterError, MissingDependencyError

__all__ = [
    "MAX_CATEGORIES",
    "check_same_columns",
    "column_hint",
    "is_datetime_column",
    "is_identifier_column",
    "left_out_columns",
    "load_batch",
    "load_model",
    "load_table",
    "load_table_pair",
    "seed_everything",
    "select_features",
    "write_text_atomic",
    "writing",
]


def _factory_candidates(module: Any) -> list[str]:
    """Names of the ``nn.Module`` classes and the functions a user's file defines itself."""
    names = []
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if (isinstance(obj, type) and issubclass(obj, nn.Module)) or inspect.isfunction(obj):
            names.append(name)
    return names


def _load_factory(spec: str) -> Any:
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        if spec.endswith(".py"):  # a file without its factory: say which callables it has
            candidates = _factory_candidates(_import_file(Path(spec)))
            pick = "build" if "build" in candidates or not candidates else candidates[0]
            example = f"{spec}:{pick}"
            found = (
                f"it defines {', '.join(repr(c) for c in candidates)}"
                if candidates
                else "it defines no nn.Module class or function"
            )
            raise InvalidParameterError(
                f"model {spec!r} names a file but not the callable that builds the network "
                f"({found}); add it after a colon, e.g. {example!r}"
            )
        raise InvalidParameterError(
            f"model {spec!r} is not of the form 'file.py:factory' or 'module:factory'; "
            "name the callable that builds the network after a colon"
        )
    if target.endswith(".py") or "/" in target or "\\" in target:
        module = _import_file(Path(target))
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as err:
            raise InvalidParameterError(
                f"module {target!r} cannot be imported ({err}); "
                "check the name or use file.py:factory"
            ) from err
    if not hasattr(module, attr):
        raise InvalidParameterError(f"{target!r} has no attribute {attr!r}; check the factory name")
    return getattr(module, attr)


def _import_file(path: Path) -> Any:
    """Import a user's model file as a module, with typed errors."""
    if not path.is_file():
        raise InvalidParameterError(f"model file {str(path)!r} does not exist; check the path")
    mod_name = f"_nndoctor_user_{abs(hash(path.resolve()))}"
    module_spec = importlib.util.spec_from_file_location(mod_name, path)
    if module_spec is None or module_spec.loader is None:
        raise InvalidParameterError(f"model file {str(path)!r} cannot be imported as Python")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[mod_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:  # the user's file: any error it raises is reported, typed
        del sys.modules[mod_name]
        raise InvalidParameterError(
            f"model file {str(path)!r} failed to import ({type(err).__name__}: {err}); "
            f"fix the file so that `python {path}` runs"
        ) from err
    return module


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (a user's factory draws from them).

    Examples
    --------
    >>> seed_everything(3); a = torch.rand(1)
    >>> seed_everything(3); bool(torch.rand(1) == a)
    True
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  # the global state a user's factory may use
    torch.manual_seed(seed)


def load_model(
    spec: str, *, weights: str | Path | None = None, seed: int | None = None
) -> nn.Module:
    """Build (and optionally load weights into) the model named by ``spec``.

    Parameters
    ----------
    spec : str
        ``file.py:factory`` or ``module:factory``; the factory is called with no arguments.
    weights : path, optional
        A state dict saved with ``torch.save``; loaded with ``weights_only=True``.
    seed : int, optional
        Seed the global generators (:func:`seed_everything`) right before the factory is
        called, so that the same seed builds the same initial weights (the command line passes
        its ``--seed``).

    Examples
    --------
    >>> model = load_model("torch.nn:Identity")
    >>> type(model).__name__
    'Identity'
    """
    factory = _load_factory(spec)
    if seed is not None:
        seed_everything(seed)
    try:
        model = factory() if callable(factory) else factory
    except Exception as err:  # the user's factory: any error it raises is reported, typed
        raise InvalidParameterError(
            f"model factory {spec!r} raised {type(err).__name__}: {err}; it must build the "
            "network when called with no arguments"
        ) from err
    if not isinstance(model, nn.Module):
        raise InvalidParameterError(
            f"{spec!r} returned {type(model).__name__}, not a torch.nn.Module; the factory must "
            "return the network"
        )
    if weights is not None:
        _load_weights(model, Path(weights))
    return model


def load_batch(path: str | Path) -> torch.Tensor | dict[str, torch.Tensor]:
    """A batch saved with ``torch.save``: a tensor, or a dict of tensors (keyword arguments of
    the model's forward, as a Hugging Face tokenizer returns them), read with
    ``weights_only=True``.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "batch.pt")
    >>> torch.save({"input_ids": torch.zeros(2, 5, dtype=torch.long)}, path)
    >>> {k: tuple(v.shape) for k, v in load_batch(path).items()}
    {'input_ids': (2, 5)}
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidParameterError(
            f"inputs file {str(path)!r} does not exist (or is not a file); check the path"
        )
    try:
        batch = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch's unpickler: any failure means the file is not a batch
        raise DataValidationError(
            f"{str(path)!r} could not be read as a saved batch ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:120]}); "
            "save a tensor or a dict of tensors with torch.save"
        ) from err
    if isinstance(batch, torch.Tensor):
        return batch
    if (
        isinstance(batch, dict)
        and batch
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in batch.items())
    ):
        return dict(batch)
    raise DataValidationError(
        f"{str(path)!r} holds a {type(batch).__name__}, not a tensor or a dict of tensors keyed "
        "by argument name; save the batch itself (e.g. torch.save(dict(tokenizer(...)), path))"
    )


def _load_weights(model: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise InvalidParameterError(
            f"weights file {str(path)!r} does not exist (or is not a file); check the path"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a file that is not a checkpoint
        raise DataValidationError(
            f"weights file {str(path)!r} could not be loaded with torch.load(weights_only=True) "
            f"({type(err).__name__}: {err}); save it with torch.save(model.state_dict(), path)"
        ) from err
    if not isinstance(state, dict):
        raise DataValidationError(
            f"{path} does not hold a state dict; save with torch.save(model.state_dict())"
        )
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        raise DataValidationError(
            f"weights file {str(path)!r} does not fit the model: {err}; pass the state dict "
            "saved from a model built by the same factory"
        ) from err


def load_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet table.

    Empty CSV cells (and pandas' default markers such as ``NA``) become missing values (NaN),
    as do Parquet nulls; the per-feature shift tests then test them (``missing="test"``).

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> _ = open(p, "w").write("a,b\\n1,2\\n,x\\n")
    >>> t = load_table(p)
    >>> t.shape, int(t["a"].isna().sum()), t["a"].dtype.kind
    ((2, 2), 1, 'f')
    """
    p = Path(path)
    if p.is_dir():
        raise InvalidParameterError(f"table {str(p)!r} is a directory; pass a CSV or Parquet file")
    if not p.is_file():
        raise InvalidParameterError(f"table {str(p)!r} does not exist; check the path")
    suffix = p.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            try:
                return _nonempty(pd.read_parquet(p), p)
            except ImportError as err:
                raise MissingDependencyError(
                    "reading Parquet needs pyarrow; pip install 'nndoctor[parquet]'"
                ) from err
        if suffix in {".csv", ".txt", ".gz"} or suffix == "":
            return _nonempty(pd.read_csv(p), p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataValidationError(f"table {str(p)!r} could not be parsed: {err}") from err
    raise InvalidParameterError(
        f"table {str(p)!r} has suffix {suffix!r}; pass a .csv or .parquet file"
    )


def _nonempty(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    if len(frame) == 0:
        raise DataValidationError(
            f"table {str(path)!r} has a header but no rows; pass a table with data"
        )
    return frame


def check_same_columns(
    frames: list[pd.DataFrame], names: list[str], *, drop: tuple[str, ...] = ()
) -> list[str]:
    """The feature columns (those of the first table, less ``drop``) after checking that every
    table has them and that each holds numbers in all tables or in none.

    Examples
    --------
    >>> a = pd.DataFrame({"x": [1.0], "y": [0]})
    >>> check_same_columns([a, a.assign(x=["hi"])], ["source", "target"], drop=("y",))
    Traceback (most recent call last):
    ...
    nndoctor.exceptions.DataValidationError: column 'x' holds text in target (e.g. 'hi') but ...
    """
    columns = [c for c in frames[0].columns if c not in drop]
    if not columns:
        raise DataValidationError(
            f"{names[0]} has no feature columns (besides {list(drop)}); pass a table with features"
        )
    for frame, name in zip(frames[1:], names[1:], strict=True):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataValidationError(
                f"{name} lacks the column(s) {[str(c) for c in missing[:5]]} of {names[0]}; "
                "pass tables with the same columns"
            )
    for c in columns:
        numeric = [pd.api.types.is_numeric_dtype(f[c]) for f in frames]
        if any(numeric) and not all(numeric):
            first_text = numeric.index(False)
            values = frames[first_text][c]
            as_num = pd.to_numeric(values, errors="coerce")
            bad = values[as_num.isna() & values.notna()]
            example = f" (e.g. {bad.iloc[0]!r})" if len(bad) else ""
            raise DataValidationError(
                f"column {str(c)!r} holds text in {names[first_text]}{example} but numbers in "
                f"{names[numeric.index(True)]}; fix the values or drop the column from both"
            )
    return [str(c) for c in columns]


def column_hint(name: str, columns: Iterable[Any]) -> str:
    """What to say about a column name the table lacks: the closest names, and how many
    columns there are (never an arbitrary handful of them).

    Examples
    --------
    >>> column_hint("Target", ["mean radius", "target", "id"])
    "did you mean 'target'? (3 columns: 'mean radius', 'target', 'id')"
    """
    cols = [str(c) for c in columns]
    lower = {c.lower(): c for c in cols}
    close = [lower[name.lower()]] if name.lower() in lower else []
    close += [c for c in difflib.get_close_matches(name, cols, n=3, cutoff=0.5) if c not in close]
    shown = ", ".join(repr(c) for c in cols[:12]) + (", ..." if len(cols) > 12 else "")
    listing = f"{len(cols)} columns: {shown}"
    if close:
        return f"did you mean {' or '.join(repr(c) for c in close[:3])}? ({listing})"
    return f"({listing})"


def load_table_pair(
    source: str | Path,
    target: str | Path,
    *,
    label: str | None = None,
    exclude: Sequence[str] = (),
    source_frame: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a source and a target table and check that they can be compared: the label column
    (when named) and the ``exclude`` columns are in the source, and the other columns agree (see
    :func:`check_same_columns`). The ``exclude`` columns are dropped from both tables.
    ``source_frame``: the source table when the caller has read it already (it is not read
    again, and not changed)."""
    src = load_table(source) if source_frame is None else source_frame
    tgt = load_table(target)
    names = [f"the source table ({source})", f"the target table ({target})"]
    if label is not None and label not in src.columns:  # a name the user typed: usage error
        raise InvalidParameterError(
            f"label column {label!r} is not in {names[0]}; {suggest_column(label, src)} "
            "with --label"
        )
    unknown = [c for c in exclude if c not in src.columns]
    if unknown:
        raise InvalidParameterError(
            f"--exclude column {unknown[0]!r} is not in {names[0]}; "
            f"{column_hint(unknown[0], src.columns)}"
        )
    if exclude:
        src = src.drop(columns=list(exclude))
        tgt = tgt.drop(columns=[c for c in exclude if c in tgt.columns])
    check_same_columns([src, tgt], names, drop=() if label is None else (label,))
    return src, tgt


_MAX_LABEL_VALUES = 20  # a column with at most this many distinct values may be a label


def suggest_column(name: str, frame: pd.DataFrame) -> str:
    """What to tell a user whose column ``name`` (a label, say) is not in ``frame``: the closest
    names (:func:`column_hint`), else the columns that look like labels (few distinct values).

    Examples
    --------
    >>> suggest_column("Diagnosis", pd.DataFrame({"x": [1.0, 2.0], "diagnosis": ["a", "b"]}))
    "did you mean 'diagnosis'? (2 columns: 'x', 'diagnosis'); pass an existing column"
    """
    hint = column_hint(name, frame.columns)
    if hint.startswith("did you mean"):
        return f"{hint}; pass an existing column"
    few = [str(c) for c in frame.columns if frame[c].nunique(dropna=True) <= _MAX_LABEL_VALUES]
    if not few:
        return f"{hint}; pass an existing column"
    shown = ", ".join(map(repr, few[:5])) + (", ..." if len(few) > 5 else "")
    return (
        f"columns with few distinct values (of {frame.shape[1]}): {shown}; pass an existing column"
    )


MAX_CATEGORIES = 50
"""A text column with more distinct values keeps its most frequent ones; the rest become
``"other"`` (one-hot encoding a unique-per-row text column would make one column per row)."""
MIN_ID_ROWS = 20
"""Fewer rows: a column unique per row is not called an identifier (it may be chance)."""


def is_datetime_column(values: pd.Series) -> bool:
    """A datetime column, or text that reads as dates or times (``2024-01-31``, ``12:30``; with
    UTC offsets, which may differ from row to row, as local times across a DST change do)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return False
    observed = values.dropna().astype(str).head(200)
    if observed.empty or not observed.str.contains(r"\d[-/:.]\d", regex=True).all():
        return False
    import warnings

    with warnings.catch_warnings():  # pandas warns when it guesses a format per element
        warnings.simplefilter("ignore", UserWarning)
        parsed = pd.to_datetime(observed, errors="coerce", format="mixed", utc=True)
    return bool(parsed.notna().all())


def is_identifier_column(values: pd.Series) -> bool:
    """Integers or text, unique on every row: a row identifier, not a feature."""
    if len(values) < MIN_ID_ROWS or values.isna().any():
        return False
    kind = values.dtype.kind
    if kind not in "iuOSU" and not isinstance(values.dtype, pd.StringDtype):
        return False
    return bool(values.nunique() == len(values))


def left_out_columns(frames: Sequence[pd.DataFrame], *, label: str | None = None) -> dict[Any, str]:
    """The columns that name or date rows rather than describe them, and why: ``"dates"`` (dates
    or times, :func:`is_datetime_column`, in the pooled tables) or ``"identifier"`` (integers or
    text without missing values, different on every row of each table: a target's ids may
    restart where the source's did; at least :data:`MIN_ID_ROWS` rows in all). The one rule of
    the checkup and the shift commands: a column one leaves out, the other does too.

    Examples
    --------
    >>> s = pd.DataFrame({"id": range(30), "x": [0.5, 1.5] * 15, "y": [0, 1] * 15})
    >>> t = pd.DataFrame({"id": range(25), "x": [0.5, 1.5, 2.5, 3.5, 4.5] * 5, "y": [0] * 25})
    >>> left_out_columns([s, t], label="y")
    {'id': 'identifier'}
    """
    out: dict[Any, str] = {}
    for c in frames[0].columns:
        if c == label:
            continue
        columns = [f[c] for f in frames if c in f.columns]
        if is_datetime_column(pd.concat(columns, ignore_index=True)):
            out[c] = "dates"
        elif sum(len(col) for col in columns) >= MIN_ID_ROWS and all(
            _unique_ids(col) for col in columns
        ):
            out[c] = "identifier"
    return out


def _unique_ids(values: pd.Series) -> bool:
    """Integers or text, no value missing, each different (:func:`is_identifier_column` without
    its minimum of rows)."""
    kind = values.dtype.kind
    if kind not in "iuOSU" and not isinstance(values.dtype, pd.StringDtype):
        return False
    return not values.isna().any() and bool(values.nunique() == len(values))


def select_features(
    frames: Sequence[pd.DataFrame],
    *,
    label: str | None = None,
    include: Sequence[str] = (),
    max_categories: int = MAX_CATEGORIES,
) -> tuple[list[pd.DataFrame], list[str], list[str]]:
    """The feature columns of tables to compare: identifier-like and datetime columns
    (:func:`left_out_columns`) are left out unless named in ``include``; a text column with
    more than ``max_categories`` distinct values keeps the most frequent ones and calls the
    rest ``"other"``.

    Returns the tables (feature columns, plus ``label`` where present), the feature names and
    the notes that say what was left out or capped (the command line prints them).

    Examples
    --------
    >>> t = pd.DataFrame({"id": range(30), "x": [0.5, 1.5] * 15, "y": [0, 1] * 15})
    >>> (s,), features, notes = select_features([t], label="y")
    >>> features, list(s.columns)
    (['x'], ['x', 'y'])
    >>> notes[0].split(";")[0]
    "column 'id' looks like a row identifier (unique on every row)"
    """
    unknown = [c for c in include if c not in frames[0].columns]
    if unknown:
        raise InvalidParameterError(
            f"--include column {unknown[0]!r} is not in the table; "
            f"{column_hint(unknown[0], frames[0].columns)}"
        )
    pooled = pd.concat([f.drop(columns=[label], errors="ignore") for f in frames],
                       ignore_index=True)  # fmt: skip
    notes: list[str] = []
    features: list[str] = []
    capped: dict[str, list[Any]] = {}
    left_out = left_out_columns(frames, label=label)
    for c in pooled.columns:
        col = pooled[c]
        if c not in include and left_out.get(c) == "dates":
            notes.append(
                f"column {str(c)!r} holds dates or times; left out of the features (pass "
                f"--include {c} to keep it)"
            )
            continue
        if c not in include and left_out.get(c) == "identifier":
            notes.append(
                f"column {str(c)!r} looks like a row identifier (unique on every row); left out "
                f"of the features (pass --include {c} to keep it)"
            )
            continue
        features.append(str(c))
        if not pd.api.types.is_numeric_dtype(col) and col.nunique() > max_categories:
            counts = col.astype(str).where(col.notna()).value_counts()
            capped[str(c)] = list(counts.index[:max_categories])
            notes.append(
                f"column {str(c)!r} has {col.nunique()} distinct values; its "
                f"{max_categories} most frequent are kept and the others become 'other'"
            )
    if not features:
        raise DataValidationError(
            "no feature columns are left after leaving out identifiers and dates "
            f"({'; '.join(notes)[:300]}); pass --include COLUMN to keep one"
        )
    keep = features + ([label] if label is not None else [])
    out = []
    for f in frames:
        part = f[[c for c in keep if c in f.columns]].copy()
        for c, top in capped.items():
            text = part[c].astype(str).where(part[c].notna())
            part[c] = text.where(text.isin(top) | text.isna(), "other")
        out.append(part)
    return out, features, notes


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename.

    A run that fails half-way never leaves a half-written file that looks complete.

    Examples
    --------
    >>> import tempfile, os
    >>> p = write_text_atomic(os.path.join(tempfile.mkdtemp(), "r.html"), "<p>hi</p>")
    >>> p.read_text()
    '<p>hi</p>'
    """
    if not isinstance(path, str | os.PathLike):
        raise InvalidParameterError(
            f"path must be a file path (str or os.PathLike), got {type(path).__name__}; "
            "pass the file to write"
        )
    p = Path(path)
    with writing(p) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return p


@contextlib.contextmanager
def writing(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``, renamed onto it when the block succeeds.

    On failure the temporary file is removed, so nothing that looks complete is left behind; a
    path that cannot be written (a directory, a file where a folder should be, no permission)
    raises :class:`~nndoctor.exceptions.InvalidParameterError` naming it.
    """
    if path.is_dir():
        raise InvalidParameterError(
            f"output path {str(path)!r} is a directory; pass a file name (e.g. {path}/out.html)"
        )
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        tmp.replace(path)
    except OSError as err:
        raise InvalidParameterError(
            f"cannot write {str(path)!r} ({err.strerror or err}); pass a path in a writable folder"
        ) from err
    finally:
        if tmp.exists():
            tmp.unlink()
