"""probe()'s two ways of recording (wrapped forwards, global hooks) agree and leave no trace."""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook

from nndoctor.exceptions import DataValidationError, InvalidParameterError
from nndoctor.stability import probe
from nndoctor.stability.propagation import (
    LayerRecord,
    _activation_of,
    _can_wrap,
    _new_record,
    _records_for,
)
from nndoctor.stability.theory import activation_of


def _same(a: Any, b: Any) -> bool:
    """Equal, bit for bit, with NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and str(a) == str(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class _Twice(nn.Module):
    """Calls one linear layer twice and owns a parameter beside its children."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 6)
        self.act = nn.Tanh()
        self.gain = nn.Parameter(torch.full((6,), 0.9))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(self.act(self.lin(x))) * self.gain


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn(self.conv(x))
        out += x  # in place, between two module calls
        return self.act(out)


def _cases() -> list[tuple[str, Callable[[], nn.Module], Callable[[], Any]]]:
    return [
        (
            "cnn",
            lambda: nn.Sequential(
                nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), _Residual(), nn.Flatten()
            ),
            lambda: torch.randn(3, 3, 6, 6),
        ),
        (
            "twice",
            lambda: nn.Sequential(nn.Linear(5, 6), _Twice(), nn.LeakyReLU(0.2)),
            lambda: torch.randn(4, 5),
        ),
        (
            "transformer",
            lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
            lambda: torch.randn(2, 3, 8),
        ),
        (
            "embedding",
            lambda: nn.Sequential(nn.Embedding(7, 4), nn.LayerNorm(4), nn.Linear(4, 2)),
            lambda: torch.randint(0, 7, (3, 5)),
        ),
    ]


@pytest.mark.parametrize("name", ["cnn", "twice", "transformer", "embedding"])
def test_wrapped_and_hooked_recording_give_the_same_report(name: str) -> None:
    _, make, data = next(c for c in _cases() if c[0] == name)
    torch.manual_seed(0)
    model, x = make(), data()
    assert _can_wrap(*_records_for(model))
    wrapped = probe(model, x).to_dict()
    # a forward pre-hook of a recorded module's own (it may change the input) makes the probe
    # fall back to global hooks; a global hook does too
    first = next(m for m in model.modules() if next(m.parameters(False), None) is not None)
    handle = first.register_forward_pre_hook(lambda m, inp: None)
    try:
        assert not _can_wrap(*_records_for(model))
        hooked = probe(model, x).to_dict()
    finally:
        handle.remove()
    assert _same(wrapped, hooked)
    handle = register_module_forward_hook(lambda m, inp, out: None)
    try:
        global_hooked = probe(model, x).to_dict()
    finally:
        handle.remove()
    assert _same(wrapped, global_hooked)
    assert [r["call"] for r in wrapped["layers"] if r["name"] == "1.lin"] == (
        [1, 2] if name == "twice" else []
    )


def _traces(model: nn.Module) -> list[str]:
    return [
        name
        for name, m in model.named_modules()
        if "forward" in m.__dict__ or m._forward_hooks or m._forward_pre_hooks
    ]


def test_no_wrapper_is_left_behind_even_when_the_passes_raise() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    probe(model, torch.randn(5, 4))
    assert _traces(model) == []
    with pytest.raises(DataValidationError):
        probe(model, torch.randn(5, 3))
    assert _traces(model) == []

    def bad_loss(out: torch.Tensor) -> torch.Tensor:
        raise ValueError("boom")

    with pytest.raises(InvalidParameterError, match="boom"):
        probe(model, torch.randn(5, 4), loss_fn=bad_loss)
    assert _traces(model) == []


def test_a_module_with_its_own_forward_attribute_is_probed_and_kept() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    plain = probe(model, torch.ones(3, 4)).to_dict()
    own = model[0].forward  # bound method, as an instance attribute (as some wrappers do)
    model[0].forward = own
    assert _same(probe(model, torch.ones(3, 4)).to_dict(), plain)
    assert model[0].__dict__["forward"] is own


def test_layer_records_built_through_slots_equal_constructed_ones() -> None:
    values = [3, "a.b", "Linear", 2, True, (4, 8), 1.5, 0.5, 1.0, -0.1, 1.5, 0.7, 2.25]
    values += [None, 1.25, None, 0.0, math.nan]
    names = [f.name for f in fields(LayerRecord)]
    built = _new_record(*values)
    made = LayerRecord(**dict(zip(names, values, strict=True)))
    assert type(built) is LayerRecord
    assert _same(built.to_dict(), made.to_dict())
    assert _same(pickle.loads(pickle.dumps(built)).to_dict(), made.to_dict())
    with pytest.raises(AttributeError):
        built.index = 4  # type: ignore[misc]


def test_activation_per_type_cache_matches_activation_of() -> None:
    modules = [nn.LeakyReLU(0.1), nn.LeakyReLU(0.3), nn.ELU(0.5), nn.ELU(2.0), nn.ReLU()]
    modules += [nn.Softplus(beta=3.0), nn.GELU(), nn.Linear(2, 2), nn.Tanh(), nn.ReLU()]
    for _ in range(2):  # first sight and cached
        for m in modules:
            assert _activation_of(m) == activation_of(m)


def test_backward_hooks_and_data_parallel_take_the_hook_path() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2))
    x = torch.randn(5, 4)
    assert _can_wrap(*_records_for(model))
    # a full backward hook replaces the module's input before its forward runs: the hooks
    # see the input the caller passed, as before
    handle = model[2].register_full_backward_hook(lambda m, gi, go: None)
    try:
        assert not _can_wrap(*_records_for(model))
        with_hook = probe(model, x).to_dict()
    finally:
        handle.remove()
    assert with_hook["chain"]
    assert _same(with_hook, probe(model, x).to_dict())
    assert not _can_wrap(*_records_for(nn.DataParallel(model)))
