"""Sections for the shift scenarios: the lesson as the verdict, the truth as a table, a plot."""

from __future__ import annotations

from typing import Any

import numpy as np

from nndoctor.report._figures import figure_to_png_base64, new_figure
from nndoctor.report._section import Figure, Section, to_sections
from nndoctor.scenarios.shift import ScenarioData, ScenarioFiles, _truth_items

__all__: list[str] = []

_PREVIEW = 8  # images per row in the cartoon preview
_SCATTER = 600  # points per panel in the scatter plots


def _truth_rows(data: ScenarioData) -> tuple[dict[str, Any], ...]:
    rows: list[dict[str, Any]] = [
        {"item": "kind of shift", "value": data.kind},
        {"item": "source", "value": f"{data.source_name}: {len(data.source)} rows"},
        {"item": "target", "value": f"{data.target_name}: {len(data.target)} rows"},
        {"item": "label column", "value": data.label},
    ]
    rows.extend({"item": key, "value": text} for key, text in _truth_items(data.truth))
    rows.append({"item": "treatment", "value": data.treatment})
    return tuple(rows)


def _figure(data: ScenarioData) -> Figure:
    if data.name == "cartoon_digits":
        return _digits_figure(data)
    if data.time is not None:
        return _stream_figure(data)
    if data.name == "soda_regions":
        return _soda_figure(data)
    return _prior_figure(data)


def _digits_figure(data: ScenarioData) -> Figure:
    fig, ax = new_figure(width=6.4, height=1.9)
    fig.delaxes(ax)
    axes = fig.subplots(2, _PREVIEW)
    cols = list(data.features)
    for row, (frame, name) in enumerate(
        ((data.source, data.source_name), (data.target, data.target_name))
    ):
        for k in range(_PREVIEW):  # the first image of digit k in each table
            a = axes[row, k]
            match = frame[frame[data.label] == k]
            if len(match):
                image = match[cols].to_numpy(dtype=float)[0].reshape(8, 8)
                a.imshow(image, cmap="gray_r", vmin=0, vmax=16)
            a.set_xticks([])
            a.set_yticks([])
        axes[row, 0].set_ylabel(name, fontsize=8)
    return Figure(
        "Digits 0-7 as photos (top) and as cartoons (bottom)",
        figure_to_png_base64(fig),
        alt="one photo and one cartoon of each digit from 0 to 7",
    )


def _prior_figure(data: ScenarioData) -> Figure:
    fig, ax = new_figure(width=5.0, height=3.0)
    x = np.arange(len(data.classes))
    for offset, frame, name in (
        (-0.2, data.source, data.source_name),
        (0.2, data.target, data.target_name),
    ):
        share = frame[data.label].value_counts(normalize=True)
        ax.bar(x + offset, [share.get(c, 0.0) for c in data.classes], width=0.4, label=name)
    ax.set_xticks(x, [str(c) for c in data.classes])
    ax.set_ylabel(f"share of {data.label}")
    ax.legend()
    return Figure(
        f"Class prevalence: {data.source_name} vs {data.target_name}",
        figure_to_png_base64(fig),
        alt="bar chart of the label distribution in each table",
    )


def _soda_figure(data: ScenarioData) -> Figure:
    fig, ax = new_figure(width=6.4, height=2.8)
    fig.delaxes(ax)
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    colours = {"pop": "tab:orange", "soda": "tab:blue", "coke": "tab:red"}
    for a, frame, name in ((axes[0], data.source, data.source_name),
                           (axes[1], data.target, data.target_name)):  # fmt: skip
        part = frame.iloc[:_SCATTER]
        for label, colour in colours.items():
            sel = part[part[data.label] == label]
            a.scatter(sel["sugar_g"], sel["caffeine_mg"], s=5, c=colour, label=label)
        a.set_title(name, fontsize=9)
        a.set_xlabel("sugar (g/100 ml)")
    axes[0].set_ylabel("caffeine (mg/l)")
    axes[1].legend(fontsize=8, markerscale=2)
    return Figure(
        "Same drinks, other names: what each region calls them",
        figure_to_png_base64(fig),
        alt="scatter of sugar against caffeine coloured by name, one panel per region",
    )


def _stream_figure(data: ScenarioData) -> Figure:
    fig, ax = new_figure(width=6.4, height=2.8)
    fig.delaxes(ax)
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    stream = data.target
    for a, part, name in ((axes[0], data.source.iloc[-_SCATTER:], "training window"),
                          (axes[1], stream.iloc[-_SCATTER:], "end of the stream")):  # fmt: skip
        for label, colour in zip(data.classes, ("tab:blue", "tab:orange"), strict=False):
            sel = part[part[data.label] == label]
            a.scatter(sel["x1"], sel["x2"], s=4, c=colour, label=f"{data.label}={label}")
        a.set_title(name, fontsize=9)
        a.set_xlabel("x1")
    axes[0].set_ylabel("x2")
    axes[1].legend(fontsize=8, markerscale=2)
    return Figure(
        "The labelling rule has turned by the end of the stream",
        figure_to_png_base64(fig),
        alt="scatter of x1 against x2 coloured by label, before and after the drift",
    )


@to_sections.register
def _scenario_sections(data: ScenarioData, *, figures: bool = False) -> list[Section]:
    return [
        Section(
            f"Scenario {data.name}: {data.kind} shift",
            "info",
            data.lesson,
            _truth_rows(data),
            (_figure(data),) if figures else (),
            payload=data.to_dict(),
        )
    ]


@to_sections.register
def _files_sections(result: ScenarioFiles, *, figures: bool = False) -> list[Section]:
    files = Section(
        "Files written",
        "ok",
        f"Tables and README written to {result.directory}.",
        tuple({"file": key, "path": path} for key, path in result.files.items()),
        payload={"directory": result.directory, "files": dict(result.files)},
    )
    return [*to_sections(result.scenario, figures=figures), files]
