"""Mean-field theory against closed forms, known values and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nndoctor.exceptions import InvalidParameterError
from nndoctor.stability import theory


def test_relu_critical_point_is_two() -> None:
    assert theory.critical_sigma_w2("relu", 0.0) == pytest.approx(2.0, abs=1e-12)
    assert theory.chi1("relu", 2.0) == pytest.approx(1.0)


def test_tanh_critical_point_at_sigma_b2_005() -> None:
    s2 = theory.critical_sigma_w2("tanh", 0.05)
    assert s2 == pytest.approx(1.761, abs=2e-3)
    assert theory.chi1("tanh", s2, 0.05) == pytest.approx(1.0, abs=1e-3)
    assert theory.correlation_depth_scale("tanh", s2, 0.05) > 100


def test_tanh_critical_point_without_bias_is_one() -> None:
    assert theory.critical_sigma_w2("tanh") == pytest.approx(1.0, abs=1e-6)


def test_variance_map_relu_and_pytorch_default() -> None:
    assert theory.variance_map("relu", 1.0, sigma_w2=2.0) == pytest.approx(1.0)
    assert theory.variance_map("relu", 1.0, sigma_w2=1 / 3) == pytest.approx(1 / 6)
    q = np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(theory.variance_map("identity", q, sigma_w2=1 / 3), q / 3)


def test_default_digits_fixed_point_is_the_bias_floor() -> None:
    sb2 = (1 / 8) ** 2 / 3  # U(+-1/sqrt(64))
    q_star = theory.fixed_point("relu", 1 / 3, sb2)
    assert q_star == pytest.approx(sb2 / (1 - 1 / 6))
    assert theory.chi1("relu", 1 / 3, sb2) == pytest.approx(1 / 6)
    assert theory.correlation_fixed_point("relu", 1 / 3, sb2) == 1.0
    assert theory.correlation_depth_scale("relu", 1 / 3, sb2) == pytest.approx(-1 / math.log(1 / 6))


def test_linear_chain_gain() -> None:
    assert theory.linear_chain_gain(0.04, 30) == pytest.approx(0.2**30, rel=1e-12)
    assert theory.linear_chain_gain(25.0, 30) == pytest.approx(5.0**30, rel=1e-12)
    assert theory.linear_chain_gain(1.0, 3, sigma_b2=1.0) == pytest.approx(2.0)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "gelu", "silu", "elu", "leaky_relu", "relu"])
def test_moments_match_monte_carlo(name: str) -> None:
    act = theory.Activation(name)
    z = np.random.default_rng(0).standard_normal(400_000)
    q = 1.7
    x = math.sqrt(q) * z
    assert act.second_moment(q) == pytest.approx(np.mean(act.phi(x) ** 2), rel=1e-2)
    assert act.derivative_second_moment(q) == pytest.approx(np.mean(act.dphi(x) ** 2), rel=1e-2)
    c = 0.6
    x2 = math.sqrt(q) * (c * z + math.sqrt(1 - c * c) * np.roll(z, 1))
    mc = float(np.mean(act.phi(x) * act.phi(x2)))
    assert act.cross_moment(q, c) == pytest.approx(mc, rel=2e-2, abs=2e-3)


def test_relu_correlation_map_arccos_kernel() -> None:
    # c=0 -> 1/pi under He init (Cho & Saul)
    assert theory.correlation_map("relu", 0.0, 1.0, sigma_w2=2.0) == pytest.approx(1 / math.pi)
    assert theory.correlation_map("relu", 1.0, 1.0, sigma_w2=2.0) == pytest.approx(1.0)


def test_chaotic_tanh_has_correlation_fixed_point_below_one() -> None:
    c_star = theory.correlation_fixed_point("tanh", 3.0, 0.05)
    assert 0 < c_star < 1
    q = theory.fixed_point("tanh", 3.0, 0.05)
    assert theory.correlation_map("tanh", c_star, q, sigma_w2=3.0, sigma_b2=0.05) == (
        pytest.approx(c_star, abs=1e-6)
    )
    assert theory.mean_field_summary("tanh", 3.0, 0.05).phase == "chaotic"


def test_unknown_activation_lists_choices() -> None:
    with pytest.raises(InvalidParameterError, match="choose one of: elu, gelu"):
        theory.as_activation("swishy")


def test_activation_of_modules() -> None:
    from torch import nn

    assert theory.activation_of(nn.ReLU()) == theory.Activation("relu")
    assert theory.activation_of(nn.GELU()).name == "gelu"  # type: ignore[union-attr]
    assert theory.activation_of(nn.Linear(2, 2)) is None
    assert theory.activation_gain("relu") == pytest.approx(math.sqrt(2))
