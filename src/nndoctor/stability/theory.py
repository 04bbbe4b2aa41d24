r"""Mean-field theory of signal propagation: what a layer *should* do to a signal at initialization.

A fully connected layer :math:`h^{l+1} = W^{l+1}\phi(h^l) + b^{l+1}` with i.i.d. weights of
variance :math:`\sigma_w^2/N` and biases of variance :math:`\sigma_b^2` maps the second moment of
its pre-activations :math:`q^l = \mathbb{E}[(h^l)^2]` by the *variance map*

.. math::

    q^{l+1} = \mathcal{V}(q^l) = \sigma_w^2\,\mathbb{E}_{z\sim\mathcal N(0,1)}
        \big[\phi(\sqrt{q^l}\,z)^2\big] + \sigma_b^2 ,

and the gradient's second moment, going backwards, by

.. math::

    \chi_1 = \sigma_w^2\,\mathbb{E}_z\big[\phi'(\sqrt{q^*}\,z)^2\big]

at the fixed point :math:`q^* = \mathcal V(q^*)`. :math:`\chi_1 < 1` means vanishing gradients,
:math:`\chi_1 > 1` exploding ones, and :math:`\chi_1 = 1` is the *critical* (edge-of-chaos)
initialization. Two inputs with correlation :math:`c` are mapped by the *correlation map*; near its
fixed point :math:`c^*` the distance decays as :math:`e^{-l/\xi_c}` with the correlation depth scale
:math:`\xi_c = -1/\ln \chi_c`, where :math:`\chi_c = \sigma_w^2\,\mathbb E[\phi'(u_1)\phi'(u_2)]`.

Gaussian expectations use Gauss-Hermite quadrature (closed forms for the piecewise-linear ReLU
family, where quadrature converges slowly at the kink).

The per-activation part (:class:`Activation`, :func:`activation_of`) is reusable by anything that
needs to know what an activation module does to a signal's second moment.

References
----------
Poole, Lahiri, Raghu, Sohl-Dickstein, Ganguli (2016), "Exponential expressivity in deep neural
networks through transient chaos", NeurIPS.
Schoenholz, Gilmer, Ganguli, Sohl-Dickstein (2017), "Deep information propagation", ICLR.
He, Zhang, Ren, Sun (2015), "Delving deep into rectifiers", ICCV.

Examples
--------
>>> round(critical_sigma_w2("relu"), 6)
2.0
>>> round(critical_sigma_w2("tanh", 0.05), 3)
1.761
>>> linear_chain_gain(0.2**2, 30)  # a scalar chain with weight 0.2: 0.2**30
1.07374...e-21
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, get_args, overload

import numpy as np
import numpy.typing as npt
from torch import nn

from nndoctor._results import ResultMixin
from nndoctor._validation import check_int, check_number
from nndoctor.exceptions import InvalidParameterError

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "ActivationName",
    "MeanFieldSummary",
    "activation_gain",
    "activation_of",
    "as_activation",
    "chi1",
    "correlation_depth_scale",
    "correlation_fixed_point",
    "correlation_map",
    "critical_sigma_w2",
    "fixed_point",
    "linear_chain_gain",
    "mean_field_summary",
    "variance_map",
]

ActivationName = Literal[
    "elu", "gelu", "identity", "leaky_relu", "relu", "selu", "sigmoid", "silu", "softplus", "tanh"
]
ACTIVATIONS: tuple[str, ...] = get_args(ActivationName)
"""Activations with a mean-field theory here."""

FloatArray = npt.NDArray[np.float64]

_N_QUAD = 121
_N_QUAD_2D = 61
_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


@lru_cache(maxsize=4)
def _hermite(n: int) -> tuple[FloatArray, FloatArray]:
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    return nodes.astype(np.float64), (weights / math.sqrt(2.0 * math.pi)).astype(np.float64)


@lru_cache(maxsize=1)
def _grid() -> tuple[FloatArray, FloatArray]:
    z = np.linspace(-12.0, 12.0, 9601)
    w = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi) * (z[1] - z[0])
    w[[0, -1]] *= 0.5
    return z, w


def _sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * x))
    return out


def _norm_cdf(x: FloatArray) -> FloatArray:
    from scipy.special import ndtr

    out: FloatArray = ndtr(x)
    return out


def _norm_pdf(x: FloatArray) -> FloatArray:
    out: FloatArray = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return out


def _functions(name: str, p: float) -> tuple[Callable[[FloatArray], FloatArray], ...]:
    """(phi, dphi) for an activation name and its parameter."""
    if name == "identity":
        return (lambda x: x, lambda x: np.ones_like(x))
    if name == "relu":
        return (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(np.float64))
    if name == "leaky_relu":
        return (lambda x: np.where(x > 0, x, p * x), lambda x: np.where(x > 0, 1.0, p))
    if name == "tanh":
        return (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2)
    if name == "sigmoid":
        return (_sigmoid, lambda x: _sigmoid(x) * (1.0 - _sigmoid(x)))
    if name == "gelu":
        return (
            lambda x: x * _norm_cdf(x),
            lambda x: _norm_cdf(x) + x * _norm_pdf(x),
        )
    if name == "silu":
        return (
            lambda x: x * _sigmoid(x),
            lambda x: _sigmoid(x) * (1.0 + x * (1.0 - _sigmoid(x))),
        )
    if name == "elu":
        return (
            lambda x: np.where(x > 0, x, p * np.expm1(np.minimum(x, 0.0))),
            lambda x: np.where(x > 0, 1.0, p * np.exp(np.minimum(x, 0.0))),
        )
    if name == "selu":
        a, s = _SELU_ALPHA, _SELU_SCALE
        return (
            lambda x: s * np.where(x > 0, x, a * np.expm1(np.minimum(x, 0.0))),
            lambda x: s * np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0.0))),
        )
    # softplus with beta p
    return (
        lambda x: np.logaddexp(0.0, p * x) / p,
        lambda x: _sigmoid(p * x),
    )


@dataclass(frozen=True, slots=True)
class Activation(ResultMixin):
    r"""An elementwise nonlinearity and its mean-field moments.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    param : float
        ``negative_slope`` for leaky ReLU (default 0.01), ``alpha`` for ELU (1.0), ``beta`` for
        softplus (1.0); ignored otherwise.

    Notes
    -----
    :meth:`second_moment` is :math:`\mathbb E[\phi(\sqrt q z)^2]`, :meth:`derivative_second_moment`
    is :math:`\mathbb E[\phi'(\sqrt q z)^2]`, with :math:`z\sim\mathcal N(0,1)`. For the ReLU
    family they have the closed forms :math:`q(1+s^2)/2` and :math:`(1+s^2)/2` (He et al., 2015).

    Examples
    --------
    >>> Activation("relu").second_moment(4.0)
    2.0
    >>> round(Activation("tanh").derivative_second_moment(1.0), 4)
    0.4644
    """

    name: str
    param: float = float("nan")

    def __post_init__(self) -> None:
        _check_real(self.param, name="param")
        if self.name not in ACTIVATIONS:
            raise InvalidParameterError(
                f"activation {self.name!r} is unknown; choose one of: {', '.join(ACTIVATIONS)}"
            )
        if math.isnan(self.param):
            default = {"leaky_relu": 0.01, "elu": 1.0, "softplus": 1.0}.get(self.name, 0.0)
            object.__setattr__(self, "param", default)

    @property
    def _piecewise_linear(self) -> bool:
        return self.name in ("identity", "relu", "leaky_relu")

    @property
    def _slope(self) -> float:
        """Negative-side slope of the ReLU family (identity: 1)."""
        return {"identity": 1.0, "relu": 0.0}.get(self.name, self.param)

    def phi(self, x: FloatArray) -> FloatArray:
        """The activation on a NumPy array."""
        return _functions(self.name, self.param)[0](np.asarray(x, dtype=np.float64))

    def dphi(self, x: FloatArray) -> FloatArray:
        """Its derivative on a NumPy array."""
        return _functions(self.name, self.param)[1](np.asarray(x, dtype=np.float64))

    def _expect(self, f: Callable[[FloatArray], FloatArray], q: FloatArray) -> FloatArray:
        # Gauss-Hermite for smooth activations; a fine grid where phi' has a kink at 0
        z, w = _grid() if self.name in ("elu", "selu") else _hermite(_N_QUAD)
        x = np.sqrt(np.maximum(q, 0.0))[..., None] * z
        out: FloatArray = f(x) @ w
        return out

    def second_moment(self, q: Any) -> Any:
        r""":math:`\mathbb E[\phi(\sqrt q z)^2]` (scalar in, float out; array in, array out)."""
        qa = np.asarray(q, dtype=np.float64)
        if self._piecewise_linear:
            s = self._slope
            out = qa * (1.0 + s * s) / 2.0
        else:
            phi = _functions(self.name, self.param)[0]
            out = self._expect(lambda x: phi(x) ** 2, qa)
        return float(out) if out.ndim == 0 else out

    def derivative_second_moment(self, q: Any) -> Any:
        r""":math:`\mathbb E[\phi'(\sqrt q z)^2]`."""
        qa = np.asarray(q, dtype=np.float64)
        if self._piecewise_linear:
            s = self._slope
            out = np.full_like(qa, (1.0 + s * s) / 2.0)
        else:
            dphi = _functions(self.name, self.param)[1]
            out = self._expect(lambda x: dphi(x) ** 2, qa)
        return float(out) if out.ndim == 0 else out

    def _pair_expect(self, f: Callable[[FloatArray], FloatArray], q: float, c: float) -> float:
        z, w = _hermite(_N_QUAD_2D)
        z1, z2 = np.meshgrid(z, z, indexing="ij")
        ww = np.outer(w, w)
        sq = math.sqrt(max(q, 0.0))
        c = min(max(c, -1.0), 1.0)
        u1 = sq * z1
        u2 = sq * (c * z1 + math.sqrt(max(1.0 - c * c, 0.0)) * z2)
        return float(np.sum(f(u1) * f(u2) * ww))

    def cross_moment(self, q: float, c: float) -> float:
        r""":math:`\mathbb E[\phi(u_1)\phi(u_2)]` for :math:`u_1,u_2` with variance :math:`q` and
        correlation :math:`c` (arc-cosine kernel for the ReLU family; Cho & Saul, 2009)."""
        if self._piecewise_linear:
            s = self._slope
            c = min(max(c, -1.0), 1.0)
            theta = math.acos(c)
            relu_relu = q / (2 * math.pi) * (math.sin(theta) + (math.pi - theta) * c)
            # phi(x) = s x + (1 - s) relu(x); E[u1 relu(u2)] = q c / 2
            return s * s * q * c + 2 * s * (1 - s) * q * c / 2 + (1 - s) ** 2 * relu_relu
        return self._pair_expect(_functions(self.name, self.param)[0], q, c)

    def derivative_cross_moment(self, q: float, c: float) -> float:
        r""":math:`\mathbb E[\phi'(u_1)\phi'(u_2)]` (same joint law as :meth:`cross_moment`)."""
        if self._piecewise_linear:
            s = self._slope
            c = min(max(c, -1.0), 1.0)
            both = (math.pi - math.acos(c)) / (2 * math.pi)
            return s * s + 2 * s * (1 - s) / 2 + (1 - s) ** 2 * both
        return self._pair_expect(_functions(self.name, self.param)[1], q, c)


def as_activation(activation: str | Activation) -> Activation:
    """Return ``activation`` as an :class:`Activation` (names are looked up in :data:`ACTIVATIONS`).

    Examples
    --------
    >>> as_activation("leaky_relu").param
    0.01
    """
    if isinstance(activation, Activation):
        return activation
    if not isinstance(activation, str):
        raise InvalidParameterError(
            f"activation must be a name or an Activation, got {type(activation).__name__}; "
            f"choose one of: {', '.join(ACTIVATIONS)}"
        )
    aliases = {"linear": "identity", "swish": "silu"}
    return Activation(aliases.get(activation, activation))


def activation_of(module: nn.Module) -> Activation | None:
    """The :class:`Activation` an ``nn.Module`` applies elementwise, or ``None``.

    Examples
    --------
    >>> activation_of(nn.LeakyReLU(0.2))
    Activation(name='leaky_relu', param=0.2)
    >>> activation_of(nn.Linear(2, 2)) is None
    True
    """
    if isinstance(module, nn.ReLU):
        return Activation("relu")
    if isinstance(module, nn.LeakyReLU):
        return Activation("leaky_relu", float(module.negative_slope))
    if isinstance(module, nn.Tanh):
        return Activation("tanh")
    if isinstance(module, nn.Sigmoid):
        return Activation("sigmoid")
    if isinstance(module, nn.GELU):
        return Activation("gelu")
    if isinstance(module, nn.SiLU):
        return Activation("silu")
    if isinstance(module, nn.SELU):
        return Activation("selu")
    if isinstance(module, nn.ELU):
        return Activation("elu", float(module.alpha))
    if isinstance(module, nn.Softplus):
        return Activation("softplus", float(module.beta))
    return None


def activation_gain(activation: str | Activation) -> float:
    r"""The weight gain :math:`g` (std :math:`= g/\sqrt{\text{fan}}`) suited to an activation.

    Uses :func:`torch.nn.init.calculate_gain` where it knows the activation (ReLU :math:`\sqrt2`,
    tanh 5/3, leaky ReLU :math:`\sqrt{2/(1+s^2)}`, SELU 3/4, identity and sigmoid 1); for the others
    (GELU, SiLU, ELU, softplus) the gain that preserves a unit second moment,
    :math:`g = 1/\sqrt{\mathbb E[\phi(z)^2]}`.

    Examples
    --------
    >>> round(activation_gain("relu") ** 2, 6)
    2.0
    >>> round(activation_gain("gelu"), 3)
    1.534
    """
    from torch.nn.init import calculate_gain

    act = as_activation(activation)
    if act.name == "identity":
        return 1.0
    if act.name == "leaky_relu":
        return float(calculate_gain("leaky_relu", act.param))
    if act.name == "relu":
        return float(calculate_gain("relu"))
    if act.name == "tanh":
        return float(calculate_gain("tanh"))
    if act.name == "sigmoid":
        return float(calculate_gain("sigmoid"))
    if act.name == "selu":
        return float(calculate_gain("selu"))
    return 1.0 / math.sqrt(float(act.second_moment(1.0)))


def _check_moments(sigma_w2: Any, sigma_b2: Any) -> tuple[float, float]:
    """The weight and bias variances as floats; both are variances, so >= 0."""
    return (
        check_number(sigma_w2, name="sigma_w2", minimum=0.0),
        check_number(sigma_b2, name="sigma_b2", minimum=0.0),
    )


def _check_q(q: Any, *, name: str) -> None:
    """A second moment (scalar or array): finite and >= 0."""
    try:
        arr = np.asarray(q, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(
            f"{name} must be a number or an array of numbers, got {type(q).__name__}; pass "
            "a float >= 0"
        ) from err
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise InvalidParameterError(
            f"{name} is a second moment: it must be finite and >= 0, got {q!r}; pass a float >= 0"
        )


def _check_real(value: Any, *, name: str) -> None:
    """``value`` is a real number (NaN allowed: it means "the default")."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidParameterError(
            f"{name} must be a number, got {type(value).__name__} {value!r}; pass a float"
        )


@overload
def variance_map(
    activation: str | Activation, q: float, *, sigma_w2: float = 1.0, sigma_b2: float = 0.0
) -> float: ...
@overload
def variance_map(
    activation: str | Activation, q: FloatArray, *, sigma_w2: float = 1.0, sigma_b2: float = 0.0
) -> FloatArray: ...
def variance_map(
    activation: str | Activation, q: Any, *, sigma_w2: float = 1.0, sigma_b2: float = 0.0
) -> Any:
    r"""One layer's map of the pre-activation second moment.

    .. math::

        \mathcal V(q) = \sigma_w^2\,\mathbb E_z[\phi(\sqrt q\,z)^2] + \sigma_b^2,
        \qquad \sigma_w^2 = \text{fan\_in}\cdot\operatorname{Var}(W).

    Parameters
    ----------
    activation : str or Activation
        The nonlinearity between layers.
    q : float or ndarray
        Second moment of the pre-activations entering the activation.
    sigma_w2, sigma_b2 : float
        fan_in times the weight variance, and the bias variance, of the next linear map.

    Examples
    --------
    >>> variance_map("relu", 1.0, sigma_w2=2.0)
    1.0
    >>> variance_map("relu", 1.0, sigma_w2=1 / 3)  # PyTorch's default on ReLU: x 1/6
    0.16666...
    """
    sigma_w2, sigma_b2 = _check_moments(sigma_w2, sigma_b2)
    _check_q(q, name="q")
    act = as_activation(activation)
    return sigma_w2 * act.second_moment(q) + sigma_b2


def linear_chain_gain(
    sigma_w2: float, depth: int, *, sigma_b2: float = 0.0, q0: float = 1.0
) -> float:
    r"""RMS gain of a chain of ``depth`` linear layers (no activation).

    .. math::

        q_{l+1} = \sigma_w^2 q_l + \sigma_b^2,\qquad \text{gain} = \sqrt{q_L / q_0},

    so without biases the gain is :math:`\sigma_w^{L}`; a width-1 chain with weight :math:`w` has
    :math:`\sigma_w^2 = w^2` and gain :math:`|w|^L`.

    Examples
    --------
    >>> linear_chain_gain(25.0, 30)  # 5**30
    9.31322...e+20
    >>> round(linear_chain_gain(1 / 3, 10) ** 2 * 3**10, 6)  # PyTorch default: (1/3)**10
    1.0
    """
    sigma_w2, sigma_b2 = _check_moments(sigma_w2, sigma_b2)
    depth = check_int(depth, name="depth", minimum=0)
    q0 = check_number(q0, name="q0", minimum=0.0, exclusive_minimum=True)
    if sigma_b2 == 0.0:
        return math.exp(0.5 * depth * math.log(sigma_w2)) if sigma_w2 > 0 else 0.0
    q = q0
    for _ in range(depth):
        q = sigma_w2 * q + sigma_b2
    return math.sqrt(q / q0)


def fixed_point(
    activation: str | Activation,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    *,
    q0: float = 1.0,
    tol: float = 1e-12,
    max_iter: int = 10_000,
) -> float:
    r"""The fixed point :math:`q^* = \mathcal V(q^*)` reached from :math:`q_0`.

    For the ReLU family :math:`\mathcal V` is affine, :math:`q^* = \sigma_b^2/(1-a\sigma_w^2)` with
    :math:`a=(1+s^2)/2`; ``inf`` when :math:`a\sigma_w^2 \ge 1` (and :math:`\sigma_b^2>0`), and
    :math:`q_0` itself at exact criticality without bias. Otherwise the map is iterated.

    Examples
    --------
    >>> fixed_point("relu", 1 / 3, 1 / 192)  # the default digits MLP: the bias floor
    0.00625
    >>> round(fixed_point("tanh", 1.761, 0.05), 3)
    0.57
    """
    sigma_w2, sigma_b2 = _check_moments(sigma_w2, sigma_b2)
    q0 = check_number(q0, name="q0", minimum=0.0)
    tol = check_number(tol, name="tol", minimum=0.0, exclusive_minimum=True)
    max_iter = check_int(max_iter, name="max_iter", minimum=1)
    act = as_activation(activation)
    if act._piecewise_linear:
        a = (1.0 + act._slope**2) / 2.0
        slope = a * sigma_w2
        if abs(slope - 1.0) < 1e-15:
            return q0 if sigma_b2 == 0.0 else math.inf
        if slope > 1.0:
            return math.inf if q0 > 0 or sigma_b2 > 0 else 0.0
        return sigma_b2 / (1.0 - slope)
    from scipy.optimize import brentq

    def vmap(x: float) -> float:
        return float(variance_map(act, x, sigma_w2=sigma_w2, sigma_b2=sigma_b2))

    q = q0
    for _ in range(min(max_iter, 200)):
        q_new = vmap(q)
        if not math.isfinite(q_new) or q_new > 1e12:
            return math.inf
        if abs(q_new - q) <= tol * max(1.0, q):
            return q_new
        q = q_new
    # slow convergence near criticality: bracket the root of V(q) - q and solve it directly
    hi = max(q, 1.0)
    while vmap(hi) - hi > 0:
        hi *= 4.0
        if hi > 1e12:
            return math.inf
    lo = hi
    while vmap(lo) - lo < 0:
        lo /= 4.0
        if lo < 1e-300:
            return 0.0
    if lo == hi:
        return hi
    return float(brentq(lambda x: vmap(x) - x, lo, hi, xtol=1e-300, rtol=1e-13))


def chi1(
    activation: str | Activation,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    *,
    q: float | None = None,
) -> float:
    r"""Gradient second-moment factor per layer.

    .. math::

        \chi_1 = \sigma_w^2\,\mathbb E_z[\phi'(\sqrt q\,z)^2]

    Evaluated at the fixed point :math:`q^*` unless ``q`` is given (Poole et al., 2016).

    Examples
    --------
    >>> chi1("relu", 2.0)
    1.0
    >>> round(chi1("relu", 1 / 3, 1 / 192), 4)  # PyTorch's default: gradients shrink x 1/6
    0.1667
    """
    sigma_w2, sigma_b2 = _check_moments(sigma_w2, sigma_b2)
    q = None if q is None else check_number(q, name="q", minimum=0.0)
    act = as_activation(activation)
    if q is None:
        q = fixed_point(act, sigma_w2, sigma_b2)
    if not math.isfinite(q):
        q = 1e6  # past the saturation of bounded activations; the ReLU family does not depend on q
    return float(sigma_w2 * act.derivative_second_moment(q))


def critical_sigma_w2(activation: str | Activation, sigma_b2: float = 0.0) -> float:
    r"""The weight variance :math:`\sigma_w^2` at which :math:`\chi_1 = 1` (the edge of chaos).

    Solves :math:`\sigma_w^2\,\mathbb E[\phi'(\sqrt{q^*(\sigma_w^2)}z)^2] = 1` by Brent's method;
    closed form :math:`2/(1+s^2)` for the ReLU family.

    Examples
    --------
    >>> critical_sigma_w2("relu")
    2.0
    >>> round(critical_sigma_w2("tanh"), 4)
    1.0
    """
    sigma_b2 = check_number(sigma_b2, name="sigma_b2", minimum=0.0)
    from scipy.optimize import brentq

    act = as_activation(activation)
    if act._piecewise_linear:
        return 2.0 / (1.0 + act._slope**2)

    def excess(s2: float) -> float:
        return chi1(act, s2, sigma_b2) - 1.0

    lo, hi = 1e-3, 1.0
    while excess(hi) < 0:
        lo, hi = hi, hi * 2.0
        if hi > 1e4:
            raise InvalidParameterError(
                f"activation {act.name!r} has no critical point with sigma_b2={sigma_b2}"
            )
    if excess(lo) > 0:
        raise InvalidParameterError(
            f"activation {act.name!r} is chaotic for every sigma_w2 with sigma_b2={sigma_b2}"
        )
    return float(brentq(excess, lo, hi, xtol=1e-10, rtol=1e-12))


def correlation_map(
    activation: str | Activation,
    c: float,
    q: float,
    *,
    sigma_w2: float = 1.0,
    sigma_b2: float = 0.0,
) -> float:
    r"""The map of the correlation between two inputs' pre-activations (both of second moment q).

    .. math::

        c' = \frac{\sigma_w^2\,\mathbb E[\phi(u_1)\phi(u_2)] + \sigma_b^2}{\mathcal V(q)}.

    Examples
    --------
    >>> round(correlation_map("relu", 0.0, 1.0, sigma_w2=2.0), 4)  # 1/pi
    0.3183
    """
    sigma_w2, sigma_b2 = _check_moments(sigma_w2, sigma_b2)
    c = check_number(c, name="c", minimum=-1.0, maximum=1.0)
    q = check_number(q, name="q", minimum=0.0, exclusive_minimum=True)
    act = as_activation(activation)
    num = sigma_w2 * act.cross_moment(q, c) + sigma_b2
    den = float(variance_map(act, q, sigma_w2=sigma_w2, sigma_b2=sigma_b2))
    return num / den if den > 0 else 1.0


def _q_for_correlation(act: Activation, sigma_w2: float, sigma_b2: float) -> float:
    q = fixed_point(act, sigma_w2, sigma_b2)
    if math.isfinite(q) and q > 0:
        return q
    return 1.0 if q == 0 or not act._piecewise_linear else 1e8


def correlation_fixed_point(
    activation: str | Activation,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    *,
    c0: float = 0.0,
    tol: float = 1e-10,
    max_iter: int = 5_000,
) -> float:
    r"""The stable fixed point :math:`c^*` of :func:`correlation_map` at :math:`q^*`.

    In the ordered and critical phases (:math:`\chi_1 \le 1`) it is :math:`c^* = 1`; in the
    chaotic phase the map is iterated from ``c0`` to the fixed point below 1.

    Examples
    --------
    >>> round(correlation_fixed_point("relu", 1 / 3, 1 / 192), 6)  # bias-dominated: c* = 1
    1.0
    """
    sigma_w2, sigma_b2 = _check_moments(sigma_w2, sigma_b2)
    c0 = check_number(c0, name="c0", minimum=-1.0, maximum=1.0)
    tol = check_number(tol, name="tol", minimum=0.0, exclusive_minimum=True)
    max_iter = check_int(max_iter, name="max_iter", minimum=1)
    act = as_activation(activation)
    if chi1(act, sigma_w2, sigma_b2) <= 1.0 + 1e-9:
        return 1.0  # ordered or critical: every pair of inputs ends up aligned
    q = _q_for_correlation(act, sigma_w2, sigma_b2)
    c = c0
    for _ in range(max_iter):
        c_new = correlation_map(act, c, q, sigma_w2=sigma_w2, sigma_b2=sigma_b2)
        if abs(c_new - c) <= tol:
            return min(c_new, 1.0)
        c = c_new
    return min(c, 1.0)


def correlation_depth_scale(
    activation: str | Activation, sigma_w2: float, sigma_b2: float = 0.0
) -> float:
    r"""Depth over which two inputs' correlation relaxes to :math:`c^*` (Schoenholz et al., 2017).

    .. math::

        \xi_c = -1/\ln\chi_c,\qquad
        \chi_c = \sigma_w^2\,\mathbb E[\phi'(u_1)\phi'(u_2)]\big|_{q^*, c^*};

    ``inf`` at criticality (:math:`\chi_c = 1`): signals stay distinguishable at any depth.
    A small :math:`\xi_c` means all inputs look alike after a few layers.

    Examples
    --------
    >>> round(correlation_depth_scale("relu", 1 / 3, 1 / 192), 3)  # -1/ln(1/6)
    0.558
    >>> correlation_depth_scale("relu", 2.0)
    inf
    """
    sigma_w2, sigma_b2 = _check_moments(sigma_w2, sigma_b2)
    act = as_activation(activation)
    q = _q_for_correlation(act, sigma_w2, sigma_b2)
    c_star = correlation_fixed_point(act, sigma_w2, sigma_b2)
    chi_c = sigma_w2 * act.derivative_cross_moment(q, c_star)
    if chi_c <= 0:
        return 0.0
    if chi_c >= 1.0 - 1e-9:
        return math.inf
    return -1.0 / math.log(chi_c)


@dataclass(frozen=True, slots=True)
class MeanFieldSummary(ResultMixin):
    r"""What mean-field theory says about a deep stack with one activation and one (σw², σb²).

    Attributes
    ----------
    activation : str
    sigma_w2, sigma_b2 : float
        fan_in·Var(W) and Var(b).
    q_star : float
        Fixed point of the variance map (``inf``: the signal grows without bound).
    chi1 : float
        Gradient second-moment factor per layer at :math:`q^*`.
    c_star : float
        Fixed point of the correlation map (1: all inputs end up alike).
    correlation_depth_scale : float
        :math:`\xi_c` in layers.
    critical_sigma_w2 : float
        The σw² that would make χ1 = 1 with this σb².
    phase : str
        ``"ordered"`` (χ1 < 1: vanishing gradients), ``"chaotic"`` (χ1 > 1: exploding) or
        ``"critical"`` (|χ1 − 1| ≤ ``critical_tol``).
    """

    activation: str
    sigma_w2: float
    sigma_b2: float
    q_star: float
    chi1: float
    c_star: float
    correlation_depth_scale: float
    critical_sigma_w2: float
    phase: str


def mean_field_summary(
    activation: str | Activation,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    *,
    critical_tol: float = 0.05,
) -> MeanFieldSummary:
    """All the mean-field quantities for one (activation, σw², σb²) at once.

    Examples
    --------
    >>> s = mean_field_summary("relu", 1 / 3, 1 / 192)
    >>> s.phase, round(s.chi1, 3), round(s.q_star, 5)
    ('ordered', 0.167, 0.00625)
    """
    sigma_w2, sigma_b2 = _check_moments(sigma_w2, sigma_b2)
    critical_tol = check_number(critical_tol, name="critical_tol", minimum=0.0)
    act = as_activation(activation)
    c1 = chi1(act, sigma_w2, sigma_b2)
    phase = "critical" if abs(c1 - 1.0) <= critical_tol else ("ordered" if c1 < 1.0 else "chaotic")
    try:
        crit = critical_sigma_w2(act, sigma_b2)
    except InvalidParameterError:
        crit = math.nan
    return MeanFieldSummary(
        activation=act.name,
        sigma_w2=float(sigma_w2),
        sigma_b2=float(sigma_b2),
        q_star=fixed_point(act, sigma_w2, sigma_b2),
        chi1=c1,
        c_star=correlation_fixed_point(act, sigma_w2, sigma_b2),
        correlation_depth_scale=correlation_depth_scale(act, sigma_w2, sigma_b2),
        critical_sigma_w2=crit,
        phase=phase,
    )
