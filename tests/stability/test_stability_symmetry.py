"""find_symmetric_units: constant init stays collapsed through training; random init does not."""

from __future__ import annotations

import numpy as np
import pytest
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


@pytest.mark.parametrize(("cls", "gates"), [(nn.LSTM, 4), (nn.GRU, 3)])
def test_recurrent_units_tie_within_one_layer_and_direction(
    cls: type[nn.RNNBase], gates: int
) -> None:
    # a multi-layer, bidirectional RNN has a group of hidden units per layer and direction; the
    # symmetry check once put unit j of every layer and direction in one row (4 units, not 16)
    from nndoctor.stability._layers import unit_rows
    from nndoctor.stability.monitor._quantities import layer_effective_units

    torch.manual_seed(0)
    hidden = 4
    rnn = cls(3, hidden, num_layers=2, bidirectional=True)
    with torch.no_grad():  # units 1 and 2 of layer 1, reverse direction: every gate row equal
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            t = getattr(rnn, f"{kind}_l1_reverse")
            for g in range(gates):
                t[g * hidden + 2] = t[g * hidden + 1]
    groups = unit_rows(rnn)
    assert [tuple(r.shape) for r in groups] == [
        (hidden, gates * (3 + hidden + 2)),
        (hidden, gates * (3 + hidden + 2)),
        (hidden, gates * (2 * hidden + hidden + 2)),
        (hidden, gates * (2 * hidden + hidden + 2)),
    ]
    j = 3  # a unit's row: its rows of every gate, gate by gate, of that layer's own weights
    expected = torch.cat(
        [
            torch.cat([getattr(rnn, f"{k}_l1_reverse")[g * hidden + j].reshape(-1)
                       for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")])
            for g in range(gates)
        ]
    )  # fmt: skip
    assert torch.equal(groups[3][j], expected)
    layer = find_symmetric_units(rnn).layers[0]
    assert (layer.units, layer.effective_units) == (4 * hidden, 4 * hidden - 1)
    assert layer.groups == ((3 * hidden + 1, 3 * hidden + 2),)
    eff, units = layer_effective_units(rnn, 1e-6)  # the monitor counts the same units
    assert (float(eff), units) == (layer.effective_units, layer.units)


def test_attention_units_tie_within_query_key_or_value() -> None:
    # a query unit equal to a key unit is no tie: they feed different computations
    mha = nn.MultiheadAttention(4, 2)
    with torch.no_grad():
        mha.in_proj_weight[4] = mha.in_proj_weight[0]  # key unit 0 := query unit 0
        mha.in_proj_bias[4] = mha.in_proj_bias[0]
        mha.in_proj_weight[9] = mha.in_proj_weight[8]  # value units 0 and 1 tied
        mha.in_proj_bias[9] = mha.in_proj_bias[8]
    layer = find_symmetric_units(nn.Sequential(mha)).layers[0]
    assert layer.units == 12
    assert layer.groups == ((8, 9),)
