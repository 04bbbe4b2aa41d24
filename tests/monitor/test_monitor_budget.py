"""Faults the default monitor must report quickly: no fault missed because of sampling."""

from __future__ import annotations

import math

import pytest
import torch
from _monitor_helpers import data, mlp
from torch import nn

from nndoctor import Monitor


def _run(
    model: nn.Module, opt: torch.optim.Optimizer, steps: int, mon: Monitor, arm: int = 0
) -> dict[tuple[str, str], int]:
    """Train; return, per (check, layer), the step at which the finding was first reported."""
    X, y = data()
    reported: dict[tuple[str, str], int] = {}
    with mon:
        for i in range(1, steps + 1):
            if arm:
                model[2].armed = i == arm
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(X[:64]), y[:64])
            loss.backward()
            opt.step()
            for f in mon.step(loss):
                reported.setdefault((f.check, f.layer), i)
    return reported


def test_adam_at_a_large_learning_rate_is_reported_within_five_steps() -> None:
    torch.manual_seed(0)
    model = mlp(2, 32)
    opt = torch.optim.Adam(model.parameters(), lr=0.5)
    mon = Monitor(model)
    reported = _run(model, opt, 12, mon)
    steps = [s for (check, _), s in reported.items() if check == "update_ratio"]
    assert steps, reported
    assert min(steps) <= 5
    found = [f for f in mon.findings if f.check == "update_ratio"]
    assert any("estimated" in f.message for f in found)


def test_one_param_group_at_1000x_the_learning_rate_is_reported_within_five_steps() -> None:
    torch.manual_seed(0)
    model = mlp(2, 32)  # layers "0", "2", "4"
    hot = model[2]
    others = [p for m in (model[0], model[4]) for p in m.parameters()]
    opt = torch.optim.Adam(
        [{"params": others, "lr": 1e-4}, {"params": list(hot.parameters()), "lr": 0.1}]
    )
    reported = _run(model, opt, 12, Monitor(model))
    high = {layer: s for (check, layer), s in reported.items() if check == "update_ratio"}
    assert high.get("2", 99) <= 5
    assert set(high) == {"2"}


class _Poison(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.log(h - 1e3) if self.armed else h


def test_a_nan_at_a_late_step_is_reported_at_that_very_step() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), _Poison(), nn.Linear(16, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = Monitor(model, on_nonfinite="skip")
    reported = _run(model, opt, 32, mon, arm=30)
    assert [s for (check, _), s in reported.items() if check == "nonfinite"] == [30]
    assert mon.nonfinite[0].step == 30
    assert mon.nonfinite[0].op == "aten.log.default"


@pytest.mark.parametrize("lr", [1e-3, 0.5])
def test_the_estimated_update_ratio_tracks_the_exact_one(lr: float) -> None:
    """Same run twice (bitwise identical training): estimate vs exact, per layer and step."""
    ratios = []
    for update_every in (1, 1000):
        torch.manual_seed(0)
        model = mlp(2, 64)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        mon = Monitor(model, update_every=update_every)
        _run(model, opt, 10, mon)
        series = mon.summary().series["update_ratio"]
        ratios.append([float(v) for n in "024" for v in series[n][1:]])
    exact, est = ratios
    errors = sorted(abs(e / x - 1) for e, x in zip(est, exact, strict=True) if x > 0)
    assert len(errors) == 27
    # layer "4" (4x64 weight + bias = 260 coordinates) is read almost whole; the 64x64 layer
    # from 256 of 4160 coordinates: a relative error of order 1/sqrt(2 * 256) ~ 0.05
    assert errors[len(errors) // 2] < 0.1
    assert errors[-1] < 0.3
    assert all(math.isfinite(e) for e in est)
