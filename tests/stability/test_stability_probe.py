"""probe(): chain values, theory oracles, verdicts, findings, errors, and no side effects."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nndoctor.exceptions import DataValidationError, InvalidParameterError
from nndoctor.scenarios import deep_chain, digits_mlp
from nndoctor.stability import init_, probe


@pytest.mark.parametrize("weight", [0.2, 5.0])
def test_scalar_chain_float64_exact(weight: float) -> None:
    r = probe(deep_chain(30, weight), torch.ones(1, 1), dtype=torch.float64)
    assert r.forward_gain == pytest.approx(weight**30, rel=1e-6)
    assert r.backward_gain == pytest.approx(weight**30, rel=1e-6)
    assert r.verdict == ("vanishing" if weight < 1 else "exploding")
    assert r.dtype == "float64"
    for layer in r.layers:
        assert layer.predicted_forward_gain == pytest.approx(layer.forward_gain, rel=1e-9)
    assert r.chain
    assert r.onset_index is not None


def test_float32_overflow_and_underflow_are_findings() -> None:
    boom = probe(deep_chain(70, 5.0), torch.ones(1, 1))
    assert boom.verdict == "exploding"
    assert any(f.kind == "overflow" for f in boom.findings)
    assert "float64" in boom.findings[0].message
    gone = probe(deep_chain(70, 0.2), torch.ones(1, 1))
    assert gone.verdict == "vanishing"
    under = [f for f in gone.findings if f.kind == "underflow"]
    assert under
    assert "exactly 0" in under[0].message
    # float64 sees the true gain
    exact = probe(deep_chain(70, 0.2), torch.ones(1, 1), dtype=torch.float64)
    assert exact.forward_gain == pytest.approx(0.2**70, rel=1e-6)
    assert exact.findings == ()
    assert boom.to_dict()["forward_gain"] in ("inf", "nan")


def test_default_linear_stack_shrinks_by_one_third_per_layer() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(512, 512, bias=False) for _ in range(10)])
    r = probe(model, torch.randn(256, 512))
    assert r.forward_gain**2 == pytest.approx((1 / 3) ** 10, rel=0.10)
    assert r.layers[-1].predicted_forward_gain == pytest.approx(r.forward_gain, rel=0.05)


def test_he_init_preserves_second_moment_over_20_relu_layers() -> None:
    ratios = []
    x = torch.randn(64, 128, generator=torch.Generator().manual_seed(1))
    for seed in range(12):
        layers: list[nn.Module] = []
        for _ in range(20):
            layers += [nn.Linear(128, 128), nn.ReLU()]
        model = nn.Sequential(*layers)
        init_(model, "kaiming_normal", generator=torch.Generator().manual_seed(seed))
        r = probe(model, x)
        lin = [rec for rec in r.layers if rec.kind == "Linear"]
        ratios.append((lin[-1].forward_rms / lin[0].forward_rms) ** 2)
    per_layer = (sum(ratios) / len(ratios)) ** (1 / 19)
    assert per_layer == pytest.approx(1.0, abs=0.03)


def test_digits_mlp_verdicts() -> None:
    x = torch.randn(256, 64, generator=torch.Generator().manual_seed(0))
    bad = probe(digits_mlp(), x)
    assert bad.verdict == "vanishing"
    assert bad.onset_direction == "backward"
    assert bad.backward_gain < 1e-2
    assert any(f.kind == "correlation_collapse" for f in bad.findings)
    good = probe(init_(digits_mlp(), "kaiming_normal", generator=torch.Generator()), x)
    assert good.verdict == "healthy"
    relu = [rec for rec in bad.layers if rec.kind == "ReLU"]
    for rec in relu:
        assert rec.predicted_layer_factor == pytest.approx(0.5)
        assert 0.3 < rec.layer_factor < 0.8
        assert 0.2 < rec.zero_fraction < 0.8


def test_probe_leaves_the_model_untouched() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    model[0].weight.requires_grad_(False)
    model[3].weight.grad = torch.full_like(model[3].weight, 7.0)
    model.eval()
    model[1].train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    probe(model, torch.randn(16, 4))
    with pytest.raises(DataValidationError):
        probe(model, torch.randn(16, 5))
    after = model.state_dict()
    for k, v in before.items():
        assert torch.equal(v, after[k]), k
    assert not model.training
    assert model[1].training
    assert not model[0].weight.requires_grad
    assert model[0].bias.requires_grad
    assert torch.equal(model[3].weight.grad, torch.full_like(model[3].weight, 7.0))
    assert model[0].weight.grad is None
    for m in model.modules():
        assert not m._forward_hooks
        assert not m._forward_pre_hooks
        assert not m._backward_hooks


def test_dtype_float64_probes_a_copy() -> None:
    model = digits_mlp(depth=2)
    r = probe(model, torch.randn(8, 64), dtype=torch.float64)
    assert r.dtype == "float64"
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_errors_are_typed_and_helpful() -> None:
    with pytest.raises(DataValidationError, match="expects 64 features"):
        probe(digits_mlp(depth=2), torch.randn(4, 10))
    with pytest.raises(DataValidationError, match="no parameters"):
        probe(nn.ReLU(), torch.randn(4, 3))
    with pytest.raises(InvalidParameterError, match=r"torch\.nn\.Module"):
        probe(lambda x: x, torch.randn(4, 3))  # type: ignore[arg-type]
    bad = torch.randn(4, 64)
    bad[0, 0] = math.nan
    with pytest.raises(DataValidationError, match="NaN"):
        probe(digits_mlp(depth=2), bad)
    with pytest.raises(InvalidParameterError, match="floating"):
        probe(digits_mlp(depth=2), torch.randn(4, 64), dtype=torch.int64)
    with pytest.raises(InvalidParameterError, match="scalar"):
        probe(digits_mlp(depth=2), torch.randn(4, 64), loss_fn=lambda out: out)


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.bn(self.conv1(x))))


def test_cnn_residual_and_transformer_do_not_crash() -> None:
    cnn = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), _Block(), _Block(), nn.Flatten())
    r = probe(cnn, torch.randn(4, 3, 8, 8))
    names = [rec.name for rec in r.layers]
    assert names.count("2.conv1") == 1
    assert "3.act" in names
    assert all(math.isfinite(rec.forward_rms) for rec in r.layers)
    conv = next(rec for rec in r.layers if rec.name == "2.conv1")
    assert conv.predicted_forward_gain is not None

    layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, batch_first=True, dropout=0.0)
    tr = probe(layer, torch.randn(3, 5, 16))
    owners = {n for n, m in layer.named_modules() if next(m.parameters(False), None) is not None}
    assert owners <= {rec.name for rec in tr.layers}
    norm = next(rec for rec in tr.layers if rec.name == "norm1")
    assert norm.predicted_layer_factor is not None
    assert norm.forward_rms == pytest.approx(1.0, rel=0.05)
    out_proj = next(rec for rec in tr.layers if rec.name == "self_attn.out_proj")
    assert out_proj.called is False
    from nndoctor.report import to_sections

    table = to_sections(tr)[0].table
    row = next(r for r in table if r["layer"] == "self_attn.out_proj")
    assert row["fwd RMS"] == "not called"  # not a column of NaNs
    assert all(r["fwd RMS"] != "nan" for r in table)
    emb = nn.Sequential(nn.Embedding(20, 8), nn.Linear(8, 8))
    er = probe(emb, torch.randint(0, 20, (4, 6)))
    assert math.isfinite(er.forward_gain)
    assert math.isfinite(er.backward_gain)


def test_report_renders_with_figure() -> None:
    from nndoctor.report import to_sections

    r = probe(deep_chain(10, 0.5), torch.ones(1, 1), dtype=torch.float64)
    sections = to_sections(r, figures=True)
    assert sections[0].status == "error"
    assert sections[0].figures
    assert sections[0].figures[0].png_base64.startswith("iVBOR")
    assert "vanishing" in sections[0].verdict
    import json

    json.loads(r.to_json())


@settings(max_examples=12, deadline=None)
@given(
    depth=st.integers(1, 4),
    width=st.integers(1, 12),
    batch=st.integers(1, 5),
    act=st.sampled_from([nn.ReLU, nn.Tanh, nn.GELU, nn.SiLU, nn.Sigmoid]),
    double=st.booleans(),
)
def test_probe_property_shapes_and_dtypes(
    depth: int, width: int, batch: int, act: type[nn.Module], double: bool
) -> None:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), act()]
    model = nn.Sequential(*layers)
    r = probe(model, torch.randn(batch, width), dtype=torch.float64 if double else None)
    assert len(r.layers) == 2 * depth
    assert [rec.index for rec in r.layers] == list(range(2 * depth))
    assert r.verdict in ("healthy", "vanishing", "exploding")
    for rec in r.layers:
        assert rec.forward_rms >= 0
        assert rec.predicted_layer_factor is not None
        assert rec.shape == (batch, width)
    json.loads(r.to_json())


class _InPlaceBlock(nn.Module):
    """torchvision style: ``out += x`` and an in-place ReLU overwrite recorded outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn(self.conv(x))
        out += x
        return self.relu(out)


def test_outputs_overwritten_in_place_are_measured_as_produced() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), _InPlaceBlock())
    x = torch.randn(6, 3, 5, 5)
    r = probe(model, x, loss_fn=lambda y: y.sum())
    bn_module = model[1].bn
    assert bn_module.track_running_stats is True
    assert int(bn_module.num_batches_tracked) == 0
    assert torch.equal(bn_module.running_mean, torch.zeros(4))
    with torch.no_grad():
        h0 = model[0](x)
        h_bn = model[1].bn(model[1].conv(h0))
        h_relu = torch.relu(h_bn + h0)
    rms = {rec.name: rec.forward_rms for rec in r.layers}
    assert rms["1.bn"] == pytest.approx(h_bn.square().mean().sqrt().item(), rel=1e-5)
    assert rms["1.relu"] == pytest.approx(h_relu.square().mean().sqrt().item(), rel=1e-5)
    relu = next(rec for rec in r.layers if rec.name == "1.relu")
    assert relu.input_rms == pytest.approx((h_bn + h0).square().mean().sqrt().item(), rel=1e-5)
    # the gradient of the BatchNorm output is the one before the in-place add and ReLU
    h0r = h0.detach().requires_grad_(True)
    y = model[1].bn(model[1].conv(h0r))
    y.retain_grad()
    torch.relu(y + h0r).sum().backward()
    bn = next(rec for rec in r.layers if rec.name == "1.bn")
    assert bn.backward_rms == pytest.approx(y.grad.square().mean().sqrt().item(), rel=1e-5)


@pytest.mark.parametrize("weight", [0.2, 5.0])
def test_float32_tiny_and_huge_signals_match_float64(weight: float) -> None:
    # 0.2^30 ~ 1e-21 has squares below float32's range, 5^30 ~ 9e20 squares above it: the
    # unscaled batched reductions are redone with an exact power-of-two scale
    r32 = probe(deep_chain(30, weight, width=3), torch.ones(2, 3))
    r64 = probe(deep_chain(30, weight, width=3), torch.ones(2, 3), dtype=torch.float64)
    for a, b in zip(r32.layers, r64.layers, strict=True):
        assert a.forward_rms == pytest.approx(b.forward_rms, rel=1e-5)
        assert a.backward_rms == pytest.approx(b.backward_rms, rel=1e-5)
        assert a.correlation == pytest.approx(b.correlation, rel=1e-5, abs=1e-6)
    assert r32.findings == ()


def test_batched_gpu_path_matches_per_tensor_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # on a GPU, outputs of one shape are stacked and reduced together (fewer kernel launches);
    # on the CPU they are reduced one by one: both give the same statistics
    from nndoctor.stability import propagation

    torch.manual_seed(0)
    cases = [
        (nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), _InPlaceBlock(), _InPlaceBlock()), None),
        (deep_chain(30, 0.2, width=3), None),  # rescued: squares below float32's range
        (deep_chain(30, 5.0, width=3), None),  # rescued: squares above it
        (digits_mlp(), torch.float64),
    ]
    for model, dtype in cases:
        first = next(model.parameters())
        x = torch.randn(5, 3, 6, 6) if first.dim() == 4 else torch.randn(5, first.shape[1])
        one = probe(model, x, dtype=dtype)
        monkeypatch.setattr(propagation, "_STACK_ON_CPU", True)
        stacked = probe(model, x, dtype=dtype)
        monkeypatch.setattr(propagation, "_STACK_ON_CPU", False)
        assert one.verdict == stacked.verdict
        for a, b in zip(one.layers, stacked.layers, strict=True):
            for field in ("forward_rms", "backward_rms", "forward_mean", "correlation"):
                va, vb = getattr(a, field), getattr(b, field)
                assert va == pytest.approx(vb, rel=1e-5, abs=1e-7, nan_ok=True), (a.name, field)
            assert a.zero_fraction == pytest.approx(b.zero_fraction, nan_ok=True)


def test_backward_gain_compares_gradient_norms_not_rms_per_entry() -> None:
    """A map with orthonormal rows preserves the gradient's norm, ||W^T g|| = ||g||, while its
    RMS per entry falls by sqrt(16/256): the gain must read 1, not 0.25."""
    lin = nn.Linear(256, 16, bias=False).double()
    with torch.no_grad():
        q, _ = torch.linalg.qr(torch.randn(256, 16, dtype=torch.float64))
        lin.weight.copy_(q.T)  # orthonormal rows
    x = torch.randn(8, 256, dtype=torch.float64)
    r = probe(nn.Sequential(lin, nn.Identity()), x, loss_fn=lambda y: (y**2).sum())
    assert r.backward_gain == pytest.approx(1.0, rel=1e-12)
    assert r.layers[0].backward_gain == pytest.approx(1.0)


def test_healthy_cnn_at_high_resolution_is_not_vanishing() -> None:
    """Downsampling stages, then global pooling, as CNNs are built: the RMS per entry of the
    first maps is ~1e-3 of the logits' (the gradient is spread over 96x96 positions), the norm
    is not."""
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    channels = 3
    for out in (8, 16, 16, 32):  # 96 -> 48 -> 24 -> 12 -> 6
        layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
        channels = out
    cnn = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    r = probe(cnn, torch.randn(4, 3, 96, 96))
    first, last = r.called_layers[0], r.called_layers[-1]
    assert first.backward_rms / last.backward_rms < 0.01  # per entry it would read "vanishing"
    assert r.verdict == "healthy"
    assert r.vanishing_gain < r.backward_gain < 1
    assert all(0.01 < rec.backward_gain <= 1 for rec in r.called_layers)


def test_training_mode_probe_draws_its_own_dropout_masks() -> None:
    # dropout in training mode used the global RNG: the report moved with whatever ran before,
    # and the probe advanced the caller's random state
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 4)).train()
    x = torch.randn(64, 8)
    torch.manual_seed(1)
    state = torch.get_rng_state()
    first = probe(model, x).to_dict()
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left as it was
    torch.manual_seed(2)
    torch.rand(5)
    assert probe(model, x).to_dict() == first  # the same report whatever ran before
    # the probe's generator decides the masks: another seed, other masks
    other = probe(model, x, generator=torch.Generator().manual_seed(1)).to_dict()
    assert other["layers"][2] != first["layers"][2]
    mine = probe(model, x, loss_fn=lambda out: out.square().mean()).to_dict()
    torch.manual_seed(3)
    assert probe(model, x, loss_fn=lambda out: out.square().mean()).to_dict() == mine


class _MarksItsInput(nn.Module):
    """Hugging Face's wav2vec2 / HuBERT feature encoders in training mode: ``h = x[:, None];
    h.requires_grad = True`` (for gradient checkpointing), legal on an input that does not
    require grad and a RuntimeError on one that does (a view is then not a leaf)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 8, 5, stride=2)
        self.act = nn.GELU()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x[:, None]
        if self.training:
            h.requires_grad = True
        return self.fc(self.act(self.conv(h)).mean(-1))


def test_a_model_that_marks_its_input_as_requiring_grad_is_probed() -> None:
    """The probe made the inputs leaves that require grad, so such a model's forward raised
    and the probe failed ("you can only change requires_grad flags of leaf variables", with a
    hint about the first Linear's features). It is probed with respect to its parameters, as
    for integer inputs, and in eval mode it gives the same forward statistics."""
    torch.manual_seed(0)
    model = _MarksItsInput()
    x = torch.randn(16, 64, generator=torch.Generator().manual_seed(1))
    train = probe(model, x)
    assert model.training
    assert train.verdict in ("healthy", "vanishing", "exploding")
    assert math.isfinite(train.forward_gain)
    assert math.isfinite(train.backward_gain)
    assert all(math.isfinite(la.backward_rms) for la in train.layers)
    evaluated = probe(model.eval(), x)
    assert train.forward_gain == pytest.approx(evaluated.forward_gain, rel=1e-6)
    assert [la.forward_rms for la in train.layers] == pytest.approx(
        [la.forward_rms for la in evaluated.layers], rel=1e-6
    )


def test_wav2vec2_in_training_mode_is_probed() -> None:
    """The model that showed it: a tiny ``Wav2Vec2Model`` from its config (nothing downloaded),
    fresh from the constructor and so in training mode, on a batch of raw audio."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        conv_dim=(8, 8), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    model = Wav2Vec2Model(config)
    report = probe(model, torch.randn(2, 200, generator=torch.Generator().manual_seed(0)))
    assert report.verdict == "healthy"
    assert model.training


class _ConvThenLinearFails(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 8, 5)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x[:, None]).mean(-1)
        if h.shape[-1] == 8:
            raise RuntimeError("something inside the model went wrong")
        return self.fc(h)


def test_forward_error_hint_names_the_layer_that_takes_the_input() -> None:
    """A forward that fails for a reason of its own, in a model whose first layer is a Conv1d:
    the hint blamed "the first Linear layer", which expects 8 features (the Conv1d's output),
    and told the user to reshape a batch of the right shape."""
    with pytest.raises(DataValidationError) as caught:
        probe(_ConvThenLinearFails(), torch.randn(4, 64))
    message = str(caught.value)
    assert "something inside the model went wrong" in message
    assert "Linear" not in message


def test_forward_error_on_float_inputs_to_an_embedding_says_token_ids() -> None:
    """An Embedding-first model (a language model) given a float batch (the CLI's
    ``--input-shape`` draws N(0, 1)): the error ended "pass a batch of the shape the model
    expects", though the shape was right and the type was not."""
    model = nn.Sequential(nn.Embedding(50, 8), nn.Flatten(), nn.Linear(80, 2))
    with pytest.raises(DataValidationError) as caught:
        probe(model, torch.randn(4, 10))
    message = str(caught.value)
    assert "Embedding" in message
    assert "integer indices" in message
    assert "below 50" in message
    assert "shape the model expects" not in message
    report = probe(model, torch.randint(0, 50, (4, 10), generator=torch.Generator().manual_seed(0)))
    assert math.isfinite(report.forward_gain)
