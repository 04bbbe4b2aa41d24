"""Shared test configuration."""

from __future__ import annotations

import os

import matplotlib
import torch

os.environ.setdefault("COLUMNS", "120")
matplotlib.use("Agg")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
