"""Everything about train-vs-deploy distributions: detect, weigh, diagnose, monitor, adapt.

Two-sample tests (:mod:`nndoctor.shift.two_sample`): :func:`mmd_test`, :func:`ks_test`,
:func:`chi2_test`, :func:`feature_test`, :func:`classifier_test`, :func:`bbsd_test`, and the
reusable :class:`ShiftDetector`. Weights (:mod:`~nndoctor.shift.covariate`,
:mod:`~nndoctor.shift.label`) and accuracy estimates (:mod:`~nndoctor.shift.performance`).
Concept tests (:mod:`~nndoctor.shift.concept`), the diagnosis (:func:`diagnose`), streaming
monitors (:class:`ShiftMonitor`) and adaptation (:func:`adapt_on_drift`).

>>> from nndoctor.shift import ShiftMonitor, mmd_test
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
from nndoctor.shift.two_sample import (
    BBSDResult,
    ClassifierTestResult,
    FeatureDrift,
    FeatureTestResult,
    ShiftDetector,
    ShiftTestReport,
    TwoSampleResult,
    adjust_pvalues,
    bbsd_test,
    chi2_test,
    classifier_test,
    compare_samples,
    feature_test,
    ks_test,
    mmd_test,
)

__all__ = [
    "AccuracyDecomposition",
    "AccuracyGapResult",
    "AdaptationResult",
    "BBSDResult",
    "BatchTest",
    "ChangeEvent",
    "ChangePoint",
    "ClassifierTestResult",
    "ConditionalShiftResult",
    "FeatureDrift",
    "FeatureTestResult",
    "MonitorReport",
    "ShiftDetector",
    "ShiftMonitor",
    "ShiftTestReport",
    "TwoSampleResult",
    "accuracy_gap_test",
    "adapt_on_drift",
    "adjust_pvalues",
    "bbsd_test",
    "chi2_test",
    "classifier_test",
    "compare_samples",
    "conditional_shift_test",
    "decompose_accuracy_drop",
    "feature_test",
    "ks_test",
    "mmd_test",
]
