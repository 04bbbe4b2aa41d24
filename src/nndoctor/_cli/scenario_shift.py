"""``nndoctor scenario list`` and the four shift scenarios: write their tables and the truth.

``nndoctor scenario flu-season --out DIR`` writes ``source.csv``, ``target.csv`` (for the stream:
``stream.csv``), ``README.md`` and ``truth.json`` into ``DIR``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nndoctor._cli._common import JsonOption, ReportOption, emit
from nndoctor._cli.scenario import scenario_app
from nndoctor._results import dumps
from nndoctor.exceptions import InvalidParameterError

__all__: list[str] = []

SeedOption = Annotated[int, typer.Option("--seed", help="Random seed (same seed, same tables).")]


def _out_option(default: str) -> Any:
    return typer.Option(
        "--out", "-o", help=f"Directory for the tables and README (default: ./{default})."
    )


def _write(data: Any, out: Path | None, *, json_out: bool, report: Path | None) -> None:
    directory = out if out is not None else Path(data.name.replace("_", "-"))
    files = data.write(directory)
    emit(files, json_out=json_out, report=report, title=f"nndoctor scenario {data.name}")


def _floats(text: str | None, name: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise InvalidParameterError(
            f"{name} {text!r} is not a comma-separated list of numbers; e.g. 0.45,0.2,0.35"
        ) from None


@scenario_app.command("list")
def list_cmd(json_out: JsonOption = False) -> None:
    """List the worked examples and the lesson each teaches."""
    from nndoctor.report import Section, print_sections
    from nndoctor.scenarios import SHIFT_SCENARIOS

    kinds = {name.replace("_", "-"): _kind(name) for name in SHIFT_SCENARIOS}
    rows = []
    for command in scenario_app.registered_commands:
        name = command.name or (command.callback.__name__ if command.callback else "")
        if name == "list" or command.hidden:
            continue
        doc = (command.help or (command.callback.__doc__ if command.callback else "") or "").strip()
        rows.append(
            {
                "scenario": name,
                "kind": kinds.get(name, "numerics"),
                "lesson": doc.splitlines()[0] if doc else "",
            }
        )
    rows.sort(key=lambda r: (r["kind"] != "numerics", r["scenario"]))
    if json_out:
        typer.echo(dumps(rows))
        return
    print_sections(
        [
            Section(
                "Worked examples",
                "info",
                "Run `nndoctor scenario NAME --out DIR` to write one out.",
                tuple(rows),
            )
        ]
    )


def _kind(name: str) -> str:
    return {
        "cartoon_digits": "covariate",
        "flu_season": "label",
        "soda_regions": "concept",
        "drifting_stream": "concept (gradual)",
    }[name]


@scenario_app.command("cartoon-digits")
def cartoon_digits_cmd(
    out: Annotated[Path | None, _out_option("cartoon-digits")] = None,
    n_source: Annotated[int, typer.Option(help="Photos in the source.")] = 900,
    n_target: Annotated[int, typer.Option(help="Cartoons in the target.")] = 897,
    levels: Annotated[int, typer.Option(help="Grey levels of the cartoons.")] = 3,
    seed: SeedOption = 0,
    json_out: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """Covariate shift with little overlap: digits as photos, then as cartoons."""
    from nndoctor.scenarios import cartoon_digits

    data = cartoon_digits(n_source=n_source, n_target=n_target, levels=levels, random_state=seed)
    _write(data, out, json_out=json_out, report=report)


@scenario_app.command("flu-season")
def flu_season_cmd(
    out: Annotated[Path | None, _out_option("flu-season")] = None,
    n_source: Annotated[int, typer.Option(help="Summer patients.")] = 2000,
    n_target: Annotated[int, typer.Option(help="Winter patients.")] = 2000,
    source_prior: Annotated[
        str | None,
        typer.Option(help="Summer prevalence of healthy,cold,flu (default 0.80,0.15,0.05)."),
    ] = None,
    target_prior: Annotated[
        str | None,
        typer.Option(help="Winter prevalence of healthy,cold,flu (default 0.45,0.20,0.35)."),
    ] = None,
    seed: SeedOption = 0,
    json_out: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """Label shift: the flu causes its symptoms; only its prevalence changes with the season."""
    from nndoctor.scenarios import flu_season

    data = flu_season(
        n_source=n_source,
        n_target=n_target,
        source_prior=_floats(source_prior, "--source-prior"),
        target_prior=_floats(target_prior, "--target-prior"),
        random_state=seed,
    )
    _write(data, out, json_out=json_out, report=report)


@scenario_app.command("soda-regions")
def soda_regions_cmd(
    out: Annotated[Path | None, _out_option("soda-regions")] = None,
    n_source: Annotated[int, typer.Option(help="Drinks named in the source region.")] = 2000,
    n_target: Annotated[int, typer.Option(help="Drinks named in the target region.")] = 2000,
    source_region: Annotated[
        str, typer.Option(help="midwest (pop), northeast (soda) or south (coke).")
    ] = "midwest",
    target_region: Annotated[
        str, typer.Option(help="midwest (pop), northeast (soda) or south (coke).")
    ] = "south",
    label_noise: Annotated[float, typer.Option(help="Fraction of names given wrongly.")] = 0.02,
    seed: SeedOption = 0,
    json_out: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """Concept shift: the same drink is called pop, soda or coke depending on the region."""
    from nndoctor.scenarios import soda_regions

    data = soda_regions(
        n_source=n_source,
        n_target=n_target,
        source_region=source_region,  # type: ignore[arg-type]  # checked inside
        target_region=target_region,  # type: ignore[arg-type]  # checked inside
        label_noise=label_noise,
        random_state=seed,
    )
    _write(data, out, json_out=json_out, report=report)


@scenario_app.command("drifting-stream")
def drifting_stream_cmd(
    out: Annotated[Path | None, _out_option("drifting-stream")] = None,
    n_source: Annotated[int, typer.Option(help="Rows of the training window.")] = 1000,
    n_stream: Annotated[int, typer.Option(help="Rows of the stream.")] = 4000,
    drift_start: Annotated[
        float, typer.Option(help="Where the drift starts, as a fraction of the stream.")
    ] = 0.25,
    drift_end: Annotated[
        float, typer.Option(help="Where the drift ends, as a fraction of the stream.")
    ] = 0.75,
    rotation: Annotated[
        float, typer.Option(help="How far the decision boundary turns, in degrees.")
    ] = 90.0,
    label_noise: Annotated[float, typer.Option(help="Probability a label is flipped.")] = 0.05,
    seed: SeedOption = 0,
    json_out: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """Gradual concept drift: the labelling rule turns slowly over time (for the monitor)."""
    from nndoctor.scenarios import drifting_stream

    data = drifting_stream(
        n_source=n_source,
        n_stream=n_stream,
        drift_start=drift_start,
        drift_end=drift_end,
        rotation_deg=rotation,
        label_noise=label_noise,
        random_state=seed,
    )
    _write(data, out, json_out=json_out, report=report)
