"""Non-finite localization on real code: dropout's buffers, causal masks, SDPA and eager attention.

A fault is injected into one attention module by a forward hook (its output multiplied by
infinity, or divided by zero); the finding must name that module and the op of the hook, not
the ``-inf`` of a causal mask that a softmax consumes safely, nor the uninitialized buffer that
dropout allocates before filling it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from nndoctor import Monitor
from nndoctor.exceptions import NonFiniteError
from nndoctor.stability.monitor import locate_nonfinite

Fault = Callable[[torch.Tensor], torch.Tensor]
FAULTS: dict[str, tuple[Fault, str]] = {
    "times_inf": (lambda t: t * math.inf, "aten.mul"),
    "div_zero": (lambda t: t / 0.0, "aten.div"),
}


class _StaleMemory(TorchDispatchMode):
    """Make every uninitialized allocation hold NaN, as reused memory may (deterministically)."""

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        if func.overloadpacket.__name__.startswith("empty") and out.is_floating_point():
            out.fill_(math.nan)
        return out


def _inject(module: nn.Module, fault: Fault) -> Any:
    def hook(mod: nn.Module, args: Any, out: Any) -> Any:
        if isinstance(out, tuple):
            return (fault(out[0]), *out[1:])
        return fault(out)

    return module.register_forward_hook(hook)


def _gpt2(attn: str, dropout: float) -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=100,
        n_positions=32,
        n_embd=32,
        n_layer=2,
        n_head=2,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        attn_implementation=attn,
    )
    return GPT2LMHeadModel(config).train()


_IDS = torch.randint(0, 100, (4, 16), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_healthy_gpt2_with_causal_mask_and_dropout_has_no_nonfinite_value(
    attn: str, dropout: float
) -> None:
    model = _gpt2(attn, dropout)
    with _StaleMemory():  # dropout's buffer holds NaN before bernoulli_ fills it
        loc = locate_nonfinite(lambda: model(input_ids=_IDS, labels=_IDS).loss, model=model)
    assert loc is None


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("dropout", [0.0, 0.1])
@pytest.mark.parametrize(("fault", "block"), [("times_inf", 0), ("times_inf", 1), ("div_zero", 1)])
def test_fault_in_one_gpt2_attention_is_named(
    attn: str, dropout: float, fault: str, block: int
) -> None:
    model = _gpt2(attn, dropout)
    inject, op = FAULTS[fault]
    _inject(model.transformer.h[block].attn, inject)  # type: ignore[union-attr,index]
    with _StaleMemory():
        loc = locate_nonfinite(lambda: model(input_ids=_IDS, labels=_IDS).loss, model=model)
    assert loc is not None
    assert loc.phase == "forward"
    assert loc.module == f"transformer.h.{block}.attn"
    assert (loc.op or "").startswith(op)
    assert __file__ in loc.source  # the hook's line


def _encoder() -> nn.TransformerEncoder:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 2, 64, dropout=0.1, batch_first=True)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).train()


def test_causal_mask_of_minus_inf_is_not_blamed_but_a_fault_after_it_is() -> None:
    # generate_square_subsequent_mask fills with -inf; the softmax turns it into zeros
    x = torch.randn(4, 16, 32, generator=torch.Generator().manual_seed(1))
    mask = nn.Transformer.generate_square_subsequent_mask(16)
    enc = _encoder()
    assert locate_nonfinite(lambda: enc(x, mask=mask, is_causal=True).sum(), model=enc) is None
    _inject(enc.layers[1].self_attn, FAULTS["times_inf"][0])
    loc = locate_nonfinite(lambda: enc(x, mask=mask, is_causal=True).sum(), model=enc)
    assert loc is not None
    assert (loc.module, loc.op) == ("layers.1.self_attn", "aten.mul.Tensor")


def test_a_minus_inf_that_is_not_consumed_safely_is_named() -> None:
    # every key masked: the softmax of a row of -inf is NaN; the fill that made it is named
    scores = torch.randn(2, 4, 4)
    everything = torch.ones(4, 4, dtype=torch.bool)
    loc = locate_nonfinite(
        lambda: scores.masked_fill(everything, -math.inf).softmax(-1).sum(), backward=False
    )
    assert loc is not None
    assert loc.op == "aten.masked_fill.Scalar"


def test_a_non_finite_value_guarded_away_is_no_fault() -> None:
    p = torch.tensor([0.0, 0.5, 1.0])
    safe = locate_nonfinite(lambda: torch.where(p > 0, torch.log(p), 0.0).sum(), backward=False)
    assert safe is None
    loc = locate_nonfinite(lambda: torch.log(p).sum(), backward=False)
    assert loc is not None
    assert loc.op == "aten.log.default"


def test_in_place_arithmetic_fault_is_an_arithmetic_origin() -> None:
    # the in-place op's input is read before it runs: x / 0 in place is a fault, found even
    # when a -inf constant made earlier (and not absorbed) also reaches the output
    def fn() -> torch.Tensor:
        pad = torch.full((3,), -math.inf)
        x = torch.ones(3)
        x.div_(0.0)
        return torch.cat([pad, x])

    loc = locate_nonfinite(fn, backward=False)
    assert loc is not None
    assert (loc.op or "").startswith("aten.div_.")


def test_monitor_names_the_attention_module_of_a_fault_during_training() -> None:
    model = _gpt2("sdpa", 0.1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    state = {"step": 0}

    def fault(t: torch.Tensor) -> torch.Tensor:
        return t * math.inf if state["step"] == 3 else t

    _inject(model.transformer.h[1].attn, fault)  # type: ignore[union-attr,index]

    def train(mon: Monitor) -> None:
        for step in range(1, 5):
            state["step"] = step
            opt.zero_grad()
            loss = model(input_ids=_IDS, labels=_IDS).loss
            loss.backward()
            opt.step()
            mon.step(loss)

    with Monitor(model) as mon, pytest.raises(NonFiniteError) as info:
        train(mon)
    assert info.value.step == 3
    assert info.value.module == "transformer.h.1.attn"
    assert "aten.mul" in (info.value.op or "")
    assert all(torch.isfinite(p).all() for p in model.parameters())
