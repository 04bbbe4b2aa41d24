"""Distribution shift between training (source) and deployment (target) data.

>>> from nndoctor.shift import accuracy_gap_test
"""

from __future__ import annotations

from nndoctor.shift.adapt import AdaptationResult, adapt_on_drift
from nndoctor.shift.concept import (
    AccuracyDecomposition,
    AccuracyGapResult,
    ConditionalShiftResult,
    accuracy_gap_test,
    conditional_shift_test,
    decompose_accuracy_drop,
)
from nndoctor.shift.stream import (
    BatchTest,
    ChangeEvent,
    ChangePoint,
    MonitorReport,
    ShiftMonitor,
)

__all__ = [
    "AccuracyDecomposition",
    "AccuracyGapResult",
    "AdaptationResult",
    "BatchTest",
    "ChangeEvent",
    "ChangePoint",
    "ConditionalShiftResult",
    "MonitorReport",
    "ShiftMonitor",
    "accuracy_gap_test",
    "adapt_on_drift",
    "conditional_shift_test",
    "decompose_accuracy_drop",
]
