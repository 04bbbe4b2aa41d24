"""Everything about train-vs-deploy distributions: detect, weigh, diagnose.

Two-sample tests (:mod:`nndoctor.shift.two_sample`): :func:`mmd_test`, :func:`ks_test`,
:func:`chi2_test`, :func:`feature_test`, :func:`classifier_test`, :func:`bbsd_test`, and the
reusable :class:`ShiftDetector`.
"""

from __future__ import annotations

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
    "BBSDResult",
    "ClassifierTestResult",
    "FeatureDrift",
    "FeatureTestResult",
    "ShiftDetector",
    "ShiftTestReport",
    "TwoSampleResult",
    "adjust_pvalues",
    "bbsd_test",
    "chi2_test",
    "classifier_test",
    "compare_samples",
    "feature_test",
    "ks_test",
    "mmd_test",
]
