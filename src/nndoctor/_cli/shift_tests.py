"""``nndoctor shift test``: two-sample tests on a source and a target table."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any

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

__all__ = ["shift_test_cmd"]


@shift_app.command("test")
def shift_test_cmd(
    source: Annotated[Path, typer.Option("--source", help="Reference table (CSV or Parquet).")],
    target: Annotated[Path, typer.Option("--target", help="Table to test (CSV or Parquet).")],
    label: Annotated[
        str | None, typer.Option("--label", help="Label column to leave out of the features.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="file.py:factory or module:factory; enables BBSD."),
    ] = None,
    weights: ModelWeightsOption = None,
    method: Annotated[str, typer.Option("--method", help="auto|mmd|ks|chi2|c2st|bbsd.")] = "auto",
    alpha: Annotated[float, typer.Option("--alpha", help="Level of each test.")] = 0.05,
    correction: Annotated[
        str, typer.Option("--correction", help="holm|bonferroni|fdr_bh|none (per feature).")
    ] = "holm",
    min_effect: Annotated[
        float | None,
        typer.Option("--min-effect", help="Smallest KS distance / Cramér's V that is drift."),
    ] = None,
    permutations: Annotated[
        int,
        typer.Option(
            "--permutations",
            help="Permutations of the MMD test (in memory; Dask runs the random-feature test).",
        ),
    ] = 1000,
    seed: SeedOption = 0,
    missing: Annotated[
        str,
        typer.Option(
            "--missing",
            help="Missing values (empty cells, NA): test (observed values + a test of the "
            "missing rate), drop (observed values only), category (categorical columns: "
            "missing is a category), raise (an error).",
        ),
    ] = "test",
    exclude: ExcludeOption = None,
    include: IncludeOption = None,
    engine: EngineOption = "auto",
    scheduler: SchedulerOption = None,
    json_out: JsonOption = False,
    report: ReportOption = None,
    fail_on: FailOnOption = "never",
) -> None:
    """Test whether TARGET still looks like SOURCE (per feature, MMD, classifier, model outputs)."""
    from nndoctor._io import load_model
    from nndoctor._validation import check_choice
    from nndoctor.shift import compare_samples
    from nndoctor.shift._mmd import check_permutations

    check_choice(method, ("auto", "bbsd", "c2st", "chi2", "ks", "mmd"), name="--method")
    check_permutations(permutations, name="--permutations")
    check_choice(correction, ("bonferroni", "fdr_bh", "holm", "none"), name="--correction")
    check_choice(missing, ("category", "drop", "raise", "test"), name="--missing")
    choice = choose_engine(engine, scheduler, [("--source", source), ("--target", target)])
    names = table_names(source, target)
    session: AbstractContextManager[Any]
    if choice.engine == "dask":
        if include:
            raise InvalidParameterError(
                "--include is not supported with the Dask engine (it keeps every column but "
                "--exclude's); leave it out, or use --engine in-memory"
            )
        src, tgt = read_dask_tables(source, target, exclude=parse_columns(exclude), names=names)
        announce(choice)  # after the files are found: a bad path gets its one-line error alone
        session = dask_session(choice, "shift tests")
    else:
        # the same columns, numbers vs text agree; identifiers and dates left out (with a note)
        src, tgt = read_feature_tables(
            source, target, label=label, exclude=exclude, include=include
        )
        session = progress_bar("shift tests")
    net = load_model(model, weights=weights, seed=seed) if model is not None else None
    with session as advance:
        if choice.engine == "dask":  # identifiers and dates left out (with a note), as in memory
            src, tgt = drop_row_names(src, tgt, label=label)
        result = compare_samples(
            src,
            tgt,
            method=method,  # type: ignore[arg-type]  # checked above
            label=label,
            model=net,
            alpha=alpha,
            correction=correction,  # type: ignore[arg-type]  # checked above
            min_effect=min_effect,
            n_permutations=permutations,
            random_state=seed,
            progress=advance if choice.engine == "in-memory" else None,
            missing=missing,  # type: ignore[arg-type]  # checked above
            names=names,
        )
    emit(result, json_out=json_out, report=report, title="nndoctor shift test")
    exit_on_finding(result, fail_on)
