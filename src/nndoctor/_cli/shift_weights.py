"""``nndoctor shift weights`` (importance weights column) and ``nndoctor shift labels``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer

from nndoctor._cli._common import (
    ExcludeOption,
    FailOnOption,
    IncludeOption,
    JsonOption,
    ReportOption,
    SeedOption,
    check_output_path,
    emit,
    exit_on_finding,
    note,
    parse_columns,
    progress_bar,
    read_feature_tables,
    table_names,
)
from nndoctor._cli._engine import (
    EngineChoice,
    EngineOption,
    SchedulerOption,
    announce,
    choose_engine,
    dask_session,
    read_dask_tables,
)
from nndoctor._cli.shift import shift_app
from nndoctor._io import load_table, writing
from nndoctor._validation import check_choice
from nndoctor.exceptions import DataValidationError, InvalidParameterError

__all__ = ["labels_cmd", "weights_cmd"]


def _write_table(frame: pd.DataFrame, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in {".parquet", ".pq", ".csv", ".txt", ""}:
        raise InvalidParameterError(f"--out {str(path)!r} must end in .csv or .parquet")
    with writing(path) as tmp:
        if suffix in {".parquet", ".pq"}:
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)


@shift_app.command("weights")
def weights_cmd(
    source: Annotated[Path, typer.Option("--source", help="Source (training) table, CSV/Parquet.")],
    target: Annotated[Path, typer.Option("--target", help="Target (deployment) table.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Write the source table plus a weights column here.",
            callback=check_output_path,
        ),
    ],
    method: Annotated[
        str, typer.Option(help="classifier | ulsif | kliep | kmm (KMM: moment matching).")
    ] = "classifier",
    label: Annotated[
        str | None,
        typer.Option("--label", help="Label column: left out of the features (kept in --out)."),
    ] = None,
    exclude: ExcludeOption = None,
    include: IncludeOption = None,
    column: Annotated[str, typer.Option(help="Name of the weights column.")] = "weight",
    clip: Annotated[float | None, typer.Option(help="Upper clip on the weights.")] = None,
    classifier: Annotated[
        str, typer.Option(help="Domain classifier: logistic | quadratic.")
    ] = "logistic",
    seed: SeedOption = 0,
    json_out: JsonOption = False,
    report: ReportOption = None,
    fail_on: FailOnOption = "never",
) -> None:
    """Importance weights p_target(x)/p_source(x) for every source row, written as a column."""
    from nndoctor._cli.shift_diagnose import _features
    from nndoctor.shift import ImportanceWeighter

    check_choice(method, ("classifier", "kliep", "kmm", "ulsif"), name="--method")
    names = table_names(source, target)
    with progress_bar("importance weights") as advance:
        advance(0.05, "reading tables")
        src_frame = load_table(source)  # (read once: written back out with the weights)
        src, tgt = read_feature_tables(
            source, target, label=label, exclude=exclude, include=include, source_frame=src_frame
        )
        drop = [label] if label is not None else []
        (Xs_arr, Xt_arr), feature_names = _features(
            [src, tgt.drop(columns=drop, errors="ignore")], drop
        )
        import pandas as pd

        # as frames, so that a bad value is reported with its column's name
        Xs = pd.DataFrame(Xs_arr, columns=feature_names)
        Xt = pd.DataFrame(Xt_arr, columns=feature_names)
        if column in src_frame.columns:
            raise InvalidParameterError(
                f"the source table already has a column {column!r}; choose another --column"
            )
        advance(0.2, f"fitting {method}")
        weighter = ImportanceWeighter(
            method,  # type: ignore[arg-type]  # validated by check_choice above
            clip=clip,
            random_state=seed,
            classifier=classifier,
            warn=False,
        ).fit(Xs, Xt, names=names)
        advance(0.9, "writing weights")
        _write_table(src_frame.assign(**{column: weighter.weights_}), out)
    if weighter.low_overlap_:
        typer.echo(
            "nndoctor: warning: source and target barely overlap; weighting cannot correct this "
            "shift",
            err=True,
        )
    typer.echo(f"weights written to {out} (column {column!r})", err=True)
    summary = weighter.summary()
    emit(summary, json_out=json_out, report=report, title="nndoctor shift weights")
    exit_on_finding(summary, fail_on)


@shift_app.command("labels")
def labels_cmd(
    source_probs: Annotated[
        Path,
        typer.Option(
            "--source-probs",
            help="Held-out labeled source set: one probability column per class plus --label.",
        ),
    ],
    target_probs: Annotated[
        Path,
        typer.Option("--target-probs", help="Target probabilities (same class columns)."),
    ],
    label: Annotated[str, typer.Option("--label", help="Label column in --source-probs.")],
    method: Annotated[
        str, typer.Option(help="em-bcts | em | bbse-hard | bbse-soft | rlls.")
    ] = "em-bcts",
    n_bootstrap: Annotated[int, typer.Option(help="Bootstrap replicates for intervals.")] = 100,
    inputs: Annotated[
        str,
        typer.Option(
            help="What the class columns hold: probs | log_probs | logits (use log_probs or "
            "logits when the model's probabilities saturate at 0/1)."
        ),
    ] = "probs",
    adjusted_out: Annotated[
        Path | None,
        typer.Option(
            "--adjusted-out",
            help="Write prior-corrected target probabilities here.",
            callback=check_output_path,
        ),
    ] = None,
    seed: SeedOption = 0,
    exclude: ExcludeOption = None,
    engine: EngineOption = "auto",
    scheduler: SchedulerOption = None,
    json_out: JsonOption = False,
    report: ReportOption = None,
    fail_on: FailOnOption = "never",
) -> None:
    """Label shift: source vs estimated target class proportions, weights w(y) and intervals.

    Probability columns (or log-probabilities / logits with --inputs) are all columns of
    --source-probs except --label, in order; labels are class indices 0..K-1 in that order, or
    the column names themselves.
    """
    from nndoctor._io import column_hint, select_features
    from nndoctor.shift import LabelShiftEstimator

    check_choice(method, ("bbse-hard", "bbse-soft", "em", "em-bcts", "rlls"), name="--method")
    check_choice(inputs, ("log_probs", "logits", "probs"), name="--inputs")
    choice = choose_engine(
        engine, scheduler, [("--source-probs", source_probs), ("--target-probs", target_probs)]
    )
    if choice.engine == "dask":
        result = _labels_on_dask(choice, source_probs, target_probs, label=label, method=method,
                                 n_bootstrap=n_bootstrap, inputs=inputs, adjusted_out=adjusted_out,
                                 seed=seed, exclude=parse_columns(exclude))  # fmt: skip
        emit(result, json_out=json_out, report=report, title="nndoctor shift labels")
        exit_on_finding(result, fail_on)
        return
    with progress_bar("label shift") as advance:
        advance(0.05, "reading tables")
        src = load_table(source_probs)
        if label not in src.columns:
            raise InvalidParameterError(
                f"--label {label!r} is not a column of {source_probs}; "
                f"{column_hint(label, src.columns)}"
            )
        left_out = parse_columns(exclude)
        for name in left_out:
            if name not in src.columns:
                raise InvalidParameterError(
                    f"--exclude column {name!r} is not in {source_probs}; "
                    f"{column_hint(name, src.columns)}"
                )
        # identifiers (a row id exported with the probabilities) and dates are no classes
        _, kept, notes = select_features(
            [src.drop(columns=left_out)], label=label, max_categories=10**9
        )
        for text in notes:
            note(text)
        prob_cols = [c for c in src.columns if c in kept]
        tgt = load_table(target_probs)
        missing = [c for c in prob_cols if c not in tgt.columns]
        if missing:
            raise DataValidationError(
                f"target probabilities lack class column(s) {missing[:10]}; pass the same "
                "class columns as the source"
            )
        y_raw = src[label]
        names = [str(c) for c in prob_cols]
        if not pd.api.types.is_numeric_dtype(y_raw):
            unknown = sorted(set(y_raw.astype(str)) - set(names))
            if unknown:
                raise DataValidationError(
                    f"labels {unknown[:10]} match no probability column {names[:10]}; "
                    "use class indices or the column names"
                )
            y = y_raw.astype(str).map({n: i for i, n in enumerate(names)}).to_numpy()
        else:
            y = y_raw.to_numpy()
        advance(0.15, f"fitting {method}")
        est = LabelShiftEstimator(
            method,  # type: ignore[arg-type]  # validated by check_choice above
            n_bootstrap=n_bootstrap,
            random_state=seed,
            inputs=inputs,  # type: ignore[arg-type]  # validated by check_choice above
        ).fit(src[prob_cols].to_numpy(dtype=np.float64), y)
        advance(0.3, f"estimating ({n_bootstrap} bootstrap replicates)")
        T = tgt[prob_cols].to_numpy(dtype=np.float64)
        result = dataclasses.replace(est.estimate(T), class_names=tuple(names))
        if adjusted_out is not None:
            advance(0.95, "writing adjusted probabilities")
            _write_table(pd.DataFrame(est.adjust(T), columns=prob_cols), adjusted_out)
    if adjusted_out is not None:
        typer.echo(f"prior-corrected probabilities written to {adjusted_out}", err=True)
    emit(result, json_out=json_out, report=report, title="nndoctor shift labels")
    exit_on_finding(result, fail_on)


def _labels_on_dask(
    choice: EngineChoice,
    source_probs: Path,
    target_probs: Path,
    *,
    label: str,
    method: str,
    n_bootstrap: int,
    inputs: str,
    adjusted_out: Path | None,
    seed: int,
    exclude: list[str],
) -> Any:
    """``shift labels`` on Parquet datasets: the class columns are the floating-point columns
    but --label and --exclude's (identifiers cannot be told from a sample of rows here: name
    them in --exclude); the estimate and its bootstrap run as passes over the partitions."""
    from nndoctor._io import column_hint
    from nndoctor.shift import LabelShiftEstimator

    if adjusted_out is not None:
        raise InvalidParameterError(
            "--adjusted-out is not supported with the Dask engine yet; leave it out, or use "
            "--engine in-memory"
        )
    names = (f"--source-probs ({source_probs})", f"--target-probs ({target_probs})")
    src, tgt = read_dask_tables(source_probs, target_probs, exclude=exclude, names=names)
    announce(choice)  # after the files are found: a bad path gets its one-line error alone
    if label not in src.columns:
        raise InvalidParameterError(
            f"--label {label!r} is not a column of {source_probs}; "
            f"{column_hint(label, src.columns)}"
        )
    meta = src._meta
    prob_cols = [
        c for c in src.columns if c != label and pd.api.types.is_float_dtype(meta[c].dtype)
    ]
    left = [str(c) for c in src.columns if c != label and c not in prob_cols]
    if left:
        note(f"left out {left[:10]}: not floating-point columns, so not class probabilities")
    if len(prob_cols) < 2:
        raise DataValidationError(
            f"{names[0]} has {len(prob_cols)} floating-point column(s) besides --label; pass "
            "one probability (or logit) column per class, at least 2"
        )
    missing = [c for c in prob_cols if c not in tgt.columns]
    if missing:
        raise DataValidationError(
            f"target probabilities lack class column(s) {missing[:10]}; pass the same "
            "class columns as the source"
        )
    class_names = [str(c) for c in prob_cols]
    with dask_session(choice, "label shift"):
        y = src[label]
        if not pd.api.types.is_numeric_dtype(meta[label].dtype):
            seen = sorted(str(v) for v in y.dropna().unique().compute())
            unknown = sorted(set(seen) - set(class_names))
            if unknown:
                raise DataValidationError(
                    f"labels {unknown[:10]} match no probability column {class_names[:10]}; "
                    "use class indices or the column names"
                )
            codes = {n: i for i, n in enumerate(class_names)}
            y = y.map_partitions(
                lambda part: part.astype(str).map(codes).astype("int64"), meta=(label, "int64")
            )
        est = LabelShiftEstimator(
            method,  # type: ignore[arg-type]  # validated by the caller
            n_bootstrap=n_bootstrap,
            random_state=seed,
            inputs=inputs,  # type: ignore[arg-type]  # validated by the caller
        ).fit(src[prob_cols].astype("float64"), y)
        result = est.estimate(tgt[prob_cols].astype("float64"))
    return dataclasses.replace(result, class_names=tuple(class_names))
