"""What the monitor copies and when: the update-ratio schedule and the CPU pre-step check."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from _monitor_helpers import data, he_, mlp
from torch import nn

from nndoctor import Monitor
from nndoctor.exceptions import NonFiniteError


class _Poison(nn.Module):
    """Identity, or a log of a negative number (NaN) when ``armed``."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.log(h - 1e3) if self.armed else h


def _poisoned() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 16), nn.ReLU(), _Poison(), nn.Linear(16, 4))


def _count_snapshots(mon: Monitor) -> list[int]:
    steps: list[int] = []
    take = mon._take_snapshot

    def counting(valid_for: int) -> None:
        steps.append(valid_for)
        take(valid_for)

    mon._take_snapshot = counting  # type: ignore[method-assign]
    return steps


@pytest.mark.parametrize("mode", ["raise", "skip"])
def test_nonfinite_gradient_is_caught_before_the_step_without_a_routine_copy(mode: str) -> None:
    model = _poisoned()
    X, y = data()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = Monitor(model, on_nonfinite=mode, update_every=1000)  # type: ignore[arg-type]
    copies = _count_snapshots(mon)
    before: list[torch.Tensor] = []
    with mon:
        for i in range(1, 7):
            model[2].armed = i == 5
            before = [p.detach().clone() for p in model.parameters()]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(X[:32]), y[:32])
            loss.backward()
            opt.step()  # applies the NaN gradient at step 5
            if mode == "raise" and i == 5:
                with pytest.raises(NonFiniteError) as info:
                    mon.step(loss)
                assert info.value.step == 5
                assert info.value.module == "2"
                break
            mon.step(loss)
    # copies: step 1 (the update ratio's first tick and the check not yet seen to run) and the
    # failing step 5, copied before the optimizer applied it; no routine copy at steps 2-4
    assert copies == [1, 5]
    assert mon.nonfinite[0].op == "aten.log.default"
    if mode == "raise":  # the weights are those before the failing step, bitwise
        for p, b in zip(model.parameters(), before, strict=True):
            assert torch.equal(p, b)
    else:
        assert all(torch.isfinite(p).all() for p in model.parameters())
        assert mon.step_count == 6


def _fail_at_step_4(
    mon: Monitor, model: nn.Sequential, update: Callable[[], None], zero: Callable[[], None]
) -> None:
    """Train 4 steps with the NaN fault armed at step 4; the weights must end as before it."""
    X, y = data()
    before: list[torch.Tensor] = []
    raised = False
    with mon:
        for i in range(1, 5):
            model[2].armed = i == 4
            before = [p.detach().clone() for p in model.parameters()]
            zero()
            loss = nn.functional.cross_entropy(model(X[:32]), y[:32])
            loss.backward()
            update()
            try:
                mon.step(loss)
            except NonFiniteError:
                raised = True
    assert raised
    for p, b in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, b)


def test_a_loop_without_torch_optim_keeps_the_copy_per_tick() -> None:
    """Without an optimizer the pre-step check never runs: the weights are copied every tick."""
    model = _poisoned()
    mon = Monitor(model, update_every=1000)
    copies = _count_snapshots(mon)

    def zero() -> None:
        for p in model.parameters():
            p.grad = None

    def update() -> None:
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.05 * p.grad  # type: ignore[operator]

    _fail_at_step_4(mon, model, update, zero)
    assert copies == [1, 2, 3, 4]


def test_gpu_strategy_copies_every_tick_simulated_on_the_cpu() -> None:
    """On a GPU the pre-step check (a host read) is off: the weights are copied every tick."""
    model = _poisoned()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = Monitor(model, update_every=1000)
    copies = _count_snapshots(mon)
    mon.open()
    mon._global_handle.remove()  # what open() does off the CPU: no pre-step hook
    mon._global_handle = None
    mon._on_cpu = False
    _fail_at_step_4(mon, model, opt.step, opt.zero_grad)
    assert copies == [1, 2, 3, 4]


def test_update_ratio_schedule_is_exact_on_its_sampled_ticks() -> None:
    torch.manual_seed(0)
    model = he_(mlp(2, 16))
    X, y = data()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    expected: dict[int, float] = {}
    with Monitor(model, every=2, update_every=3) as mon:
        for step in range(1, 15):
            w0 = [p.detach().clone() for p in model[0].parameters()]
            opt.zero_grad()
            nn.functional.cross_entropy(model(X[:32]), y[:32]).backward()
            opt.step()
            mon.step()
            new = [p.detach() for p in model[0].parameters()]
            delta = sum(float((p - b).square().sum()) for p, b in zip(new, w0, strict=True))
            norm = sum(float(p.square().sum()) for p in new)
            expected[step] = math.sqrt(delta / norm)
    log = mon.summary()
    assert log.steps.tolist() == [2, 4, 6, 8, 10, 12, 14]
    ratio = log.series["update_ratio"]["0"]
    assert not any(math.isnan(r) for r in ratio)  # known on every tick
    ticks = list(mon._tick_records())
    exact = [i for i, rec in enumerate(ticks) if not rec.get("update_ratio_estimated")]
    assert exact == [0, 3, 6]  # exact on the first tick, then every 3rd tick
    for i, r in enumerate(ratio):
        # elsewhere estimated from 256 of the layer's 272 coordinates
        rel = 1e-5 if i in exact else 0.1
        assert r == pytest.approx(expected[int(log.steps[i])], rel=rel)
    assert not any(math.isnan(v) for v in log.series["weight_norm"]["0"])  # every tick


def test_quantities_turn_hooks_off() -> None:
    torch.manual_seed(0)
    model = he_(mlp(2, 16))
    X, y = data()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    full = Monitor(model).open()
    n_full = full.n_hooks
    full.close()
    with Monitor(model, quantities=("grad_norm", "weight_norm")).watch(opt) as mon:
        # two ReLU hooks fewer, the optimizer's pre- and post-step hooks more
        assert mon.n_hooks == n_full
        for _ in range(2):
            opt.zero_grad()
            nn.functional.cross_entropy(model(X[:32]), y[:32]).backward()
            opt.step()
    series = mon.summary().series
    assert "act_mean" not in series
    assert "backward_rms" not in series
    assert "update_ratio" not in series
    assert len(series["grad_norm"]["0"]) == 2


def test_relu_unit_sums_give_the_same_statistics_as_unit_maxima() -> None:
    """ReLU records carry unit sums (two reductions); the general path carries unit maxima."""

    def run(unit_sums: bool, micro: int) -> dict[str, dict[str, list[float]]]:
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(4 * 36, 12),
            nn.ReLU6(),
            nn.Linear(12, 8),
            nn.LeakyReLU(),
            nn.Linear(8, 3),
        )
        with torch.no_grad():
            model[0].bias[:2] = -50.0  # 2 of 4 channels dead
            model[3].bias[:3] = -50.0  # 3 of 12 units dead
        g = torch.Generator().manual_seed(1)
        X, y = torch.randn(16, 1, 6, 6, generator=g), torch.randint(0, 3, (16,), generator=g)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        with Monitor(model) as mon:
            assert mon._collector is not None
            mon._collector.unit_sums = unit_sums
            for _ in range(2):
                opt.zero_grad()
                for k in range(micro):
                    part = slice(16 // micro * k, 16 // micro * (k + 1))
                    loss = nn.functional.cross_entropy(model(X[part]), y[part]) / micro
                    loss.backward()
                opt.step()
                mon.step()
        return mon.summary().series

    for micro in (1, 2):
        fast, general = run(True, micro), run(False, micro)
        assert fast["dead_fraction"]["1"][-1] == pytest.approx(0.5)
        assert fast["dead_fraction"]["4"][-1] >= 0.25
        for key in ("act_mean", "act_std", "dead_fraction"):
            for layer in ("1", "4", "6"):
                assert fast[key][layer] == pytest.approx(general[key][layer], rel=1e-5)


def test_closure_steps_are_measured_after_their_backward() -> None:
    """``optimizer.step(closure)`` runs backward inside the step: no pre-step measurement."""
    torch.manual_seed(0)
    model = he_(mlp(2, 16))
    X, y = data()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    norms: list[float] = []
    with Monitor(model) as mon:
        for k in range(3):

            def closure(k: int = k) -> torch.Tensor:
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(X[32 * k : 32 * k + 32]), y[:32])
                loss.backward()
                return loss

            opt.step(closure)
            norms.append(
                math.sqrt(sum(float(p.grad.square().sum()) for p in model[0].parameters()))
            )
            mon.step()
    assert mon.summary().series["grad_norm"]["0"] == pytest.approx(norms, rel=1e-5)
