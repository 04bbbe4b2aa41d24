"""The backward signal the monitor reports is dL/dy of each layer output, in awkward cases too."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nndoctor import Monitor


class _Halves(nn.Module):
    """A layer whose output comes out of a multi-output node (the second half of an unbind)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 16) / 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.w).view(-1, 2, 8).unbind(1)[1]


class _Offset(nn.Module):
    """Returns its parameter itself (a leaf: no grad_fn), broadcast by the caller."""

    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.randn(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.p


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(6, 8)
        self.act = nn.ReLU(inplace=True)  # modifies a's output in place
        self.b = _Halves()
        self.c = _Offset()
        self.d = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.a(x))
        h = self.b(h) + self.c(h)
        return self.d(torch.tanh(h))


def _reference(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """RMS of dL/dy per layer output, from tensor hooks registered in forward hooks."""
    grads: dict[str, torch.Tensor] = {}
    handles = []
    for name, mod in model.named_modules():
        if name in ("a", "b", "c", "d"):

            def fwd(m: nn.Module, args: object, out: torch.Tensor, name: str = name) -> None:
                out.register_hook(lambda g: grads.__setitem__(name, g.detach().clone()))

            handles.append(mod.register_forward_hook(fwd))
    nn.functional.cross_entropy(model(x), y).backward()
    for h in handles:
        h.remove()
    return {n: float(g.norm()) / math.sqrt(g.numel()) for n, g in grads.items()}


def test_backward_signal_of_in_place_multi_output_and_leaf_outputs() -> None:
    torch.manual_seed(0)
    model = _Net()
    x, y = torch.randn(5, 6), torch.randint(0, 3, (5,))
    ref = _reference(model, x, y)
    model.zero_grad()
    with Monitor(model) as mon:
        nn.functional.cross_entropy(model(x), y).backward()
        mon.step()
    got = {k: v[-1] for k, v in mon.summary().series["backward_rms"].items()}
    assert set(got) == set(ref)  # the in-place, multi-output and leaf cases are all measured
    for name, value in ref.items():
        assert got[name] == pytest.approx(value, rel=1e-5), name
