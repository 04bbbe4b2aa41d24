"""What every command shares: the ``--json`` and ``--report`` options, output, progress bars.

Importing this module is cheap (typer only): rich, the renderers and NumPy load when a command
prints, so ``nndoctor --version`` and ``--help`` answer at once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nndoctor.exceptions import InvalidParameterError

if TYPE_CHECKING:
    import pandas as pd
    from rich.progress import Progress

__all__ = [
    "ExcludeOption",
    "FailOnOption",
    "IncludeOption",
    "JsonOption",
    "ModelWeightsOption",
    "ReportOption",
    "SeedOption",
    "check_output_path",
    "emit",
    "exit_on_finding",
    "exit_on_severity",
    "note",
    "parse_columns",
    "parse_shape",
    "progress_bar",
    "read_feature_tables",
    "staged_progress",
    "table_names",
]


def check_output_path(path: Path | None) -> Path | None:
    """Refuse, before any work, an output path that cannot be written: a directory, or one
    under an existing file (the option's callback; the file itself is written at the end).

    Examples
    --------
    >>> check_output_path(Path("/"))
    Traceback (most recent call last):
    ...
    nndoctor.exceptions.InvalidParameterError: output path '/' is a directory; ...
    """
    if path is None:
        return None
    if path.is_dir():
        raise InvalidParameterError(
            f"output path {str(path)!r} is a directory; pass a file name (e.g. {path}/out.html)"
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InvalidParameterError(
                    f"output path {str(path)!r} lies under {str(parent)!r}, which is a file; "
                    "pass a path in a folder"
                )
            if not os.access(parent, os.W_OK):
                raise InvalidParameterError(
                    f"output path {str(path)!r} cannot be written: {str(parent)!r} is not "
                    "writable; pass a path in a writable folder"
                )
            break
    return path


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON on stdout (for scripts).")
]
ReportOption = Annotated[
    Path | None,
    typer.Option(
        "--report",
        help="Also write a self-contained HTML report to this file.",
        callback=check_output_path,
    ),
]

SeedOption = Annotated[int, typer.Option("--seed", help="Random seed.")]
ModelWeightsOption = Annotated[
    Path | None, typer.Option("--weights", help="State dict for --model (weights_only).")
]


FAIL_ON = ("never", "warning", "error")
_SEVERITY = ("ok", "info", "warning", "error")


def _check_fail_on(value: str) -> str:
    """``--fail-on``'s callback: refuse an unknown level before any work (exit code 2)."""
    from nndoctor._validation import check_choice

    check_choice(value, FAIL_ON, name="--fail-on")
    return value


FailOnOption = Annotated[
    str,
    typer.Option(
        "--fail-on",
        help="Exit 1 on a finding this severe: never|warning|error (insufficient data is a "
        "warning).",
        callback=_check_fail_on,
    ),
]


def exit_on_finding(result: Any, fail_on: str) -> None:
    """Exit with code 1 when ``result`` holds a finding at least as severe as ``fail_on``.

    The severity is the worst status of the result's report sections (what the table shows:
    drift and insufficient data are warnings), as ``nndoctor checkup --fail-on`` judges its
    summary.
    """
    if fail_on == "never":
        return
    from nndoctor.report import to_sections  # lazily: --help and --version import no report

    worst = max((_SEVERITY.index(s.status) for s in to_sections(result, figures=False)), default=0)
    exit_on_severity(_SEVERITY[worst], fail_on)


def exit_on_severity(worst: str, fail_on: str) -> None:
    """Exit with code 1 when the severity ``worst`` (ok|info|warning|error) is at least
    ``fail_on`` (a ``--fail-on`` level; ``"never"`` never exits).

    Examples
    --------
    >>> exit_on_severity("warning", "error")  # a warning is below --fail-on error: no exit
    """
    if fail_on != "never" and _SEVERITY.index(worst) >= _SEVERITY.index(fail_on):
        raise typer.Exit(1)


ExcludeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude",
        help="Column(s) to leave out of the features (repeatable, or comma-separated).",
    ),
]
IncludeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--include",
        help="Keep column(s) that are left out by default: identifiers (unique on every row) "
        "and dates (repeatable, or comma-separated).",
    ),
]


def parse_columns(values: list[str] | None) -> list[str]:
    """The columns of a repeatable, comma-separated option (``--exclude id,ts --exclude x``).

    Examples
    --------
    >>> parse_columns(["id, ts", "x"])
    ['id', 'ts', 'x']
    """
    out: list[str] = []
    for value in values or []:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return list(dict.fromkeys(out))


def note(text: str) -> None:
    """A note for the user on stderr (what was left out, capped, assumed)."""
    typer.echo(f"nndoctor: note: {text}", err=True)


def emit(
    result: Any,
    *,
    json_out: bool,
    report: Path | None,
    title: str,
    max_sections: int | None = None,
) -> None:
    """Print ``result`` (table or JSON on stdout) and optionally write the HTML report.

    ``max_sections`` limits the terminal to the first sections (the checkup prints its summary
    and leaves the details to the report); JSON and the report always hold everything.
    """
    from nndoctor._results import dumps
    from nndoctor.report import print_sections, stderr_console, to_sections, write_html

    if report is not None:
        with progress_bar("writing report") as advance:
            sections = to_sections(result, figures=True)
            write_html(report, title, sections)
            advance(1.0, "done")
        stderr_console().print(f"report written to {report}")
    if json_out:
        typer.echo(dumps(result.to_dict() if hasattr(result, "to_dict") else result))
    else:
        sections = to_sections(result, figures=False)
        shown = sections if max_sections is None else sections[:max_sections]
        print_sections(shown)
        if len(shown) < len(sections):
            where = f"the report ({report})" if report is not None else "--report FILE.html"
            stderr_console().print(
                f"{len(sections) - len(shown)} more section(s) with the evidence: see {where} "
                "or --json"
            )


def parse_shape(text: str) -> tuple[int, ...]:
    """Parse ``--input-shape`` (``64``, ``3,32,32`` or ``3x32x32``): one sample's shape.

    Examples
    --------
    >>> parse_shape("3x32x32")
    (3, 32, 32)
    """
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:  # a part that is not an integer, or empty ("3,,32")
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise InvalidParameterError(
            f"--input-shape {text!r} is not a list of positive integers; pass e.g. 64 or 3,32,32 "
            "(one sample's shape, without the batch dimension)"
        )
    return shape


Advance = Callable[[float, str], None]


def _progress() -> Progress:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from nndoctor.report import stderr_console

    console = stderr_console()
    return Progress(
        TextColumn("[bold]{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )


def _advancer(progress: Progress, description: str) -> Advance:
    task = progress.add_task(description, total=1.0, note="")

    def advance(fraction: float, text: str) -> None:
        progress.update(task, completed=min(max(fraction, 0.0), 1.0), note=text)

    return advance


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[Advance]:
    """One progress bar on stderr; yields ``advance(fraction, text)``.

    The bar is hidden when stderr is not a terminal.
    """
    with _progress() as progress:
        advance = _advancer(progress, description)
        yield advance
        advance(1.0, "")


@contextlib.contextmanager
def staged_progress() -> Iterator[Callable[[str], Advance]]:
    """Several bars under one live display; yields ``add(description) -> advance``."""
    with _progress() as progress:
        yield lambda description: _advancer(progress, description)


def table_names(source: Path | str, target: Path | str) -> tuple[str, str]:
    """What error messages call the two tables of a command: the library functions take them
    as ``names=`` and hand them to their checks ("column 'income' of the target table (t.csv)
    holds 30 infinite value(s) ...").

    Examples
    --------
    >>> table_names("s.csv", "t.csv")
    ('the source table (s.csv)', 'the target table (t.csv)')
    """
    return (f"the source table ({source})", f"the target table ({target})")


def read_feature_tables(
    source: Path,
    target: Path,
    *,
    label: str | None,
    exclude: list[str] | None,
    include: list[str] | None,
    source_frame: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The source and target tables of a ``shift`` command, ready to compare: read and checked
    against each other (:func:`nndoctor._io.load_table_pair`, ``--exclude`` dropped), then
    identifiers and dates left out unless ``--include`` keeps them
    (:func:`nndoctor._io.select_features`), each column left out told on stderr.
    ``source_frame``: the source table, when the command has read it already."""
    from nndoctor._io import load_table_pair, select_features

    src, tgt = load_table_pair(
        source, target, label=label, exclude=parse_columns(exclude), source_frame=source_frame
    )
    (src, tgt), _, notes = select_features([src, tgt], label=label, include=parse_columns(include))
    for text in notes:
        note(text)
    return src, tgt
