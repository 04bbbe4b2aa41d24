"""``--engine auto|dask|in-memory`` and ``--scheduler``: one place for the shift commands.

:func:`choose_engine` decides, before any work, whether a command loads its tables into this
process (``in-memory``) or reads them lazily as Dask collections (``dask``); :func:`dask_session`
then runs the library functions (which take Dask collections and know nothing of clusters)
on a cluster: the one at ``--scheduler`` / ``$DASK_SCHEDULER_ADDRESS``, or a
``distributed.LocalCluster`` sized to this machine, started for the command and closed on exit,
also on an error. While it runs a progress bar on stderr counts the partitions read.
"""

from __future__ import annotations

import contextlib
import glob
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from nndoctor.exceptions import InvalidParameterError

__all__ = [
    "AUTO_DASK_BYTES",
    "EngineChoice",
    "EngineOption",
    "SchedulerOption",
    "announce",
    "choose_engine",
    "dask_session",
    "drop_row_names",
    "input_bytes",
    "local_cluster_options",
    "partition_counts",
    "read_dask_tables",
]

#: ``--engine auto`` picks Dask when the Parquet files of an input total more than this (1 GiB).
AUTO_DASK_BYTES = 1 << 30
#: Seconds between two looks at the scheduler for the progress bar.
PROGRESS_POLL_S = 0.25
_PARQUET_SUFFIXES = (".parquet", ".pq")

EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        help="auto (default): Dask when an input is a directory or glob of Parquet files, "
        "when its Parquet files total more than 1 GiB, or with --scheduler; otherwise "
        "in-memory. in-memory: load each table into this process. dask: read Parquet files, "
        "directories or globs lazily with Dask on a LocalCluster sized to this machine (or "
        "--scheduler); pip install 'nndoctor[dask]'.",
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Address of a running Dask scheduler (e.g. tcp://10.0.0.5:8786); default "
        "$DASK_SCHEDULER_ADDRESS, else a LocalCluster started for this command. Implies "
        "--engine dask under auto.",
    ),
]


@dataclass(frozen=True, slots=True)
class EngineChoice:
    """Where a command runs: ``engine`` and, for Dask, the scheduler ``address`` (``None``:
    a LocalCluster); ``reason`` says why ``--engine auto`` chose it (empty otherwise)."""

    engine: Literal["dask", "in-memory"]
    address: str | None = None
    reason: str = ""


def _is_many(spec: str) -> bool:
    """True for a glob, a directory or a remote URL: what only the Dask engine reads."""
    return "://" in spec or glob.has_magic(spec) or Path(spec).is_dir()


def input_bytes(spec: str | Path) -> int:
    """The total size in bytes of the Parquet files an input names (a file, a directory read
    recursively, or a glob); 0 for anything else (CSV, missing, remote).

    Examples
    --------
    >>> input_bytes("no/such/*.parquet")
    0
    """
    text = str(spec)
    if "://" in text:
        return 0
    path = Path(text)
    if glob.has_magic(text):
        files = [Path(f) for f in glob.glob(text, recursive=True)]
    elif path.is_dir():
        files = list(path.rglob("*.parquet"))
    else:
        files = [path]
    return sum(
        f.stat().st_size for f in files if f.is_file() and f.suffix.lower() in _PARQUET_SUFFIXES
    )


def _check_parquet(inputs: Sequence[tuple[str, str | Path]], why: str) -> None:
    """The Dask engine reads Parquet: a single local file of another kind is a usage error."""
    for option, spec in inputs:
        text = str(spec)
        path = Path(text)
        if "://" in text or glob.has_magic(text) or not path.is_file():
            continue
        if path.suffix.lower() not in _PARQUET_SUFFIXES:
            kind = path.suffix.lower() or "extension-less"
            raise InvalidParameterError(
                f"{why} reads Parquet (a file, a directory or a glob of them), and {option} "
                f"{text} is a {kind} file; leave --engine at auto (or in-memory) to read it as "
                "it is, or convert it to Parquet (pandas: read_csv(...).to_parquet(...))"
            )


def choose_engine(
    engine: str,
    scheduler: str | None,
    inputs: Sequence[tuple[str, str | Path]],
    *,
    threshold: int | None = None,
) -> EngineChoice:
    """Resolve ``--engine`` and ``--scheduler`` for the named ``inputs`` (option, path).

    ``auto`` picks Dask when ``--scheduler`` is given, when an input is a directory, a glob or
    a URL (the in-memory engine reads one file), or when an input's Parquet files total more
    than ``threshold`` bytes (default :data:`AUTO_DASK_BYTES`); otherwise in-memory. The Dask
    scheduler's address is ``scheduler``, else ``$DASK_SCHEDULER_ADDRESS``, else ``None`` (a
    LocalCluster). ``--scheduler`` with ``--engine in-memory`` is a usage error.

    Examples
    --------
    >>> choose_engine("auto", None, [("--source", "a.csv")]).engine
    'in-memory'
    >>> choose_engine("auto", "tcp://h:8786", [("--source", "a.csv")]).address
    'tcp://h:8786'
    """
    from nndoctor._validation import check_choice

    check_choice(engine, ("auto", "dask", "in-memory"), name="--engine")
    if engine == "in-memory":
        if scheduler is not None:
            raise InvalidParameterError(
                "--scheduler needs the Dask engine; pass --engine dask (or auto), or leave "
                "--scheduler out"
            )
        return EngineChoice("in-memory")
    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    if engine == "dask":
        _check_parquet(inputs, "the Dask engine (--engine dask)")
        return EngineChoice("dask", address)
    if scheduler is not None:
        _check_parquet(inputs, "the Dask engine (--scheduler)")
        return EngineChoice("dask", address, f"--scheduler {scheduler} was given")
    limit = AUTO_DASK_BYTES if threshold is None else threshold
    for option, spec in inputs:
        if _is_many(str(spec)):
            return EngineChoice("dask", address, f"{option} {spec} names several files")
        size = input_bytes(spec)
        if size > limit:
            return EngineChoice(
                "dask",
                address,
                f"{option} is {size / 2**30:.1f} GiB of Parquet (more than "
                f"{limit / 2**30:.3g} GiB)",
            )
    return EngineChoice("in-memory")


def local_cluster_options() -> dict[str, Any]:
    """The LocalCluster for a command: one single-threaded worker process per core, the
    machine's memory shared among them (``memory_limit="auto"``), the scheduler's web server
    on a free port (Dask's HTTP server starts even without a dashboard; on the default 8787 a
    second command, or a running cluster, would collide and warn)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return {
        "n_workers": max(1, cores),
        "threads_per_worker": 1,
        "processes": True,
        "memory_limit": "auto",
        "dashboard_address": ":0",
    }


def partition_counts(client: Any) -> tuple[int, int]:
    """Partitions read so far and partitions to read, from the scheduler's task states.

    A partition read is a task whose key names Parquet (``read_parquet-…``); where a graph has
    none (a Dask collection built otherwise) every task counts. Done counts every task of
    those that reached memory since the scheduler started, so a caller compares two readings.
    """

    def on_scheduler(dask_scheduler: Any) -> tuple[int, int, int, int]:
        done = pending = all_done = all_pending = 0
        for prefix in dask_scheduler.task_prefixes.values():
            reached = prefix.state_counts.get("memory", 0)
            all_done += reached
            if "parquet" in prefix.name.lower():
                done += reached
        for ts in dask_scheduler.tasks.values():
            if ts.state in ("waiting", "processing", "queued", "no-worker"):
                all_pending += 1
                if "parquet" in ts.prefix.name.lower():
                    pending += 1
        return done, pending, all_done, all_pending

    done, pending, all_done, all_pending = client.run_on_scheduler(on_scheduler)
    if done + pending:
        return int(done), int(done + pending)
    return int(all_done), int(all_done + all_pending)


@contextlib.contextmanager
def _partition_progress(client: Any, description: str) -> Iterator[None]:
    """A rich bar on stderr counting partitions while the body runs (hidden off a terminal)."""
    from nndoctor._cli._common import _progress

    with _progress() as progress:
        if progress.disable:
            yield
            return
        task = progress.add_task(description, total=None, note="starting")
        base, _ = partition_counts(client)
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(PROGRESS_POLL_S):
                try:
                    done, total = partition_counts(client)
                except (OSError, RuntimeError):  # the client is closing: stop looking
                    return
                done, total = done - base, total - base
                if total > 0:
                    progress.update(
                        task, total=total, completed=done, note=f"partitions {done}/{total}"
                    )

        watcher = threading.Thread(target=poll, name="nndoctor-progress", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()
        progress.update(task, total=1, completed=1)


@contextlib.contextmanager
def dask_session(choice: EngineChoice, description: str) -> Iterator[Any]:
    """A ``distributed.Client`` set as Dask's default while the body runs; yields it.

    With ``choice.address`` it connects to that scheduler (and leaves the cluster running);
    otherwise it starts a LocalCluster (:func:`local_cluster_options`) and closes it when the
    body ends, also on an error. A progress bar on stderr counts the partitions.
    """
    from nndoctor.shift._engines import require_dask

    require_dask()
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:
        from nndoctor.exceptions import MissingDependencyError

        raise MissingDependencyError(
            f"the Dask engine needs distributed ({err}); pip install 'nndoctor[dask]'"
        ) from err
    with contextlib.ExitStack() as stack:
        if choice.address is not None:
            client = stack.enter_context(Client(choice.address))  # type: ignore[no-untyped-call]
        else:
            cluster = stack.enter_context(LocalCluster(**local_cluster_options()))  # type: ignore[no-untyped-call]
            client = stack.enter_context(Client(cluster))  # type: ignore[no-untyped-call]
        with _partition_progress(client, description):
            yield client


def announce(choice: EngineChoice) -> None:
    """Say on stderr why ``--engine auto`` chose Dask (nothing for an explicit choice)."""
    from nndoctor._cli._common import note

    if choice.engine == "dask" and choice.reason:
        note(f"using the Dask engine: {choice.reason} (--engine in-memory loads the tables)")


def _same(part: Any) -> Any:
    """The partition itself (a barrier to Dask's projection of a Parquet read)."""
    return part


def read_dask_tables(
    source: str | Path,
    target: str | Path,
    *,
    exclude: Sequence[str] = (),
    names: tuple[str, str],
) -> tuple[Any, Any]:
    """The source and target Parquet datasets as lazy Dask frames (footers checked, no rows
    read: :func:`nndoctor.shift._dask.read_parquet`), the ``exclude`` columns dropped.

    Each frame passes through an identity ``map_partitions``: Dask would otherwise read a
    narrow projection (the label column alone) with fewer, fused partitions than a wide one
    (the features), and a table's labels would no longer be partitioned like its features.
    """
    from nndoctor._io import column_hint
    from nndoctor.shift._dask import read_parquet

    src, tgt = (
        frame.map_partitions(_same, meta=frame._meta)
        for frame in (read_parquet(str(source), names[0]), read_parquet(str(target), names[1]))
    )
    for name in exclude:
        if name not in src.columns:
            raise InvalidParameterError(
                f"--exclude column {name!r} is not in {names[0]}; {column_hint(name, src.columns)}"
            )
    if exclude:
        src = src.drop(columns=list(exclude))
        tgt = tgt.drop(columns=[c for c in exclude if c in tgt.columns])
    return src, tgt


#: On Dask a column's distinct values are counted by HyperLogLog (Dask's ``nunique_approx``,
#: relative standard error about 0.4 %): a column is an identifier when at least this share of
#: its rows are distinct (in memory: every row, counted exactly).
DISTINCT_SHARE = 0.98


def drop_row_names(src: Any, tgt: Any, *, label: str | None) -> tuple[Any, Any]:
    """Leave out the columns that name or date rows, as in memory
    (:func:`nndoctor._io.left_out_columns`), each told on stderr.

    Dates: a datetime column, or text whose first non-missing values (at most 200, from the
    first partition) read as dates. Identifiers: integers or text with no value missing and
    distinct on (at least :data:`DISTINCT_SHARE` of) the rows of each table, in one pass that
    sends the client three numbers per candidate column and table; at least
    :data:`nndoctor._io.MIN_ID_ROWS` rows in all.
    """
    import pandas as pd
    from dask.base import compute

    from nndoctor._cli._common import note
    from nndoctor._io import MIN_ID_ROWS, is_datetime_column

    shared = [c for c in src.columns if c != label and c in tgt.columns]
    dates = [
        c
        for c in shared
        if pd.api.types.is_datetime64_any_dtype(src._meta[c].dtype)
        or (
            not pd.api.types.is_numeric_dtype(src._meta[c].dtype)
            and is_datetime_column(src[c].partitions[0].compute().head(200))
        )
    ]
    candidates = [
        c
        for c in shared
        if c not in dates
        and (src._meta[c].dtype.kind in "iuOSU" or isinstance(src._meta[c].dtype, pd.StringDtype))
    ]
    ids: list[str] = []
    if candidates:
        counts = compute(  # type: ignore[no-untyped-call]
            *[
                (f.shape[0], f[c].isna().sum(), f[c].nunique_approx())
                for c in candidates
                for f in (src, tgt)
            ]
        )
        for i, c in enumerate(candidates):
            (ns, miss_s, ds), (nt, miss_t, dt) = counts[2 * i], counts[2 * i + 1]
            distinct = min(ds / max(ns, 1), dt / max(nt, 1))
            if ns + nt >= MIN_ID_ROWS and miss_s == miss_t == 0 and distinct >= DISTINCT_SHARE:
                ids.append(c)
    for c in dates:
        note(
            f"column {str(c)!r} holds dates or times; left out of the features "
            f"(--engine in-memory --include {c} keeps it)"
        )
    for c in ids:
        note(
            f"column {str(c)!r} looks like a row identifier (distinct on every row); left out "
            f"of the features (--engine in-memory --include {c} keeps it)"
        )
    gone = dates + ids
    if not gone:
        return src, tgt
    return src.drop(columns=gone), tgt.drop(columns=gone)
