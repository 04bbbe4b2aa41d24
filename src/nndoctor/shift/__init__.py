"""Everything about train-vs-deploy distributions: tests, weights, label shift, accuracy estimates.

>>> from nndoctor.shift import ImportanceWeighter, LabelShiftEstimator
"""

from __future__ import annotations

from nndoctor.shift.covariate import (
    ImportanceWeighter,
    ImportanceWeightsResult,
    effective_sample_size,
)
from nndoctor.shift.label import LabelShiftEstimator, LabelShiftResult
from nndoctor.shift.performance import AccuracyEstimate, AccuracyEstimates, estimate_accuracy
from nndoctor.shift.weighting import WeightedLoss, to_sample_weight, weighted_sampler

__all__ = [
    "AccuracyEstimate",
    "AccuracyEstimates",
    "ImportanceWeighter",
    "ImportanceWeightsResult",
    "LabelShiftEstimator",
    "LabelShiftResult",
    "WeightedLoss",
    "effective_sample_size",
    "estimate_accuracy",
    "to_sample_weight",
    "weighted_sampler",
]
