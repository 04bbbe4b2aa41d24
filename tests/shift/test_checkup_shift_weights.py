"""The checkup's shift-correction stage: finds the embedded label shift and measures the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nndoctor.checkup import CheckupContext, run_checkup
from nndoctor.checkup._shift_weights import SHIFT_CORRECTION_STAGE
from nndoctor.report import to_sections


def test_embedded_stage_finds_the_label_shift_and_reports_the_effect() -> None:
    seen: list[float] = []
    ctx = CheckupContext(random_state=0, progress=lambda f, t: seen.append(f))
    result = run_checkup(stages=[SHIFT_CORRECTION_STAGE], context=ctx)
    (row,) = result.summary
    assert row.severity == "warning"
    assert "label shift" in row.finding
    assert "accuracy" in row.effect
    before, after = (float(v) for v in row.effect.removeprefix("accuracy ").split(" -> "))
    assert after > before
    label_result = result.stages[0].results[0]
    assert np.all(label_result.weights[:3] > 1.5)  # digits 0-2 are 10x as common
    assert seen[-1] == 1.0
    titles = [s.title for s in to_sections(result)]
    assert any("Label shift" in t for t in titles)


def test_embedded_stage_is_reproducible() -> None:
    """Same seed, same JSON: the accuracy estimate's bootstrap interval is seeded too (it drew
    fresh entropy, so two checkups disagreed in its ci_low / ci_high)."""
    ctx = CheckupContext(random_state=0)
    first, second = (
        run_checkup(stages=[SHIFT_CORRECTION_STAGE], context=ctx).to_json() for _ in range(2)
    )
    assert first == second


def test_stage_on_user_tables(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    src, tgt = tmp_path / "s.csv", tmp_path / "t.csv"
    pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"]).assign(y=np.arange(200) % 2).to_csv(
        src, index=False
    )
    pd.DataFrame(rng.normal(4, 1, size=(100, 2)), columns=["a", "b"]).to_csv(tgt, index=False)
    ctx = CheckupContext(source=str(src), target=str(tgt), label="y")
    (row,) = run_checkup(stages=[SHIFT_CORRECTION_STAGE], context=ctx).summary
    assert row.severity == "warning"
    assert "barely overlap" in row.finding
