"""Worked examples: data generators and models with a known truth, each teaching one lesson.

>>> from nndoctor.scenarios import digits_data
>>> data = digits_data(random_state=0)
>>> data.X_train.shape[1]
64
"""

from __future__ import annotations

from nndoctor.scenarios.digits import DigitsData, digits_data, digits_mlp
from nndoctor.scenarios.shift import (
    SHIFT_SCENARIOS,
    ScenarioData,
    ScenarioFiles,
    cartoon_digits,
    drifting_stream,
    flu_season,
    soda_regions,
)

__all__ = [
    "SHIFT_SCENARIOS",
    "DigitsData",
    "ScenarioData",
    "ScenarioFiles",
    "cartoon_digits",
    "digits_data",
    "digits_mlp",
    "drifting_stream",
    "flu_season",
    "soda_regions",
]
