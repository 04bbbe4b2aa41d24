"""Measure: the per-layer quantities of a training step, computed on the model's device.

Everything here returns tensors and never synchronizes with the host: the :class:`Monitor`
stacks the results of one logging tick into one vector and brings it back in a single transfer.
Per-parameter norms use ``torch._foreach_norm`` (one fused call for all parameters), and
per-layer sums use one ``index_add_``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from nndoctor.stability._layers import unit_rows

__all__ = [
    "ActivationKind",
    "TickQuantities",
    "activation_kind",
    "activation_moments",
    "effective_units",
    "layer_effective_units",
    "layer_norms",
    "layer_role",
    "unit_maxima",
    "unit_rows",
]

ActivationKind = Literal["relu", "tanh", "sigmoid"]

# the per-layer fields of TickQuantities, in the order of a log line
LAYER_KEYS = (
    "grad_norm",
    "weight_norm",
    "update_ratio",
    "backward_rms",
    "act_mean",
    "act_std",
    "dead_fraction",
    "saturation_fraction",
    "act_nonfinite",
    "grad_nonfinite_count",
    "effective_units",
)

# ReLU family: a unit whose output is never positive over a batch is "dead" (zero gradient for
# ReLU/ReLU6, a tiny one for the smooth variants).
_RELU_FAMILY: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
)
_TANH_FAMILY: tuple[type[nn.Module], ...] = (nn.Tanh, nn.Hardtanh, nn.Softsign)
_SIGMOID_FAMILY: tuple[type[nn.Module], ...] = (nn.Sigmoid, nn.Hardsigmoid)


def dense_grad(grad: torch.Tensor) -> torch.Tensor:
    """The stored entries of a gradient: itself when dense, its coalesced values when sparse.

    ``nn.Embedding(sparse=True)`` (with ``SparseAdam`` or ``SGD``) leaves a sparse COO
    gradient, on which ``torch._foreach_norm`` and ``isfinite`` have no kernel. The values of
    the coalesced tensor have the same norm and the same non-finite entries (the implicit
    zeros are finite), so every per-parameter reduction reads them instead.

    Examples
    --------
    >>> g = torch.sparse_coo_tensor([[0, 0, 2]], [3.0, 1.0, 0.0], (4,), check_invariants=True)
    >>> float(torch.linalg.vector_norm(dense_grad(g)))
    4.0
    """
    if grad.layout == torch.sparse_coo:
        return grad.coalesce().values()
    return grad


def clip_grad_norm_any(params: list[torch.Tensor], max_norm: float) -> None:
    """``torch.nn.utils.clip_grad_norm_`` that also takes sparse gradients.

    Dense gradients only: torch's own foreach clip (bitwise the same as before). With a
    sparse one (which torch's foreach norm rejects) the same rule
    :math:`g \\leftarrow g \\min(1, c / (\\|g\\|_2 + 10^{-6}))` over all gradients, the norm read
    from the coalesced values (:func:`dense_grad`).

    Examples
    --------
    >>> w = nn.Parameter(torch.zeros(4))
    >>> w.grad = torch.sparse_coo_tensor([[0, 2]], [3.0, 4.0], (4,), check_invariants=True)
    >>> clip_grad_norm_any([w], 1.0)
    >>> round(float(torch.linalg.vector_norm(dense_grad(w.grad))), 4)
    1.0
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not any(g.layout == torch.sparse_coo for g in grads):
        torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)
        return
    norms = [torch.linalg.vector_norm(dense_grad(g)) for g in grads]
    total = torch.linalg.vector_norm(torch.stack(norms))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.to(g.device, g.dtype))


def activation_kind(module: nn.Module) -> ActivationKind | None:
    """Which family an activation module belongs to (``None`` for other modules).

    Examples
    --------
    >>> activation_kind(nn.ReLU()), activation_kind(nn.Tanh()), activation_kind(nn.Linear(2, 2))
    ('relu', 'tanh', None)
    """
    if isinstance(module, nn.ReLU6 | nn.Hardtanh) and type(module) is not nn.Hardtanh:
        return "relu"  # ReLU6 subclasses Hardtanh
    if isinstance(module, _RELU_FAMILY):
        return "relu"
    if isinstance(module, _TANH_FAMILY):
        return "tanh"
    if isinstance(module, _SIGMOID_FAMILY):
        return "sigmoid"
    return None


def activation_moments(
    x: torch.Tensor, kind: ActivationKind, saturation_level: float
) -> list[torch.Tensor]:
    r"""Sum and L2 norm of an activation, and (tanh, sigmoid) its saturated count.

    For tanh, an output is saturated when :math:`|y| > s`; for sigmoid when
    :math:`|y - 1/2| > s/2`, with :math:`s` = ``saturation_level``. A single NaN or infinity
    makes the sums non-finite, which is how the monitor notices it without a per-element count.
    The norm is squared on the host (:math:`\sum y^2 = \|y\|^2`), which saves a kernel per call.

    Returns
    -------
    list of 0-d float32 tensors on ``x``'s device (two for the ReLU family, three otherwise).

    Examples
    --------
    >>> [float(v) for v in activation_moments(torch.tensor([[0.0, 1.0], [2.0, 3.0]]), "relu", .99)]
    [6.0, 3.7416574954986572]
    >>> [float(v) for v in activation_moments(torch.tensor([0.0, 0.999]), "tanh", 0.99)]
    [0.9990000128746033, 0.9990000128746033, 1.0]
    """
    xf = x.detach()
    if xf.dtype != torch.float32:
        xf = xf.float()
    parts = [xf.sum(), torch.linalg.vector_norm(xf)]  # no squared temporary
    if kind == "tanh":
        parts.append((xf.abs() > saturation_level).sum(dtype=torch.float32))
    elif kind == "sigmoid":
        parts.append(((xf - 0.5).abs() > 0.5 * saturation_level).sum(dtype=torch.float32))
    return parts


def unit_maxima(x: torch.Tensor, unit_dim: int) -> torch.Tensor:
    """Largest output of each unit over the batch (and over space for convolutions).

    A unit is the last dimension of a dense output and the channel (dimension 1) of a
    convolutional one.

    Examples
    --------
    >>> unit_maxima(torch.tensor([[0.0, -1.0], [2.0, -3.0]]), -1).tolist()
    [2.0, -1.0]
    """
    xd = x.detach()
    if xd.dim() <= 1:
        out = xd.reshape(-1).amax().reshape(1)
    elif unit_dim == 1 and xd.dim() > 2:
        # per channel, no copy: space first, then the batch (on the CPU much faster than one
        # reduction over the non-adjacent dims 0, 2, 3)
        out = xd.amax(dim=list(range(2, xd.dim()))).amax(0)
    elif xd.dim() == 2:
        out = xd.amax(dim=0)
    else:
        out = xd.reshape(-1, xd.shape[-1]).amax(dim=0)
    return out if out.dtype == torch.float32 else out.float()


def layer_norms(
    tensors: Sequence[torch.Tensor], index: torch.Tensor, n_layers: int
) -> torch.Tensor:
    r"""Per-layer L2 norms of groups of tensors: :math:`\sqrt{\sum_{p \in l} \|p\|^2}`.

    One fused ``torch._foreach_norm`` over all tensors and one ``index_add_``; no host sync.

    Examples
    --------
    >>> ts = [torch.tensor([3.0]), torch.tensor([4.0]), torch.tensor([1.0])]
    >>> layer_norms(ts, torch.tensor([0, 0, 1]), 2).tolist()
    [5.0, 1.0]
    """
    norms = torch.stack(torch._foreach_norm(list(tensors)))
    if norms.dtype != torch.float32:
        norms = norms.float()
    out = norms.new_zeros(n_layers)
    return out.index_add_(0, index, norms.square()).sqrt_()


def _probe_directions(dim: int, device: torch.device) -> torch.Tensor:
    """Two fixed, deterministic pseudo-random unit directions (no random generator is touched)."""
    i = torch.arange(dim, dtype=torch.float64, device=device)
    cols = [
        torch.frac(torch.sin(i * a + b) * 43758.5453) - 0.5
        for a, b in ((12.9898, 0.0), (78.233, 1.7))
    ]
    v = torch.stack(cols, dim=1)
    out: torch.Tensor = v / v.norm(dim=0, keepdim=True)
    return out


def effective_units(
    weight: torch.Tensor, bias: torch.Tensor | None, tolerance: float
) -> torch.Tensor:
    r"""Number of distinct units of a layer; units with tied incoming weights and bias count once.

    Each unit's incoming weights (and bias) :math:`w_i` are projected on two fixed directions
    :math:`v_1, v_2` (in float64); units are sorted by the first projection and unit :math:`j`
    is tied to its predecessor :math:`i` when
    :math:`\max_k |v_k^	op (w_i - w_j)| \le 	au \max(\|w_i\|, \|w_j\|)`. Tied units satisfy
    this (Cauchy-Schwarz), and distinct units fail it except on a set of measure zero. The
    cost is :math:`O(n\,d)`, one matrix-vector product. Identical units receive identical
    gradients, so gradient descent never separates them (the symmetry problem; Goodfellow et al.,
    *Deep Learning*, 2016, §8.4).

    Examples
    --------
    >>> w = torch.ones(4, 3)
    >>> effective_units(w, None, 1e-6).item()
    1.0
    >>> effective_units(torch.eye(4), None, 1e-6).item()
    4.0
    """
    rows = weight.detach().reshape(weight.shape[0], -1).double()
    if bias is not None:
        rows = torch.cat([rows, bias.detach().double()[:, None]], dim=1)
    proj = rows @ _probe_directions(rows.shape[1], rows.device)
    scale = rows.norm(dim=1)
    order = torch.argsort(proj[:, 0])
    proj, scale = proj[order], scale[order]
    gap = (proj[1:] - proj[:-1]).abs().amax(dim=1)
    tied = gap <= tolerance * torch.maximum(scale[1:], scale[:-1]).clamp_min(1e-300)
    return (rows.shape[0] - tied.sum()).float()


def layer_effective_units(module: nn.Module, tolerance: float) -> tuple[torch.Tensor, int] | None:
    """Distinct units of a layer summed over its groups, and its number of units.

    ``None`` for a layer without incoming weights (see :func:`unit_rows`). The count stays on
    the device (a 0-d tensor).

    Examples
    --------
    >>> gru = nn.GRU(2, 3, num_layers=2)
    >>> with torch.no_grad():
    ...     _ = [p.fill_(0.5) for p in gru.parameters()]
    >>> eff, units = layer_effective_units(gru, 1e-6)
    >>> float(eff), units
    (2.0, 6)
    """
    groups = unit_rows(module)
    if not groups:
        return None
    counts = [effective_units(rows, None, tolerance) for rows in groups]
    total = counts[0] if len(counts) == 1 else torch.stack(counts).sum()
    return total, sum(int(rows.shape[0]) for rows in groups)


_INDEX = re.compile(r"\d+")


def layer_role(name: str, module: nn.Module) -> str:
    """A layer's role: its type and its path with every number replaced by ``*``.

    Layers that play the same part in repeated blocks (the query projection of every
    transformer layer, every convolution of a ``Sequential``, ``fc1`` ... ``fc8``) share a
    role; the monitor's depth rule compares the backward signal only within a role.

    Examples
    --------
    >>> layer_role("bert.encoder.layer.3.attention.self.query", nn.Linear(2, 2))
    'Linear:bert.encoder.layer.*.attention.self.query'
    >>> layer_role("features.10", nn.Conv2d(1, 1, 1))
    'Conv2d:features.*'
    """
    return f"{type(module).__name__}:{_INDEX.sub('*', name)}"


@dataclass(slots=True)
class TickQuantities:
    """The quantities of one logging tick, on the host (plain floats), keyed by module path.

    ``order`` is the forward order of the parametrized layers. Missing quantities are absent from
    their dict (or NaN). Non-finite counts (``act_nonfinite``, ``grad_nonfinite_count``) are
    filled only at a tick where something was non-finite: the hot path notices NaN/Inf through
    the sums, and the exact counts come from the diagnostic re-run.
    """

    step: int
    order: list[str]
    loss: float | None = None
    grad_norm: dict[str, float] = field(default_factory=dict)
    weight_norm: dict[str, float] = field(default_factory=dict)
    update_ratio: dict[str, float] = field(default_factory=dict)
    #: the update ratio is estimated from a fixed sample of coordinates (not exact)
    update_estimated: bool = False
    #: the weight norms are estimated from the same subset (a light tick within a budget)
    weight_estimated: bool = False
    backward_rms: dict[str, float] = field(default_factory=dict)
    #: entries per sample of each layer's output (what ``backward_rms`` averages over, per row)
    backward_width: dict[str, int] = field(default_factory=dict)
    act_mean: dict[str, float] = field(default_factory=dict)
    act_std: dict[str, float] = field(default_factory=dict)
    dead_fraction: dict[str, float] = field(default_factory=dict)
    saturation_fraction: dict[str, float] = field(default_factory=dict)
    act_nonfinite: dict[str, float] = field(default_factory=dict)
    grad_nonfinite: dict[str, bool] = field(default_factory=dict)
    grad_nonfinite_count: dict[str, float] = field(default_factory=dict)
    effective_units: dict[str, float] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)
    feeds: dict[str, str] = field(default_factory=dict)
    #: each layer's role (:func:`layer_role`): the depth rule compares layers of one role
    roles: dict[str, str] = field(default_factory=dict)

    def has_nonfinite(self) -> bool:
        """Whether the loss, a gradient, a backward signal or an activation is non-finite."""
        if self.loss is not None and not math.isfinite(self.loss):
            return True
        if any(self.grad_nonfinite.values()):
            return True
        if any(not math.isfinite(v) for v in self.act_mean.values()):
            return True
        if any(not math.isfinite(v) for v in self.act_std.values()):
            return True
        return any(not math.isfinite(v) for v in self.backward_rms.values())

    def layer_records(self) -> dict[str, dict[str, float]]:
        """Quantities grouped by layer (what one JSONL line holds)."""
        records: dict[str, dict[str, float]] = {}
        for key in LAYER_KEYS:
            for name, value in getattr(self, key).items():
                records.setdefault(name, {})[key] = float(value)
        return records
