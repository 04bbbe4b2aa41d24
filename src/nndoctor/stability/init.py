r"""Initialization schemes applied model-wide, LSUV, and an audit of how a model was initialized.

Schemes (:data:`SCHEMES`), with :math:`n_\text{in}, n_\text{out}` the fans and :math:`g` the gain
(default in brackets):

* ``pytorch_default`` — each layer's own ``reset_parameters`` (Linear/Conv:
  :math:`U(\pm 1/\sqrt{n_\text{in}})`, i.e. :math:`n_\text{in}\operatorname{Var}W = 1/3`);
* ``xavier_uniform`` — :math:`U(\pm g\sqrt{6/(n_\text{in}+n_\text{out})})` [1];
* ``xavier_normal`` — :math:`\mathcal N(0, 2g^2/(n_\text{in}+n_\text{out}))` [1];
* ``kaiming_uniform`` — :math:`U(\pm g\sqrt{3/n_\text{in}})` [activation];
* ``kaiming_normal`` — :math:`\mathcal N(0, g^2/n_\text{in})` [activation];
* ``lecun_normal`` — :math:`\mathcal N(0, g^2/n_\text{in})` [1];
* ``orthogonal`` — :math:`g\,Q`, :math:`Q` a random (semi-)orthogonal matrix [activation];
* ``critical`` — :math:`\mathcal N(0, \sigma_w^{2*}/n_\text{in})` and biases
  :math:`\mathcal N(0, \sigma_b^2)`, :math:`\sigma_w^{2*}` from
  :func:`~nndoctor.stability.theory.critical_sigma_w2` (:math:`\sigma_b^2` = ``sigma_b2``, 0);
* ``constant`` — every weight ``value`` (default :math:`1/n_\text{in}`);
* ``zeros`` — every weight 0.

"activation" means :func:`~nndoctor.stability.theory.activation_gain` of the activation that
follows the layer (found in registration order; identity for the last layer), unless ``gain=`` or
``nonlinearity=`` is passed.

Policy for what is not a weight matrix: biases are set to 0 (``critical``: drawn from
:math:`\mathcal N(0,\sigma_b^2)`; ``constant``: ``bias_value``, default 0; ``pytorch_default``:
the layer's own rule); normalization layers get :math:`\gamma=1, \beta=0`; embeddings get
:math:`\mathcal N(0,1)` (PyTorch's default, unit second moment) except under ``constant`` and
``zeros``, which fill them too; ``nn.MultiheadAttention`` input projections are treated as a
Linear with :math:`n_\text{in}=n_\text{out}=` ``embed_dim``.

References
----------
Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural
networks", AISTATS. He et al. (2015), "Delving deep into rectifiers", ICCV. LeCun et al. (1998),
"Efficient backprop". Saxe, McClelland & Ganguli (2014), "Exact solutions to the nonlinear
dynamics of learning in deep linear neural networks", ICLR. Mishkin & Matas (2016), "All you need
is a good init", ICLR. Schoenholz et al. (2017), "Deep information propagation", ICLR.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import nn

from nndoctor._results import ResultMixin
from nndoctor._validation import (
    check_choice,
    check_int,
    check_module,
    check_number,
    check_random_state,
    check_unit_interval,
    forward_errors,
)
from nndoctor.exceptions import (
    DataValidationError,
    InvalidParameterError,
    NNDoctorWarning,
    SmallSampleWarning,
)
from nndoctor.stability._layers import (
    RNN_GATES,
    WEIGHT_TYPES,
    check_call_inputs,
    fans,
    following_activations,
    forward_seed,
    is_hf_conv1d,
    is_norm,
    model_device,
    own_rng,
    param,
    preserve_state,
    split_inputs,
    weight_layers,
)
from nndoctor.stability.theory import (
    Activation,
    MeanFieldSummary,
    activation_gain,
    as_activation,
    critical_sigma_w2,
    mean_field_summary,
)

__all__ = [
    "SCHEMES",
    "InitAudit",
    "LayerInitAudit",
    "Scheme",
    "audit_init",
    "init_",
    "lsuv_",
]

Scheme = Literal[
    "constant",
    "critical",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "orthogonal",
    "pytorch_default",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]
SCHEMES: tuple[str, ...] = get_args(Scheme)
"""The initialization schemes :func:`init_` knows."""

_OPTIONS: dict[str, tuple[str, ...]] = {
    "constant": ("value", "bias_value"),
    "critical": ("sigma_b2", "nonlinearity"),
    "kaiming_normal": ("gain", "nonlinearity", "mode"),
    "kaiming_uniform": ("gain", "nonlinearity", "mode"),
    "lecun_normal": ("gain",),
    "orthogonal": ("gain", "nonlinearity"),
    "pytorch_default": (),
    "xavier_normal": ("gain", "nonlinearity"),
    "xavier_uniform": ("gain", "nonlinearity"),
    "zeros": (),
}
_AUTO_GAIN = {"kaiming_normal", "kaiming_uniform", "orthogonal"}


def _draw(
    target: torch.Tensor,
    generator: torch.Generator | None,
    fill: Callable[[torch.Tensor, torch.Generator | None], Any],
) -> None:
    """Fill ``target`` in place; with a generator, draw on the generator's device and copy."""
    if generator is None or generator.device == target.device:
        fill(target, generator)
        return
    tmp = torch.empty(target.shape, dtype=target.dtype, device=generator.device)
    fill(tmp, generator)
    target.copy_(tmp)


def _weight_tensors(module: nn.Module) -> list[tuple[torch.Tensor, int, int]]:
    """(tensor, fan_in, fan_out) for each weight matrix a module owns."""
    if isinstance(module, nn.MultiheadAttention):
        e = module.embed_dim
        out = []
        if module.in_proj_weight is not None:
            for chunk in module.in_proj_weight.chunk(3, dim=0):
                out.append((chunk, e, e))
        for attr in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
            w = getattr(module, attr, None)
            if isinstance(w, torch.Tensor):
                out.append((w, int(w.shape[1]), int(w.shape[0])))
        return out
    w = getattr(module, "weight", None)
    if not isinstance(module, WEIGHT_TYPES) or not isinstance(w, torch.Tensor):
        return []
    fan_in, fan_out = fans(module)
    return [(w, fan_in, fan_out)]


def _check_options(scheme: str, options: dict[str, Any]) -> None:
    allowed = _OPTIONS[scheme]
    for key in options:
        if key not in allowed:
            valid = ", ".join(allowed) if allowed else "none"
            raise InvalidParameterError(
                f"option {key!r} is not used by scheme {scheme!r}; its options are: {valid}"
            )


def _resolve_gain(scheme: str, act: Activation, options: dict[str, Any]) -> float:
    gain = options.get("gain")
    if gain is None or gain == "auto":
        if gain == "auto" or scheme in _AUTO_GAIN:
            return activation_gain(act)
        return 1.0
    if isinstance(gain, bool) or not isinstance(gain, int | float) or gain <= 0:
        raise InvalidParameterError(f"gain must be a positive number or 'auto', got {gain!r}")
    return float(gain)


def init_(
    model: nn.Module,
    scheme: Scheme | str,
    *,
    generator: torch.Generator | None = None,
    **options: Any,
) -> nn.Module:
    r"""Re-initialize every layer of ``model`` the scheme applies to, in place.

    See the module docstring for each scheme's law, its default gain and the policy for biases,
    norms and embeddings.

    Parameters
    ----------
    model : nn.Module
        The network.
    scheme : str
        One of :data:`SCHEMES`.
    generator : torch.Generator, optional
        Source of randomness; values are drawn on the generator's device and copied, so the same
        seed gives the same weights on CPU and GPU. Without one, the global RNG is used.
    **options
        ``gain`` (a number or ``"auto"``), ``nonlinearity`` (an activation name used for every
        layer instead of the detected one), ``mode`` (``"fan_in"``/``"fan_out"``, Kaiming),
        ``value`` and ``bias_value`` (constant), ``sigma_b2`` (critical, default 0). An option
        the scheme does not use raises.

    Returns
    -------
    nn.Module
        ``model`` itself.

    Examples
    --------
    >>> from nndoctor.scenarios import digits_mlp
    >>> model = init_(digits_mlp(), "kaiming_normal", generator=torch.Generator().manual_seed(0))
    >>> round(float(model[2].weight.detach().var() * 64), 1)  # fan_in * Var(W) = 2 for ReLU
    2.0
    >>> init_(model, "xavier")
    Traceback (most recent call last):
    ...
    nndoctor.exceptions.InvalidParameterError: scheme 'xavier' is unknown; choose one of: ...
    """
    check_module(model)
    scheme = check_choice(scheme, SCHEMES, name="scheme")
    _check_options(scheme, options)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise InvalidParameterError(
            f"generator must be a torch.Generator, got {type(generator).__name__}"
        )
    if scheme == "pytorch_default":
        _pytorch_default(model, generator)
        return model
    forced = options.get("nonlinearity")
    acts = following_activations(model)
    with torch.no_grad():
        for name, module in model.named_modules():
            lazy = isinstance(module, nn.modules.lazy.LazyModuleMixin)
            if lazy and module.has_uninitialized_params():
                raise DataValidationError(
                    f"layer {name!r} is lazy and not materialized yet; run one batch through "
                    "the model before initializing it"
                )
            weights = _weight_tensors(module)
            if weights:
                act = (
                    as_activation(forced)
                    if forced is not None
                    else acts.get(name, Activation("identity"))
                )
                for w, fan_in, fan_out in weights:
                    _init_weight(w, fan_in, fan_out, scheme, act, options, generator)
                _init_bias(module, scheme, options, generator)
            elif is_norm(module):
                if isinstance(getattr(module, "weight", None), torch.Tensor):
                    param(module, "weight").fill_(1.0)
                if isinstance(getattr(module, "bias", None), torch.Tensor):
                    param(module, "bias").zero_()
            elif isinstance(module, nn.Embedding):
                if scheme == "constant":
                    param(module).fill_(float(options.get("value") or 1.0))
                elif scheme == "zeros":
                    param(module).zero_()
                else:
                    _draw(param(module), generator, lambda t, g: nn.init.normal_(t, generator=g))
    return model


def _init_weight(
    w: torch.Tensor,
    fan_in: int,
    fan_out: int,
    scheme: str,
    act: Activation,
    options: dict[str, Any],
    generator: torch.Generator | None,
) -> None:
    if scheme == "zeros":
        w.zero_()
        return
    if scheme == "constant":
        value = options.get("value")
        w.fill_(1.0 / fan_in if value is None else check_number(value, name="value"))
        return
    if scheme == "critical":
        s2 = float(options.get("sigma_b2", 0.0))
        sw2 = 1.0 if act.name == "identity" else critical_sigma_w2(act, s2)
        std = math.sqrt(sw2 / fan_in)
        _draw(w, generator, lambda t, g: nn.init.normal_(t, 0.0, std, generator=g))
        return
    gain = _resolve_gain(scheme, act, options)
    if scheme == "orthogonal":
        if w.dim() < 2:
            raise InvalidParameterError("orthogonal initialization needs weights with >= 2 dims")
        _draw(w, generator, lambda t, g: nn.init.orthogonal_(t, gain=gain, generator=g))
        return
    if scheme.startswith("xavier"):
        std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    else:
        mode = options.get("mode", "fan_in")
        check_choice(mode, ("fan_in", "fan_out"), name="mode")
        fan = fan_in if mode == "fan_in" or scheme == "lecun_normal" else fan_out
        std = gain / math.sqrt(fan)
    if scheme.endswith("uniform"):
        bound = math.sqrt(3.0) * std
        _draw(w, generator, lambda t, g: nn.init.uniform_(t, -bound, bound, generator=g))
    else:
        _draw(w, generator, lambda t, g: nn.init.normal_(t, 0.0, std, generator=g))


def _normal_fill(std: float) -> Callable[[torch.Tensor, torch.Generator | None], Any]:
    def fill(t: torch.Tensor, g: torch.Generator | None) -> Any:
        return nn.init.normal_(t, 0.0, std, generator=g)

    return fill


def _init_bias(
    module: nn.Module, scheme: str, options: dict[str, Any], generator: torch.Generator | None
) -> None:
    biases = [
        b
        for attr in ("bias", "in_proj_bias")
        if isinstance(b := getattr(module, attr, None), torch.Tensor)
    ]
    for b in biases:
        if scheme == "critical" and float(options.get("sigma_b2", 0.0)) > 0:
            b_std = math.sqrt(float(options["sigma_b2"]))
            _draw(b, generator, _normal_fill(b_std))
        elif scheme == "constant":
            b.fill_(float(options.get("bias_value", 0.0)))
        else:
            b.zero_()


def _pytorch_default(model: nn.Module, generator: torch.Generator | None) -> None:
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices):
        if generator is not None:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
            torch.manual_seed(seed)
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None) or getattr(
                module, "_reset_parameters", None
            )
            if callable(reset) and next(module.parameters(recurse=False), None) is not None:
                reset()


def lsuv_(
    model: nn.Module,
    inputs: torch.Tensor | Sequence[torch.Tensor] | Mapping[str, Any],
    *,
    tol: float = 0.05,
    max_iter: int = 10,
    target_variance: float = 1.0,
    generator: torch.Generator | None = None,
) -> nn.Module:
    r"""Layer-sequential unit-variance initialization (Mishkin & Matas, 2016), in place.

    First every weight layer gets an orthogonal matrix (gain 1) and zero bias; then, in forward
    order, each layer's weight is rescaled, :math:`W \leftarrow W/\sqrt{\operatorname{Var}(y)}`,
    until the variance of its output on ``inputs`` is within ``tol`` of ``target_variance`` or
    ``max_iter`` rescalings were made (a warning says which layers did not converge).

    Parameters
    ----------
    model : nn.Module
    inputs : Tensor or sequence of Tensor
        A representative batch.
    tol : float
        Accepted relative deviation :math:`|\operatorname{Var}(y)/t - 1|`.
    max_iter : int
        Rescalings per layer at most.
    target_variance : float
        The variance each layer's output is brought to.
    generator : torch.Generator, optional
        For the orthogonal draws, and (through a copy, so the draws are unchanged) the seed of
        the forward passes' own random numbers: in training mode every pass draws the same
        dropout masks, whatever ran before, and the global random state is left as it was.

    Returns
    -------
    nn.Module
        ``model`` itself (buffers such as BatchNorm statistics are left as they were).

    Warns
    -----
    SmallSampleWarning
        A layer outputs a single value for ``inputs`` (one sample into a one-unit layer):
        it keeps its orthogonal initialization.
    NNDoctorWarning
        A layer's output variance is not within ``tol`` after ``max_iter`` rescalings.

    Examples
    --------
    >>> from nndoctor.scenarios import digits_mlp
    >>> gen = torch.Generator().manual_seed(0)
    >>> x = torch.randn(256, 64, generator=gen)
    >>> model = lsuv_(digits_mlp(depth=3), x, generator=gen)
    >>> round(float(model(x).detach().var()), 1)
    1.0
    """
    check_module(model)
    max_iter = check_int(max_iter, name="max_iter", minimum=1)
    tol = check_number(tol, name="tol", minimum=0.0, exclusive_minimum=True)
    target_variance = check_number(
        target_variance, name="target_variance", minimum=0.0, exclusive_minimum=True
    )
    args, kwargs = split_inputs(inputs)
    check_call_inputs(args, kwargs)
    device = model_device(model)
    args = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args)
    kwargs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    shown = args or tuple(kwargs.values())
    seed = forward_seed(generator)  # every pass draws the same dropout masks (if any)
    init_(model, "orthogonal", gain=1.0, generator=generator)
    unconverged = []
    too_small: list[str] = []
    with preserve_state(model), torch.no_grad():
        for name, layer in weight_layers(model):
            captured: list[torch.Tensor] = []

            def hook(
                _m: nn.Module, _i: Any, out: Any, captured: list[torch.Tensor] = captured
            ) -> None:
                if isinstance(out, torch.Tensor):
                    captured.append(out.detach())

            handle = layer.register_forward_hook(hook)
            try:
                ok = False
                for _ in range(max_iter):
                    captured.clear()
                    with forward_errors(model, shown), own_rng(model, seed):
                        model(*args, **kwargs)
                    if not captured:
                        break
                    if captured[0].numel() < 2:  # one value has no variance
                        too_small.append(name)
                        ok = True  # not a convergence failure: reported below
                        break
                    var = float(captured[0].float().var())
                    if not math.isfinite(var) or var <= 0:
                        break
                    if abs(var / target_variance - 1.0) <= tol:
                        ok = True
                        break
                    param(layer).mul_(math.sqrt(target_variance / var))
                if not ok:
                    unconverged.append(name)
            finally:
                handle.remove()
    if too_small:
        warnings.warn(
            f"layer(s) {', '.join(too_small)} output a single value for these inputs, which has "
            "no variance: LSUV left them at their orthogonal initialization; pass a batch of "
            "at least 2 samples",
            SmallSampleWarning,
            stacklevel=2,
        )
    if unconverged:
        warnings.warn(
            f"LSUV did not bring the output variance within {tol} of {target_variance} for "
            f"layer(s) {', '.join(unconverged)} in {max_iter} iteration(s); raise max_iter",
            NNDoctorWarning,
            stacklevel=2,
        )
    return model


@dataclass(frozen=True, slots=True)
class LayerInitAudit(ResultMixin):
    r"""How one weight layer looks initialized.

    Attributes
    ----------
    name, kind : str
        Module path and class name.
    shape : tuple of int
    fan_in, fan_out : int
    weight_mean, weight_var : float
    fan_in_var : float
        :math:`n_\text{in}\operatorname{Var}(W)`, i.e. :math:`\sigma_w^2`.
    bias_var : float
        :math:`\operatorname{Var}(b)` (0 without a bias), i.e. :math:`\sigma_b^2`.
    scheme : str
        The candidate law the weights fit best (largest KS p-value), ``"orthogonal"``,
        ``"constant"``, ``"zeros"``, or ``"unknown"`` when every candidate is rejected at ``alpha``
        (e.g. after training).
    pvalue : float
        KS p-value of the best candidate (NaN for the exact checks).
    consistent_with : tuple of str
        Every candidate not rejected.
    activation : str
        The activation that follows the layer.
    forward_factor : float
        Second-moment factor per layer this implies with that activation at unit input,
        :math:`\sigma_w^2\,\mathbb E[\phi(z)^2]`.
    backward_factor : float
        :math:`n_\text{out}\operatorname{Var}(W)\,\mathbb E[\phi'(z)^2]`.
    recommendation : str
        One line.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    fan_in: int
    fan_out: int
    weight_mean: float
    weight_var: float
    fan_in_var: float
    bias_var: float
    scheme: str
    pvalue: float
    consistent_with: tuple[str, ...]
    activation: str
    forward_factor: float
    backward_factor: float
    recommendation: str


@dataclass(frozen=True, slots=True)
class InitAudit(ResultMixin):
    """The audit of a model's initialization.

    Attributes
    ----------
    layers : tuple of LayerInitAudit
    forward_gain, backward_gain : float
        Products of the per-layer factors, as magnitude (square-root) gains: what theory
        expects end to end at unit input.
    mean_field : MeanFieldSummary or None
        Theory for the hidden layers (median σw², σb², the most common activation), with χ1,
        :math:`q^*`, :math:`c^*` and the correlation depth scale.
    recommendation : str
    alpha : float
        Level of the KS tests.
    chain : bool
        Whether the end-to-end reading applies: the weight layers form a plain chain (no
        normalization, attention, recurrence or nested custom blocks that may hold residual
        connections). When False, ``forward_gain`` and ``backward_gain`` are NaN and the
        recommendation says why and defers to :func:`~nndoctor.stability.probe`.
    structure : str
        What the audit found about the wiring (e.g. ``"4 LayerNorm, attention"``); ``"chain"``
        for a plain chain.
    norms : tuple of str
        The normalization layers (reported, not audited as weight matrices).
    """

    layers: tuple[LayerInitAudit, ...]
    forward_gain: float
    backward_gain: float
    mean_field: MeanFieldSummary | None
    recommendation: str
    alpha: float
    chain: bool = True
    structure: str = "chain"
    norms: tuple[str, ...] = ()

    @property
    def flagged_layers(self) -> tuple[LayerInitAudit, ...]:
        """The layers whose recommendation is not to keep their initialization."""
        return tuple(la for la in self.layers if not la.recommendation.endswith("keep"))


def _candidates(fan_in: int, fan_out: int, act: Activation) -> list[tuple[str, str, float]]:
    """(name, family, std) of the candidate laws."""
    g_act = activation_gain(act) if act.name != "identity" else activation_gain("relu")
    return [
        ("pytorch_default", "uniform", 1.0 / math.sqrt(3.0 * fan_in)),
        ("xavier_uniform", "uniform", math.sqrt(2.0 / (fan_in + fan_out))),
        ("kaiming_uniform", "uniform", g_act / math.sqrt(fan_in)),
        ("xavier_normal", "normal", math.sqrt(2.0 / (fan_in + fan_out))),
        ("kaiming_normal", "normal", g_act / math.sqrt(fan_in)),
        ("lecun_normal", "normal", 1.0 / math.sqrt(fan_in)),
    ]


def _fit_scheme(
    w: torch.Tensor,
    fan_in: int,
    fan_out: int,
    act: Activation,
    alpha: float,
    rng: np.random.Generator,
    extra: tuple[tuple[str, str, float], ...] = (),
    candidates: bool = True,
) -> tuple[str, float, tuple[str, ...]]:
    """The law ``w`` looks drawn from: exact checks, then KS against the fan-based candidates
    (when ``candidates``) and ``extra`` (name, family, std) laws, then N(0, sigma)."""
    from scipy import stats

    flat = w.detach().to(torch.float64).cpu().reshape(-1).numpy()
    if flat.size == 0:
        return "unknown", math.nan, ()
    if np.all(flat == 0):
        return "zeros", math.nan, ("zeros",)
    if np.all(flat == flat[0]):
        return "constant", math.nan, ("constant",)
    if w.dim() >= 2:
        mat = flat.reshape(w.shape[0], -1)
        sv = np.linalg.svd(mat, compute_uv=False)
        if sv[-1] > 0 and sv[0] / sv[-1] < 1 + 1e-4:
            return "orthogonal", math.nan, ("orthogonal",)
    sample = flat if flat.size <= 20_000 else rng.choice(flat, 20_000, replace=False)
    results = []
    for name, family, std in [
        *(_candidates(fan_in, fan_out, act) if candidates else []),
        *extra,
    ]:
        if family == "uniform":
            b = math.sqrt(3.0) * std
            p = float(stats.kstest(sample, stats.uniform(loc=-b, scale=2 * b).cdf).pvalue)
        else:
            p = float(stats.kstest(sample, stats.norm(scale=std).cdf).pvalue)
        results.append((name, p))
    consistent = tuple(n for n, p in results if p >= alpha)
    best, p_best = max(results, key=lambda r: r[1]) if results else ("unknown", 0.0)
    if p_best < alpha:
        # a fixed-sigma law, as transformers draw from: N(0, sigma) with sigma the sample's
        # standard deviation to two significant digits (BERT's and GPT-2's N(0, 0.02))
        # (one significant digit first: the round numbers configs hold, then two)
        rms = float(np.sqrt(np.mean(sample**2)))
        for digits in ("1", "2"):
            sigma = float(f"{rms:.{digits}g}")
            if sigma > 0:
                p = float(stats.kstest(sample, stats.norm(scale=sigma).cdf).pvalue)
                if p >= alpha:
                    name = f"normal(std={sigma:g})"
                    return name, p, (name,)
        return "unknown", p_best, ()
    return best, p_best, consistent


def audit_init(model: nn.Module, *, alpha: float = 0.001, random_state: int = 0) -> InitAudit:
    r"""Which scheme each weight layer looks drawn from, and what that implies for propagation.

    Each layer's weights are tested (Kolmogorov-Smirnov, up to 20,000 entries) against the
    candidate laws for its fans: PyTorch's default :math:`U(\pm 1/\sqrt{n_\text{in}})`, Xavier
    uniform/normal, Kaiming uniform/normal with the gain of the activation that follows, and
    LeCun normal; exact checks detect zeros, constants and orthogonal matrices (all singular
    values equal). Laws that coincide for a layer (Xavier and LeCun when
    :math:`n_\text{in}=n_\text{out}`) are all listed in ``consistent_with``. The implied
    second-moment factor per layer is
    :math:`\sigma_w^2\,\mathbb E[\phi(z)^2]` forward and
    :math:`n_\text{out}\operatorname{Var}(W)\,\mathbb E[\phi'(z)^2]` backward.

    Weight-bearing layers: Linear, Bilinear and convolutions; Hugging Face's ``Conv1D``
    (weight stored (in, out)); ``nn.MultiheadAttention``'s input projection (the packed
    (3E, E) matrix, as PyTorch draws it); each weight of ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``
    (fan-in per gate; PyTorch's default there is :math:`U(\pm 1/\sqrt{\text{hidden}})`);
    embeddings (PyTorch's default N(0, 1)). Normalization layers are listed in ``norms``, not
    audited. When no fan-based law fits, a fixed :math:`\mathcal N(0, \sigma^2)` with
    :math:`\sigma` the weights' RMS to one (then two) significant digits is tested, and
    reported as ``"normal(std=0.02)"`` (BERT's and GPT-2's init).

    The end-to-end product is a prediction only for a plain chain of layers. Where the model
    normalizes, attends, recurs, or holds custom blocks below its root (which may add residual
    connections), ``chain`` is False, ``forward_gain`` and ``backward_gain`` are NaN, the
    recommendation says so and defers to :func:`~nndoctor.stability.probe`, and a layer is
    flagged only for tied weights or :math:`n_\text{in}\operatorname{Var}(W) > 4`
    (pre-activations over twice the input's RMS: saturated attention logits and gates). In
    a chain, the last layer's factors and the first layer's backward factor, which do not
    compound with depth, count only beyond 100x either way, and a layer that preserves one
    direction keeps its place when the other factor is within that band (He et al., 2015).

    Parameters
    ----------
    model : nn.Module
    alpha : float
        Level of the KS tests.
    random_state : int
        Seed for subsampling large weight matrices.

    Returns
    -------
    InitAudit

    Examples
    --------
    >>> from nndoctor.scenarios import digits_mlp
    >>> audit = audit_init(digits_mlp())
    >>> audit.layers[1].scheme, round(audit.layers[1].fan_in_var, 2), audit.layers[1].activation
    ('pytorch_default', 0.33, 'relu')
    >>> round(audit.layers[1].forward_factor, 2)  # x 1/6 per ReLU layer
    0.17
    """
    check_module(model)
    alpha = check_unit_interval(alpha, name="alpha")
    rng = check_random_state(random_state)
    units = _weight_units(model)
    norms = tuple(name for name, m in model.named_modules() if is_norm(m))
    structure = _structure(model, norms)
    chain = structure == "chain"
    layers = []
    for u in units:
        w = u.weight
        scheme, pvalue, consistent = _fit_scheme(
            w, u.fan_in, u.fan_out, u.act, alpha, rng, u.extra, candidates=u.candidates
        )
        wv = float(w.to(torch.float64).var()) if w.numel() > 1 else 0.0
        bias = u.bias
        bv = (
            float(bias.detach().to(torch.float64).var())
            if isinstance(bias, torch.Tensor) and bias.numel() > 1
            else 0.0
        )
        if u.role == "embedding":  # a lookup: its output's second moment is E[W^2]
            fwd = float(w.to(torch.float64).square().mean())
            bwd = 1.0
        else:
            fwd = u.fan_in * wv * float(u.act.second_moment(1.0))
            bwd = u.fan_out * wv * float(u.act.derivative_second_moment(1.0))
        if chain:
            advice = _layer_advice(scheme, fwd, bwd, u.act, edge=_edge(u, units))
            if u.role == "embedding" and scheme not in ("zeros", "constant"):
                advice = "embedding (a lookup, not a layer of the chain): keep"
        else:
            advice = _layer_advice_structured(scheme, u, u.fan_in * wv, structure)
        layers.append(
            LayerInitAudit(
                name=u.name,
                kind=u.kind,
                shape=tuple(w.shape),
                fan_in=u.fan_in,
                fan_out=u.fan_out,
                weight_mean=float(w.to(torch.float64).mean()),
                weight_var=wv,
                fan_in_var=u.fan_in * wv,
                bias_var=bv,
                scheme=scheme,
                pvalue=pvalue,
                consistent_with=consistent,
                activation=u.act_name,
                forward_factor=fwd,
                backward_factor=bwd,
                recommendation=advice,
            )
        )
    in_chain = [la for la, u in zip(layers, units, strict=True) if u.role != "embedding"]
    if chain and in_chain:
        fg = math.sqrt(math.prod(la.forward_factor for la in in_chain))
        bg = math.sqrt(math.prod(la.backward_factor for la in in_chain))
    else:
        fg = bg = math.nan
    summary = _mean_field(in_chain) if chain else None
    advice = _overall_advice(layers, summary) if chain else _structured_advice(layers, structure)
    return InitAudit(
        layers=tuple(layers),
        forward_gain=fg,
        backward_gain=bg,
        mean_field=summary,
        recommendation=advice,
        alpha=alpha,
        chain=chain,
        structure=structure,
        norms=norms,
    )


class _Unit:
    """One weight matrix the audit reads: where it is, its fans, the activation after it."""

    __slots__ = (
        "act", "act_name", "bias", "candidates", "extra", "fan_in", "fan_out", "kind", "name",
        "role", "weight",
    )  # fmt: skip

    def __init__(
        self,
        name: str,
        module: nn.Module,
        weight: torch.Tensor,
        fan_in: int,
        fan_out: int,
        act: Activation,
        *,
        role: str = "layer",
        bias: torch.Tensor | None = None,
        act_name: str | None = None,
        extra: tuple[tuple[str, str, float], ...] = (),
        candidates: bool = True,
    ) -> None:
        self.name = name
        self.kind = type(module).__name__
        self.weight = weight.detach()
        self.fan_in = int(fan_in)
        self.fan_out = int(fan_out)
        self.act = act
        self.act_name = act_name or act.name
        self.role = role
        self.bias = bias
        self.extra = extra
        self.candidates = candidates


def _weight_units(model: nn.Module) -> list[_Unit]:
    """Every weight matrix of the model, in registration order: linear, bilinear and
    convolution layers; Hugging Face ``Conv1D`` ((in, out) weights); the input projections of
    ``nn.MultiheadAttention``; each weight of ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` (fan-in per
    gate); embeddings. Normalization layers are not among them."""
    acts = following_activations(model)
    units: list[_Unit] = []
    identity = Activation("identity")
    for name, m in model.named_modules():
        if isinstance(m, WEIGHT_TYPES):
            fan_in, fan_out = fans(m)
            units.append(
                _Unit(name, m, param(m), fan_in, fan_out, acts.get(name, identity),
                      bias=getattr(m, "bias", None))
            )  # fmt: skip
        elif is_hf_conv1d(m):
            w = param(m)
            units.append(
                _Unit(name, m, w.t(), w.shape[0], w.shape[1], identity,
                      bias=getattr(m, "bias", None))
            )  # fmt: skip
        elif isinstance(m, nn.MultiheadAttention):
            for attr in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
                proj = getattr(m, attr, None)
                if isinstance(proj, torch.Tensor):
                    # PyTorch draws the packed (3E, E) matrix at once: Xavier with those fans
                    units.append(
                        _Unit(f"{name}.{attr}", m, proj, proj.shape[1], proj.shape[0], identity,
                              act_name="identity (attention)")
                    )  # fmt: skip
        elif isinstance(m, nn.RNNBase):
            gates = RNN_GATES.get(m.mode, 1)
            hidden = int(m.hidden_size)
            nonlin = "tanh" if m.mode != "RNN_RELU" else "relu"
            bound = 1.0 / math.sqrt(hidden)  # PyTorch's RNN default: U(+-1/sqrt(hidden)) for all
            extra = (("pytorch_default", "uniform", bound / math.sqrt(3.0)),)
            for wname, w in m.named_parameters(recurse=False):
                if not wname.startswith("weight") or w.dim() != 2:
                    continue
                units.append(
                    _Unit(f"{name}.{wname}", m, w, w.shape[1], w.shape[0] // gates,
                          Activation(nonlin), role="recurrent", extra=extra, candidates=False,
                          act_name=f"{nonlin} (gates)" if gates > 1 else nonlin)
                )  # fmt: skip
        elif isinstance(m, nn.Embedding):
            w = param(m)
            units.append(
                _Unit(name, m, w, 1, w.shape[1], identity, role="embedding",
                      extra=(("pytorch_default", "normal", 1.0),), candidates=False)
            )  # fmt: skip
    return units


def _structure(model: nn.Module, norms: tuple[str, ...]) -> str:
    """``"chain"`` when the weight layers form a plain chain, else what breaks it."""
    parts = []
    if norms:
        kinds: dict[str, int] = {}
        for name, m in model.named_modules():
            if name in norms:
                kinds[type(m).__name__] = kinds.get(type(m).__name__, 0) + 1
        parts.append(", ".join(f"{n} {k}" for k, n in kinds.items()))
    modules = list(model.modules())
    if any(
        isinstance(m, nn.MultiheadAttention) or "Attention" in type(m).__name__ for m in modules
    ):
        parts.append("attention")
    if any(isinstance(m, nn.RNNBase) for m in modules):
        parts.append("recurrent layers")
    if not parts and _nested_blocks(model):
        parts.append("custom blocks (possibly residual)")
    return "; ".join(parts) if parts else "chain"


_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def _nested_blocks(model: nn.Module) -> bool:
    """Whether a module with its own ``forward`` sits below the root and holds weight
    layers: a block (such as a residual block) whose wiring the audit cannot see."""
    for name, m in model.named_modules():
        if not name or isinstance(m, (_CONTAINERS, WEIGHT_TYPES)):
            continue
        if any(True for _ in m.children()) and any(
            isinstance(c, WEIGHT_TYPES) for c in m.modules()
        ):
            return True
    return False


_SATURATING = 4.0


def _layer_advice_structured(scheme: str, u: _Unit, fan_in_var: float, structure: str) -> str:
    """One line for a layer of a network that is not a plain chain: only a tie or a scale far
    above variance-preserving is a fault there (normalization and residual connections set the
    signal's scale; the probe measures it)."""
    if scheme in ("zeros", "constant") and u.role != "embedding":
        return (
            "all weights equal: every unit computes the same thing and the tie never breaks; "
            "draw random weights"
        )
    if u.role != "embedding" and fan_in_var > _SATURATING:
        what = {
            "recurrent": "the gates saturate (sigmoid/tanh pre-activations of RMS "
            f"~{math.sqrt(fan_in_var):.2g}x their input's)",
        }.get(
            u.role,
            f"pre-activations come out ~{math.sqrt(fan_in_var):.2g}x the input's RMS "
            "(attention logits and gates saturate; normalization hides the scale, not the fault)",
        )
        return (
            f"n_in Var(W) = {fan_in_var:.3g}, far above variance-preserving (1): {what}; "
            "re-initialize with the architecture's own scheme"
        )
    return f"{scheme} in a network with {structure}: keep"


def _structured_advice(layers: list[LayerInitAudit], structure: str) -> str:
    bad = [la for la in layers if not la.recommendation.endswith("keep")]
    head = (
        f"Not a plain chain ({structure}): a product of per-layer factors does not give the "
        "end-to-end gain, so the audit reports none; probe(model, inputs) measures it."
    )
    if not bad:
        return (
            f"{head} No layer is tied or drawn far above a variance-preserving scale: keep the "
            "current initialization."
        )
    worst = max(bad, key=lambda la: la.fan_in_var)
    return (
        f"{head} {len(bad)} of {len(layers)} weight layers: {worst.name}: {worst.recommendation}."
    )


_FACTOR_TOL = 0.25


def _suggest(act: Activation) -> str:
    if act.name in ("relu", "leaky_relu", "gelu", "silu", "elu", "softplus"):
        return "init_(model, 'kaiming_normal')"
    if act.name in ("tanh", "sigmoid"):
        return "init_(model, 'critical')"
    if act.name == "selu":
        return "init_(model, 'lecun_normal')"
    return "init_(model, 'orthogonal')"


def _edge(u: _Unit, units: list[_Unit]) -> str:
    """``"first"`` / ``"last"`` for the first and last layer of a chain, else ``""``."""
    layers = [v for v in units if v.role != "embedding"]
    if layers and u is layers[-1] and len(layers) > 1:
        return "last"
    if layers and u is layers[0]:
        return "first"
    return ""


# a factor that does not compound (the last layer's, the first layer's backward one) is only
# reported outside [1/_EDGE_TOL, _EDGE_TOL] (the probe's thresholds, in second moment)
_EDGE_TOL = 100.0


def _layer_advice(scheme: str, fwd: float, bwd: float, act: Activation, *, edge: str = "") -> str:
    """One line for a layer of a chain. The last layer's forward factor (the scale of the
    output) and the first layer's backward factor (the gradient with respect to the input,
    which no weight needs) do not compound with depth: only extreme values of them count. A
    layer that preserves one direction keeps its place when the other factor is within
    ``[1/_EDGE_TOL, _EDGE_TOL]``: He et al. (2015, Sec. 2.2) show that either condition
    suffices, the other's product over the layers telescoping to a ratio of widths."""
    if scheme in ("zeros", "constant"):
        return (
            "all weights equal: every unit computes the same thing and the tie never breaks; "
            f"draw random weights, e.g. {_suggest(act)}"
        )

    def within(f: float, tol: float) -> bool:
        return 1 / tol <= f <= tol

    keeps_f = 1 - _FACTOR_TOL <= fwd <= 1 + _FACTOR_TOL
    keeps_b = 1 - _FACTOR_TOL <= bwd <= 1 + _FACTOR_TOL
    f_ok = keeps_f or (within(fwd, _EDGE_TOL) and (edge == "last" or keeps_b))
    b_ok = keeps_b or (within(bwd, _EDGE_TOL) and (edge in ("first", "last") or keeps_f))
    if f_ok:
        fwd = 1.0
    if b_ok:
        bwd = 1.0
    if fwd < 1 - _FACTOR_TOL:
        return f"signal shrinks x{fwd:.2f} per layer in second moment; use {_suggest(act)}"
    if fwd > 1 + _FACTOR_TOL:
        return f"signal grows x{fwd:.2f} per layer in second moment; use {_suggest(act)}"
    if not (1 - _FACTOR_TOL) <= bwd <= 1 + _FACTOR_TOL:
        return f"gradient changes x{bwd:.2f} per layer in second moment; consider {_suggest(act)}"
    return "variance-preserving: keep"


def _mean_field(layers: list[LayerInitAudit]) -> MeanFieldSummary | None:
    hidden = [la for la in layers if la.activation != "identity"]
    if not hidden:
        return None
    names = [la.activation for la in hidden]
    act = max(set(names), key=names.count)
    same = [la for la in hidden if la.activation == act]
    sw2 = float(np.median([la.fan_in_var for la in same]))
    sb2 = float(np.median([la.bias_var for la in same]))
    if sw2 <= 0:
        return None
    return mean_field_summary(act, sw2, sb2)


def _overall_advice(layers: list[LayerInitAudit], mf: MeanFieldSummary | None) -> str:
    bad = [la for la in layers if la.recommendation != "variance-preserving: keep"]
    if not bad:
        return "Initialization preserves the signal's second moment layer by layer."
    if mf is not None and mf.phase != "critical":
        trend = "vanish" if mf.phase == "ordered" else "explode"
        return (
            f"{len(bad)} of {len(layers)} layers do not preserve the signal; mean-field theory "
            f"puts the hidden layers in the {mf.phase} phase (chi1 = {mf.chi1:.3g}): gradients "
            f"{trend} with depth, and two inputs' correlation relaxes to c* = {mf.c_star:.3g} "
            f"within ~{mf.correlation_depth_scale:.3g} layers. "
            f"{bad[0].recommendation[0].upper()}{bad[0].recommendation[1:]}."
        )
    return f"{len(bad)} of {len(layers)} layers: {bad[0].recommendation}."
