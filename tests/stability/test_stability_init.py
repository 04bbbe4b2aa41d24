"""init_, lsuv_ and audit_init: laws of the drawn weights, determinism, policy, errors."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
from scipy import stats
from torch import nn

from nndoctor.exceptions import InvalidParameterError, SmallSampleWarning
from nndoctor.scenarios import digits_mlp
from nndoctor.stability import SCHEMES, audit_init, init_, lsuv_
from nndoctor.stability.theory import critical_sigma_w2


def _mlp(act: type[nn.Module] = nn.ReLU, fan_in: int = 300, fan_out: int = 200) -> nn.Sequential:
    return nn.Sequential(nn.Linear(fan_in, fan_out), act(), nn.Linear(fan_out, 10))


def test_xavier_uniform_passes_ks_against_its_law() -> None:
    model = init_(_mlp(), "xavier_uniform", generator=torch.Generator().manual_seed(0))
    w = model[0].weight.detach().numpy().ravel()
    bound = math.sqrt(6 / (300 + 200))
    assert stats.kstest(w, stats.uniform(-bound, 2 * bound).cdf).pvalue > 1e-3
    # and the test has power: the Kaiming law is rejected
    kb = math.sqrt(6 / 300)
    assert stats.kstest(w, stats.uniform(-kb, 2 * kb).cdf).pvalue < 1e-6
    assert torch.all(model[0].bias == 0)


def test_kaiming_is_activation_aware() -> None:
    relu = init_(_mlp(nn.ReLU), "kaiming_normal", generator=torch.Generator().manual_seed(0))
    tanh = init_(_mlp(nn.Tanh), "kaiming_normal", generator=torch.Generator().manual_seed(0))
    assert float(relu[0].weight.detach().var()) * 300 == pytest.approx(2.0, rel=0.03)
    assert float(tanh[0].weight.detach().var()) * 300 == pytest.approx((5 / 3) ** 2, rel=0.03)
    # the output layer is followed by nothing: gain 1
    assert float(relu[2].weight.detach().var()) * 200 == pytest.approx(1.0, rel=0.15)


def test_critical_tanh_uses_mean_field_sigma_w2() -> None:
    model = init_(
        _mlp(nn.Tanh), "critical", sigma_b2=0.05, generator=torch.Generator().manual_seed(1)
    )
    s2 = critical_sigma_w2("tanh", 0.05)
    assert float(model[0].weight.detach().var()) * 300 == pytest.approx(s2, rel=0.03)
    assert float(model[0].bias.detach().var()) == pytest.approx(0.05, rel=0.5)


def test_same_generator_same_weights_for_every_scheme() -> None:
    for scheme in SCHEMES:
        a = init_(_mlp(), scheme, generator=torch.Generator().manual_seed(3))
        b = init_(_mlp(), scheme, generator=torch.Generator().manual_seed(3))
        for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
            assert torch.equal(pa, pb), scheme


def test_pytorch_default_resets_and_policy_for_norms_and_embeddings() -> None:
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 4), nn.LayerNorm(4))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3.0)
    init_(model, "pytorch_default", generator=torch.Generator().manual_seed(0))
    assert float(model[1].weight.detach().abs().max()) <= 0.5
    assert torch.all(model[2].weight == 1)
    assert torch.all(model[2].bias == 0)
    init_(model, "orthogonal", generator=torch.Generator().manual_seed(0))
    w = model[1].weight.detach()
    torch.testing.assert_close(w @ w.T, torch.eye(4), atol=1e-5, rtol=0)
    assert float(model[0].weight.detach().std()) == pytest.approx(1.0, abs=0.5)
    init_(model, "zeros")
    assert torch.all(model[1].weight == 0)
    assert torch.all(model[0].weight == 0)


def test_unknown_scheme_and_option_errors() -> None:
    with pytest.raises(InvalidParameterError, match="choose one of: constant, critical"):
        init_(_mlp(), "xavier")
    with pytest.raises(InvalidParameterError, match="options are: value, bias_value"):
        init_(_mlp(), "constant", gain=2.0)
    with pytest.raises(InvalidParameterError, match=r"torch\.nn\.Module"):
        init_("model", "zeros")  # type: ignore[arg-type]


def test_lsuv_gives_unit_variance_per_layer() -> None:
    x = torch.randn(256, 64, generator=torch.Generator().manual_seed(0))
    model = lsuv_(digits_mlp(), x, generator=torch.Generator().manual_seed(0), tol=0.02)
    h = x
    with torch.no_grad():
        for m in model:
            h = m(h)
            if isinstance(m, nn.Linear):
                assert float(h.var()) == pytest.approx(1.0, abs=0.03)


def test_lsuv_on_a_single_output_value_warns_instead_of_torch_noise() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1))
    x = torch.randn(1, 4, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lsuv_(model, x, generator=torch.Generator().manual_seed(0))
    messages = [str(w.message) for w in caught]
    assert [w.category for w in caught] == [SmallSampleWarning], messages
    assert "layer(s) 2 output a single value" in messages[0]
    with torch.no_grad():  # the first layer (4 values) was still rescaled
        assert float(model[0](x).var()) == pytest.approx(1.0, abs=0.05)
        assert torch.isfinite(model(x)).all()


def test_audit_recognises_schemes() -> None:
    audit = audit_init(digits_mlp())
    assert [la.scheme for la in audit.layers[:-1]].count("pytorch_default") >= 7
    assert audit.layers[1].fan_in_var == pytest.approx(1 / 3, rel=0.1)
    assert audit.layers[1].forward_factor == pytest.approx(1 / 6, rel=0.1)
    assert audit.mean_field is not None
    assert audit.mean_field.phase == "ordered"
    assert "kaiming_normal" in audit.recommendation
    gen = torch.Generator().manual_seed(0)
    assert audit_init(init_(_mlp(), "xavier_uniform", generator=gen)).layers[0].scheme == (
        "xavier_uniform"
    )
    kaiming = audit_init(init_(_mlp(fan_in=200), "kaiming_normal", generator=gen))
    assert kaiming.layers[0].scheme == "kaiming_normal"
    assert kaiming.layers[0].recommendation.endswith("keep")
    assert audit_init(init_(_mlp(), "orthogonal", generator=gen)).layers[0].scheme == "orthogonal"
    assert audit_init(init_(_mlp(), "constant")).layers[0].scheme == "constant"
    trained = _mlp()
    with torch.no_grad():
        trained[0].weight.mul_(torch.linspace(0.1, 3.0, 300))
    assert audit_init(trained).layers[0].scheme == "unknown"


def test_lsuv_measures_every_pass_on_the_same_dropout_masks() -> None:
    # the passes drew dropout masks from the global RNG: the result moved with what ran before
    # (and a noisy variance could fail to converge); the global state was advanced
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.5), nn.Linear(16, 2)).train()
    x = torch.randn(16, 8)
    results = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        state = torch.get_rng_state()
        m = lsuv_(copy.deepcopy(model), x, generator=torch.Generator().manual_seed(0), tol=1e-3)
        assert torch.equal(torch.get_rng_state(), state)
        results.append(m)
    for a, b in zip(results[0].parameters(), results[1].parameters(), strict=True):
        assert torch.equal(a, b)
