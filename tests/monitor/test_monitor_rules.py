"""Each seeded fault is detected at the right layer and step; a healthy run is quiet."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _monitor_helpers import data, he_, mlp, train
from torch import nn

from nndoctor import Monitor
from nndoctor.exceptions import InvalidParameterError
from nndoctor.stability.monitor import CHECKS, Finding, MonitorThresholds


def _serious(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity != "info"]


def test_vanishing_in_deep_sigmoid_mlp_with_default_init() -> None:
    torch.manual_seed(0)
    model = mlp(10, 32, nn.Sigmoid)
    with Monitor(model) as mon:
        train(model, 2, monitor=mon)
    van = [f for f in mon.findings if f.check == "vanishing"]
    assert van, mon.findings
    first = van[0]
    assert first.step == 1
    assert first.severity in ("warning", "error")
    # judged on the backward signal across depth: the shallowest layers are the weakest
    assert first.layer in ("0", "2", "4")
    assert first.value < MonitorThresholds().vanishing_depth_ratio
    assert not any(f.check == "exploding" for f in mon.findings)


def test_uniform_vanishing_is_caught_although_weight_gradient_ratio_is_near_one() -> None:
    # a tanh chain with small weights: every layer shrinks the backward signal by the same
    # factor, the first/last *weight*-gradient ratio stays O(1), the backward signal does not
    torch.manual_seed(0)
    model = mlp(8, 32, nn.Tanh)
    he_(model, gain=0.35)
    with Monitor(model) as mon:
        train(model, 1, monitor=mon)
    rec = mon.summary()
    g = rec.series["grad_norm"]
    assert 0.01 < g["0"][0] / g["16"][0] < 100  # weight-gradient ratio not alarming
    assert any(f.check == "vanishing" and f.step == 1 for f in mon.findings)


def test_exploding_when_weights_are_three_times_he() -> None:
    torch.manual_seed(0)
    model = he_(mlp(8, 32), gain=3.0)
    with Monitor(model) as mon:
        train(model, 2, monitor=mon, lr=1e-6)
    exp = [f for f in mon.findings if f.check == "exploding"]
    assert exp, mon.findings
    assert exp[0].step == 1
    assert exp[0].layer == "0"
    assert exp[0].value > MonitorThresholds().exploding_depth_ratio
    assert "clip" in exp[0].remedy


def test_gradient_spike_against_running_median() -> None:
    torch.manual_seed(0)
    model = he_(mlp(3, 32))
    rules = MonitorThresholds(spike_min_history=5)
    with Monitor(model, rules=rules) as mon:
        train(
            model,
            14,
            monitor=mon,
            lr=1e-3,
            loss_hook=lambda i, loss: loss * (1e4 if i == 12 else 1),
        )
    spikes = [f for f in mon.findings if f.check == "exploding"]
    assert spikes
    assert {f.step for f in spikes} == {12}
    assert all(f.value > rules.spike_factor for f in spikes)


def test_dead_units_after_bias_minus_five() -> None:
    torch.manual_seed(0)
    model = mlp(4, 32)  # PyTorch's default init
    with torch.no_grad():
        model[4].bias.fill_(-5.0)  # the ReLU at index 5 never fires
    with Monitor(model) as mon:
        train(model, 3, monitor=mon)
    dead = [f for f in mon.findings if f.check == "dead_units"]
    assert (dead[0].layer, dead[0].step, dead[0].severity) == ("5", 1, "error")
    # downstream layers only see the biases now; nothing upstream is flagged
    assert all(int(f.layer) > 5 for f in dead[1:])
    assert dead[0].value == 1.0
    assert "fed by 4" in dead[0].message


def test_saturation_of_tanh_with_large_weights() -> None:
    torch.manual_seed(0)
    model = he_(mlp(3, 32, nn.Tanh), gain=6.0)
    with Monitor(model) as mon:
        train(model, 3, monitor=mon, lr=1e-4)
    sat = [f for f in mon.findings if f.check == "saturation"]
    assert sat
    assert sat[0].step == 1  # the streak started at step 1 and lasted `patience` ticks
    assert sat[0].layer in ("1", "3", "5")


def test_symmetry_with_constant_init_is_persistent() -> None:
    model = mlp(3, 16)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.1)
            nn.init.zeros_(m.bias)
    with Monitor(model, symmetry_every=5) as mon:
        train(model, 11, monitor=mon)
    sym = [f for f in mon.findings if f.check == "symmetry"]
    assert {f.layer for f in sym} == {"0", "2", "4"}
    assert all(f.severity == "error" and f.step == 1 and f.value == 1.0 for f in sym)
    eff = mon.summary().series["effective_units"]["2"]
    measured = eff[~torch.isnan(torch.from_numpy(eff)).numpy()]
    assert measured.tolist() == [1.0, 1.0, 1.0]  # ticks 1, 6, 11: the tie never breaks


def test_healthy_he_relu_mlp_trained_200_steps_has_no_warning() -> None:
    torch.manual_seed(0)
    model = he_(mlp(4, 32))
    with Monitor(model) as mon:
        losses = train(model, 200, monitor=mon, lr=0.02)
    assert losses[-1] < losses[0]
    assert _serious(mon.findings) == []


def test_healthy_cnn_with_global_pooling_is_not_called_vanishing() -> None:
    """Early feature maps have thousands of entries per sample and the logits ten: the RMS per
    entry of dL/dy falls ~100x from the logits back to the first conv in a healthy CNN, so the
    depth rule compares per-sample gradient norms instead."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )  # fmt: skip
    for m in model:
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    x, y = torch.randn(8, 3, 96, 96), torch.randint(0, 10, (8,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with Monitor(model) as mon:
        for _ in range(3):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            mon.step(loss)
    # the last tick that measured it (within a budget, not every tick does)
    rms = {k: v[~np.isnan(v)][-1] for k, v in mon.summary().series["backward_rms"].items()}
    assert rms["0"] / rms["8"] < MonitorThresholds().vanishing_depth_ratio  # per entry: tiny
    assert [f for f in mon.findings if f.check == "vanishing"] == []


def test_findings_fields_are_typed() -> None:
    torch.manual_seed(0)
    model = mlp(10, 16, nn.Sigmoid)
    with Monitor(model) as mon:
        train(model, 1, monitor=mon)
    for f in mon.findings:
        assert f.check in CHECKS
        assert f.severity in ("info", "warning", "error")
        assert isinstance(f.step, int)
        assert isinstance(f.value, float)
        assert f.message
        assert f.remedy
        assert math.isfinite(f.threshold)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"patience": 0}, "patience"),
        ({"dead_fraction": 1.5}, "fraction"),
        ({"spike_factor": -1.0}, "spike_factor"),
        ({"clip_factor": float("nan")}, "clip_factor"),
    ],
)
def test_invalid_thresholds_raise(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        MonitorThresholds(**kwargs)  # type: ignore[arg-type]


def test_invalid_monitor_arguments_raise() -> None:
    model = mlp(1, 4)
    with pytest.raises(InvalidParameterError, match="on_nonfinite"):
        Monitor(model, on_nonfinite="ignore")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="every"):
        Monitor(model, every=0)
    with pytest.raises(InvalidParameterError, match="clip"):
        Monitor(model, clip=-1.0)
    with pytest.raises(InvalidParameterError, match="quantities"):
        Monitor(model, quantities=("grad_norm", "hessian"))  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="not open"):
        Monitor(model).step()


def test_clip_auto_clips_at_factor_times_running_median() -> None:
    torch.manual_seed(0)
    model = he_(mlp(2, 16))
    X, y = data()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    rules = MonitorThresholds(spike_min_history=3, clip_factor=2.0)
    with Monitor(model, clip="auto", rules=rules).watch(opt) as mon:
        for i in range(6):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(X[:32]), y[:32]) * (100.0 if i == 5 else 1)
            loss.backward()
            opt.step()
            if i == 5:
                total = torch.sqrt(sum(p.grad.square().sum() for p in model.parameters()))
        log = mon.summary()
    assert "clipped_at" not in mon._tick_records()[0]
    clipped_at = mon._tick_records()[-1]["clipped_at"]
    assert float(total) == pytest.approx(clipped_at, rel=1e-4)
    assert clipped_at == pytest.approx(
        2.0 * float(torch.tensor(log.grad_norm_total[:5]).median()), rel=0.5
    )
