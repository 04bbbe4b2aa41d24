"""find_symmetric_units: constant init stays collapsed through training; random init does not."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nndoctor.scenarios import symmetric_mlp, symmetry_demo
from nndoctor.stability import find_symmetric_units
from nndoctor.stability.symmetry import tie_groups


def test_constant_mlp_trained_100_steps_keeps_one_effective_unit() -> None:
    demo = symmetry_demo(width=24, depth=2, steps=100)
    assert demo.effective_units_constant == (1, 1)
    assert demo.effective_units_xavier == (24, 24)
    constant, xavier = demo.reports
    assert constant.layers[0].permanent
    assert constant.permanent
    assert not xavier.collapsed  # type: ignore[attr-defined]


def test_tie_is_not_permanent_when_outgoing_weights_differ() -> None:
    model = symmetric_mlp(width=8)
    with torch.no_grad():
        model[2].weight[:, 3] += 0.5  # unit 3 of layer 0 is treated differently downstream
    report = find_symmetric_units(model)
    first = report.layers[0]
    assert first.effective_units == 1
    assert not first.permanent
    assert (3,) not in first.permanent_groups
    assert sorted(i for g in first.permanent_groups for i in g) == [0, 1, 2, 4, 5, 6, 7]


def test_dropout_between_breaks_permanence() -> None:
    model = nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.5), nn.Linear(6, 2))
    with torch.no_grad():
        model[0].weight.fill_(0.3)
        model[0].bias.zero_()
        model[2].weight.fill_(0.2)
    layer = find_symmetric_units(model).layers[0]
    assert layer.effective_units == 1
    assert not layer.permanent
    assert layer.downstream == "unknown"


def test_with_inputs_reports_duplicate_columns_rank_and_dead_units() -> None:
    model = symmetric_mlp(width=8, activation="relu")
    report = find_symmetric_units(model, torch.randn(32, 8))
    layer = report.layers[0]
    assert layer.activation_rank == 1
    assert layer.effective_activation_units == 1
    torch.manual_seed(0)
    random = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    with torch.no_grad():
        random[0].bias[:4] = -100.0  # four dead units
    r = find_symmetric_units(random, torch.randn(64, 8)).layers[0]
    assert r.dead_units == 4
    assert r.effective_units == 16
    assert r.effective_activation_units == 13  # the four dead columns are one group
    assert r.activation_rank == 12  # the live units (ReLU raises the rank above 8 inputs)


def test_conv_channels_are_units() -> None:
    conv = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 4, 3))
    with torch.no_grad():
        conv[0].weight[1] = conv[0].weight[0]
        conv[0].bias[1] = conv[0].bias[0]
        conv[2].weight[:, 1] = conv[2].weight[:, 0]
    layer = find_symmetric_units(conv, torch.randn(2, 3, 8, 8)).layers[0]
    assert layer.groups == ((0, 1),)
    assert layer.permanent
    assert layer.effective_units == 5


def test_tie_groups_tolerance() -> None:
    rows = np.array([[1.0, 2.0], [1.0 + 1e-9, 2.0], [1.1, 2.0], [5.0, 5.0], [5.0, 5.0]])
    assert tie_groups(rows, atol=1e-6, rtol=0) == [[0, 1], [3, 4]]
    assert tie_groups(rows, atol=0, rtol=0) == [[3, 4]]
