"""The monitor on the architectures people train: no crash, no false alarm, real faults caught.

Models come from the shared corpus (``tests/stability/arch_corpus.py``: tiny BERT, GPT-2, ViT,
Llama from ``transformers`` configs, ``nn.TransformerEncoder``, LSTM, GRU, VGG, ResNet), each
trained with the optimizer its family is usually trained with.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from arch_corpus import Case, build, call, train_steps
from torch import nn

from nndoctor import Monitor
from nndoctor.stability.monitor import Finding, MonitorThresholds
from nndoctor.stability.monitor._quantities import (
    TickQuantities,
    layer_effective_units,
    layer_role,
)
from nndoctor.stability.monitor._rules import RuleEngine

Optimizer = Callable[[nn.Module], torch.optim.Optimizer]


def _serious(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity != "info"]


def _run(
    case: Case,
    steps: int,
    *,
    optimizer: Optimizer | None = None,
    seed: int = 0,
    **options: object,
) -> tuple[Monitor, list[float]]:
    """``steps`` monitored steps of ``case`` on its batch; the monitor and the losses."""
    torch.manual_seed(seed)  # dropout draws from the global generator
    opt = (
        optimizer(case.model) if optimizer is not None else case.optimizer(case.model.parameters())
    )
    with Monitor(case.model, **options) as mon:
        losses = train_steps(case, steps, optimizer=opt, step_hook=mon.step)
    return mon, losses


# --------------------------------------------------------------------------- layer types


def test_gpt2_first_steps_do_not_crash_and_conv1d_units_are_its_outputs() -> None:
    # Hugging Face's Conv1D stores its weight as (in, out): the effective-units computation
    # used to pair the (out,) bias with the in-dimension rows and crash at the first step
    case = build("gpt2")
    mlp = case.model.transformer.h[0].mlp
    with torch.no_grad():  # tie hidden unit 1 to unit 0, in and out: a tie that training keeps
        mlp.c_fc.weight[:, 1] = mlp.c_fc.weight[:, 0]
        mlp.c_fc.bias[1] = mlp.c_fc.bias[0]
        mlp.c_proj.weight[1] = mlp.c_proj.weight[0]
    mon, losses = _run(case, 2)
    eff = mon.summary().series["effective_units"]
    assert eff["transformer.h.0.mlp.c_fc"][0] == 4 * 32 - 1
    assert eff["transformer.h.1.mlp.c_fc"][0] == 4 * 32
    assert eff["transformer.h.0.attn.c_attn"][0] == 3 * 32
    assert eff["transformer.h.0.mlp.c_proj"][0] == 32
    assert all(math.isfinite(v) for v in losses)


def _tie_rnn(module: nn.RNNBase, gates: range) -> None:
    """Make hidden unit 1 of layer 0 equal to unit 0 in the given gates."""
    h = module.hidden_size
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            t = getattr(module, name)
            for g in gates:
                t[g * h + 1] = t[g * h]


def _tie_mha(m: nn.MultiheadAttention) -> None:
    with torch.no_grad():  # query unit 1 = query unit 0
        m.in_proj_weight[1] = m.in_proj_weight[0]
        m.in_proj_bias[1] = m.in_proj_bias[0]


def _tie_columns(weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
    with torch.no_grad():
        weight[:, 1] = weight[:, 0]
        if bias is not None:
            bias[1] = bias[0]


def _conv1d() -> nn.Module:
    from transformers.pytorch_utils import Conv1D

    return Conv1D(6, 4)  # nf=6 outputs, nx=4 inputs: weight (4, 6)


LAYER_CASES: list[tuple[str, Callable[[], nn.Module], Callable[[nn.Module], None], int, int]] = [
    ("linear", lambda: nn.Linear(4, 5), lambda m: None, 5, 5),
    ("hf_conv1d", _conv1d, lambda m: _tie_columns(m.weight, m.bias), 5, 6),
    ("embedding", lambda: nn.Embedding(10, 4), lambda m: _tie_columns(m.weight), 3, 4),
    (
        "conv_transpose",
        lambda: nn.ConvTranspose2d(4, 6, 3),
        lambda m: _tie_columns(m.weight, m.bias),
        5,
        6,
    ),
    ("lstm_all_gates", lambda: nn.LSTM(3, 5, num_layers=2), lambda m: _tie_rnn(m, range(4)), 9, 10),
    # tied in the input gate only: the units still differ in the three other gates
    ("lstm_one_gate", lambda: nn.LSTM(3, 5, num_layers=2), lambda m: _tie_rnn(m, range(1)), 10, 10),
    ("gru_all_gates", lambda: nn.GRU(3, 5), lambda m: _tie_rnn(m, range(3)), 4, 5),
    ("attention", lambda: nn.MultiheadAttention(8, 2), _tie_mha, 23, 24),
]


@pytest.mark.parametrize(("kind", "make", "tie", "effective", "units"), LAYER_CASES)
def test_effective_units_per_layer_type(
    kind: str,
    make: Callable[[], nn.Module],
    tie: Callable[[nn.Module], None],
    effective: int,
    units: int,
) -> None:
    torch.manual_seed(0)
    module = make()
    tie(module)
    counted = layer_effective_units(module, MonitorThresholds().symmetry_tolerance)
    assert counted is not None
    assert (float(counted[0]), counted[1]) == (effective, units)


def test_norm_layers_have_no_incoming_weights() -> None:
    for module in (nn.LayerNorm(8), nn.BatchNorm2d(8), nn.GroupNorm(2, 8)):
        assert layer_effective_units(module, 1e-6) is None


def test_recurrent_and_attention_outputs_carry_the_backward_signal() -> None:
    # nn.LSTM and nn.MultiheadAttention return tuples: the first element is the output
    case = build("transformer_preln")
    mon, _ = _run(case, 1)
    bwd = mon.summary().series["backward_rms"]
    assert math.isfinite(bwd["encoder.layers.0.self_attn"][0])
    case = build("lstm_lm")
    mon, _ = _run(case, 1)
    assert math.isfinite(mon.summary().series["backward_rms"]["lstm"][0])


# --------------------------------------------------------------------- healthy training

HEALTHY = [
    ("bert", "healthy", 30),
    ("gpt2", "healthy", 30),
    ("vit", "healthy", 30),
    ("llama", "healthy", 30),
    ("transformer_postln", "healthy", 30),
    ("transformer_preln", "healthy", 30),
    ("lstm_lm", "healthy", 30),
    ("gru", "healthy", 30),
    ("vgg", "healthy", 15),
    ("vgg", "no_bn", 15),
]


@pytest.mark.parametrize(("family", "variant", "steps"), HEALTHY)
def test_healthy_training_raises_no_alarm(family: str, variant: str, steps: int) -> None:
    mon, losses = _run(build(family, variant), steps)
    assert losses[-1] < losses[0]
    assert _serious(mon.findings) == []


class _LSTMLM(nn.Module):
    """Embedding 32, a 2-layer LSTM of 64 units, a decoder over the vocabulary."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.encoder = nn.Embedding(vocab, 32)
        self.rnn = nn.LSTM(32, 64, num_layers=2, batch_first=True)
        self.decoder = nn.Linear(64, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.rnn(self.encoder(ids))[0])


def test_lstm_language_model_whose_gradients_grow_while_it_learns_is_quiet() -> None:
    # the embedding's gradient norm grows ~20x over 30 steps while the loss falls: a trend,
    # not a spike (it used to read as "exploding" against a median of the first, tiny steps)
    vocab, seq, batch = 100, 16, 8
    torch.manual_seed(0)
    model = _LSTMLM(vocab)
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, vocab, (64, seq), generator=g)
    data[:, 1:] = (data[:, :1] * 3 + torch.arange(1, seq)) % vocab  # learnable sequences
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    with Monitor(model) as mon:
        for i in range(30):
            ids = data[(torch.arange(batch) + i * batch) % 64]
            opt.zero_grad(set_to_none=True)
            logits = model(ids[:, :-1])
            loss = nn.functional.cross_entropy(logits.reshape(-1, vocab), ids[:, 1:].reshape(-1))
            loss.backward()
            opt.step()
            mon.step(loss)
            losses.append(float(loss.detach()))
    grads = mon.summary().series["grad_norm"]["encoder"]
    assert grads[-5:].mean() > 5 * grads[:5].mean()  # the gradient did grow
    assert losses[-1] < losses[0] - 0.3
    assert _serious(mon.findings) == []


# --------------------------------------------------------------------------- real faults


def test_sigmoid_stack_vanishes_within_its_role() -> None:
    mon, _ = _run(build("mlp_sigmoid", "sigmoid"), 2)
    van = [f for f in mon.findings if f.check == "vanishing" and "same role" in f.message]
    assert van
    assert van[0].layer == "0"
    assert van[0].step == 1
    assert "the last of the 11 layers of the same role (Linear *)" in van[0].message


def test_vgg_without_batchnorm_at_default_init_vanishes_along_its_convolutions() -> None:
    mon, _ = _run(build("vgg", "no_bn_default"), 3)
    van = [f for f in mon.findings if f.check == "vanishing"]
    assert van
    assert van[0].layer == "0.0"  # the first convolution
    assert "(Conv2d *.*)" in van[0].message
    assert van[0].value < MonitorThresholds().vanishing_depth_ratio


def test_transformer_without_norms_explodes_along_its_blocks() -> None:
    mon, _ = _run(build("transformer_postln", "no_norm"), 3)
    exp = [f for f in mon.findings if f.check == "exploding" and f.severity == "error"]
    assert exp
    assert exp[0].layer.startswith("encoder.layers.0.")
    assert exp[0].step == 1


def test_bert_with_huge_init_saturates_its_pooler() -> None:
    mon, _ = _run(build("bert", "huge_init"), 3)
    sat = [f for f in mon.findings if f.check == "saturation"]
    assert [f.layer for f in sat] == ["bert.pooler.activation"]


def test_gpt2_with_a_learning_rate_blow_up_is_flagged() -> None:
    # AdamW at lr=1 instead of ~3e-4: the loss jumps from 4.6 to ~40
    def adamw(model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.AdamW(model.parameters(), lr=1.0)

    mon, losses = _run(build("gpt2"), 25, optimizer=adamw)
    assert max(losses) > 5 * losses[0]
    # every step moves some layer's weights by more than a tenth of their norm (the gradient
    # spikes that follow depend on the dropout draws: not asserted)
    high = [f for f in mon.findings if f.check == "update_ratio" and f.severity == "warning"]
    assert high
    assert all(f.value > MonitorThresholds().update_ratio_high for f in high)


def test_lstm_with_a_learning_rate_blow_up_is_flagged() -> None:
    # SGD at lr=50: the gradient norm of the recurrent layer jumps by an order of magnitude
    def sgd(model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=50.0)

    mon, _ = _run(build("lstm_lm"), 20, optimizer=sgd)
    spikes = [f for f in mon.findings if f.check == "exploding"]
    assert {"lstm", "embed"} & {f.layer for f in spikes}
    assert all("running median" in f.message for f in spikes)


# ------------------------------------------------------------------------ the rules


def _tick(step: int, rms: dict[str, float], roles: dict[str, str]) -> TickQuantities:
    q = TickQuantities(step=step, order=list(rms))
    q.backward_rms = dict(rms)
    q.backward_width = dict.fromkeys(rms, 32)
    q.roles = roles
    return q


_ROLES = {
    n: layer_role(n, nn.Linear(1, 1))
    for n in ("layer.0.query", "layer.1.query", "layer.0.dense", "layer.1.dense", "classifier")
}


def test_depth_rule_does_not_compare_a_query_projection_with_the_logits() -> None:
    # query/key gradients are tiny while attention is near uniform; the same-role comparison
    # (query against query) is O(1), the comparison with the classifier is not
    rms = {
        "layer.0.query": 1e-6,
        "layer.0.dense": 0.5,
        "layer.1.query": 2e-6,
        "layer.1.dense": 0.7,
        "classifier": 1.0,
    }
    engine = RuleEngine(MonitorThresholds())
    found = [f for s in range(1, 6) for f in engine.evaluate(_tick(s, rms, _ROLES))]
    assert found + engine.flush() == []


def test_depth_rule_reports_a_persistent_condition_from_its_first_tick() -> None:
    bad = {"layer.0.dense": 1e-4, "layer.1.dense": 1.0}
    good = {"layer.0.dense": 0.5, "layer.1.dense": 1.0}
    engine = RuleEngine(MonitorThresholds())  # depth_patience = 3
    # a transient: two ticks, then recovered: never reported
    for s, rms in enumerate([bad, bad, good, good], start=1):
        assert engine.evaluate(_tick(s, rms, _ROLES)) == []
    assert engine.flush() == []
    # persistent: reported at its third tick, dated from its first
    found = [f for s in (5, 6, 7) for f in engine.evaluate(_tick(s, bad, _ROLES))]
    assert [(f.check, f.layer, f.step) for f in found] == [("vanishing", "layer.0.dense", 5)]
    assert "layer.1.dense, the last of the 2 layers of the same role" in found[0].message
    # a run that ends while the condition holds reports it at the end
    engine = RuleEngine(MonitorThresholds())
    assert engine.evaluate(_tick(1, bad, _ROLES)) == []
    assert [(f.layer, f.step) for f in engine.flush()] == [("layer.0.dense", 1)]


def test_spike_rule_ignores_steady_growth_but_catches_a_jump() -> None:
    engine = RuleEngine(MonitorThresholds())

    def tick(step: int, value: float) -> list[Finding]:
        q = TickQuantities(step=step, order=["w"])
        q.grad_norm = {"w": value}
        return engine.evaluate(q)

    # +15% per tick for 40 ticks: 270x in all, never 10x the level of the last few ticks
    grown = [f for s in range(1, 41) for f in tick(s, 1.15**s)]
    assert grown == []
    jump = tick(41, 20 * 1.15**40)
    assert [(f.check, f.step) for f in jump] == [("exploding", 41)]
    assert "the last 5 ticks" in jump[0].message


@pytest.mark.parametrize("family", ["gpt2", "lstm_lm", "transformer_preln"])
def test_monitored_run_is_bitwise_identical_on_real_architectures(family: str) -> None:
    # dropout draws from the global generator: both runs start from the same seed
    plain = build(family)
    plain_losses = _run_plain(plain, 4)
    watched = build(family)
    _, watched_losses = _run(watched, 4)
    assert plain_losses == watched_losses
    for (name, p), q in zip(
        plain.model.named_parameters(), watched.model.parameters(), strict=True
    ):
        assert torch.equal(p, q), name


def _run_plain(case: Case, steps: int) -> list[float]:
    """As :func:`_run`, without a monitor."""
    torch.manual_seed(0)
    return train_steps(case, steps)


def test_clipping_counts_a_tied_weight_once() -> None:
    # GPT-2's head shares its weight with the token embedding: both layers hold it
    case = build("gpt2")
    opt = case.optimizer(case.model.parameters())
    with Monitor(case.model, clip=0.5) as mon:
        mon.watch(opt)
        opt.zero_grad(set_to_none=True)
        case.loss(call(case.model, case.inputs), case.targets).backward()
        mon.clip_gradients()
        unique = {id(p): p for p in case.model.parameters()}.values()
        total = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in unique]))
    assert float(total) == pytest.approx(0.5, rel=1e-5)
