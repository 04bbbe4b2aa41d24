"""Sections for :class:`nndoctor.checkup.CheckupResult`: a summary table, then each stage."""

from __future__ import annotations

from dataclasses import replace

from nndoctor.checkup import CheckupResult
from nndoctor.report._section import Section, to_sections

__all__: list[str] = []


@to_sections.register
def _checkup_sections(result: CheckupResult, *, figures: bool = False) -> list[Section]:
    worst = result.worst_severity()
    n_issues = sum(row.severity in ("warning", "error") for row in result.summary)
    verdict = (
        "No problem found."
        if n_issues == 0
        else f"{n_issues} finding(s) need attention; each has a treatment and its measured effect."
    )
    summary = Section(
        "Checkup summary",
        worst,
        verdict,
        tuple(
            {
                "stage": r.stage,
                "severity": r.severity,
                "finding": r.finding,
                "evidence": r.evidence,
                "treatment": r.treatment,
                "effect": r.effect,
            }
            for r in result.summary
        ),
    )
    sections = [summary]
    for stage in result.stages:
        for i, item in enumerate(stage.results):
            label = stage.labels[i] if i < len(stage.labels) else ""
            for s in to_sections(item, figures=figures):
                sections.append(replace(s, title=f"{label}: {s.title}") if label else s)
    return sections
