"""Sections for the stability results: probe, audit, symmetry, recommendation, scenarios."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from nndoctor._results import to_jsonable
from nndoctor.report._figures import figure_to_png_base64, new_figure
from nndoctor.report._section import Figure, Section, Status, to_sections
from nndoctor.scenarios.numerics import SymmetryDemo
from nndoctor.stability.init import InitAudit
from nndoctor.stability.propagation import PropagationReport
from nndoctor.stability.recommend import InitRecommendation
from nndoctor.stability.symmetry import SymmetryReport

__all__: list[str] = []


def _g(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.3g}"


def _positive(values: Sequence[float | None]) -> list[float]:
    return [v if v is not None and v > 0 and math.isfinite(v) else math.nan for v in values]


def _rms_figure(
    series: Sequence[tuple[str, Sequence[float | None], str]], title: str, ylabel: str
) -> Figure:
    fig, ax = new_figure(width=7.0, height=3.8)
    for label, values, style in series:
        ys = _positive(values)
        if not any(math.isfinite(y) for y in ys):
            continue
        ax.plot(range(len(ys)), ys, style, label=label, markersize=4)
    ax.set_yscale("log")
    ax.set_xlabel("layer (forward order)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return Figure(title, figure_to_png_base64(fig), alt=title)


def probe_figure(report: PropagationReport, title: str = "Signal through the layers") -> Figure:
    """Per-layer forward and backward gains against depth, measured and predicted, log scale.

    The same quantities as the table's "fwd gain"/"theory" and "bwd gain"/"theory " columns:
    the forward gain is relative to the model's input (RMS), the backward gain to the last
    layer's gradient (norm), so measured and predicted points sit on one axis.
    """
    return _rms_figure(
        probe_series(report), title, "gain (forward: RMS / input RMS; backward: norm / last's)"
    )


def probe_series(report: PropagationReport) -> list[tuple[str, Sequence[float | None], str]]:
    """The curves of :func:`probe_figure`: (label, value per called layer, line style)."""
    layers = report.called_layers
    return [
        ("forward gain (measured)", [r.forward_gain for r in layers], "-o"),
        ("forward gain (theory)", [r.predicted_forward_gain for r in layers], "x"),
        ("backward gain (measured)", [r.backward_gain for r in layers], "-s"),
        ("backward gain (theory)", [r.predicted_backward_gain for r in layers], "+"),
    ]


_VERDICT_STATUS: dict[str, Status] = {"healthy": "ok", "vanishing": "error", "exploding": "error"}


def _probe_verdict(r: PropagationReport) -> str:
    text = (
        f"Verdict: {r.verdict}. End to end the signal's RMS changes x{_g(r.forward_gain)} "
        f"forward and the gradient's x{_g(r.backward_gain)} backward ({r.dtype}, batch "
        f"{r.batch_size}; thresholds {r.vanishing_gain:g} and {r.exploding_gain:g})."
    )
    if r.onset_layer is not None:
        text += f" Trouble shows first at layer {r.onset_layer!r} ({r.onset_direction} pass)."
    for f in r.findings:
        text += f" {f.message[0].upper()}{f.message[1:]}."
    return text


@to_sections.register
def _probe_sections(result: PropagationReport, *, figures: bool = False) -> list[Section]:
    # a module whose forward never ran (its parent uses its weights directly, as
    # nn.MultiheadAttention does with out_proj) has no statistics: say so instead of NaNs
    not_called = {
        "fwd RMS": "not called",
        "fwd gain": "-",
        "theory": "-",
        "bwd RMS": "-",
        "bwd gain": "-",
        "theory ": "-",
        "corr": "-",
    }
    rows = tuple(
        {"layer": r.name, "kind": r.kind, **not_called}
        if not r.called
        else {
            "layer": r.name if r.call <= 1 else f"{r.name}#{r.call}",
            "kind": r.kind,
            "fwd RMS": _g(r.forward_rms),
            "fwd gain": _g(r.forward_gain),
            "theory": _g(r.predicted_forward_gain),
            "bwd RMS": _g(r.backward_rms),
            "bwd gain": _g(r.backward_gain),
            "theory ": _g(r.predicted_backward_gain),
            "corr": _g(r.correlation),
        }
        for r in result.layers
    )
    figs = (probe_figure(result),) if figures else ()
    return [
        Section(
            "Signal propagation at initialization",
            _VERDICT_STATUS[result.verdict],
            _probe_verdict(result),
            rows,
            figs,
            payload=to_jsonable(result),
        )
    ]


@to_sections.register
def _audit_sections(result: InitAudit, *, figures: bool = False) -> list[Section]:
    rows = tuple(
        {
            "layer": la.name,
            "shape": "x".join(str(s) for s in la.shape),
            "looks like": la.scheme,
            "KS p": _g(la.pvalue),
            "n_in Var(W)": _g(la.fan_in_var),
            "then": la.activation,
            "fwd factor": _g(la.forward_factor),
            "bwd factor": _g(la.backward_factor),
        }
        for la in result.layers
    )
    ok = all(la.recommendation.endswith("keep") for la in result.layers)
    sections = [
        Section(
            "Initialization audit",
            "ok" if ok else "warning",
            result.recommendation,
            rows,
            payload=to_jsonable(result),
        )
    ]
    mf = result.mean_field
    if mf is not None:
        sections.append(
            Section(
                "Mean-field theory of the hidden layers",
                "info",
                f"{mf.activation} with sigma_w^2 = {mf.sigma_w2:.3g}, sigma_b^2 = "
                f"{mf.sigma_b2:.3g}: {mf.phase} phase.",
                (
                    {"quantity": "q* (fixed point of the variance map)", "value": _g(mf.q_star)},
                    {"quantity": "chi1 (gradient factor per layer)", "value": _g(mf.chi1)},
                    {"quantity": "c* (fixed point of the correlation map)", "value": _g(mf.c_star)},
                    {
                        "quantity": "correlation depth scale xi_c (layers)",
                        "value": _g(mf.correlation_depth_scale),
                    },
                    {"quantity": "critical sigma_w^2", "value": _g(mf.critical_sigma_w2)},
                ),
            )
        )
    return sections


def _groups_text(groups: tuple[tuple[int, ...], ...] | None) -> str:
    if groups is None:
        return "-"
    if not groups:
        return "none"
    parts = [
        "{" + (",".join(map(str, g)) if len(g) <= 6 else f"{g[0]},...,{g[-1]} ({len(g)})") + "}"
        for g in groups[:4]
    ]
    return " ".join(parts) + (" ..." if len(groups) > 4 else "")


@to_sections.register
def _symmetry_sections(result: SymmetryReport, *, figures: bool = False) -> list[Section]:
    rows = []
    for la in result.layers:
        row: dict[str, Any] = {
            "layer": la.name,
            "units": la.units,
            "effective": la.effective_units,
            "tied groups": _groups_text(la.groups),
            "permanent": la.permanent,
            "downstream": la.downstream,
        }
        if la.activation_rank is not None:
            row["distinct activations"] = la.effective_activation_units
            row["activation rank"] = la.activation_rank
            row["dead"] = la.dead_units
        rows.append(row)
    status: Status = "error" if result.permanent else ("warning" if result.collapsed else "ok")
    return [
        Section(
            "Symmetric units",
            status,
            result.verdict,
            tuple(rows),
            payload=to_jsonable(result),
        )
    ]


@to_sections.register
def _recommend_sections(result: InitRecommendation, *, figures: bool = False) -> list[Section]:
    rows = tuple(
        {
            "scheme": c.scheme,
            "forward gain": _g(c.forward_gain),
            "backward gain": _g(c.backward_gain),
            "output corr": _g(c.output_correlation),
            "verdict": c.verdict,
            "score": _g(c.score),
        }
        for c in result.candidates
    )
    figs: tuple[Figure, ...] = ()
    if figures:
        b, a = result.before.called_layers, result.after.called_layers
        figs = (
            _rms_figure(
                [
                    ("forward gain, before", [r.forward_gain for r in b], "-o"),
                    (f"forward gain, {result.scheme}", [r.forward_gain for r in a], "-s"),
                    ("backward gain, before", [r.backward_gain for r in b], "--o"),
                    (f"backward gain, {result.scheme}", [r.backward_gain for r in a], "--s"),
                ],
                f"Before and after {result.scheme}",
                "gain",
            ),
        )
    applied = (
        "applied to the model"
        if result.applied
        else "not applied: --apply FILE.pt on the command line saves the fixed weights, "
        "apply=True in Python fixes the model"
    )
    if result.scheme == "current":  # a healthy model keeps its own initialization
        applied = "nothing to apply"
    verdict = (
        f"Best scheme: {result.scheme} ({applied}). Before: {result.before.verdict}, forward "
        f"gain {_g(result.before.forward_gain)}, backward gain "
        f"{_g(result.before.backward_gain)}. After: {result.after.verdict}, forward gain "
        f"{_g(result.after.forward_gain)}, backward gain {_g(result.after.backward_gain)}."
    )
    if result.message:
        verdict = f"{result.message} {verdict}"
    # the finding is the current initialization (as in the checkup and `stability probe`): a
    # re-initialization recommended over an unhealthy probe is an error, over a healthy probe
    # with layers to fix a warning; only a kept initialization that probes healthy is ok
    status: Status = (
        "error"
        if result.before.verdict != "healthy"
        else "ok"
        if result.scheme == "current" and result.after.verdict == "healthy"
        else "warning"
    )
    return [
        Section(
            "Initialization recommendation",
            status,
            verdict,
            rows,
            figs,
            payload=to_jsonable(result),
        ),
        *(
            dataclasses.replace(s, title=f"Signal propagation after {result.scheme}")
            if s.title == "Signal propagation at initialization"
            else s
            for s in to_sections(result.after, figures=figures)
        ),
    ]


@to_sections.register
def _demo_sections(result: SymmetryDemo, *, figures: bool = False) -> list[Section]:
    rows = (
        {
            "initialization": "constant",
            "effective units per hidden layer": str(result.effective_units_constant),
            "final loss": _g(result.loss_constant),
        },
        {
            "initialization": "xavier_uniform",
            "effective units per hidden layer": str(result.effective_units_xavier),
            "final loss": _g(result.loss_xavier),
        },
    )
    return [
        Section(
            "Symmetric MLP after training",
            "info",
            f"After {result.steps} SGD steps the constant-initialized MLP still has "
            f"{result.effective_units_constant} effective units per hidden layer of "
            f"{result.width}; the Xavier-initialized one has {result.effective_units_xavier}.",
            rows,
            payload=to_jsonable(result),
        )
    ]
