"""The monitor never changes the computation, and leaves nothing behind."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from _monitor_helpers import data, he_, mlp, train
from torch import nn

from nndoctor import Monitor
from nndoctor.stability.monitor import MonitorThresholds


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _dropout_bn_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(16, 32),
        nn.Tanh(),
        nn.Dropout(0.2),
        nn.Linear(32, 32),
        nn.ReLU(),
        nn.BatchNorm1d(32),
        nn.Linear(32, 4),
    )


def test_monitored_run_is_bitwise_identical_to_unmonitored() -> None:
    torch.manual_seed(0)
    a, b = _dropout_bn_net(), _dropout_bn_net()
    b.load_state_dict(a.state_dict())
    torch.manual_seed(1)
    train(a, 12)
    torch.manual_seed(1)
    with Monitor(b, symmetry_every=4) as mon:
        train(b, 12, monitor=mon)
    for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    assert mon.step_count == 12


@pytest.mark.parametrize("budget", [0.05, 1e-9, None])
def test_bitwise_identity_holds_under_sampling(budget: float | None) -> None:
    """Light ticks (hooks off, estimated norms) change nothing either; 1e-9 forces sampling."""
    torch.manual_seed(0)
    a, b = _dropout_bn_net(), _dropout_bn_net()
    b.load_state_dict(a.state_dict())
    torch.manual_seed(1)
    train(a, 16)
    torch.manual_seed(1)
    with Monitor(b, budget=budget) as mon:
        train(b, 16, monitor=mon)
    for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    light = mon.overhead()["ticks"]["light"]
    if budget is None:
        assert light == 0
    if budget == 1e-9:
        assert light >= 8


def test_hooks_are_removed_when_the_loop_raises() -> None:
    model = mlp(2, 8)
    before = (sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()),)
    seen: list[int] = []

    def loop_that_raises(mon: Monitor) -> None:
        with mon:
            train(model, 2, monitor=mon)
            seen.append(mon.n_hooks)
            raise RuntimeError("boom")

    mon = Monitor(model)
    with pytest.raises(RuntimeError, match="boom"):
        loop_that_raises(mon)
    assert seen[0] > 0
    after = (sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()),)
    assert after == before
    assert mon.n_hooks == 0
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = Monitor(model).watch(opt)
    assert opt._optimizer_step_post_hooks
    with pytest.raises(RuntimeError, match="boom"), mon:
        raise RuntimeError("boom")
    assert not opt._optimizer_step_pre_hooks
    assert not opt._optimizer_step_post_hooks


def test_every_and_watch_and_validation_passes() -> None:
    torch.manual_seed(0)
    model = he_(mlp(2, 16))
    X, y = data()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with Monitor(model, every=3).watch(opt) as mon:
        for _ in range(7):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(X[:32]), y[:32])
            mon.record_loss(loss)
            loss.backward()
            with torch.no_grad():
                model.eval()
                model(X)  # a validation pass is not measured
                model.train()
            opt.step()
    log = mon.summary()
    assert log.steps.tolist() == [3, 6]
    assert not math.isnan(log.loss[0])
    # update ratio at a tick is the change made by that tick's step alone
    assert log.series["update_ratio"]["0"][0] < 0.05


def test_gradient_accumulation_reports_at_optimizer_steps() -> None:
    torch.manual_seed(0)
    model = he_(mlp(2, 16))
    X, y = data()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with Monitor(model) as mon:
        for _ in range(2):
            opt.zero_grad()
            for k in range(4):  # 4 micro-batches per optimizer step
                loss = nn.functional.cross_entropy(
                    model(X[8 * k : 8 * k + 8]), y[8 * k : 8 * k + 8]
                )
                (loss / 4).backward()
            with torch.no_grad():  # what the 4 micro-batches saw, as one full-batch pass
                expected_mean = float(model[1](model[0](X[:32])).mean())
            opt.step()
            mon.step()
        grads = torch.sqrt(sum(p.grad.square().sum() for p in model[0].parameters()))
    log = mon.summary()
    assert log.steps.tolist() == [1, 2]
    assert log.series["grad_norm"]["0"][-1] == pytest.approx(float(grads), rel=1e-5)
    # the activation statistics cover all 32 examples of the step
    assert log.series["act_mean"]["1"][-1] == pytest.approx(expected_mean, rel=1e-5)


def test_grad_scaler_gradients_are_reported_unscaled() -> None:
    results = {}
    for use_scaler in (False, True):
        torch.manual_seed(0)
        model = he_(mlp(2, 16))
        X, y = data()
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10) if use_scaler else None
        with Monitor(model, scaler=scaler) as mon:
            for _ in range(2):
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(X[:32]), y[:32])
                if scaler is None:
                    loss.backward()
                    opt.step()
                else:
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                mon.step(loss)
        log = mon.summary()
        results[use_scaler] = (log.series["grad_norm"]["0"], log.series["backward_rms"]["0"])
    for plain, scaled in zip(results[False], results[True], strict=True):
        assert scaled.tolist() == pytest.approx(plain.tolist(), rel=1e-5)


def test_grad_scaler_skipped_steps_are_not_errors() -> None:
    torch.manual_seed(0)
    model = he_(mlp(2, 16))
    X, y = data()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    with Monitor(model, scaler=scaler) as mon:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(X[:32]), y[:32])
        scaler.scale(loss * float("inf")).backward()
        scaler.step(opt)
        scaler.update()
        mon.step()
    assert mon.findings == []
    assert mon._tick_records()[0]["scaler_skipped"] is True


def test_background_judge_gives_the_same_findings_and_log(tmp_path: Path) -> None:
    from nndoctor.stability.monitor import read_log

    out = []
    for background in (False, True):
        torch.manual_seed(0)
        model = mlp(3, 16)
        with torch.no_grad():
            model[2].bias.fill_(-5.0)
        log_dir = tmp_path / str(background)
        with Monitor(model, background=background, log_dir=log_dir) as mon:
            train(model, 6, monitor=mon)
            inside = list(mon.findings)  # reading findings waits for the judge
        out.append((inside, read_log(log_dir).series["grad_norm"]["0"].tolist()))
    assert out[0] == out[1]
    assert out[0][0]


def test_unused_frozen_layers_and_float64() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(16, 16), nn.Tanh())
            self.unused = nn.Linear(3, 3)
            self.head = nn.Linear(16, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.body(x))

    torch.manual_seed(0)
    model = Net().double()
    X, y = data()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    rules = MonitorThresholds(spike_min_history=2)
    with Monitor(model, rules=rules) as mon:
        for _ in range(4):
            opt.zero_grad()
            nn.functional.cross_entropy(model(X[:16].double()), y[:16]).backward()
            opt.step()
            mon.step()
    log = mon.summary()
    assert math.isnan(log.series["grad_norm"]["unused"][-1])
    assert "unused" not in log.series["update_ratio"]
    assert mon.findings == []
    assert mon._engine._n_history == 4  # the unused layer does not stop the running median


def test_micro_batches_give_the_full_batch_statistics() -> None:
    """Activation modules of different widths (ReLU and tanh), 4 micro-batches vs one batch."""

    def run(micro: int) -> dict[str, dict[str, list[float]]]:
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3)
        )
        with torch.no_grad():
            model[0].bias[:4] = -50.0  # 4 of 16 ReLU units dead
            model[2].weight.mul_(8.0)  # some tanh outputs saturate
        g = torch.Generator().manual_seed(1)
        X, y = torch.randn(32, 6, generator=g), torch.randint(0, 3, (32,), generator=g)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        with Monitor(model) as mon:
            opt.zero_grad()
            size = 32 // micro
            for k in range(micro):
                part = slice(size * k, size * (k + 1))
                loss = nn.functional.cross_entropy(model(X[part]), y[part])
                (loss / micro).backward()
            opt.step()
            mon.step()
        return mon.summary().series

    one, four = run(1), run(4)
    assert four["dead_fraction"]["1"][0] == pytest.approx(0.25)
    assert one["saturation_fraction"]["3"][0] > 0
    for key, layer in [
        ("act_mean", "1"),
        ("act_std", "1"),
        ("act_mean", "3"),
        ("act_std", "3"),
        ("dead_fraction", "1"),
        ("saturation_fraction", "3"),
        ("backward_rms", "0"),
        ("backward_rms", "4"),
        ("grad_norm", "2"),
        ("update_ratio", "2"),
    ]:
        assert four[key][layer][0] == pytest.approx(one[key][layer][0], rel=1e-4), (key, layer)
