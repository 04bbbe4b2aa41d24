"""Faults the default monitor must report quickly: no fault missed because of sampling."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from _monitor_helpers import data, mlp
from torch import nn

from nndoctor import Monitor
from nndoctor.exceptions import InvalidParameterError
from nndoctor.report._monitor import _monitor_log_sections
from nndoctor.stability.monitor._monitor import MAX_PERIOD


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


def _timed_run(model: nn.Module, steps: int, work: float, **kwargs: object) -> Monitor:
    """``steps`` training steps under the monitor, each with ``work`` seconds of the user's own
    work. The work is not done but added to the monitor's clock (its real readings plus an
    offset): the monitor's own cost stays measured for real, while the user's step is as long
    as asked whatever the machine's load, so that the budget's decisions do not depend on it."""
    X, y = data(d_in=8)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with Monitor(model, **kwargs) as mon:  # type: ignore[arg-type]
        real, offset = mon._clock, [0.0]
        mon._clock = lambda: real() + offset[0]
        for _ in range(steps):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(X[:64]), y[:64])
            loss.backward()
            offset[0] += work
            opt.step()
            mon.step(loss)
    return mon


def test_a_long_step_is_measured_in_full_on_every_tick() -> None:
    torch.manual_seed(0)
    mon = _timed_run(mlp(1, 8, d_in=8), 10, 1.0)
    acct = mon.overhead()
    assert acct["period"]["activations"] == 1
    assert acct["period"]["backward"] == 1
    assert acct["within_budget"]
    assert acct["overhead"] <= 0.05
    # one light tick early on to learn what a detailed one costs; then every tick in full
    assert acct["ticks"]["light"] <= 3
    assert acct["ticks"]["detailed"] >= 7


def test_a_tiny_step_is_sampled_and_the_accounting_says_what_it_costs() -> None:
    torch.manual_seed(0)
    mon = _timed_run(mlp(6, 8, d_in=8), 40, 0.0)
    acct = mon.overhead()
    # the hooks cost far more than 5 % of a sub-millisecond step: they are sampled
    assert acct["period"]["activations"] > 1
    assert acct["ticks"]["light"] > acct["ticks"]["detailed"]
    # never sampled: the non-finite check, gradient norms and the (estimated) update ratio
    assert acct["period"]["nonfinite"] == acct["period"]["update_ratio"] == 1
    # the accounting is consistent: its overhead is what the chosen period costs, and it
    # says so when even the cheapest schedule cannot keep the budget
    assert acct["overhead"] == pytest.approx(mon._cost(acct["period"]["activations"]))
    assert acct["within_budget"] == (acct["overhead"] <= 0.05)
    # the floor is what no period removes: the cost of the light ticks alone
    assert acct["floor"] > 0
    assert acct["floor"] == pytest.approx(acct["own_s"]["light"] / acct["step_s"])
    if not acct["within_budget"]:
        assert acct["period"]["activations"] == MAX_PERIOD
    log = mon.summary()
    assert log.sampling["period"]["activations"] == acct["period"]["activations"]
    ticks = list(mon._tick_records())
    detailed = [r["sampling"]["detailed"] for r in ticks]
    assert detailed.count(True) == acct["ticks"]["detailed"]
    # the activation statistics are absent on light ticks, present on detailed ones
    dead = log.series["dead_fraction"]["1"]  # the first ReLU
    assert [not math.isnan(v) for v in dead] == detailed
    # even at the longest period, the gap between two detailed ticks is at most MAX_PERIOD
    gaps = np.diff([i for i, d in enumerate(detailed) if d])
    assert gaps.max() <= MAX_PERIOD


def test_budget_none_measures_everything_on_every_tick() -> None:
    torch.manual_seed(0)
    mon = _timed_run(mlp(3, 8, d_in=8), 10, 0.0, budget=None)
    assert mon.overhead()["ticks"] == {"detailed": 10, "light": 0}
    assert all(r["sampling"]["detailed"] for r in mon._tick_records())


@pytest.mark.parametrize("budget", [0, -1, True, "5%"])
def test_a_bad_budget_says_what_to_pass(budget: object) -> None:
    with pytest.raises(InvalidParameterError, match="budget must be None or a positive"):
        Monitor(nn.Linear(2, 2), budget=budget)  # type: ignore[arg-type]


def test_with_every_the_accounting_counts_the_ticks_only() -> None:
    torch.manual_seed(0)
    mon = _timed_run(mlp(3, 8, d_in=8), 20, 0.0, every=5)
    ticks = mon.overhead()["ticks"]
    assert ticks["detailed"] + ticks["light"] == 4
    assert ticks["detailed"] >= 1  # the first tick is always detailed


@pytest.mark.parametrize("budget", [0.05, 1e-9])
@pytest.mark.parametrize("onset", range(25, 25 + MAX_PERIOD))
@pytest.mark.parametrize("fault", ["dead_units", "saturation"])
def test_a_late_fault_of_a_sampled_quantity_is_reported_within_five_steps(
    fault: str, onset: int, budget: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Onset at steps 25 to 25 + MAX_PERIOD - 1 (every phase of the longest period), after the
    schedule has started sampling at that period.

    The period is pinned to MAX_PERIOD: what the schedule would choose depends on the machine's
    timing (on a loaded machine the measured extra cost of a detailed tick can read as zero,
    and then nothing is sampled), while the guarantee under test holds for every period."""
    monkeypatch.setattr(Monitor, "_choose_period", lambda self: MAX_PERIOD)
    torch.manual_seed(0)
    model = mlp(3, 16, act=nn.ReLU if fault == "dead_units" else nn.Tanh)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    X, y = data()
    reported = None
    with Monitor(model, budget=budget) as mon:
        for step in range(1, 36):
            if step == onset:
                with torch.no_grad():
                    if fault == "dead_units":
                        model[2].bias.fill_(-100.0)  # every unit of ReLU "3" dead
                    else:
                        model[2].weight.mul_(100.0)  # tanh "3" on its flat ends
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(X[:64]), y[:64])
            loss.backward()
            opt.step()
            found = [f for f in mon.step(loss) if f.check == fault and f.layer == "3"]
            if found and reported is None:
                reported = step
        light = mon.overhead()["ticks"]["light"]
    assert light >= 5  # the schedule was sampling
    assert reported is not None
    assert onset <= reported <= onset + 5


def _estimated_series(model: nn.Module, steps: int) -> list[float]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    mon = Monitor(model, update_every=1000)
    _run(model, opt, steps, mon)
    series = mon.summary().series["update_ratio"]
    return [float(v) for n in "024" for v in series[n][1:]]


def test_the_estimate_is_the_same_through_the_matrix_and_through_index_add(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Small models sum the sample per layer with a matrix product; large ones with index_add."""
    torch.manual_seed(0)
    by_matrix = _estimated_series(mlp(2, 64), 6)
    monkeypatch.setattr("nndoctor.stability.monitor._monitor._MATRIX_MAX", 0)
    torch.manual_seed(0)
    by_index = _estimated_series(mlp(2, 64), 6)
    assert len(by_matrix) == 15
    np.testing.assert_allclose(by_index, by_matrix, rtol=1e-5)


def test_the_sample_follows_a_parameter_whose_storage_is_replaced() -> None:
    """``p.data = ...`` between steps: the strided views are made again, the estimate holds."""
    torch.manual_seed(0)
    model = mlp(2, 64)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = data()
    with Monitor(model, update_every=1000) as mon:
        for i in range(6):
            if i == 3:
                w = model[2].weight
                w.data = w.data.clone()  # new storage; the old views would see no change
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(X[:64]), y[:64])
            loss.backward()
            opt.step()
            mon.step(loss)
    ratios = mon.summary().series["update_ratio"]["2"]
    assert all(float(r) > 1e-4 for r in ratios[1:]), ratios


def test_on_the_cpu_time_the_thread_sleeps_or_waits_is_not_the_users_step() -> None:
    """The budget's clock on the CPU is the training thread's CPU time: a loop that sleeps
    (or waits for a core on a loaded machine) between steps does not make a tiny step look
    long, so the monitor still samples."""
    torch.manual_seed(0)
    model = mlp(6, 8, d_in=8)
    X, y = data(d_in=8)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with Monitor(model) as mon:
        for _ in range(30):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(X[:64]), y[:64])
            loss.backward()
            time.sleep(0.02)  # wall time, no work of the user's thread
            opt.step()
            mon.step(loss)
    acct = mon.overhead()
    assert acct["step_s"] < 0.01  # the step as timed: without the 20 ms sleeps
    assert acct["ticks"]["light"] >= 10


def test_at_period_one_a_light_tick_now_and_then_keeps_the_light_cost_measured() -> None:
    """A light cost measured once, early (slow first steps), could hold the period at 1."""
    torch.manual_seed(0)
    mon = _timed_run(mlp(1, 8, d_in=8), 40, 1.0)
    acct = mon.overhead()
    assert acct["period"]["activations"] == 1
    assert acct["ticks"]["light"] <= 40 // 4  # still mostly detailed
    detailed = [rec["sampling"]["detailed"] for rec in mon._tick_records()]
    assert not all(detailed[20:])  # a light tick late in the run, not only the early one


def test_over_budget_the_report_says_what_the_every_tick_work_alone_costs() -> None:
    """On a sub-millisecond step even the light ticks exceed 5 %: the report says by how much,
    so the user knows that no period keeps the budget (and why)."""
    torch.manual_seed(0)
    mon = _timed_run(mlp(6, 8, d_in=8), 40, 0.0)
    acct = mon.overhead()
    assert not acct["within_budget"]
    assert acct["floor"] > 0.05
    log = mon.summary()
    assert log.sampling["floor"] == pytest.approx(acct["floor"])
    (section,) = [s for s in _monitor_log_sections(log) if s.title == "Training monitor: sampling"]
    assert "over budget even at the longest period" in section.verdict
    assert f"(the every-tick work alone: {acct['floor']:.1%}; Monitor(every=k)" in section.verdict
