"""``nndoctor shift diagnose`` and ``nndoctor shift stream``: which shift, and when."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
import typer

from nndoctor._cli._common import (
    ExcludeOption,
    FailOnOption,
    IncludeOption,
    JsonOption,
    ModelWeightsOption,
    ReportOption,
    SeedOption,
    emit,
    exit_on_finding,
    note,
    parse_columns,
    progress_bar,
    read_feature_tables,
    table_names,
)
from nndoctor._cli._engine import (
    EngineOption,
    SchedulerOption,
    announce,
    choose_engine,
    dask_session,
    drop_row_names,
    read_dask_tables,
)
from nndoctor._cli.shift import shift_app
from nndoctor.exceptions import InvalidParameterError

__all__ = ["shift_diagnose_cmd", "shift_stream_cmd"]


def _features(
    frames: list[Any], drop: list[str]
) -> tuple[list[npt.NDArray[np.float64]], list[str]]:
    """Feature matrices of several tables: numeric columns as they are, text one-hot encoded
    with the categories of all tables together (so the columns line up)."""
    import pandas as pd

    from nndoctor._io import check_same_columns
    from nndoctor.exceptions import DataValidationError

    columns = [c for c in frames[0].columns if c not in drop]
    if not columns:
        raise DataValidationError("no feature columns are left; pass tables with features")
    check_same_columns(
        frames, ["the first table", *(f"table {i + 1}" for i in range(1, len(frames)))],
        drop=tuple(drop),
    )  # fmt: skip
    sizes = [len(f) for f in frames]
    pooled = pd.concat([f[columns] for f in frames], ignore_index=True)
    text = [c for c in columns if not pd.api.types.is_numeric_dtype(pooled[c])]
    if text:
        pooled = pd.get_dummies(pooled, columns=text, dtype=float)
    values = pooled.to_numpy(dtype=np.float64, na_value=np.nan)
    out = np.split(values, np.cumsum(sizes)[:-1])
    return [np.asarray(v) for v in out], [str(c) for c in pooled.columns]


def _dask_features(src: Any, tgt: Any, label: str) -> tuple[Any, Any]:
    """The feature frames of two Dask tables, as :func:`_features` makes them in memory:
    numeric columns as they are, text one-hot encoded with the categories of both tables
    (found in one pass over the text columns only)."""
    import dask.dataframe as dd
    import pandas as pd
    from dask.base import compute

    from nndoctor.exceptions import DataValidationError

    columns = [c for c in src.columns if c != label]
    if not columns:
        raise DataValidationError("no feature columns are left; pass tables with features")
    xs, xt = src[columns], tgt[[c for c in columns if c in tgt.columns]]
    text = [c for c in columns if not pd.api.types.is_numeric_dtype(src._meta[c].dtype)]
    if not text:
        return xs, xt
    found = compute(  # type: ignore[no-untyped-call]
        *[f[c].dropna().astype(str).unique() for c in text for f in (xs, xt)]
    )
    kinds = {
        c: pd.CategoricalDtype(sorted(set(found[2 * i]) | set(found[2 * i + 1])))
        for i, c in enumerate(text)
    }
    xs, xt = (f.astype({c: str for c in text}).astype(kinds) for f in (xs, xt))
    return (
        dd.get_dummies(xs, columns=text, dtype=float),  # type: ignore[no-untyped-call]
        dd.get_dummies(xt, columns=text, dtype=float),  # type: ignore[no-untyped-call]
    )


def _column(frame: Any, name: str, what: str) -> Any:
    """The column an option names; a name the table lacks is a usage error (exit code 2)."""
    from nndoctor._io import column_hint
    from nndoctor.exceptions import InvalidParameterError

    if name not in frame.columns:
        raise InvalidParameterError(
            f"{what} column {name!r} is not in the table; {column_hint(name, frame.columns)}"
        )
    return frame[name]


@shift_app.command("diagnose")
def shift_diagnose_cmd(
    source: Annotated[Path, typer.Option("--source", help="Labeled source table (CSV/Parquet).")],
    target: Annotated[
        Path,
        typer.Option("--target", help="Target table; its label column, if any, may be partial."),
    ],
    label: Annotated[str, typer.Option("--label", help="Name of the label column.")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="file.py:factory or module:factory (an nn.Module giving logits)."
        ),
    ] = None,
    weights: ModelWeightsOption = None,
    alpha: Annotated[float, typer.Option("--alpha", help="Family-wise level.")] = 0.05,
    weight_intervals: Annotated[
        int, typer.Option("--weight-intervals", help="Bootstrap replicates for w(y) intervals.")
    ] = 0,
    seed: SeedOption = 0,
    exclude: ExcludeOption = None,
    include: IncludeOption = None,
    engine: EngineOption = "auto",
    scheduler: SchedulerOption = None,
    sample_size: Annotated[
        int,
        typer.Option(
            "--sample-size",
            help="With the Dask engine: rows sampled at random from each table for the "
            "diagnosis (the tables' row counts are reported beside it).",
        ),
    ] = 20_000,
    json_out: JsonOption = False,
    report: ReportOption = None,
    fail_on: FailOnOption = "never",
) -> None:
    """Say which shift separates TARGET from SOURCE (covariate, label, concept), with the
    evidence and the treatment. Target labels, where present, enable the concept tests."""
    from nndoctor._io import load_model
    from nndoctor.shift import diagnose

    choice = choose_engine(engine, scheduler, [("--source", source), ("--target", target)])
    if choice.engine == "dask":
        if include:
            raise InvalidParameterError(
                "--include is not supported with the Dask engine (it keeps every column but "
                "--exclude's); leave it out, or use --engine in-memory"
            )
        tables = table_names(source, target)
        dsrc, dtgt = read_dask_tables(source, target, exclude=parse_columns(exclude), names=tables)
        announce(choice)  # after the files are found: a bad path gets its one-line error alone
        _column(dsrc, label, "--label")
        net = load_model(model, weights=weights, seed=seed) if model is not None else None
        with dask_session(choice, "shift diagnosis"):
            dsrc, dtgt = drop_row_names(dsrc, dtgt, label=label)  # as in memory, with a note
            dXs, dXt = _dask_features(dsrc, dtgt, label)
            dyt = dtgt[label] if label in dtgt.columns else None
            result = diagnose(dXs, dsrc[label], dXt, dyt, model=net, alpha=alpha,
                              weight_intervals=weight_intervals, random_state=seed,
                              names=tables, sample_size=sample_size)  # fmt: skip
        emit(result, json_out=json_out, report=report, title="nndoctor shift diagnose")
        exit_on_finding(result, fail_on)
        return
    src, tgt = read_feature_tables(source, target, label=label, exclude=exclude, include=include)
    ys = _column(src, label, "--label")
    yt = tgt[label] if label in tgt.columns else None
    import pandas as pd

    (Xs_arr, Xt_arr), names = _features([src, tgt], [label])
    Xs, Xt = pd.DataFrame(Xs_arr, columns=names), pd.DataFrame(Xt_arr, columns=names)
    net = load_model(model, weights=weights, seed=seed) if model is not None else None
    with progress_bar("shift diagnosis") as advance:
        result = diagnose(
            Xs,
            ys.to_numpy(),
            Xt,
            None if yt is None else yt.to_numpy(),
            model=net,
            alpha=alpha,
            weight_intervals=weight_intervals,
            random_state=seed,
            progress=advance,
            names=table_names(source, target),
        )
    emit(result, json_out=json_out, report=report, title="nndoctor shift diagnose")
    exit_on_finding(result, fail_on)


@shift_app.command("stream")
def shift_stream_cmd(
    file: Annotated[Path, typer.Argument(help="Table of rows in time order (CSV/Parquet).")],
    time_column: Annotated[str, typer.Option("--time-column", help="Column giving the time.")],
    label: Annotated[
        str | None, typer.Option("--label", help="Label column (NaN where not yet known).")
    ] = None,
    prediction_column: Annotated[
        str | None,
        typer.Option(
            "--prediction-column",
            help="The deployed model's predicted class; without it a logistic regression is "
            "fitted on the reference rows.",
        ),
    ] = None,
    reference_rows: Annotated[
        int | None,
        typer.Option("--reference-rows", help="Earliest rows that form the reference (20%)."),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            help="Rows per batch; default: one batch per distinct time (or 100 rows when "
            "there are more than 500 distinct times).",
        ),
    ] = None,
    alpha: Annotated[
        float, typer.Option("--alpha", help="Family-wise level of the batch tests.")
    ] = 0.05,
    seed: SeedOption = 0,
    exclude: ExcludeOption = None,
    json_out: JsonOption = False,
    report: ReportOption = None,
    fail_on: FailOnOption = "never",
) -> None:
    """Replay FILE in time order through a ShiftMonitor: when did it change, and how?"""
    from nndoctor._io import load_table, select_features
    from nndoctor._validation import check_int
    from nndoctor.exceptions import DataValidationError
    from nndoctor.shift import ShiftMonitor
    from nndoctor.shift.diagnose import _default_classifier

    table = load_table(file)
    t = _column(table, time_column, "--time-column")
    table = table.iloc[np.argsort(t.to_numpy(), kind="stable")].reset_index(drop=True)
    n = len(table)
    n_ref = (
        max(2, n // 5)
        if reference_rows is None
        else check_int(reference_rows, name="--reference-rows", minimum=2)
    )
    if n_ref >= n:
        raise DataValidationError(
            f"--reference-rows {n_ref} leaves no rows to monitor in a table of {n}; pass fewer"
        )
    drop = [time_column] + [c for c in (label, prediction_column) if c is not None]
    for name in parse_columns(exclude):
        _column(table, name, "--exclude")
    left_out = {*drop, *parse_columns(exclude)}
    (feats,), _, notes = select_features([table[[c for c in table.columns if c not in left_out]]])
    for text in notes:
        note(text)
    (X,), _ = _features([feats], [])
    classes: npt.NDArray[Any] | None = None
    y_codes: npt.NDArray[np.float64] | None = None
    if label is not None:
        raw = _column(table, label, "--label")
        known = raw.notna().to_numpy()
        classes = np.unique(raw[known].to_numpy())
        y_codes = np.full(n, np.nan)
        y_codes[known] = np.searchsorted(classes, raw[known].to_numpy())
    if prediction_column is not None:
        pred_raw = _column(table, prediction_column, "--prediction-column").to_numpy()
        if classes is None:
            classes = np.unique(pred_raw)
        pred = np.searchsorted(classes, pred_raw).astype(np.int64)
    else:
        if y_codes is None or np.isnan(y_codes[:n_ref]).any():
            raise DataValidationError(
                "without --prediction-column the reference rows need labels (--label) to fit a "
                "model; pass --prediction-column or a fully labeled reference"
            )
        fitted = _default_classifier(seed).fit(X[:n_ref], y_codes[:n_ref].astype(np.int64))
        pred = fitted.predict(X).astype(np.int64)
    times = table[time_column].to_numpy()
    if batch_size is not None:
        size = check_int(batch_size, name="--batch-size", minimum=1)
        starts = list(range(n_ref, n, size))
    else:
        distinct = np.unique(times[n_ref:])
        if distinct.size > 500:
            starts = list(range(n_ref, n, 100))
        else:
            first = np.searchsorted(times[n_ref:], distinct, side="left") + n_ref
            starts = sorted(set(first.tolist()))
    ref_labels = None if y_codes is None else y_codes[:n_ref]
    monitor = ShiftMonitor(alpha=alpha, random_state=seed).fit(
        X[:n_ref],
        predictions=pred[:n_ref],
        labels=None
        if ref_labels is None or np.isnan(ref_labels).any()
        else ref_labels.astype(np.int64),
    )
    ends = [*starts[1:], n]
    with progress_bar("stream monitor") as advance:
        for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
            lab = None if y_codes is None else y_codes[a:b]  # NaN: not labeled yet
            monitor.update(X[a:b], predictions=pred[a:b], labels=lab, time=times[a])
            advance((i + 1) / len(starts), f"batch {i + 1}/{len(starts)}")
    monitor_report = monitor.report()
    emit(monitor_report, json_out=json_out, report=report, title="nndoctor shift stream")
    exit_on_finding(monitor_report, fail_on)
