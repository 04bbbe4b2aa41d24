"""The user's inputs to the checkup, read and checked against each other before any stage runs.

:func:`check_user_inputs` reads ``--source``/``--target``, checks the label column (present,
complete in the source, the same kind of value in both tables, no class the source lacks, enough
rows per class), checks the feature count against ``--input-shape`` and the model's first layer,
and runs the model once on real rows reshaped to the input shape. Each failure is one typed error
naming the file and the column: :class:`~nndoctor.exceptions.InvalidParameterError` where an
option is wrong (exit code 2), :class:`~nndoctor.exceptions.DataValidationError` where a file
holds what cannot be used (exit code 3).

The model is trained and probed on the source's feature columns standardized with the source's
mean and standard deviation (:meth:`UserData.model_inputs`): a network fed raw columns in the
thousands looks "exploding" and "dead" whatever its initialization.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from nndoctor._io import seed_everything
from nndoctor._validation import label_spelling_hint
from nndoctor.exceptions import DataValidationError, InvalidParameterError

__all__ = [
    "MIN_ROWS_PER_CLASS",
    "MIN_SOURCE_ROWS",
    "MIN_TARGET_ROWS",
    "UserData",
    "check_user_inputs",
    "load_user_model",
    "seed_everything",
    "with_user_data",
]

MIN_SOURCE_ROWS = 40
"""Fewer labeled source rows: no split into train, calibration and check (an error)."""
MIN_ROWS_PER_CLASS = 4
"""Fewer source rows of a class: a split lacks the class (an error)."""
MIN_TARGET_ROWS = 10
"""Fewer target rows: the shift tests have no power; the verdict is "insufficient data"."""
_CHECK_BATCH = 8  # rows of the source run through the model before any stage

FloatArray = npt.NDArray[np.float64]


def load_user_model(spec: str, *, weights: str | None, seed: int) -> Any:
    """Build the user's model under ``seed``: the same seed gives the same initial weights."""
    from nndoctor._io import load_model

    return load_model(spec, weights=weights, seed=seed)


@dataclass(frozen=True, slots=True)
class UserData:
    """The user's two tables, checked: features, encoded labels and the source's statistics.

    ``features`` are the numeric feature columns (the model's inputs); ``frames`` keep the
    tables with every column (the shift diagnosis one-hot encodes text columns too).
    ``y_target`` is -1 where the target's label is missing (or the target has no label column).
    """

    source: str
    target: str
    label: str
    features: tuple[str, ...]
    text_features: tuple[str, ...]
    X_source: FloatArray
    X_target: FloatArray
    y_source: npt.NDArray[np.int64]
    y_target: npt.NDArray[np.int64]
    classes: tuple[str, ...]
    mean: FloatArray
    scale: FloatArray
    input_shape: tuple[int, ...] | None
    frames: tuple[Any, Any]
    excluded: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()

    @property
    def column_note(self) -> str:
        """Which columns were left out and why (empty when none)."""
        parts = []
        if self.identifiers:
            parts.append(
                f"{', '.join(self.identifiers)} left out as identifier(s) (a different value in "
                "every row; --include COL uses one)"
            )
        other = [c for c in self.excluded if c not in self.identifiers]
        if other:
            parts.append(f"{', '.join(other)} left out (--exclude)")
        return "; ".join(parts)

    @property
    def names(self) -> tuple[str, str]:
        """What messages call the tables: "the source table (s.csv)", "the target table (…)"."""
        return (f"the source table ({self.source})", f"the target table ({self.target})")

    def model_inputs(self, X: FloatArray) -> Any:
        """Rows of ``X`` standardized with the source's statistics, reshaped to
        ``(rows, *input_shape)``, as a float32 tensor."""
        import torch

        z = (X - self.mean) / self.scale
        z = np.where(np.isnan(z), 0.0, z)
        shape = self.input_shape or (len(self.features),)
        return torch.from_numpy(z.astype(np.float32)).reshape((X.shape[0], *shape))


def _label_kind(values: Any) -> str:
    import pandas as pd

    known = values.dropna()
    if len(known) == 0 or pd.api.types.is_numeric_dtype(known):
        return "numbers"
    return "text"


def _check_labels(src: Any, tgt: Any, label: str, names: tuple[str, str]) -> tuple[Any, ...]:
    import pandas as pd

    ys = src[label]
    where = f"label column {label!r} of {names[0]}"
    if ys.isna().any():
        raise DataValidationError(
            f"{where} has {int(ys.isna().sum())} missing value(s); the source must be labeled "
            "in every row: drop those rows or fill in their labels"
        )
    if pd.api.types.is_float_dtype(ys) and not np.all(np.mod(ys.to_numpy(), 1) == 0):
        bad = ys[np.mod(ys.to_numpy(), 1) != 0].iloc[0]
        raise DataValidationError(
            f"{where} holds non-integer numbers (e.g. {bad!r}); the checkup trains a classifier: "
            "pass class labels (integers or text)"
        )
    yt = tgt[label] if label in tgt.columns else pd.Series([np.nan] * len(tgt))
    kinds = (_label_kind(ys), _label_kind(yt))
    if yt.notna().any() and kinds[0] != kinds[1]:
        example = yt.dropna().tolist()[0]
        raise DataValidationError(
            f"label column {label!r} holds {kinds[1]} in {names[1]} (e.g. {example!r}) but "
            f"{kinds[0]} in {names[0]} (e.g. {ys.tolist()[0]!r}); write the labels the same way in "
            "both tables"
        )
    as_str = ys.astype(str) if kinds[0] == "text" else ys.astype(np.int64).astype(str)
    classes = np.unique(as_str.to_numpy())
    if classes.size < 2:
        raise DataValidationError(
            f"{where} holds one class ({classes[0]!r}); pass a source with at least two classes"
        )
    counts = as_str.value_counts()
    rare = counts[counts < MIN_ROWS_PER_CLASS]
    if len(rare):
        raise DataValidationError(
            f"{where} has fewer than {MIN_ROWS_PER_CLASS} rows of class(es) "
            f"{', '.join(f'{c!r} ({n})' for c, n in rare.items())}; pass at least "
            f"{MIN_ROWS_PER_CLASS} rows of each class, or drop the class"
        )
    y_source = np.searchsorted(classes, as_str.to_numpy()).astype(np.int64)
    y_target = np.full(len(tgt), -1, dtype=np.int64)
    known = yt.notna().to_numpy()
    if known.any():
        kt = yt[known]
        if kinds[0] == "numbers":
            values = kt.to_numpy(dtype=np.float64)
            if not np.all(np.mod(values, 1) == 0):
                raise DataValidationError(
                    f"label column {label!r} of {names[1]} holds non-integer numbers (e.g. "
                    f"{values[np.mod(values, 1) != 0][0]!r}); pass the source's class labels"
                )
            kt_str = values.astype(np.int64).astype(str)
        else:
            kt_str = kt.astype(str).to_numpy()
        unseen = sorted(set(kt_str.tolist()) - set(classes.tolist()))
        if unseen:
            raise DataValidationError(
                f"label column {label!r} of {names[1]} holds class(es) "
                f"{', '.join(map(repr, unseen[:5]))} that never occur in {names[0]}"
                f"{label_spelling_hint(unseen, classes)}; a model "
                "cannot predict a class it never saw: drop those rows or add them to the source"
            )
        y_target[known] = np.searchsorted(classes, kt_str)
    return y_source, y_target, tuple(str(c) for c in classes)


def _check_rows(n_source: int, names: tuple[str, str]) -> None:
    if n_source < MIN_SOURCE_ROWS:
        raise DataValidationError(
            f"{names[0]} has {n_source} row(s); the checkup needs at least {MIN_SOURCE_ROWS} "
            "labeled source rows to train, calibrate and check; pass a larger table"
        )


def _check_shape(
    model: Any, input_shape: tuple[int, ...] | None, features: list[str], names: tuple[str, str]
) -> tuple[int, ...]:
    from torch import nn

    n = len(features)
    cols = ", ".join(features[:3]) + (", …" if n > 3 else "")
    if input_shape is not None and int(np.prod(input_shape)) != n:
        shape = ",".join(map(str, input_shape))
        raise InvalidParameterError(
            f"--input-shape {shape} holds {int(np.prod(input_shape))} value(s) per sample but "
            f"{names[0]} has {n} numeric feature column(s) ({cols}); pass an --input-shape of "
            f"{n} values (e.g. {n}, or 1,{n} for a Conv1d)"
        )
    first = next((m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv1d)), None)
    flat = input_shape is None or len(input_shape) == 1
    if isinstance(first, nn.Linear) and flat and first.in_features != n:
        raise DataValidationError(
            f"the model's first layer takes {first.in_features} features but {names[0]} has "
            f"{n} numeric feature column(s) ({cols}); pass tables with the model's "
            "features, or a model built for these columns"
        )
    if isinstance(first, nn.Conv1d) and input_shape is None:
        raise InvalidParameterError(
            f"the model starts with a Conv1d of {first.in_channels} channel(s); say how a row of "
            f"{n} values is laid out: --input-shape {first.in_channels},{n // first.in_channels}"
        )
    return input_shape if input_shape is not None else (n,)


def _check_forward(model: Any, data: UserData) -> None:
    import torch

    from nndoctor._validation import forward_errors

    x = data.model_inputs(data.X_source[:_CHECK_BATCH])
    shape = ",".join(map(str, data.input_shape or ()))
    k = len(data.classes)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), forward_errors(model, (x,)):
            out = model(x)
    except DataValidationError as err:
        raise DataValidationError(
            f"rows of {data.names[0]} reshaped to --input-shape {shape}: {err}"
        ) from err
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[1] != k:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise InvalidParameterError(
            f"the model returns outputs of shape {got} on rows of {data.names[0]}; label column "
            f"{data.label!r} has {k} classes: build the model with a {k}-way head "
            "(logits of shape (batch, classes))"
        )


def check_user_inputs(
    *,
    source: str | None,
    target: str | None,
    label: str | None,
    model_spec: str | None = None,
    weights: str | None = None,
    input_shape: tuple[int, ...] | None = None,
    random_state: int = 0,
    exclude: tuple[str, ...] = (),
    include: tuple[str, ...] = (),
) -> UserData | None:
    """Read the user's tables and check them against each other and against the model.

    Returns ``None`` when no tables were given (the model alone is checked by the stages, on
    random inputs of ``input_shape``).

    Raises
    ------
    InvalidParameterError
        An option is wrong: a label column the source lacks, an ``--input-shape`` that does not
        hold the tables' feature count, a model whose head does not match the classes.
    DataValidationError
        A file holds what cannot be used: too few rows (per class), labels written differently
        in the two tables, a class the source never has, columns the model does not take.
    """
    from nndoctor._io import load_table_pair

    if source is None or target is None:
        if model_spec is not None and input_shape is None:
            raise InvalidParameterError(
                "checking a model without tables needs the shape of one input sample; pass "
                "--input-shape (e.g. 64, or 3,32,32), or --source/--target/--label"
            )
        return None
    if label is None:
        raise InvalidParameterError(
            "--source/--target need --label, the column the model predicts; pass --label NAME"
        )
    from nndoctor._io import left_out_columns, suggest_column

    src, tgt = load_table_pair(source, target, label=label)
    names = (f"the source table ({source})", f"the target table ({target})")
    for option, cols in (("--exclude", exclude), ("--include", include)):
        for col in cols:
            if col not in src.columns:
                raise InvalidParameterError(
                    f"{option} {col!r} is not a column of {names[0]}; {suggest_column(col, src)}"
                )
            if col == label:
                raise InvalidParameterError(
                    f"{option} {col!r} is the label column; name a feature column"
                )
    # the shift commands' rule (one function): identifiers in each table, dates in both
    identifiers = tuple(c for c in left_out_columns([src, tgt], label=label) if c not in include)
    dropped = tuple(dict.fromkeys([*exclude, *identifiers]))
    src = src.drop(columns=list(dropped))
    tgt = tgt.drop(columns=[c for c in dropped if c in tgt.columns])
    _check_rows(len(src), names)
    y_source, y_target, classes = _check_labels(src, tgt, label, names)
    import pandas as pd

    columns = [c for c in src.columns if c != label]
    numeric = [str(c) for c in columns if pd.api.types.is_numeric_dtype(src[c])]
    text = tuple(str(c) for c in columns if str(c) not in numeric)
    if not numeric:
        raise DataValidationError(
            f"{names[0]} has no numeric feature column (besides {label!r}); pass a table with "
            "numeric features"
        )
    Xs = src[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
    Xt = tgt[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
    for X, name in ((Xs, names[0]), (Xt, names[1])):
        bad = ~np.isfinite(X) & ~np.isnan(X)
        if bad.any():
            col = numeric[int(np.argwhere(bad)[0, 1])]
            raise DataValidationError(
                f"column {col!r} of {name} holds {int(bad[:, numeric.index(col)].sum())} "
                "infinite value(s); replace them (or drop the column from both tables)"
            )
        if np.isnan(X).any():  # the weighting and the diagnosis need complete rows
            col = numeric[int(np.argwhere(np.isnan(X))[0, 1])]
            raise DataValidationError(
                f"column {col!r} of {name} has {int(np.isnan(X[:, numeric.index(col)]).sum())} "
                "missing value(s); the checkup needs complete feature rows: drop or impute them "
                "(or --exclude the column; `nndoctor shift test` tests missing values)"
            )
    mean = np.nanmean(Xs, axis=0) if Xs.size else np.zeros(0)
    mean = np.where(np.isnan(mean), 0.0, mean)
    scale = np.nanstd(Xs, axis=0)
    scale = np.where(~np.isfinite(scale) | (scale == 0), 1.0, scale)
    data = UserData(
        source=str(source), target=str(target), label=label, features=tuple(numeric),
        text_features=text, X_source=Xs, X_target=Xt, y_source=y_source, y_target=y_target,
        classes=classes, mean=mean, scale=scale, input_shape=input_shape, frames=(src, tgt),
        excluded=dropped, identifiers=identifiers,
    )  # fmt: skip
    if model_spec is not None:
        model = load_user_model(model_spec, weights=weights, seed=random_state)
        shape = _check_shape(model, input_shape, list(numeric), names)
        data = _replace_shape(data, shape)
        _check_forward(model, data)
    return data


def _replace_shape(data: UserData, shape: tuple[int, ...]) -> UserData:
    from dataclasses import replace

    return replace(data, input_shape=shape)


def with_user_data(ctx: Any) -> Any:
    """``ctx`` with the user's tables read and checked (``ctx.data``): a no-op when
    :func:`~nndoctor.checkup.run_checkup` has done it or no tables were given; a stage called
    on its own reads them here."""
    from dataclasses import replace

    if ctx.data is not None or ctx.source is None:
        return ctx
    data = check_user_inputs(
        source=ctx.source, target=ctx.target, label=ctx.label, model_spec=ctx.model_spec,
        weights=ctx.weights, input_shape=ctx.input_shape, random_state=ctx.random_state,
        exclude=ctx.exclude, include=ctx.include,
    )  # fmt: skip
    return replace(ctx, data=data, input_shape=None if data is None else data.input_shape)
