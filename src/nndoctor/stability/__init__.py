"""Everything about signals inside a network: at initialization and while it trains.

* :func:`probe` — measured per-layer forward and backward moments beside mean-field theory;
* :mod:`~nndoctor.stability.theory` — variance and correlation maps, χ1, critical points;
* :func:`init_`, :func:`lsuv_`, :func:`audit_init` — initialization schemes and their audit;
* :func:`find_symmetric_units` — tied units and whether the tie is permanent;
* :func:`recommend_init` — try schemes, re-probe, keep the best;
* :class:`Monitor` — training-time vanishing/exploding gradients, dead and saturated units,
  symmetry and the first non-finite value.

>>> import torch
>>> from nndoctor.scenarios import deep_chain
>>> probe(deep_chain(30, 5.0), torch.ones(1, 1), dtype=torch.float64).verdict
'exploding'
"""

from __future__ import annotations

from nndoctor.stability import theory
from nndoctor.stability.init import (
    SCHEMES,
    InitAudit,
    LayerInitAudit,
    audit_init,
    init_,
    lsuv_,
)
from nndoctor.stability.monitor import Monitor
from nndoctor.stability.propagation import LayerRecord, ProbeFinding, PropagationReport, probe
from nndoctor.stability.recommend import CandidateScore, InitRecommendation, recommend_init
from nndoctor.stability.symmetry import SymmetryLayer, SymmetryReport, find_symmetric_units

__all__ = [
    "SCHEMES",
    "CandidateScore",
    "InitAudit",
    "InitRecommendation",
    "LayerInitAudit",
    "LayerRecord",
    "Monitor",
    "ProbeFinding",
    "PropagationReport",
    "SymmetryLayer",
    "SymmetryReport",
    "audit_init",
    "find_symmetric_units",
    "init_",
    "lsuv_",
    "probe",
    "recommend_init",
    "theory",
]
