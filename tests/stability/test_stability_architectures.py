"""The stability tools on real architectures (tests/stability/arch_corpus.py): every healthy model
reads healthy by the probe, the audit and the symmetry check; every broken variant is flagged by
the tool that can see its fault; and each fault issue 13 lists has a test of its own."""

from __future__ import annotations

import math

import pytest
import torch
from arch_corpus import BUILDERS, CORPUS, build, call
from torch import nn

from nndoctor.stability import audit_init, find_symmetric_units, probe, recommend_init

FAMILIES = sorted(BUILDERS)
HEALTHY = [(f, v) for f, v, expected in CORPUS if expected == "healthy"]
# the tool that sees each broken variant's fault: the probe (its verdict) or the audit (the
# layers it flags). Huge weights in a normalized network are hidden from the probe by the
# norms (the signal's scale is reset at every LayerNorm) but not from the audit.
BROKEN = {
    ("bert", "huge_init"): ("audit", None),
    ("gpt2", "huge_init"): ("audit", None),
    ("vit", "huge_init"): ("audit", None),
    ("llama", "huge_init"): ("audit", None),
    ("transformer_postln", "no_norm"): ("probe", "exploding"),
    ("transformer_preln", "no_norm"): ("probe", "exploding"),
    ("lstm_lm", "huge_init"): ("audit", None),
    ("gru", "huge_init"): ("audit", None),
    ("vgg", "no_bn_default"): ("probe", "vanishing"),
    ("resnet", "no_norm"): ("probe", "exploding"),
    ("mlp_sigmoid", "sigmoid"): ("probe", "vanishing"),
}


def _probe(case):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)  # dropout in training mode draws from the global generator
    return probe(case.model, case.inputs)


def test_the_corpus_covers_every_family_with_a_healthy_and_a_broken_variant() -> None:
    assert {f for f, _ in HEALTHY} == set(FAMILIES)
    assert {f for f, _ in BROKEN} == set(FAMILIES)
    assert set(BROKEN) == {(f, v) for f, v, e in CORPUS if e == "broken"}


@pytest.mark.parametrize(("family", "variant"), HEALTHY)
def test_healthy_architecture_reads_healthy_by_probe_audit_and_symmetry(
    family: str, variant: str
) -> None:
    case = build(family, variant)
    report = _probe(case)
    assert report.verdict == "healthy", (report.forward_gain, report.backward_gain)
    assert 1e-2 < report.backward_gain < 1e2
    audit = audit_init(case.model)
    assert audit.flagged_layers == (), [(la.name, la.recommendation) for la in audit.flagged_layers]
    assert "re-initialize" not in audit.recommendation.lower()
    assert "vanish" not in audit.recommendation
    assert "explode" not in audit.recommendation
    sym = find_symmetric_units(case.model, case.inputs)
    assert not sym.collapsed
    assert sym.verdict.startswith("No tied units"), sym.verdict


@pytest.mark.parametrize(("family", "variant"), sorted(BROKEN))
def test_broken_variant_is_flagged_by_the_tool_that_sees_it(family: str, variant: str) -> None:
    case = build(family, variant)
    tool, verdict = BROKEN[family, variant]
    if tool == "probe":
        assert _probe(case).verdict == verdict
    else:
        audit = audit_init(case.model)
        assert len(audit.flagged_layers) >= len(audit.layers) // 2
        assert "far above variance-preserving" in audit.recommendation
        assert "keep the current initialization" not in audit.recommendation


def _encoder(norm_first: bool) -> nn.TransformerEncoder:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(
        32, 2, 64, dropout=0.0, batch_first=True, norm_first=norm_first
    )
    return nn.TransformerEncoder(
        layer, 4, norm=nn.LayerNorm(32) if norm_first else None, enable_nested_tensor=False
    )


@pytest.mark.parametrize("norm_first", [False, True])
def test_probe_backward_is_not_blind_to_a_final_layernorm(norm_first: bool) -> None:
    # a LayerNorm's Jacobian annihilates the all-ones cotangent of sum(outputs): the old
    # default read this healthy encoder's backward gain as ~1e-8, "vanishing"
    x = torch.randn(8, 16, 32, generator=torch.Generator().manual_seed(0))
    report = probe(_encoder(norm_first), x)
    assert report.verdict == "healthy"
    assert 0.3 < report.backward_gain < 3.0
    # with the old seed, passed explicitly, the trap is still there (loss_fn= keeps working)
    summed = probe(_encoder(norm_first), x, loss_fn=lambda y: y.sum())
    assert summed.backward_gain < 1e-6


def test_probe_random_cotangent_is_deterministic_and_follows_the_generator() -> None:
    model = _encoder(True)
    x = torch.randn(4, 16, 32, generator=torch.Generator().manual_seed(1))
    a, b = probe(model, x), probe(model, x)
    assert a.to_dict() == b.to_dict()
    c = probe(model, x, generator=torch.Generator().manual_seed(7))
    assert c.backward_gain != a.backward_gain
    assert c.backward_gain == pytest.approx(a.backward_gain, rel=0.5)  # same law, other draw
    # unit RMS: the last layer's gradient has RMS 1, as the sum's all-ones cotangent had
    last = [r for r in a.layers if r.called][-1]
    assert last.backward_rms == pytest.approx(1.0, rel=1e-5)


def test_probe_takes_a_hugging_face_batch_and_model_output() -> None:
    case = build("gpt2")
    report = _probe(case)  # inputs: {"input_ids", "attention_mask"}; output: a ModelOutput
    assert report.batch_size == 8
    assert report.verdict == "healthy"
    # the logits, not the cache or hidden states, seed the backward pass
    last = [r for r in report.layers if r.called][-1]
    assert last.name == "lm_head"
    assert last.shape == (8, 16, 100)
    assert math.isfinite(last.backward_rms)


def test_audit_reads_every_weight_layer_of_gpt2_and_the_lstm() -> None:
    gpt2 = build("gpt2").model
    audit = audit_init(gpt2)
    conv1d = [n for n, m in gpt2.named_modules() if type(m).__name__ == "Conv1D"]
    names = {la.name for la in audit.layers}
    assert set(conv1d) <= names  # 8 Conv1D, (in, out) weights
    c_fc = next(la for la in audit.layers if la.name.endswith("h.0.mlp.c_fc"))
    assert (c_fc.fan_in, c_fc.fan_out) == (32, 128)
    assert {"transformer.wte", "transformer.wpe"} <= names
    assert {la.scheme for la in audit.layers if la.kind == "Conv1D"} <= {
        "normal(std=0.02)",
        "normal(std=0.01)",  # GPT-2's residual projections: 0.02 / sqrt(2 n_layer)
    }
    assert "transformer.ln_f" in audit.norms
    assert all("ln" not in la.name for la in audit.layers)  # norms are not weight matrices
    lstm = audit_init(build("lstm_lm").model)
    gates = {la.name: la for la in lstm.layers if la.kind == "LSTM"}
    assert set(gates) == {f"lstm.weight_{k}_l{i}" for k in ("ih", "hh") for i in (0, 1)}
    # fan-in per gate: 32 inputs into each of 4 gates of 32 units
    assert {(la.fan_in, la.fan_out) for la in gates.values()} == {(32, 32)}
    assert {la.scheme for la in gates.values()} == {"pytorch_default"}


def test_audit_reads_bert_as_normal_002_and_defers_to_the_probe() -> None:
    audit = audit_init(build("bert").model)
    assert {la.scheme for la in audit.layers} == {"normal(std=0.02)"}
    assert not audit.chain
    assert math.isnan(audit.forward_gain)
    assert math.isnan(audit.backward_gain)
    assert "probe(model, inputs)" in audit.recommendation
    assert "keep the current initialization" in audit.recommendation
    assert audit.mean_field is None


def test_audit_of_multihead_attention_reads_its_packed_projection() -> None:
    model = build("transformer_postln").model
    audit = audit_init(model)
    proj = next(la for la in audit.layers if la.name.endswith("0.self_attn.in_proj_weight"))
    assert proj.kind == "MultiheadAttention"
    assert proj.scheme == "xavier_uniform"  # PyTorch's own init of the (3E, E) matrix
    assert (proj.fan_in, proj.fan_out) == (32, 96)


def test_vgg_with_batchnorm_does_not_get_the_vanishing_text_that_vgg_without_gets() -> None:
    with_bn = audit_init(build("vgg", "healthy").model)
    without = audit_init(build("vgg", "no_bn_default").model)
    assert "gradients vanish" in without.recommendation
    assert without.chain
    assert without.forward_gain < 1e-2
    assert "gradients vanish" not in with_bn.recommendation
    assert not with_bn.chain
    assert "BatchNorm2d" in with_bn.structure


def test_symmetry_units_are_the_hidden_axis_not_the_sequence() -> None:
    case = build("transformer_postln")
    sym = find_symmetric_units(case.model, case.inputs)
    by_name = {la.name: la for la in sym.layers}
    linear1 = by_name["encoder.layers.0.linear1"]  # output (8, 16, 64): 64 units, 16 positions
    assert linear1.units == 64
    assert linear1.effective_activation_units == 64
    decoder = {la.name: la for la in find_symmetric_units(*build("lstm_lm")[:2]).layers}
    assert decoder["decoder"].units == 100
    assert decoder["decoder"].effective_activation_units == 100
    # the LSTM's weights: 2 layers of 32 hidden units; its output (the activations): the last 32
    assert decoder["lstm"].units == 64
    assert decoder["lstm"].effective_activation_units == 32


def test_symmetry_finds_ties_in_conv1d_lstm_and_attention_weights() -> None:
    gpt2 = build("gpt2").model
    block = gpt2.transformer.h[0]
    with torch.no_grad():
        block.mlp.c_fc.weight.fill_(0.02)  # (in, out): every output unit identical
        block.mlp.c_fc.bias.zero_()
    report = find_symmetric_units(gpt2)
    c_fc = next(la for la in report.layers if la.name.endswith("h.0.mlp.c_fc"))
    assert (c_fc.units, c_fc.effective_units) == (128, 1)
    c_proj = next(la for la in report.layers if la.name.endswith("h.0.mlp.c_proj"))
    assert c_proj.effective_units == 32  # the next layer is untouched
    lstm = nn.LSTM(8, 6, batch_first=True)
    for p in lstm.parameters():
        nn.init.constant_(p, 0.1)
    tied = find_symmetric_units(nn.Sequential(lstm)).layers[0]
    assert (tied.units, tied.effective_units) == (6, 1)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight[:8].fill_(0.3)  # the 8 query rows alike
    layer = next(la for la in find_symmetric_units(nn.Sequential(mha)).layers)
    assert (layer.units, layer.effective_units) == (24, 17)


def test_recommend_keeps_a_healthy_bert_and_still_measures_the_alternatives() -> None:
    case = build("bert")
    before = {k: v.clone() for k, v in case.model.state_dict().items()}
    torch.manual_seed(0)
    rec = recommend_init(case.model, case.inputs, apply=True)
    assert rec.scheme == "current"
    assert "Keep the current initialization" in rec.message
    assert not rec.applied
    assert rec.improvement == 0.0
    assert rec.after is rec.before
    assert len(rec.candidates) >= 5
    assert all(math.isfinite(c.score) for c in rec.candidates)
    after = case.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_recommend_still_reinitializes_a_vanishing_model() -> None:
    case = build("vgg", "no_bn_default")
    rec = recommend_init(case.model, case.inputs, schemes=["kaiming_normal", "xavier_uniform"])
    assert rec.before.verdict == "vanishing"
    assert rec.scheme == "kaiming_normal"
    assert rec.after.verdict == "healthy"
    assert rec.message.startswith("Re-initialize with kaiming_normal")


def test_corpus_trains_a_few_steps_with_its_optimizer() -> None:
    # the corpus's recipes are sound: a few steps lower the loss of a healthy model
    case = build("transformer_preln")
    opt = case.optimizer(case.model.parameters())
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = case.loss(call(case.model, case.inputs), case.targets)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


def test_probe_of_a_hugging_face_batch_is_the_same_through_hooks_and_wrappers() -> None:
    # a target with a hook of its own sends the probe down its global-hook path
    case = build("bert")
    wrapped = _probe(case)
    query = case.model.bert.encoder.layer[0].attention.self.query
    handle = query.register_forward_pre_hook(lambda _m, _i: None)
    try:
        hooked = _probe(case)
    finally:
        handle.remove()
    assert hooked.to_dict() == wrapped.to_dict()


def test_a_model_defined_norm_is_a_norm_to_every_tool() -> None:
    """Llama's own ``LlamaRMSNorm`` (not a torch class) is read as a normalization by the probe
    (theory predicts its output: it was a layer without theory), as the audit already did."""
    case = build("llama")
    report = probe(case.model, case.inputs)
    norms = [r for r in report.layers if r.kind == "LlamaRMSNorm"]
    assert len(norms) == 5
    for r in norms:
        assert r.predicted_forward_gain is not None
        assert r.forward_gain == pytest.approx(r.predicted_forward_gain, rel=0.05)
    assert set(audit_init(case.model).norms) == {
        name for name, m in case.model.named_modules() if type(m).__name__ == "LlamaRMSNorm"
    }
