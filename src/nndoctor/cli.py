"""The ``nndoctor`` command line: a thin typer app; every command calls the library and renders.

Exit codes: 0 ok; 1 a finding, only when ``--fail-on`` asks; 2 usage error; 3 bad data.
Errors are one line on stderr; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
import typer.main

from nndoctor import __version__
from nndoctor._cli._common import (
    FailOnOption,
    JsonOption,
    check_output_path,
    emit,
    exit_on_severity,
    parse_shape,
    staged_progress,
)
from nndoctor._cli.monitor import monitor_app
from nndoctor._cli.scenario import scenario_app
from nndoctor._cli.shift import shift_app
from nndoctor._cli.stability import stability_app
from nndoctor.exceptions import (
    InvalidParameterError,
    MissingDependencyError,
    NNDoctorError,
    NNDoctorWarning,
)

__all__ = ["app", "exit_code_for", "main"]

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_USAGE = 2
EXIT_DATA = 3


def exit_code_for(error: BaseException) -> int:
    """The exit code for an error: 2 for usage (bad parameter, missing extra, a path that cannot
    be read or written), 3 for bad data.

    Examples
    --------
    >>> from nndoctor.exceptions import DataValidationError
    >>> exit_code_for(DataValidationError("x"))
    3
    """
    if isinstance(error, InvalidParameterError | MissingDependencyError | OSError):
        return EXIT_USAGE
    return EXIT_DATA


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """nndoctor's own warnings as one line on stderr (``nndoctor: warning: ...``), without the
    source file and line that Python's default format shows; other warnings unchanged."""
    if issubclass(category, NNDoctorWarning):
        typer.echo(f"nndoctor: warning: {' '.join(str(message).split())}", err=True)
    else:
        _DEFAULT_SHOWWARNING(message, category, filename, lineno, file, line)


_DEFAULT_SHOWWARNING = warnings.showwarning


class _Group(typer.core.TyperGroup):
    """Root group: turns nndoctor's errors into one line on stderr and an exit code.

    An ``OSError`` (a file that cannot be read or written, a full disk) is the user's environment,
    not a bug: it too becomes one line and exit code 2.

    The modules that add commands to the ``shift`` and ``scenario`` sub-apps (pandas, torch,
    SciPy behind them) are imported only when that sub-app is invoked: ``--version`` and
    ``--help`` list the sub-apps from their own light modules.
    """

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else None
        if name in _COMMAND_MODULES:
            for module in _COMMAND_MODULES[name]:
                importlib.import_module(f"nndoctor._cli.{module}")
            info = next(g for g in app.registered_groups if g.name == name)
            self.commands[name] = typer.main.get_group_from_info(
                info,
                pretty_exceptions_short=app.pretty_exceptions_short,
                suggest_commands=app.suggest_commands,
                rich_markup_mode=app.rich_markup_mode,
            )
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except (NNDoctorError, OSError) as err:
            debug = bool((ctx.obj or {}).get("debug")) or bool(os.environ.get("NNDOCTOR_DEBUG"))
            if debug:
                raise
            message = str(err)
            if isinstance(err, OSError) and not isinstance(err, NNDoctorError):
                message = f"{err}; check the path and its permissions"
            # one line, even when the message quotes a multi-line error of torch or pandas
            typer.echo(f"nndoctor: error: {' '.join(message.split())}", err=True)
            raise typer.Exit(exit_code_for(err)) from None


app = typer.Typer(
    name="nndoctor",
    cls=_Group,
    help="Diagnose and treat numerical instability in deep networks and distribution shift.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"nndoctor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show version."),
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    ctx.obj = {"debug": debug}


@app.command()
def checkup(
    model: Annotated[
        str | None,
        typer.Option(help="Your model: file.py:factory or module:factory (a callable)."),
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Training-time table (CSV or Parquet).")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Deployment-time table (CSV or Parquet).")
    ] = None,
    label: Annotated[str | None, typer.Option(help="Name of the label column.")] = None,
    input_shape: Annotated[
        str | None,
        typer.Option(
            "--input-shape",
            help="One input's shape for --model, e.g. 64 or 3,32,32 (1,30 for a Conv1d on 30 "
            "columns); with tables it defaults to the number of feature columns.",
        ),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(help="Trained weights for --model: a state dict saved with torch.save."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="A column to leave out of the features (repeatable)."),
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include",
            help="Keep a column that looks like an identifier (a different value in every row) "
            "as a feature (repeatable); such columns are left out by default.",
        ),
    ] = None,
    json_out: JsonOption = False,
    report: Annotated[
        Path,
        typer.Option(
            "--report",
            help="Where to write the self-contained HTML report.",
            callback=check_output_path,
        ),
    ] = Path("checkup-report/index.html"),
    seed: Annotated[int, typer.Option(help="Random seed for every stage.")] = 0,
    fail_on: FailOnOption = "never",
) -> None:
    """Run the whole tour: on the embedded default, or on your model and data.

    With no options it uses the built-in digits data and a deep MLP at PyTorch's default init.
    With --model (and --input-shape) and/or --source/--target/--label it checks yours, and only
    yours: your files are checked against each other and the model first, and your model is
    trained on the source's columns standardized with the source's mean and standard deviation.
    """
    from nndoctor.checkup import CheckupContext, Stage, run_checkup
    from nndoctor.checkup._inputs import check_user_inputs

    if (source is None) != (target is None):
        raise InvalidParameterError(
            "pass both --source and --target (the training-time and deployment-time tables)"
        )
    if weights is not None and model is None:
        raise InvalidParameterError("--weights are loaded into --model; pass --model too")
    if label is not None and source is None:
        raise InvalidParameterError("--label names a column of --source/--target; pass those too")
    shape = None if input_shape is None else parse_shape(input_shape)
    data = None
    if model is not None or source is not None:  # every check before any stage spends time
        data = check_user_inputs(
            source=source, target=target, label=label, model_spec=model, weights=weights,
            input_shape=shape, random_state=seed, exclude=tuple(exclude or ()),
            include=tuple(include or ()),
        )  # fmt: skip
    context = CheckupContext(
        random_state=seed,
        model_spec=model,
        source=source,
        target=target,
        label=label,
        input_shape=shape if data is None else data.input_shape,
        weights=weights,
        exclude=tuple(exclude or ()),
        include=tuple(include or ()),
        data=data,
    )
    with staged_progress() as add_bar:

        def on_stage(stage: Stage) -> Callable[[float, str], None]:
            return add_bar(stage.title)

        result = run_checkup(context=context, on_stage=on_stage)
    emit(result, json_out=json_out, report=report, title="nndoctor checkup", max_sections=1)
    exit_on_severity(result.worst_severity(), fail_on)


# Sub-apps. Modules that add commands to a sub-app are imported for their side effect, when
# the sub-app is invoked (_Group.resolve_command).
app.add_typer(shift_app, name="shift")
app.add_typer(scenario_app, name="scenario")
app.add_typer(stability_app, name="stability")
app.add_typer(monitor_app, name="monitor")
_COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "scenario": ("scenario_numerics", "scenario_shift"),
    "shift": ("shift_diagnose", "shift_tests", "shift_weights"),
}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and ``python -m nndoctor``."""
    app(args=argv, prog_name="nndoctor")
