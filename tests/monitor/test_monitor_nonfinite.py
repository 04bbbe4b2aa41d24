"""The first non-finite value is localized to its op, module, source line and step."""

from __future__ import annotations

import pytest
import torch
from _monitor_helpers import data
from torch import nn

from nndoctor import Monitor
from nndoctor.exceptions import NNDoctorWarning, NonFiniteError
from nndoctor.stability.monitor import locate_nonfinite, read_log


class Fault(nn.Module):
    """A block that misbehaves only when ``armed``."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.armed = False

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not self.armed:
            return h
        if self.kind == "log":
            return torch.log(h - 10.0)  # FAULT-LOG: log of a negative
        if self.kind == "sqrt":
            return torch.sqrt(h * 0.0) + h  # FAULT-SQRT: finite forward, inf in backward
        if self.kind == "exp":
            return torch.exp(h * 1e4)  # FAULT-EXP: overflow
        return h / (h - h)  # FAULT-DIV: division by zero


def _net(kind: str) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(16, 16),
        nn.ReLU(),
        nn.Sequential(nn.Linear(16, 16), Fault(kind)),
        nn.Linear(16, 4),
    )


def _run(model: nn.Sequential, mon: Monitor, steps: int, arm_at: int) -> None:
    X, y = data()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for i in range(1, steps + 1):
        model[2][1].armed = i == arm_at
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(X[:32]), y[:32])
        loss.backward()
        opt.step()
        mon.step(loss)


@pytest.mark.parametrize(
    ("kind", "op", "phase", "marker"),
    [
        ("log", "aten.log.default", "forward", "FAULT-LOG"),
        ("sqrt", "SqrtBackward0", "backward", "FAULT-SQRT"),
        ("exp", "aten.exp.default", "forward", "FAULT-EXP"),
        ("div", "aten.div.Tensor", "forward", "FAULT-DIV"),
    ],
)
def test_seeded_fault_is_localized(kind: str, op: str, phase: str, marker: str) -> None:
    model = _net(kind)
    with Monitor(model) as mon, pytest.raises(NonFiniteError) as info:
        _run(model, mon, 3, arm_at=3)
    err = info.value
    assert err.step == 3
    assert err.module == "2.1"
    assert op in (err.op or "")
    loc = mon.nonfinite[0]
    assert loc.phase == phase
    assert loc.module_type == "Fault"
    assert marker in loc.source
    assert __file__ in loc.source
    if phase == "backward":
        assert loc.backward_node == "SqrtBackward0"
        assert loc.forward_op == "torch.sqrt"
        assert (loc.op or "").startswith("aten.")
    # on "raise" the parameters are those of before the failing step: all finite
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert mon.n_hooks == 0
    assert [f.check for f in mon.findings] == ["nonfinite"]


def test_warn_keeps_going_and_skip_undoes_the_step(tmp_path: object) -> None:
    model = _net("log")
    with Monitor(model, on_nonfinite="warn") as mon, pytest.warns(NNDoctorWarning, match="log"):
        _run(model, mon, 2, arm_at=2)
    assert mon.nonfinite[0].op == "aten.log.default"
    assert not all(torch.isfinite(p).all() for p in model.parameters())  # warn changes nothing

    model = _net("div")
    X, y = data()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    with Monitor(model, on_nonfinite="skip").watch(opt) as mon:
        for i in range(1, 5):
            model[2][1].armed = i == 2
            opt.zero_grad()
            nn.functional.cross_entropy(model(X[:32]), y[:32]).backward()
            opt.step()
    assert [loc.step for loc in mon.nonfinite] == [2]
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert mon.step_count == 4


def test_loss_fault_outside_the_model_and_log_record(tmp_path: object) -> None:
    from pathlib import Path

    log_dir = Path(str(tmp_path))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 4))
    X, _ = data()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with Monitor(model, log_dir=log_dir) as mon:
        opt.zero_grad()
        out = model(X[:8])
        loss = torch.log(out.abs() * 0.0).mean()  # -inf loss, from finite outputs
        loss.backward()
        opt.step()
        with pytest.raises(NonFiniteError) as info:
            mon.step(loss)
    assert info.value.module == "(loss)"
    log = read_log(log_dir)
    assert log.nonfinite[0].phase == "loss"
    assert log.findings[0].check == "nonfinite"


def test_locate_nonfinite_function() -> None:
    x = torch.tensor([1.0, -1.0], requires_grad=True)
    loc = locate_nonfinite(lambda: torch.log(x).sum())
    assert loc is not None
    assert loc.op == "aten.log.default"
    assert locate_nonfinite(lambda: (x * 2).sum()) is None
