"""Sections for the checkup's results: a summary table, then each stage (and the shift stage's
table of scenarios). The checkup registers them with :func:`nndoctor.report.to_sections` when it
is imported, so the report never imports the checkup (it sits below it).

One verdict everywhere: a stage's summary rows are the checkup's verdict, and the sections of the
results behind them are never more alarming than their row (a correctly diagnosed scenario is a
warning in the summary, so its diagnosis is not an error below it).
"""

from __future__ import annotations

from dataclasses import replace

from nndoctor._results import to_jsonable
from nndoctor.checkup._shift import ShiftScenarioTable
from nndoctor.checkup._types import CheckupResult, Severity, StageOutcome
from nndoctor.report import Section, Status, to_sections

__all__: list[str] = []

_RANK = {"ok": 0, "info": 0, "warning": 1, "error": 2}


def _cap(stage: StageOutcome, label: str) -> Severity:
    """The verdict a result's sections may not exceed: the summary row that names the result's
    label ("soda_regions: concept shift ..."), else the stage's most severe row."""
    if label:
        for row in stage.summary:
            if row.finding.startswith(f"{label}:"):
                return row.severity
    worst: Severity = "ok"
    for row in stage.summary:
        if _RANK[row.severity] > _RANK[worst]:
            worst = row.severity
    return worst


@to_sections.register
def _checkup_sections(result: CheckupResult, *, figures: bool = False) -> list[Section]:
    worst = result.worst_severity()
    n_err = sum(row.severity == "error" for row in result.summary)
    n_warn = sum(row.severity == "warning" for row in result.summary)
    n_issues = n_err + n_warn
    verdict = (
        "No problem found."
        if n_issues == 0
        else f"{n_issues} finding(s) need attention ({n_err} error(s), {n_warn} warning(s)); "
        "each has a treatment and its measured effect."
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
            cap = _cap(stage, label)
            for s in to_sections(item, figures=figures):
                status = s.status
                if _RANK[status] > _RANK[cap]:
                    status = cap
                title = f"{label}: {s.title}" if label else s.title
                sections.append(replace(s, title=title, status=status))
    return sections


@to_sections.register
def _scenario_table_sections(result: ShiftScenarioTable, *, figures: bool = False) -> list[Section]:
    n_right = sum(r.right for r in result.rows)
    # as in the checkup's summary: a shift diagnosed right is a warning, a wrong one an error
    shifted = any(not r.truth.startswith("none") for r in result.rows)
    status: Status = "error" if n_right < len(result.rows) else "warning" if shifted else "ok"
    verdict = (
        f"{n_right} of {len(result.rows)} scenarios diagnosed right (with {result.n_target_labels} "
        "labeled target rows). Without labels concept shift stays invisible: soda_regions looks "
        "like no shift at all."
    )
    rows = tuple(
        {
            "scenario": r.scenario,
            "truth": r.truth,
            "without labels": r.diagnosis_without_labels,
            "with labels": r.diagnosis_with_labels,
            "right": "yes" if r.right else "NO",
            "treatment": r.treatment,
            "effect": r.effect,
        }
        for r in result.rows
    )
    return [Section("Shift scenarios: truth vs diagnosis", status, verdict, rows,
                    payload=to_jsonable(result))]  # fmt: skip
