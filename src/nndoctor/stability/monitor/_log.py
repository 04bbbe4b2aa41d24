"""Logging: a crash-safe JSONL log (one line per tick), its reader, and a TensorBoard writer.

The writer appends one complete JSON object per line and flushes after each tick, so a crash or
``kill -9`` leaves every line written before it intact; the reader skips a torn last line (and
counts it). Only rank 0 of a distributed job writes.

Line kinds: ``{"kind": "header", ...}`` once per run, ``{"kind": "tick", "step": ..., "layers":
{...}}`` per logging tick, ``{"kind": "finding", ...}`` per finding, ``{"kind": "nonfinite",
...}`` for a localized non-finite value.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nndoctor._results import ResultMixin, to_jsonable
from nndoctor.exceptions import DataValidationError, InvalidParameterError, MissingDependencyError
from nndoctor.stability.monitor._nonfinite import NonFiniteLocation
from nndoctor.stability.monitor._quantities import LAYER_KEYS, TickQuantities
from nndoctor.stability.monitor._rules import Finding

__all__ = ["LOG_FILENAME", "JsonlWriter", "MonitorLog", "TensorBoardWriter", "read_log"]

LOG_FILENAME = "monitor.jsonl"
FORMAT_VERSION = 1
#: at most this many held lines (a budgeted monitor's light ticks) wait before they are written
FLUSH_TICKS = 10


def _num(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _float(value: Any) -> float:
    if isinstance(value, str):
        return float(value)  # "nan", "inf", "-inf"
    if value is None:
        return math.nan
    return float(value)


_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"), check_circular=False)


class JsonlWriter:
    """Append-only JSONL log; each line goes to the operating system in one ``write`` call.

    The file is opened unbuffered in append mode (``O_APPEND``), so a line is handed to the
    kernel whole, at once (the equivalent of ``write`` + ``flush`` per line, with one system
    call and no Python-level buffering); a crash of the process afterwards cannot lose it.
    A line written with ``hold=True`` may wait in memory, whole, until :data:`FLUSH_TICKS`
    lines wait, the next line without ``hold``, or :meth:`close`; the waiting lines then go to
    the file in one ``write``, so a crash loses at most those lines and never tears one.

    Examples
    --------
    >>> import tempfile
    >>> w = JsonlWriter(tempfile.mkdtemp())
    >>> w.write({"kind": "tick", "step": 1, "layers": {}})
    >>> w.close()
    >>> read_log(w.path).steps.tolist()
    [1]
    """

    def __init__(self, log_dir: str | os.PathLike[str], *, fsync: bool = False) -> None:
        directory = Path(log_dir)
        if directory.exists() and not directory.is_dir():
            raise InvalidParameterError(
                f"log_dir {str(directory)!r} is a file; pass a directory for the monitor's log"
            )
        self.path = directory / LOG_FILENAME
        self._fsync = fsync
        self._held: list[str] = []
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(self.path, flags, 0o644)
        except OSError as err:
            raise InvalidParameterError(
                f"log_dir {str(directory)!r} cannot be written ({err.strerror or err}); pass a "
                "directory in a writable place"
            ) from err

    def write(self, record: dict[str, Any], *, hold: bool = False) -> None:
        """Write one record as one line, handed to the operating system at once.

        With ``hold=True`` the line may wait (see the class notes); a line written without it
        goes out at once, after the lines that wait.
        """
        if self._fd is not None:
            self.write_line(_ENCODER.encode(record), hold=hold)

    def write_line(self, line: str, *, hold: bool = False) -> None:
        """Write one record already encoded as one line of JSON (no newline), as :meth:`write`."""
        if self._fd is None:
            return
        held = self._held
        held.append(line)
        if hold and len(held) < FLUSH_TICKS:
            return
        self.flush()

    def flush(self) -> None:
        """Hand the waiting lines to the operating system in one ``write``."""
        fd, held = self._fd, self._held
        if fd is None or not held:
            return
        data = ("\n".join(held) + "\n").encode("utf-8")
        held.clear()
        while data:  # a regular file takes it in one call; loop for the rare short write
            data = data[os.write(fd, data) :]
        if self._fsync:
            os.fsync(fd)

    def close(self) -> None:
        """Write what waits and close the file (idempotent)."""
        if self._fd is not None:
            self.flush()
            os.close(self._fd)
            self._fd = None


def tick_record(
    q: TickQuantities, *, grad_norm_total: float, clipped_at: float | None
) -> dict[str, Any]:
    """The JSONL record of one tick."""
    layers: dict[str, dict[str, float | str]] = {}
    isfinite = math.isfinite
    for key in LAYER_KEYS:  # one pass; the same order as TickQuantities.layer_records
        for name, value in getattr(q, key).items():
            v = float(value)
            rec = layers.get(name)
            if rec is None:
                rec = layers[name] = {}
            rec[key] = v if isfinite(v) else _num(v)
    record: dict[str, Any] = {
        "kind": "tick",
        "step": q.step,
        "time": time.time(),
        "grad_norm_total": _num(grad_norm_total),
        "layers": layers,
    }
    if q.loss is not None:
        record["loss"] = _num(q.loss)
    if q.update_estimated:
        record["update_ratio_estimated"] = True
    if q.weight_estimated:
        record["weight_norm_estimated"] = True
    if clipped_at is not None:
        record["clipped_at"] = _num(clipped_at)
    return record


def light_line_template(layers: list[str], update_ratio: bool, loss: bool, clipped: bool) -> str:
    """A ``%``-template of a light tick's JSONL line, the same JSON that :func:`tick_record` gives.

    A light tick (a monitor with a budget, see :class:`~nndoctor.Monitor`) has the gradient
    norm, the estimated weight norm and (``update_ratio``) the estimated update ratio of every
    layer, and no other per-layer quantity. The template takes, in order: the step (``%d``), the
    time, the total gradient norm, each layer's values, the loss (``loss``), the clipping
    threshold (``clipped``), the period (``%d``) and the overhead already written as JSON (a
    number or ``null``). Every float must be finite: ``%r`` writes ``repr(x)``, which is what
    the JSON encoder writes for a finite float.

    Examples
    --------
    >>> import json
    >>> line = light_line_template(["fc"], True, False, False) % (
    ...     3, 1.5, 0.25, 0.25, 2.0, 0.01, 4, "null")
    >>> json.loads(line)["layers"]
    {'fc': {'grad_norm': 0.25, 'weight_norm': 2.0, 'update_ratio': 0.01}}
    """
    per_layer = '"grad_norm":%r,"weight_norm":%r' + (',"update_ratio":%r' if update_ratio else "")
    body = ",".join(
        _ENCODER.encode(name).replace("%", "%%") + ":{" + per_layer + "}" for name in layers
    )
    return (
        '{"kind":"tick","step":%d,"time":%r,"grad_norm_total":%r,"layers":{'
        + body
        + "}"
        + (',"loss":%r' if loss else "")
        + (',"update_ratio_estimated":true' if update_ratio else "")
        + ',"weight_norm_estimated":true'
        + (',"clipped_at":%r' if clipped else "")
        + ',"sampling":{"detailed":false,"period":%d,"overhead":%s}}'
    )


def sampling_record(overhead: dict[str, Any]) -> dict[str, Any]:
    """The JSONL record of the monitor's own accounting (:meth:`Monitor.overhead`)."""
    rec: dict[str, Any] = {"kind": "sampling", "time": time.time()}
    for key, value in overhead.items():
        rec[key] = _num(value) if isinstance(value, float) else value
    return rec


def header_record(
    *, layers: list[str], layer_types: dict[str, str], thresholds: dict[str, Any], every: int
) -> dict[str, Any]:
    """The JSONL record that opens a run."""
    return {
        "kind": "header",
        "version": FORMAT_VERSION,
        "time": time.time(),
        "every": every,
        "layers": layers,
        "layer_types": layer_types,
        "thresholds": thresholds,
    }


@dataclass(frozen=True, slots=True)
class MonitorLog(ResultMixin):
    """A monitor's record of a run: per-layer series over steps, findings, non-finite events.

    Built by :func:`read_log` from a JSONL file, or by :meth:`Monitor.summary` from memory.

    Attributes
    ----------
    layers : tuple of str
        Parametrized layers in forward order, then activation modules.
    layer_types : dict
        Module class name per layer.
    steps : ndarray of int
        Steps of the ticks.
    loss : ndarray of float
        Loss at each tick (NaN where it was not given).
    grad_norm_total : ndarray of float
        Total gradient norm at each tick.
    series : dict
        ``series[quantity][layer]`` is an array aligned with ``steps`` (NaN where absent).
    findings : tuple of Finding
    nonfinite : tuple of NonFiniteLocation
    torn_lines : int
        Lines that could not be parsed (a torn last line after a crash).
    runs : int
        Number of runs (header lines) in the file.
    """

    layers: tuple[str, ...]
    layer_types: dict[str, str]
    steps: npt.NDArray[np.int64]
    loss: npt.NDArray[np.float64]
    grad_norm_total: npt.NDArray[np.float64]
    series: dict[str, dict[str, npt.NDArray[np.float64]]]
    findings: tuple[Finding, ...] = ()
    nonfinite: tuple[NonFiniteLocation, ...] = ()
    torn_lines: int = 0
    runs: int = 1
    thresholds: dict[str, Any] = field(default_factory=dict)
    #: the monitor's own accounting at the end of the run (:meth:`Monitor.overhead`)
    sampling: dict[str, Any] = field(default_factory=dict)

    @property
    def n_ticks(self) -> int:
        """Number of ticks."""
        return int(self.steps.shape[0])


def build_log(records: list[dict[str, Any]], *, torn_lines: int = 0) -> MonitorLog:
    """Assemble a :class:`MonitorLog` from parsed records (header, ticks, findings)."""
    layers: list[str] = []
    layer_types: dict[str, str] = {}
    thresholds: dict[str, Any] = {}
    runs = 0
    ticks: list[dict[str, Any]] = []
    sampling: dict[str, Any] = {}
    findings: list[Finding] = []
    nonfinite: list[NonFiniteLocation] = []
    for rec in records:
        kind = rec.get("kind")
        if kind == "header":
            runs += 1
            for name in rec.get("layers", []):
                if name not in layers:
                    layers.append(name)
            layer_types.update(rec.get("layer_types", {}))
            thresholds = dict(rec.get("thresholds", {}))
        elif kind == "tick":
            ticks.append(rec)
            for name in rec.get("layers", {}):
                if name not in layers:
                    layers.append(name)
        elif kind == "finding":
            findings.append(
                Finding(
                    rec["check"],
                    rec["severity"],
                    rec["layer"],
                    int(rec["step"]),
                    _float(rec["value"]),
                    _float(rec["threshold"]),
                    rec["message"],
                    rec["remedy"],
                )
            )
        elif kind == "sampling":
            sampling = {k: v for k, v in rec.items() if k not in ("kind", "time")}
        elif kind == "nonfinite":
            fields_ = {k: v for k, v in rec.items() if k != "kind"}
            nonfinite.append(NonFiniteLocation(**fields_))
    n = len(ticks)
    steps = np.array([int(t["step"]) for t in ticks], dtype=np.int64)
    loss = np.array([_float(t.get("loss")) for t in ticks], dtype=np.float64)
    total = np.array([_float(t.get("grad_norm_total")) for t in ticks], dtype=np.float64)
    series: dict[str, dict[str, npt.NDArray[np.float64]]] = {}
    for i, tick in enumerate(ticks):
        for name, rec in tick.get("layers", {}).items():
            for quantity, value in rec.items():
                per_layer = series.setdefault(quantity, {})
                if name not in per_layer:
                    per_layer[name] = np.full(n, np.nan)
                per_layer[name][i] = _float(value)
    return MonitorLog(
        layers=tuple(layers),
        layer_types=layer_types,
        steps=steps,
        loss=loss,
        grad_norm_total=total,
        series=series,
        findings=tuple(findings),
        nonfinite=tuple(nonfinite),
        torn_lines=torn_lines,
        runs=max(runs, 1 if n else 0),
        thresholds=thresholds,
        sampling=sampling,
    )


def read_log(path: str | os.PathLike[str]) -> MonitorLog:
    """Read a monitor's JSONL log (a file, or the ``log_dir`` that holds ``monitor.jsonl``).

    Lines that do not parse (a line torn by a crash) are skipped and counted in
    ``torn_lines``; every complete line is kept.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.jsonl"
    >>> _ = p.write_text('{"kind":"tick","step":1,"layers":{"0":{"grad_norm":0.5}}}\\n{"kind":"ti')
    >>> log = read_log(p)
    >>> log.steps.tolist(), log.torn_lines, log.series["grad_norm"]["0"].tolist()
    ([1], 1, [0.5])
    """
    p = Path(path)
    if p.is_dir():
        p = p / LOG_FILENAME
    if not p.is_file():
        raise InvalidParameterError(
            f"monitor log {str(p)!r} does not exist; pass the monitor.jsonl file or the "
            "Monitor's log_dir"
        )
    records: list[dict[str, Any]] = []
    torn = 0
    with open(p, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            text = line.strip()
            if not text:
                continue
            try:
                rec = json.loads(text)
            except json.JSONDecodeError:
                torn += 1
                continue
            if isinstance(rec, dict):
                records.append(rec)
            else:
                torn += 1
    if not records:
        raise DataValidationError(
            f"monitor log {str(p)!r} holds no complete record; pass a log written by "
            "nndoctor.Monitor(log_dir=...)"
        )
    return build_log(records, torn_lines=torn)


class TensorBoardWriter:
    """Write each tick's per-layer quantities as TensorBoard scalars (``quantity/layer``).

    Needs the ``tensorboard`` package (``pip install 'nndoctor[tensorboard]'``).
    """

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise MissingDependencyError(
                "the TensorBoard writer needs the tensorboard package; pip install "
                "'nndoctor[tensorboard]' or pass tensorboard=False"
            ) from err
        self._writer: Any = SummaryWriter(log_dir=str(log_dir))

    def write(self, q: TickQuantities, *, grad_norm_total: float) -> None:
        """Add the scalars of one tick."""
        w = self._writer
        for name, rec in q.layer_records().items():
            for quantity, value in rec.items():
                if math.isfinite(value):
                    w.add_scalar(f"{quantity}/{name or 'model'}", value, q.step)
        if math.isfinite(grad_norm_total):
            w.add_scalar("grad_norm_total", grad_norm_total, q.step)
        if q.loss is not None and math.isfinite(q.loss):
            w.add_scalar("loss", q.loss, q.step)

    def finding(self, finding: Finding) -> None:
        """Record a finding as text."""
        self._writer.add_text(
            f"findings/{finding.check}",
            f"[{finding.severity}] {finding.layer}: {finding.message} — {finding.remedy}",
            finding.step,
        )

    def close(self) -> None:
        """Flush and close."""
        self._writer.close()


def finding_record(finding: Finding) -> dict[str, Any]:
    """The JSONL record of a finding."""
    rec = dict(to_jsonable(finding))
    rec["kind"] = "finding"
    return rec


def nonfinite_record(location: NonFiniteLocation) -> dict[str, Any]:
    """The JSONL record of a localized non-finite value."""
    rec = dict(to_jsonable(location))
    rec["kind"] = "nonfinite"
    return rec
