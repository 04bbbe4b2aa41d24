"""Sections for the training monitor: :class:`~nndoctor.stability.monitor.MonitorLog`.

A findings table (most severe first), a per-layer table (last and median values), the
non-finite events, and, with figures, per-layer gradient norms and update ratios over steps with
the findings marked.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nndoctor._results import to_jsonable
from nndoctor.report._figures import figure_to_png_base64, new_figure
from nndoctor.report._section import Figure, Section, Status, to_sections
from nndoctor.stability.monitor import MonitorLog

__all__: list[str] = []

_ORDER = {"error": 0, "warning": 1, "info": 2}


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3g}"


def _last_finite(values: Any) -> float:
    arr = np.asarray(values, dtype=float)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return float(arr[-1]) if arr.size else math.nan
    return float(finite[-1])


def _figure_series(result: MonitorLog, quantity: str, title: str, ylabel: str) -> Figure | None:
    per_layer = result.series.get(quantity, {})
    if not per_layer or result.n_ticks == 0:
        return None
    fig, ax = new_figure(width=7.0, height=3.8)
    steps = result.steps
    for name, values in per_layer.items():
        arr = np.asarray(values, dtype=np.float64)
        present = ~np.isnan(arr)  # a quantity sampled on some ticks (the update ratio) is absent
        v = np.where(arr[present] > 0, arr[present], np.nan)  # zeros leave a gap (log scale)
        ax.plot(steps[present], v, label=name or "(model)", linewidth=1.2, marker=".", ms=2)
    marked = False
    for f in result.findings:
        if f.severity == "info":
            continue
        ax.axvline(
            f.step,
            color="red" if f.severity == "error" else "orange",
            linestyle="--",
            linewidth=0.8,
            label=None if marked else "finding",
        )
        marked = True
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2, loc="best")
    return Figure(title, figure_to_png_base64(fig), alt=f"{ylabel} per layer over steps")


@to_sections.register
def _monitor_log_sections(result: MonitorLog, *, figures: bool = False) -> list[Section]:
    findings = sorted(result.findings, key=lambda f: (_ORDER[f.severity], f.step))
    worst: Status = "ok"
    if any(f.severity == "error" for f in findings):
        worst = "error"
    elif any(f.severity == "warning" for f in findings):
        worst = "warning"
    elif findings:
        worst = "info"
    n_bad = sum(f.severity != "info" for f in findings)
    span = (
        f"{result.n_ticks} ticks, steps {int(result.steps[0])}-{int(result.steps[-1])}"
        if result.n_ticks
        else "no ticks"
    )
    verdict = (
        f"{span}; no warning or error."
        if n_bad == 0
        else f"{span}; {n_bad} finding(s) need attention, each with a remedy."
    )
    if result.torn_lines:
        verdict += f" {result.torn_lines} torn line(s) skipped (the run was cut off)."
    rows = tuple(
        {
            "severity": f.severity,
            "check": f.check,
            "layer": f.layer,
            "step": f.step,
            "value": _fmt(f.value),
            "threshold": _fmt(f.threshold),
            "message": f.message,
            "remedy": f.remedy,
        }
        for f in findings
    )
    figs: list[Figure] = []
    if figures:
        for quantity, title, ylabel in (
            ("grad_norm", "Gradient norm per layer", "‖g‖"),
            ("update_ratio", "Update-to-weight ratio per layer", "‖Δw‖/‖w‖"),
            ("backward_rms", "Backward signal per layer", "RMS ∂L/∂y"),
        ):
            fig = _figure_series(result, quantity, title, ylabel)
            if fig is not None:
                figs.append(fig)
    sections = [
        Section(
            "Training monitor: findings",
            worst,
            verdict,
            rows,
            tuple(figs),
            payload=to_jsonable(result.findings),
        )
    ]
    layer_rows = []
    for name in result.layers:
        row: dict[str, Any] = {"layer": name or "(model)", "type": result.layer_types.get(name, "")}
        for quantity, label in (
            ("grad_norm", "grad norm"),
            ("update_ratio", "update ratio"),
            ("backward_rms", "backward RMS"),
            ("dead_fraction", "dead"),
            ("saturation_fraction", "saturated"),
            ("effective_units", "eff. units"),
        ):
            values = result.series.get(quantity, {}).get(name)
            row[label] = "-" if values is None else _fmt(_last_finite(values))
        layer_rows.append(row)
    if layer_rows:
        sections.append(
            Section(
                "Training monitor: per layer (last measured value)",
                "info",
                "",
                tuple(layer_rows),
            )
        )
    sampling = result.sampling
    if sampling.get("period"):
        overhead = sampling.get("overhead")
        budget = sampling.get("budget")
        cost = f"{overhead:.1%}" if isinstance(overhead, int | float) else "not timed"
        if budget is None:
            verdict = "every quantity measured on every tick (budget=None: no sampling, no timing)"
        else:
            verdict = f"the monitor's own cost: {cost} of the step (budget {budget:.0%})"
        if budget is not None and not sampling.get("within_budget", True):
            verdict += "; over budget even at the longest period"
            floor = sampling.get("floor")
            if isinstance(floor, int | float) and math.isfinite(floor):
                verdict += (
                    f" (the every-tick work alone: {floor:.1%}; Monitor(every=k) does it on"
                    " every k-th step only)"
                )
        ticks = sampling.get("ticks", {})
        verdict += f"; ticks detailed/light: {ticks.get('detailed', 0)}/{ticks.get('light', 0)}"
        sections.append(
            Section(
                "Training monitor: sampling",
                "info",
                verdict,
                tuple(
                    {"quantity": name, "measured": "every tick" if k == 1 else f"every {k} ticks"}
                    for name, k in sampling["period"].items()
                ),
                payload=sampling,
            )
        )
    if result.nonfinite:
        sections.append(
            Section(
                "Training monitor: first non-finite value",
                "error",
                result.nonfinite[0].describe(),
                tuple(
                    {
                        "step": loc.step,
                        "phase": loc.phase,
                        "op": loc.op or "-",
                        "module": loc.module or "(model)",
                        "backward node": loc.backward_node or "-",
                        "source": loc.source,
                    }
                    for loc in result.nonfinite
                ),
            )
        )
    return sections
