"""Two-sample tests for distribution shift: MMD, per-feature KS/χ², classifier test, BBSD.

Functions in SciPy's manner (``statistic``, ``pvalue``, ``random_state``) returning frozen result
dataclasses with ``to_dict()``; NumPy, pandas and torch inputs. The implementations live in
private modules; this module is their public face.

>>> import numpy as np
>>> from nndoctor.shift.two_sample import mmd_test
>>> rng = np.random.default_rng(0)
>>> mmd_test(rng.normal(size=(50, 2)), rng.normal(size=(50, 2)), random_state=0).pvalue > 0.05
True
"""

from __future__ import annotations

from nndoctor.shift._bbsd import BBSDResult, bbsd_test
from nndoctor.shift._classifier_test import (
    ClassifierTestResult,
    classifier_test,
    combine_pvalues_dependent,
)
from nndoctor.shift._common import TwoSampleResult
from nndoctor.shift._detector import ShiftDetector
from nndoctor.shift._mmd import LINEAR_TIME_THRESHOLD, median_bandwidth, mmd_test
from nndoctor.shift._suite import ShiftTestReport, compare_samples
from nndoctor.shift._univariate import (
    FeatureDrift,
    FeatureTestResult,
    MissingnessTest,
    adjust_pvalues,
    chi2_test,
    feature_test,
    ks_test,
)

__all__ = [
    "LINEAR_TIME_THRESHOLD",
    "BBSDResult",
    "ClassifierTestResult",
    "FeatureDrift",
    "FeatureTestResult",
    "MissingnessTest",
    "ShiftDetector",
    "ShiftTestReport",
    "TwoSampleResult",
    "adjust_pvalues",
    "bbsd_test",
    "chi2_test",
    "classifier_test",
    "combine_pvalues_dependent",
    "compare_samples",
    "feature_test",
    "ks_test",
    "median_bandwidth",
    "mmd_test",
]
