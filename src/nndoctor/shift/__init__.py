"""Everything about train-vs-deploy distributions: detect, weigh, diagnose, monitor, adapt.

Two-sample tests (:mod:`nndoctor.shift.two_sample`): :func:`mmd_test`, :func:`ks_test`,
:func:`chi2_test`, :func:`feature_test`, :func:`classifier_test`, :func:`bbsd_test`, and the
reusable :class:`ShiftDetector`. Weights (:mod:`~nndoctor.shift.covariate`,
:mod:`~nndoctor.shift.label`) and accuracy estimates (:mod:`~nndoctor.shift.performance`).
Concept tests (:mod:`~nndoctor.shift.concept`), the diagnosis (:func:`diagnose`), streaming
monitors (:class:`ShiftMonitor`) and adaptation (:func:`adapt_on_drift`).

>>> from nndoctor.shift import ImportanceWeighter, LabelShiftEstimator, diagnose
"""

from __future__ import annotations

# The Dask engine: its modules register their entry points (shift/_engines.py), which the public
# functions call for a Dask input. They import Dask itself only inside their functions.
from nndoctor.shift import _dask, _dask_mmd, _dask_sample, _dask_suite  # noqa: F401
from nndoctor.shift.adapt import AdaptationResult, adapt_on_drift
from nndoctor.shift.concept import (
    AccuracyDecomposition,
    AccuracyGapResult,
    ConditionalShiftResult,
    accuracy_gap_test,
    conditional_shift_test,
    decompose_accuracy_drop,
)
from nndoctor.shift.covariate import (
    ImportanceWeighter,
    ImportanceWeightsResult,
    effective_sample_size,
)
from nndoctor.shift.diagnose import Evidence, Recommendation, ShiftDiagnosis, diagnose
from nndoctor.shift.label import LabelShiftEstimator, LabelShiftResult
from nndoctor.shift.performance import (
    AccuracyEstimate,
    AccuracyEstimates,
    MetricEstimate,
    estimate_accuracy,
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
    MissingnessTest,
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
from nndoctor.shift.weighting import WeightedLoss, to_sample_weight, weighted_sampler

__all__ = [
    "AccuracyDecomposition",
    "AccuracyEstimate",
    "AccuracyEstimates",
    "AccuracyGapResult",
    "AdaptationResult",
    "BBSDResult",
    "BatchTest",
    "ChangeEvent",
    "ChangePoint",
    "ClassifierTestResult",
    "ConditionalShiftResult",
    "Evidence",
    "FeatureDrift",
    "FeatureTestResult",
    "ImportanceWeighter",
    "ImportanceWeightsResult",
    "LabelShiftEstimator",
    "LabelShiftResult",
    "MetricEstimate",
    "MissingnessTest",
    "MonitorReport",
    "Recommendation",
    "ShiftDetector",
    "ShiftDiagnosis",
    "ShiftMonitor",
    "ShiftTestReport",
    "TwoSampleResult",
    "WeightedLoss",
    "accuracy_gap_test",
    "adapt_on_drift",
    "adjust_pvalues",
    "bbsd_test",
    "chi2_test",
    "classifier_test",
    "compare_samples",
    "conditional_shift_test",
    "decompose_accuracy_drop",
    "diagnose",
    "effective_sample_size",
    "estimate_accuracy",
    "feature_test",
    "ks_test",
    "mmd_test",
    "to_sample_weight",
    "weighted_sampler",
]
