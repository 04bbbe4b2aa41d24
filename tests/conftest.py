"""Shared test configuration."""

from __future__ import annotations

import os

import matplotlib
import torch
from hypothesis import settings

# CI must be deterministic: Hypothesis draws the same examples on every run and keeps no example
# database (a saved failing example in .hypothesis/ would make one machine fail forever and
# another pass). HYPOTHESIS_PROFILE=explore draws fresh examples for a local bug hunt.
settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

os.environ.setdefault("COLUMNS", "120")
matplotlib.use("Agg")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
