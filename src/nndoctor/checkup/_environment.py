"""The checkup's environment stage: versions, threads, device and float limits."""

from __future__ import annotations

from nndoctor._environment import environment_report
from nndoctor.checkup._types import CheckupContext, Stage, StageOutcome, SummaryRow

__all__ = ["ENVIRONMENT_STAGE", "environment_stage"]


def environment_stage(ctx: CheckupContext) -> StageOutcome:
    """Read the versions, threads, device and float limits; one info row."""
    ctx.progress(0.0, "reading versions and float limits")
    env = environment_report()
    f32 = next(lim for lim in env.float_limits if lim.dtype == "float32")
    ctx.progress(1.0, "done")
    row = SummaryRow(
        stage="environment",
        finding=f"torch {env.torch} on {env.device}, {env.threads} threads",
        evidence=f"float32 max {f32.max:.3g}, smallest normal {f32.smallest_normal:.3g}",
        treatment="none needed",
        effect="-",
        severity="info",
    )
    return StageOutcome("environment", "Environment", (row,), (env,))


ENVIRONMENT_STAGE = Stage("environment", "Environment", environment_stage)
