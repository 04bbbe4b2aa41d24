r"""Probe a model at initialization: measured per-layer forward and backward moments beside theory.

:func:`probe` runs one forward and one backward pass recording every module that owns
parameters and every elementwise activation, and compares what it measures with what the
mean-field theory of :mod:`nndoctor.stability.theory` predicts for each layer from the second
moment actually measured at that layer's input.

The recording (each recorded module's ``forward`` wrapped in place for the pass, which keeps
torch's hook-free fast path for every module call; global module hooks instead where hooks are
already present) only keeps tensors (a copy of each recorded output, since a later in-place
operation such as ``out += x`` or ``ReLU(inplace=True)`` may overwrite it) and the gradient edge
of each output; one ``torch.autograd.grad`` call returns the gradients at all edges. The
statistics are computed after the passes in batched form (outputs of one shape stacked, fused
multi-tensor norms for the rest), so the number of kernels grows with the number of distinct
shapes rather than with the number of layers, and they come back to the host in one transfer
(a second, small one only for float32 tensors outside the range where unscaled reductions are
exact).
"""

from __future__ import annotations

import copy
import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.autograd.graph import GradientEdge, get_gradient_edge
from torch.nn.modules import module as _torch_module
from torch.nn.modules.module import (
    register_module_forward_hook,
    register_module_forward_pre_hook,
)

from nndoctor._results import ResultMixin
from nndoctor._validation import (
    check_callable,
    check_module,
    check_number,
    forward_errors,
)
from nndoctor.exceptions import DataValidationError, InvalidParameterError, NNDoctorError
from nndoctor.stability._layers import (
    CONV_T_TYPES,
    CONV_TYPES,
    backward_fan,
    check_call_inputs,
    fans,
    forward_seed,
    is_norm,
    main_output,
    model_device,
    own_rng,
    preserve_state,
    split_inputs,
)
from nndoctor.stability.theory import Activation, activation_of

__all__ = ["LayerRecord", "ProbeFinding", "PropagationReport", "probe"]

Verdict = Literal["healthy", "vanishing", "exploding"]

# columns of the per-record statistics matrix (one host transfer at the end)
_OUT_SQ, _OUT_SUM, _OUT_ZERO, _OUT_COS, _IN_SQ, _BWD_SQ, _W_SQ, _B_SQ = range(8)
_N_COLS = 8
# raw columns of a _Store slot
_R_NORM, _R_SCALE, _R_SUM, _R_NONZERO, _R_UNIT_SQ, _R_ROWS, _R_MAX = range(7)


@dataclass(frozen=True, slots=True)
class LayerRecord(ResultMixin):
    r"""What one module did to the signal.

    Attributes
    ----------
    index : int
        Position in forward order.
    name : str
        Module path (``"<model>"`` for the root).
    kind : str
        Module class name (``"Linear"``, ``"ReLU"``, ...).
    call : int
        1 for the first call of this module in the forward pass, 2 for the second, ...
    called : bool
        False for a module with parameters that the forward pass never called as a module (its
        parent used its weights directly, as ``nn.MultiheadAttention`` does with ``out_proj``).
    shape : tuple of int
        Shape of the module's output.
    forward_rms, backward_rms : float
        :math:`\sqrt{\mathbb E[y^2]}` of the output and of the loss gradient with respect to it.
    input_rms : float
        RMS of the module's own input.
    forward_mean : float
        Mean of the output.
    forward_gain : float
        ``forward_rms`` over the RMS of the model input.
    backward_gain : float
        Norm of the loss gradient with respect to this output over that with respect to the
        last layer's output, :math:`\lVert\partial L/\partial y\rVert /
        \lVert\partial L/\partial y_\text{last}\rVert` (``backward_rms`` times the square
        root of the number of entries, over the same for the last layer). Norms, not RMS, so
        that a layer that preserves the gradient's norm reads 1 whatever the shapes: an early
        feature map spreads the same gradient over far more entries than the logits.
    layer_factor : float
        Measured second-moment factor of this module, :math:`\mathbb E[y^2]/\mathbb E[x^2]`.
    predicted_layer_factor : float or None
        The same from theory, given the measured input (None where no closed form applies).
    predicted_forward_gain : float or None
        ``forward_gain`` as theory predicts it from this module's measured input.
    predicted_backward_gain : float or None
        ``backward_gain`` as theory predicts it from the next module's measured gradient (only in
        a chain, where each module feeds the next).
    zero_fraction : float
        Fraction of output entries exactly 0 (dead ReLU units, or underflow).
    correlation : float
        Mean cosine similarity between the outputs of different samples of the batch (1: the
        layer maps every input to the same direction).
    """

    index: int
    name: str
    kind: str
    call: int
    called: bool
    shape: tuple[int, ...]
    forward_rms: float
    backward_rms: float
    input_rms: float
    forward_mean: float
    forward_gain: float
    backward_gain: float
    layer_factor: float
    predicted_layer_factor: float | None
    predicted_forward_gain: float | None
    predicted_backward_gain: float | None
    zero_fraction: float
    correlation: float


if hasattr(LayerRecord, "__post_init__"):  # _new_record would skip it
    raise TypeError("LayerRecord has a __post_init__ that _new_record would skip")
_RECORD_SETTERS = tuple(getattr(LayerRecord, f.name).__set__ for f in fields(LayerRecord))


def _new_record(*values: Any) -> LayerRecord:
    """A positional :class:`LayerRecord` constructor, faster than the dataclass's ``__init__``
    (which sets each field with ``object.__setattr__`` by name): ``object.__new__`` and each
    slot's own setter (1.9 against 2.8 µs per record). The result is an ordinary LayerRecord."""
    record: LayerRecord = object.__new__(LayerRecord)
    for setter, value in zip(_RECORD_SETTERS, values, strict=True):
        setter(record, value)
    return record


@dataclass(frozen=True, slots=True)
class ProbeFinding(ResultMixin):
    """A problem the probe found, with the layer where it shows first.

    ``kind`` is one of ``"overflow"``, ``"underflow"``, ``"non_finite"``, ``"vanishing"``,
    ``"exploding"``, ``"correlation_collapse"``, ``"no_gradient"``.
    """

    kind: str
    layer: str | None
    index: int | None
    message: str


@dataclass(frozen=True, slots=True)
class PropagationReport(ResultMixin):
    r"""The probe's result.

    Attributes
    ----------
    layers : tuple of LayerRecord
        One record per module call, in forward order.
    input_rms : float
        RMS of the model input (floating inputs only; else the first layer's output).
    forward_gain : float
        Last layer's forward RMS over ``input_rms``.
    backward_gain : float
        Norm of the loss gradient with respect to the model input over that with respect to the
        last layer's output (for integer inputs: the first layer's output instead), so a scalar
        chain with weight w gives :math:`|w|^L` both ways. Norms, not RMS (see
        :class:`LayerRecord`): with different shapes the RMS per entry would call a healthy
        CNN "vanishing".
    verdict : {"healthy", "vanishing", "exploding"}
        See :func:`probe` for the rule.
    onset_index : int or None
        Index into ``layers`` where the trouble shows first (None when healthy).
    onset_layer : str or None
        Name of that layer.
    onset_direction : {"forward", "backward"} or None
        Which pass crossed the threshold there.
    findings : tuple of ProbeFinding
    dtype : str
        The floating type the probe ran in.
    batch_size : int
    vanishing_gain, exploding_gain : float
        The thresholds of the verdict.
    chain : bool
        True when every module fed the next (a sequential stack): backward predictions exist.
    """

    layers: tuple[LayerRecord, ...]
    input_rms: float
    forward_gain: float
    backward_gain: float
    verdict: Verdict
    onset_index: int | None
    onset_layer: str | None
    onset_direction: str | None
    findings: tuple[ProbeFinding, ...]
    dtype: str
    batch_size: int
    vanishing_gain: float
    exploding_gain: float
    chain: bool

    @property
    def called_layers(self) -> tuple[LayerRecord, ...]:
        """Records of the modules the forward pass called."""
        return tuple(r for r in self.layers if r.called)


class _Target:
    """What the probe needs to know about one recorded module, found once per probe: its name,
    kind, activation, weight and bias, and the theory that applies to it."""

    __slots__ = (
        "act", "back_fan", "bias", "calls", "fan_in", "kind", "module", "name", "position",
        "theory", "weight",
    )  # fmt: skip

    def __init__(self, name: str, module: nn.Module, act: Activation | None) -> None:
        self.name = name
        self.module = module
        self.kind = type(module).__name__
        self.act = act
        params = module._parameters
        if act is not None and not params:  # (a missing attribute is slow to get)
            self.weight = self.bias = None
        else:  # a registered parameter is read off the module's dict (what getattr returns)
            self.weight = _float_param(
                params["weight"] if "weight" in params else getattr(module, "weight", None)
            )
            self.bias = _float_param(
                params["bias"] if "bias" in params else getattr(module, "bias", None)
            )
        self.fan_in = 0
        self.back_fan = 0
        self.position = -1  # index in the probe's list of targets
        self.calls = 0  # calls so far in the probe's forward pass
        # which closed form predicts the output's second moment (see _layer_records)
        self.theory: str | None = None
        if act is not None:
            self.theory = "activation"
        elif isinstance(module, nn.Bilinear):
            self.theory = None
        elif isinstance(module, nn.Linear) and self.weight is not None:
            self.theory = "affine"
            self.back_fan, self.fan_in = self.weight.shape  # (out_features, in_features)
        elif isinstance(module, (nn.Linear, *CONV_TYPES, *CONV_T_TYPES)):
            self.theory = "affine"
            self.fan_in = fans(module)[0]
            if isinstance(module, (nn.Linear, *CONV_TYPES)):
                self.back_fan = backward_fan(module)
        elif is_norm(module):
            bn_eval = isinstance(module, nn.modules.batchnorm._BatchNorm) and not module.training
            self.theory = None if bn_eval else "norm"
        elif isinstance(module, nn.Embedding):
            self.theory = "embedding"


def _float_param(v: Any) -> torch.Tensor | None:
    return v if isinstance(v, torch.Tensor) and v.numel() > 0 and v.is_floating_point() else None


class _Pending:
    """One call of a recorded module during the probe's passes."""

    __slots__ = (
        "activation", "bwd_slot", "call", "fed_by", "in_numel", "in_slot", "index", "out_slot",
        "shape", "target",
    )  # fmt: skip

    def __init__(self, target: _Target, call: int) -> None:
        self.index = -1
        self.target = target
        self.call = call
        self.in_slot: int | None = None
        self.out_slot: int | None = None
        self.bwd_slot: int | None = None
        self.shape: tuple[int, ...] = ()
        self.in_numel = 0
        self.fed_by: int | None = None
        self.activation = target.act is not None


def _first_tensor(obj: Any) -> torch.Tensor | None:
    if type(obj) is tuple and obj and type(obj[0]) is torch.Tensor:  # the common case: (x,)
        return obj[0] if obj[0].is_floating_point() else None
    if isinstance(obj, torch.Tensor):
        return obj if obj.is_floating_point() else None
    if isinstance(obj, tuple | list):
        for item in obj:
            t = _first_tensor(item)
            if t is not None:
                return t
    if isinstance(obj, dict):
        for item in obj.values():
            t = _first_tensor(item)
            if t is not None:
                return t
    return None


class _Store:
    r"""Tensors kept during the passes; their statistics are computed afterwards, batched.

    Forward outputs (``full``) of one shape and type are stacked and reduced together, and the
    norms of all other tensors (inputs, gradients) come from fused multi-tensor norms, so the
    number of kernels grows with the number of distinct shapes, not with the number of layers.
    Every slot yields one row ``[norm, scale, sum, nonzero, unit_sq, rows, max]`` of raw
    statistics of the tensor times a power of two ``scale`` (``_host_stats`` divides it out):

    * ``norm``: Euclidean norm (the sum of squares is ``(norm/scale)^2``);
    * ``sum``, ``nonzero``: sum and number of nonzero entries (``full`` slots only, else NaN);
    * ``unit_sq``: :math:`\|\sum_i x_i/\|x_i\|\|^2` over the rows (samples) :math:`x_i`, which
      is the number of nonzero rows plus the sum of the cosines between different rows
      (``full`` slots with at least two rows only), and ``rows``, that number of nonzero rows;
    * ``max``: the largest magnitude (only where rescued).

    The reductions first run unscaled (``scale`` 1) in the tensor's own type. A float32 signal
    of 1e20 has squares beyond float32's range and one of 1e-21 squares below it, so
    :meth:`rescue` recomputes the slots whose norm is not finite or whose mean square is below
    :math:`2^{-80}` (where squares may have been lost to underflow) after multiplying them by
    the exact power of two that brings their largest magnitude near 1 (a second, small pass
    that healthy networks never need). A finite result cannot have overflowed, and above that
    mean square what underflow loses is below :math:`2^{-46}` of the sum.
    """

    def __init__(self) -> None:
        self.tensors: list[torch.Tensor] = []
        self.full: list[bool] = []
        self.zeros: list[bool] = []
        self._numels: list[int] = []

    @property
    def count(self) -> int:
        return len(self.tensors)

    @property
    def numels(self) -> list[int]:
        """Entries of each slot's tensor (counted once, after the passes)."""
        if len(self._numels) != len(self.tensors):
            self._numels = [t.numel() for t in self.tensors]
        return self._numels

    def add(self, t: torch.Tensor, *, full: bool, zeros: bool = False) -> int:
        """Keep ``t`` until the statistics are computed (``zeros``: count its zero entries
        too); its slot."""
        self.tensors.append(t)
        self.full.append(full)
        self.zeros.append(zeros)
        return len(self.tensors) - 1

    def groups(self) -> dict[tuple[Any, ...], list[int]]:
        """Slots reduced together. Large tensors, and all tensors on the CPU, are reduced one by
        one: stacking them would cost a copy, and their kernels take longer than launching
        them does."""
        groups: dict[tuple[Any, ...], list[int]] = {}
        solo_on_cpu = not _STACK_ON_CPU
        for slot, (t, full, n) in enumerate(zip(self.tensors, self.full, self.numels, strict=True)):
            if not full:
                key: tuple[Any, ...] = (False, t.dtype, t.device)
            elif n >= _SOLO_NUMEL or (solo_on_cpu and t.is_cpu):
                key = (True, tuple(t.shape), slot)
            else:
                key = (True, tuple(t.shape), t.dtype, t.device)
            groups.setdefault(key, []).append(slot)
        return groups

    @torch.no_grad()
    def compute(
        self, device: torch.device
    ) -> tuple[torch.Tensor | None, list[tuple[int, list[int]]]]:
        """All raw statistics as one flat float64 tensor on ``device``, and its layout: one
        ``(column, slots)`` per consecutive piece."""
        pieces: list[tuple[int, list[int], torch.Tensor]] = []
        numels = self.numels
        for key, slots in self.groups().items():
            if key[0]:
                if math.prod(key[1]) > 0:
                    slots = self._zeros_first(slots)
                    tensors = [self.tensors[s] for s in slots]
                    x = torch.stack(tensors) if len(slots) > 1 else tensors[0].unsqueeze(0)
                    _full_stats(x, slots, sum(self.zeros[s] for s in slots), pieces)
                continue
            slots = [s for s in slots if numels[s]]
            if slots:
                tensors = [self.tensors[s] for s in slots]
                pieces.append((_R_NORM, slots, torch.stack(torch._foreach_norm(tensors))))
        return _flatten(pieces, device)

    def _zeros_first(self, slots: list[int]) -> list[int]:
        return [s for s in slots if self.zeros[s]] + [s for s in slots if not self.zeros[s]]

    def unsafe(self, raw: np.ndarray[Any, np.dtype[np.float64]]) -> list[int]:
        """Slots whose unscaled reductions may have overflowed or underflowed."""
        n = np.array(self.numels, dtype=np.float64)
        f64 = torch.float64
        exact = np.array([t.dtype is f64 for t in self.tensors], dtype=bool)
        norm = raw[: len(n), _R_NORM]
        with np.errstate(over="ignore", invalid="ignore"):
            safe = np.isfinite(norm) & (norm * norm >= n * _SAFE_MEAN_SQUARE)
        return np.flatnonzero(~(exact | (n == 0) | safe)).tolist()

    @torch.no_grad()
    def rescue(
        self, raw: np.ndarray[Any, np.dtype[np.float64]], slots: list[int], device: torch.device
    ) -> tuple[torch.Tensor | None, list[tuple[int, list[int]]]]:
        """The raw statistics of ``slots`` again, each tensor scaled by a power of two."""
        pieces: list[tuple[int, list[int], torch.Tensor]] = []
        groups: dict[tuple[Any, ...], list[int]] = {}
        for s in slots:
            t = self.tensors[s]
            key = (tuple(t.shape), t.dtype, t.device) if self.full[s] else (t.dtype, t.device)
            groups.setdefault((self.full[s], *key), []).append(s)
        for key, members in groups.items():
            members = self._zeros_first(members)
            tensors = [self.tensors[s] for s in members]
            dtype = tensors[0].dtype
            k = len(members)
            x = torch.stack([t.reshape(-1) for t in tensors]) if key[0] else None
            top = (
                torch.linalg.vector_norm(x, math.inf, dim=1)
                if x is not None
                else torch.stack(torch._foreach_norm(tensors, math.inf))
            )
            limit = int(math.log2(torch.finfo(dtype).max)) - 1
            exponent = torch.frexp(top).exponent.clamp_(-limit, limit)
            scale = torch.exp2(exponent.neg_().to(dtype))
            pieces.append((_R_SCALE, members, scale))
            pieces.append((_R_MAX, members, top))
            if x is not None:
                x = x.mul_(scale.unsqueeze(1)).reshape(k, *tensors[0].shape)
                _full_stats(x, members, sum(self.zeros[s] for s in members), pieces)
            else:
                scaled = torch._foreach_mul(tensors, list(scale.unbind()))
                pieces.append((_R_NORM, members, torch.stack(torch._foreach_norm(scaled))))
        return _flatten(pieces, device)

    def release(self) -> None:
        self.tensors.clear()


# tensors with at least this many entries are reduced one by one rather than stacked
_SOLO_NUMEL = 2**24
# stacking saves kernel launches (GPU); on the CPU launches are cheap and the copy is not
_STACK_ON_CPU = False
# mean square above which unscaled float32 reductions lose nothing relevant to underflow
_SAFE_MEAN_SQUARE = 2.0**-80


def _full_stats(
    x: torch.Tensor,
    slots: list[int],
    n_zeros: int,
    pieces: list[tuple[int, list[int], torch.Tensor]],
) -> None:
    """Batched statistics of ``k`` stacked forward outputs ``x`` of shape ``(k, *shape)``; the
    first ``n_zeros`` of them get their nonzero entries counted."""
    k = len(slots)
    flat = x.reshape(k, -1)
    if x.dim() >= 3 and x.shape[1] >= 2:
        rows = x.reshape(k, x.shape[1], -1)
        row_norms = torch.linalg.vector_norm(rows, dim=2)
        pieces.append((_R_NORM, slots, torch.linalg.vector_norm(row_norms, dim=1)))
        inv = torch.where(row_norms > 0, row_norms.reciprocal(), 0.0)
        unit = torch.bmm(inv.unsqueeze(1), rows)  # sum of the unit rows, per tensor
        unit_sq = torch.linalg.vector_norm(unit.reshape(k, -1), dim=1).square()
        pieces.append((_R_UNIT_SQ, slots, unit_sq))
        pieces.append((_R_ROWS, slots, torch.count_nonzero(inv, dim=1)))
    else:
        pieces.append((_R_NORM, slots, torch.linalg.vector_norm(flat, dim=1)))
    pieces.append((_R_SUM, slots, flat.sum(dim=1)))
    if n_zeros:
        # not count_nonzero(dim=...), which converts the whole mask to int64 on the CPU
        count_type = torch.int32 if flat.shape[1] < 2**31 else torch.int64
        nonzero = (flat[:n_zeros] != 0).sum(dim=1, dtype=count_type)
        pieces.append((_R_NONZERO, slots[:n_zeros], nonzero))


def _flatten(
    pieces: list[tuple[int, list[int], torch.Tensor]], device: torch.device
) -> tuple[torch.Tensor | None, list[tuple[int, list[int]]]]:
    """One float64 vector from the pieces (one concatenation per type), and its layout."""
    if not pieces:
        return None, []
    order: dict[tuple[torch.dtype, torch.device], list[int]] = {}
    for i, (_, _, t) in enumerate(pieces):
        order.setdefault((t.dtype, t.device), []).append(i)
    parts = [
        torch.cat([pieces[i][2] for i in idx]).to(device=device, dtype=torch.float64)
        for idx in order.values()
    ]
    layout = [(pieces[i][0], pieces[i][1]) for idx in order.values() for i in idx]
    return (torch.cat(parts) if len(parts) > 1 else parts[0]), layout


def _fill(
    raw: np.ndarray[Any, np.dtype[np.float64]],
    host: np.ndarray[Any, np.dtype[np.float64]],
    layout: list[tuple[int, list[int]]],
) -> int:
    """Write the host copy of a flat statistics vector into ``raw``; how much of it was used."""
    off = 0
    for column, slots in layout:
        raw[slots, column] = host[off : off + len(slots)]
        off += len(slots)
    return off


def _records_for(model: nn.Module) -> tuple[list[_Target], list[nn.Module]]:
    """The modules the probe records: those with parameters of their own, and activations;
    and every module (``list(model.modules())``)."""
    out = []
    modules = []
    for name, m in model.named_modules():
        modules.append(m)
        act = _activation_of(m)
        if act is not None or m._parameters:
            if act is None and all(v is None for v in m._parameters.values()):
                continue
            out.append(_Target(name or "<model>", m, act))
    return out, modules


# activation_of by module type, where the answer depends on the type alone: None (not an
# activation), the Activation of a kind without a parameter (shared: it is frozen), or True
# (a kind with a parameter, such as LeakyReLU's slope: asked again for every module)
_ACT_BY_TYPE: dict[type[nn.Module], Activation | bool | None] = {}
_PARAMETER_FREE = frozenset({"relu", "tanh", "sigmoid", "gelu", "silu", "selu", "identity"})


def _activation_of(module: nn.Module) -> Activation | None:
    """:func:`activation_of`, remembered per module type where that is all it depends on."""
    kind = type(module)
    known = _ACT_BY_TYPE.get(kind, False)
    if known is None or isinstance(known, Activation):
        return known
    act = activation_of(module)
    if known is False:  # first sight of this type
        if len(_ACT_BY_TYPE) > 4096:  # (types made on the fly, e.g. by parametrizations)
            _ACT_BY_TYPE.clear()
        _ACT_BY_TYPE[kind] = act if act is None or act.name in _PARAMETER_FREE else True
    return act


def probe(
    model: nn.Module,
    inputs: torch.Tensor | Sequence[torch.Tensor] | Mapping[str, Any],
    *,
    loss_fn: Callable[[Any], torch.Tensor] | None = None,
    dtype: torch.dtype | None = None,
    vanishing_gain: float = 1e-2,
    exploding_gain: float = 1e2,
    collapse_correlation: float = 0.99,
    generator: torch.Generator | None = None,
) -> PropagationReport:
    r"""Measure how a model propagates a batch forward and its gradient backward, layer by layer.

    One forward pass records, for every module that owns parameters and every elementwise
    activation, the output's second moment; one backward pass of ``loss_fn(output)`` (by
    default a random projection of the output, below) records the gradient's (taken with
    ``torch.autograd.grad`` with respect to the inputs — or the parameters, for integer inputs
    and for a model whose forward sets ``requires_grad`` on its input itself, as wav2vec2's
    feature encoder does in training mode — and to every module output at once, so no
    ``.grad`` is written and no weight gradient is computed; an output the loss
    does not depend on gets NaN backward statistics). Theory predicts each module's output from
    the second moment measured at its input:

    .. math::

        \text{linear: } \mathbb E[y^2] = \text{fan\_in}\,\mathbb E[W^2]\,\mathbb E[x^2]
            + \mathbb E[b^2], \qquad
        \text{activation: } \mathbb E[\phi(h)^2] = \mathbb E_z[\phi(\sqrt{q}\,z)^2],\;
            q = \mathbb E[h^2],

    and, in a chain, each module's gradient from the next one's:
    :math:`\mathbb E[g_x^2] = \text{fan\_out}\,\mathbb E[W^2]\,\mathbb E[g_y^2]` and
    :math:`\mathbb E[g_h^2] = \mathbb E_z[\phi'(\sqrt q z)^2]\,\mathbb E[g_y^2]`
    (Glorot & Bengio, 2010; He et al., 2015; Poole et al., 2016). Norms predict
    :math:`\mathbb E[\gamma^2] + \mathbb E[\beta^2]` (training mode).

    The default loss is :math:`L = \langle G, y\rangle = \sum_i G_i y_i` with :math:`y` the
    model's main output (see ``loss_fn`` below) and :math:`G` a tensor of its shape with
    independent standard normal entries drawn from ``generator``, scaled to unit RMS (so the
    last layer's gradient has RMS 1, as with the sum): the backward pass then starts
    from the random cotangent :math:`G`, and since :math:`\mathbb E_G\lVert J^\top
    G\rVert^2 = \lVert J\rVert_F^2` for any Jacobian :math:`J`, the backward gain estimates the
    RMS singular value of the input-output Jacobian, the quantity that mean-field analyses of
    gradients track (Schoenholz et al., 2017, who propagate a random error signal independent
    of the forward weights; Pennington et al., 2017, on the Jacobian's spectrum). A fixed
    cotangent such as the all-ones of :math:`\sum_i y_i` probes one direction only, and one
    that a final normalization removes exactly: a LayerNorm's Jacobian annihilates the constant
    vector, so a healthy encoder ending in a LayerNorm would read a backward gain of ~1e-8.

    The verdict rule: non-finite values are ``"exploding"``; a signal that is exactly zero from
    some layer on is ``"vanishing"``; otherwise with :math:`G_f` = ``forward_gain`` and
    :math:`G_b` = ``backward_gain`` the verdict is ``"exploding"`` when
    :math:`\max(G_f, G_b) > ` ``exploding_gain``, ``"vanishing"`` when
    :math:`\min(G_f, G_b) < ` ``vanishing_gain`` (the more extreme on a log scale wins when
    both hold), and ``"healthy"`` otherwise. The onset is the first layer (in the direction of
    the pass) where the cumulative gain leaves [vanishing_gain, exploding_gain].

    Memory: until the statistics are computed the probe holds a copy of every recorded output
    and the gradient at every output, about twice the activation memory of one training step
    (plus, briefly, one stacked copy of the outputs of one shape). Stock BatchNorm layers in
    training mode run with ``track_running_stats`` off during the probe (the same output, and
    their running statistics are left alone without being copied).

    Parameters
    ----------
    model : nn.Module
        The network; left exactly as it was (parameters, ``.grad``, train/eval mode,
        ``requires_grad``, buffers, hooks), also when its forward raises. It runs in its current
        mode (training mode applies dropout and batch statistics). Dropout masks, and any other
        random draw of its forward, come from the global CPU (and the model's CUDA) generators
        forked for the probe and seeded from ``generator``: the same model, batch and generator
        give the same report whatever ran before, and the global random state is left as it was.
    inputs : Tensor, sequence of Tensor or mapping of str to Tensor
        A batch (first dimension: samples); a sequence is passed as positional arguments, a
        mapping (a Hugging Face batch such as ``{"input_ids": ..., "attention_mask": ...}``)
        as keyword arguments. Moved to the model's device.
    loss_fn : callable, optional
        Maps the model's output to a scalar loss; default :math:`\langle G, y\rangle` with
        :math:`y` the main output: the output itself if it is a tensor, a ``ModelOutput``'s
        ``logits`` (else ``last_hidden_state``), the first element of a tuple (as in
        ``nn.LSTM``'s ``(output, state)``).
    dtype : torch.dtype, optional
        Probe a copy of the model converted to this type (``torch.float64`` measures deep
        chains exactly); default the model's own.
    vanishing_gain, exploding_gain : float
        Verdict thresholds on the end-to-end magnitude gains.
    collapse_correlation : float
        A mean cosine similarity between samples above this at the output (and not at the input)
        is reported as a correlation collapse: the network maps every input alike.
    generator : torch.Generator, optional
        CPU generator for the default loss's cotangent :math:`G` (drawn in float32 on the CPU,
        then moved to the output's device and type, so a seed gives the same :math:`G`
        everywhere; an output of more than 2**22 entries on an accelerator gets it drawn there,
        from a seed drawn from ``generator``); default a generator seeded with 0, so that the
        same model and batch give the same report. With ``loss_fn`` it only seeds the forward
        pass's random draws (dropout in training mode).

    Returns
    -------
    PropagationReport

    Raises
    ------
    InvalidParameterError
        ``model`` is not a module, ``dtype`` is not floating, ``loss_fn`` returns a non-scalar.
    DataValidationError
        The model has no parameters, inputs are empty or hold NaN/inf, or the forward pass
        rejects their shape.

    Examples
    --------
    >>> import torch
    >>> from nndoctor.scenarios import deep_chain
    >>> r = probe(deep_chain(30, 0.2), torch.ones(1, 1), dtype=torch.float64)
    >>> r.verdict, f"{r.forward_gain:.4e}", f"{r.backward_gain:.4e}"
    ('vanishing', '1.0737e-21', '1.0737e-21')
    >>> r.layers[0].name, r.layers[0].predicted_forward_gain
    ('0', 0.2...)

    References
    ----------
    S. S. Schoenholz, J. Gilmer, S. Ganguli, J. Sohl-Dickstein, "Deep information
    propagation", ICLR 2017. J. Pennington, S. S. Schoenholz, S. Ganguli, "Resurrecting the
    sigmoid in deep learning through dynamical isometry", NeurIPS 2017.
    """
    check_module(model)
    args, kwargs = split_inputs(inputs)
    check_call_inputs(args, kwargs)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise InvalidParameterError(
            f"generator must be a torch.Generator, got {type(generator).__name__}; pass "
            "torch.Generator().manual_seed(0)"
        )
    if loss_fn is not None:
        check_callable(loss_fn, name="loss_fn", expected="the model's output -> a scalar tensor")
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise InvalidParameterError(
            f"dtype must be a floating torch.dtype such as torch.float64, got {dtype!r}"
        )
    vanishing_gain = check_number(vanishing_gain, name="vanishing_gain")
    exploding_gain = check_number(exploding_gain, name="exploding_gain")
    collapse_correlation = check_number(
        collapse_correlation, name="collapse_correlation", minimum=0.0, maximum=1.0
    )
    if not 0 < vanishing_gain < 1 < exploding_gain:
        raise InvalidParameterError(
            "thresholds must satisfy 0 < vanishing_gain < 1 < exploding_gain, got "
            f"{vanishing_gain} and {exploding_gain}"
        )
    device = model_device(model)
    work = model
    if dtype is not None and any(p.dtype != dtype for p in model.parameters()):
        work = copy.deepcopy(model).to(dtype)
    run_dtype = dtype or next(model.parameters()).dtype
    args = tuple(
        a.to(device=device, dtype=run_dtype) if a.is_floating_point() else a.to(device)
        for a in args
    )
    if kwargs:
        kwargs = {
            k: (
                (v.to(device=device, dtype=run_dtype) if v.is_floating_point() else v.to(device))
                if isinstance(v, torch.Tensor)
                else v
            )
            for k, v in kwargs.items()
        }
    if loss_fn is None:
        loss_fn = _RandomProjection(generator)
    grad_inputs = True
    while True:
        targets, modules = _records_for(work)
        store = _Store()
        try:
            with preserve_state(work, modules), own_rng(work, forward_seed(generator)):
                pendings, loss_ok, input_slots, grad_slots = _run(
                    work, args, targets, loss_fn, store, wrap=_can_wrap(targets, modules),
                    kwargs=kwargs, grad_inputs=grad_inputs,
                )  # fmt: skip
            break
        except DataValidationError as err:
            if not (grad_inputs and _marks_its_inputs(err)):
                raise
            store.release()
            grad_inputs = False  # once more, with respect to the parameters
    return _assemble(
        work,
        targets,
        pendings,
        args + tuple(v for v in kwargs.values() if isinstance(v, torch.Tensor)),
        store,
        input_slots,
        grad_slots,
        str(run_dtype).replace("torch.", ""),
        loss_ok,
        vanishing_gain,
        exploding_gain,
        collapse_correlation,
    )


def _run(
    work: nn.Module,
    args: tuple[Any, ...],
    targets: list[_Target],
    loss_fn: Callable[[Any], torch.Tensor] | None,
    store: _Store,
    *,
    wrap: bool,
    kwargs: dict[str, Any] | None = None,
    grad_inputs: bool = True,
) -> tuple[list[_Pending], bool, list[int], list[int]]:
    """The two passes. Hooks only keep tensors in ``store`` (a copy of each forward output,
    since a later in-place operation may overwrite it) and the gradient edge of each output;
    one ``autograd.grad`` call returns the gradients at all edges; every statistic is computed
    afterwards, batched. Returns the records, whether the loss had a gradient, and the store
    slots of the float inputs and of the gradients with respect to them (none without
    ``grad_inputs``: the float inputs do not require grad and the backward pass is taken with
    respect to the parameters, as for integer inputs)."""
    rec = _recorder(store)
    install, uninstall = (_wrapped if wrap else _hooked)(targets, rec.begin, rec.end)
    input_slots: list[int] = []
    grad_slots: list[int] = []
    try:
        install()
        with torch.enable_grad():
            leaves, kw_leaves = _input_leaves(
                args, kwargs, store, rec.kept, input_slots, grad=grad_inputs
            )
            with forward_errors(work, args or tuple(kw_leaves.values())):
                out = work(*leaves, **kw_leaves)
            rec.kept.clear()  # the forward pass is over: no more inputs to match
            rec.last[0] = None
            loss = _scalar_loss(loss_fn, out)
            loss_ok = _backward(work, loss, (*leaves, *kw_leaves.values()), rec, store, grad_slots)
    finally:
        uninstall()
    return rec.done, loss_ok, input_slots, grad_slots


@dataclass(frozen=True, slots=True)
class _Recording:
    """The forward pass's records: ``begin`` and ``end`` (a recorded call starts, returns), the
    calls in the order they returned, the gradient edges of their outputs and whose edges they
    are, the tensors already in the store (id -> weak reference, version, slot) and the last
    recorded output (tensor, version, index of its record, store slot)."""

    begin: Callable[[_Target, tuple[Any, ...]], _Pending]
    end: Callable[[_Pending, Any], None]
    done: list[_Pending]
    edges: list[Any]
    edge_owners: list[_Pending]
    kept: dict[int, tuple[weakref.ref[torch.Tensor], int, int]]
    last: list[Any]


def _recorder(store: _Store) -> _Recording:
    """What to do when a recorded module is called (its input: the last output, a kept tensor,
    or a new copy) and when it returns (a copy of its output and its gradient edge)."""
    edges: list[Any] = []  # gradient edges of the outputs (captured before any in-place op)
    edge_owners: list[_Pending] = []
    done: list[_Pending] = []
    # the last recorded output: tensor, version, index of its record, store slot
    last: list[Any] = [None, -1, -1, -1]
    # tensors already in the store: id -> (weak reference, version, slot)
    kept: dict[int, tuple[weakref.ref[torch.Tensor], int, int]] = {}
    ref = weakref.ref
    add = store.add
    kept_tensors, kept_full, kept_zeros = store.tensors, store.full, store.zeros
    tensor_type = torch.Tensor
    python_node = torch._C._FunctionBase
    grad_enabled, set_grad_enabled = torch.is_grad_enabled, torch._C._set_grad_enabled

    def begin(target: _Target, inp: tuple[Any, ...]) -> _Pending:
        """A call of ``target`` starts, with positional arguments ``inp``."""
        target.calls += 1
        p = _Pending(target, target.calls)
        if inp and type(inp[0]) is tensor_type:  # the common case: (x,)
            x = inp[0] if inp[0].is_floating_point() else None
        else:
            x = _first_tensor(inp)
        if x is not None:
            if x is last[0] and x._version == last[1]:  # a chain: the last output, unchanged
                p.fed_by, p.in_slot = last[2], last[3]
            else:
                entry = kept.get(id(x))
                if entry is not None and entry[0]() is x and entry[1] == x._version:
                    p.in_slot = entry[2]
                else:
                    p.in_slot = add(x.detach().clone(), full=False)
                    kept[id(x)] = (ref(x), x._version, p.in_slot)
                p.in_numel = x.numel()
        return p

    def end(p: _Pending, out: Any) -> None:
        """The call ``p`` returned ``out``."""
        if type(out) is tensor_type:
            y = out if out.is_floating_point() else None
        else:
            y = _first_tensor(out)
        p.index = index = len(done)
        done.append(p)
        if y is None:
            return
        p.shape = tuple(y.shape)
        # store.add(y.detach().clone(), full=True, zeros=p.activation), inlined; the copy is
        # taken with gradients off, which costs less than detaching first
        p.out_slot = slot = len(kept_tensors)
        enabled = grad_enabled()
        set_grad_enabled(False)
        try:
            kept_tensors.append(y.clone())
        finally:
            set_grad_enabled(enabled)
        kept_full.append(True)
        kept_zeros.append(p.activation)
        version = y._version
        kept[id(y)] = (ref(y), version, slot)
        last[0], last[1], last[2], last[3] = y, version, index, slot
        if y.requires_grad:
            node: Any = y.grad_fn
            if node is None or isinstance(node, python_node):
                # a leaf, or a custom Function's output (whose edge needs an ownership token)
                edges.append(get_gradient_edge(y))
            else:  # what get_gradient_edge returns, without its checks
                edges.append(GradientEdge(node, y.output_nr))
            edge_owners.append(p)

    return _Recording(begin, end, done, edges, edge_owners, kept, last)


_Installer = tuple[Callable[[], None], Callable[[], None]]


def _wrapped(
    targets: list[_Target],
    begin: Callable[[_Target, tuple[Any, ...]], _Pending],
    end: Callable[[_Pending, Any], None],
) -> _Installer:
    """Record by wrapping each recorded module's forward in place (its instance attribute,
    removed afterwards): module calls keep torch's fast path, which any hook turns off."""

    def recording(target: _Target, forward: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            # (a module called with keyword arguments only: its first tensor among them)
            p = begin(target, args if args or not kwargs else tuple(kwargs.values()))
            out = forward(*args, **kwargs)
            end(p, out)
            return out

        return recorded

    def install() -> None:
        for t in targets:
            t.module.__dict__["forward"] = recording(t, t.module.forward)

    def uninstall() -> None:
        for t in targets:
            t.module.__dict__.pop("forward", None)

    return install, uninstall


def _hooked(
    targets: list[_Target],
    begin: Callable[[_Target, tuple[Any, ...]], _Pending],
    end: Callable[[_Pending, Any], None],
) -> _Installer:
    """Record with two global module hooks (they cost far less than two per module to register
    and remove), used where wrapping would not see what the model's own hooks do."""
    info = {id(t.module): t for t in targets}
    stack: dict[int, list[_Pending]] = {}

    def pre_hook(module: nn.Module, inp: tuple[Any, ...]) -> None:
        key = id(module)
        target = info.get(key)
        if target is None:  # a container, or a module of another model (hooks are global)
            return
        p = begin(target, inp)
        if key in stack:
            stack[key].append(p)
        else:
            stack[key] = [p]

    def hook(module: nn.Module, inp: tuple[Any, ...], out: Any) -> None:
        pending = stack.get(id(module))
        if pending:
            end(pending.pop(), out)

    handles: list[Any] = []

    def install() -> None:
        handles.append(register_module_forward_pre_hook(pre_hook))
        handles.append(register_module_forward_hook(hook))

    def uninstall() -> None:
        for h in handles:
            h.remove()

    return install, uninstall


def _input_leaves(
    args: tuple[Any, ...],
    kwargs: dict[str, Any] | None,
    store: _Store,
    kept: dict[int, tuple[weakref.ref[torch.Tensor], int, int]],
    input_slots: list[int],
    *,
    grad: bool = True,
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The inputs as leaves of the graph: floating ones require grad (the backward pass is
    taken with respect to them; not with ``grad=False``), each kept in the store with its slot
    in ``input_slots``."""
    leaves = tuple(a.detach().requires_grad_(grad) if a.is_floating_point() else a for a in args)
    kw_leaves = {
        k: v.detach().requires_grad_(grad)
        if isinstance(v, torch.Tensor) and v.is_floating_point()
        else v
        for k, v in (kwargs or {}).items()
    }
    for a in (*leaves, *kw_leaves.values()):
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            # a leaf that requires grad cannot be modified in place: no copy needed
            input_slots.append(store.add(a.detach(), full=False))
            kept[id(a)] = (weakref.ref(a), a._version, input_slots[-1])
    return leaves, kw_leaves


def _marks_its_inputs(err: DataValidationError) -> bool:
    """Whether the forward pass failed because the model sets ``requires_grad`` on a view of its
    input (Hugging Face's wav2vec2 / HuBERT feature encoders in training mode do, for gradient
    checkpointing): legal when the input does not require grad, an error when the probe's does."""
    cause = err.__cause__
    return isinstance(cause, RuntimeError) and "requires_grad flags of leaf" in str(cause)


def _scalar_loss(loss_fn: Callable[[Any], torch.Tensor] | None, out: Any) -> torch.Tensor:
    """The loss of the model's output; an error of the user's ``loss_fn``, or a loss that is not
    a scalar tensor, as an :class:`InvalidParameterError`."""
    if isinstance(loss_fn, _RandomProjection):
        loss = loss_fn(out)
    else:
        try:
            loss = loss_fn(out)  # type: ignore[misc]
        except NNDoctorError:
            raise
        except Exception as err:  # the user's function: reported, typed
            raise InvalidParameterError(
                f"loss_fn raised {type(err).__name__}: {err}; it must map the model's "
                "output to a scalar tensor"
            ) from err
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise InvalidParameterError(
            "loss_fn must return a scalar tensor, got "
            f"{type(loss).__name__}"
            + (f" of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else "")
            + "; reduce the loss with .mean() or .sum()"
        )
    return loss


def _backward(
    work: nn.Module,
    loss: torch.Tensor,
    all_leaves: tuple[Any, ...],
    rec: _Recording,
    store: _Store,
    grad_slots: list[int],
) -> bool:
    """One ``autograd.grad`` call for the gradients at the float inputs (slots appended to
    ``grad_slots``) and at every recorded output; whether the loss had a gradient at all.

    Gradients with respect to the inputs reach every module output downstream of them without
    computing weight gradients; integer inputs fall back to the parameters."""
    wrt = [a for a in all_leaves if isinstance(a, torch.Tensor) and a.requires_grad]
    n_leaf = len(wrt)
    if not wrt:
        wrt = [p for p in work.parameters() if p.requires_grad]
    loss_ok = bool(loss.requires_grad and wrt)
    if loss_ok:
        grads = torch.autograd.grad(loss.reshape(()), [*wrt, *rec.edges], allow_unused=True)
        for g in grads[:n_leaf]:
            if g is not None:
                grad_slots.append(store.add(g, full=False))
        for p, g in zip(rec.edge_owners, grads[len(wrt) :], strict=True):
            if g is not None:
                p.bwd_slot = store.add(g, full=False)
    return loss_ok


def _can_wrap(targets: list[_Target], modules: list[nn.Module]) -> bool:
    """Whether the probe may record by wrapping each target's ``forward`` (instance attribute)
    rather than with global module hooks, and see the same: no module hooks that run before
    ours would or that replace a target's input (global forward or backward hooks; a target's
    own forward pre-hooks or backward hooks), no ``forward`` of a target's own already, no call
    path other than ``nn.Module``'s, and no ``nn.DataParallel`` (its replicas copy instance
    attributes)."""
    tm = _torch_module
    if (
        tm._global_forward_pre_hooks
        or tm._global_forward_hooks
        or tm._global_backward_hooks
        or tm._global_backward_pre_hooks
    ):
        return False
    known = _PLAIN_CALL
    for m in modules:
        cls = type(m)
        plain = known.get(cls)
        if plain is None:
            if len(known) > 4096:  # (types made on the fly, e.g. by parametrizations)
                known.clear()
            plain = known[cls] = (
                cls.__call__ is nn.Module.__call__
                and cls._call_impl is nn.Module._call_impl
                and not issubclass(cls, (torch.jit.ScriptModule, nn.DataParallel))
            )
        if not plain:
            return False
    for t in targets:
        m = t.module
        if (
            m._forward_pre_hooks
            or m._backward_hooks
            or m._backward_pre_hooks
            or m.__dict__.get("_compiled_call_impl") is not None  # (torch >= 2.2 has it)
            or "forward" in m.__dict__
        ):
            return False
    return True


# whether a module type is called through nn.Module's own __call__ (see _can_wrap)
_PLAIN_CALL: dict[type[nn.Module], bool] = {}


class _RandomProjection:
    r"""The probe's default loss :math:`\langle G, y\rangle`: the main output :math:`y` (see
    :func:`main_output`) against a standard normal cotangent :math:`G` of its shape, drawn in
    float32 on the CPU from ``generator`` (default seeded with 0), scaled to unit RMS (as the
    all-ones cotangent of a sum has), and then moved to the output's device and type."""

    __slots__ = ("generator",)

    def __init__(self, generator: torch.Generator | None) -> None:
        self.generator = generator

    def __call__(self, out: Any) -> torch.Tensor:
        y = main_output(out)
        if y is None:
            raise InvalidParameterError(
                "the model's output holds no floating tensor to build the default loss from; "
                "pass loss_fn= that maps the output to a scalar"
            )
        gen = self.generator if self.generator is not None else torch.Generator().manual_seed(0)
        if y.is_cpu or y.numel() <= _CPU_COTANGENT_NUMEL:
            g = torch.randn(y.shape, generator=gen, dtype=torch.float32)
        else:  # (a large output, e.g. an LM's logits: drawn on its device, seeded from gen)
            seed = int(torch.randint(0, 2**62, (), generator=gen))
            device_gen = torch.Generator(device=y.device).manual_seed(seed)
            g = torch.randn(y.shape, generator=device_gen, dtype=torch.float32, device=y.device)
        if g.numel():  # unit RMS, as the all-ones cotangent had (a scalar output: +-1)
            g /= g.square().mean().sqrt().clamp_min(torch.finfo(torch.float32).tiny)
        return torch.sum(y * g.to(device=y.device, dtype=y.dtype))


# outputs up to this many entries get their cotangent drawn on the CPU (the same on every
# device); larger ones on their own device (no host-to-device copy; the same on that device)
_CPU_COTANGENT_NUMEL = 2**22


def _host_stats(
    raw: np.ndarray[Any, np.dtype[np.float64]],
    done: list[_Pending],
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.float64]]]:
    """Per record: sums of squares, sum, zero count and mean cosine from the raw slot rows;
    and the number of entries of each record's output."""
    n = len(done)
    none = raw.shape[0]  # the index of an all-NaN row, for records without that slot
    # one pass over the records for every per-record number the arrays need
    cols = list(
        zip(
            *(
                (
                    none if p.out_slot is None else p.out_slot,
                    none if p.in_slot is None else p.in_slot,
                    none if p.bwd_slot is None else p.bwd_slot,
                    math.prod(p.shape) if p.shape else 0,
                    p.shape[0] if len(p.shape) >= 2 else 0,
                    p.activation,
                )
                for p in done
            ),
            strict=True,
        )
    )
    ext = np.vstack([raw, np.full((1, raw.shape[1]), math.nan)])
    out, inp, bwd = ext[list(cols[0])], ext[list(cols[1])], ext[list(cols[2])]
    numel = np.array(cols[3], dtype=np.float64)
    n_rows = np.array(cols[4], dtype=np.float64)
    act = np.array(cols[5], dtype=bool)
    stats = np.full((n, _N_COLS), math.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = out[:, _R_SCALE]
        stats[:, _OUT_SQ] = (out[:, _R_NORM] / scale) ** 2
        stats[:, _OUT_SUM] = out[:, _R_SUM] / scale
        stats[:, _OUT_ZERO] = np.where(act, numel - out[:, _R_NONZERO], math.nan)
        stats[:, _OUT_COS] = np.where(
            n_rows >= 2,
            (out[:, _R_UNIT_SQ] - out[:, _R_ROWS]) / (n_rows * (n_rows - 1)),
            math.nan,
        )
        stats[:, _IN_SQ] = (inp[:, _R_NORM] / inp[:, _R_SCALE]) ** 2
        stats[:, _BWD_SQ] = (bwd[:, _R_NORM] / bwd[:, _R_SCALE]) ** 2
    return stats, numel


def _weight_norms(
    targets: list[_Target], dev: torch.device
) -> tuple[torch.Tensor | None, list[int]]:
    """One fused norm over every weight and bias: norms (device) and their slots
    (``2 * target index`` for a weight, ``+ 1`` for a bias)."""
    tensors: list[torch.Tensor] = []
    slots: list[int] = []
    for k, t in enumerate(targets):
        if t.weight is not None:
            tensors.append(t.weight)
            slots.append(2 * k)
        if t.bias is not None:
            tensors.append(t.bias)
            slots.append(2 * k + 1)
    if not tensors:
        return None, []
    with torch.no_grad():
        norms = torch._foreach_norm(tensors)
    try:  # (mixed floating types promote to the widest, exactly; float64 is wider still)
        stacked = torch.stack(norms)
    except RuntimeError:  # norms on several devices
        stacked = torch.stack([t.to(device=dev, dtype=torch.float64) for t in norms])
    return stacked.to(device=dev, dtype=torch.float64), slots


def _activation_maps(
    done: list[_Pending], in_sq: np.ndarray[Any, np.dtype[np.float64]]
) -> tuple[list[float | None], list[float | None]]:
    r""":math:`\mathbb E[\phi^2]` and :math:`\mathbb E[\phi'^2]` at each activation record's
    measured input second moment: one vectorized call per distinct activation."""
    fwd: list[float | None] = [None] * len(done)
    bwd: list[float | None] = [None] * len(done)
    by_act: dict[Activation, list[int]] = {}
    for i, p in enumerate(done):
        act = p.target.act
        if act is not None and math.isfinite(in_sq[i]):
            by_act.setdefault(act, []).append(i)
    for act, idx in by_act.items():
        q = in_sq[idx]
        f = np.atleast_1d(act.second_moment(q)).tolist()
        d = np.atleast_1d(act.derivative_second_moment(q)).tolist()
        for j, i in enumerate(idx):
            fwd[i], bwd[i] = f[j], d[j]
    return fwd, bwd


def _ratio(a: float, b: float) -> float:
    if b == 0 or not math.isfinite(b):
        return math.nan if a == 0 or not math.isfinite(a) else math.inf
    return float(a / b)


def _assemble(
    work: nn.Module,
    targets: list[_Target],
    done: list[_Pending],
    args: tuple[Any, ...],
    store: _Store,
    input_slots: list[int],
    grad_slots: list[int],
    dtype_name: str,
    loss_ok: bool,
    vanishing_gain: float,
    exploding_gain: float,
    collapse_correlation: float,
) -> PropagationReport:
    dev = model_device(work)
    n = len(done)
    w_norms, w_slots = _weight_norms(targets, dev)
    flat, layout = store.compute(dev)
    pieces = [t for t in (flat, w_norms) if t is not None]
    host = (
        (torch.cat(pieces) if len(pieces) > 1 else pieces[0]).cpu().numpy()  # one host sync
        if pieces
        else np.zeros(0)
    )
    raw = np.full((store.count, 7), math.nan)
    raw[:, _R_SCALE] = 1.0
    off = _fill(raw, host, layout)
    w_host = host[off:]
    unsafe = store.unsafe(raw)
    if unsafe:  # float32 overflow or underflow: a second pass, scaled, on those tensors only
        again, layout = store.rescue(raw, unsafe, dev)
        if again is not None:
            _fill(raw, again.cpu().numpy(), layout)
    store_numels = store.numels
    store.release()
    if n:
        stats, numel_arr = _host_stats(raw, done)
    else:
        stats, numel_arr = np.full((0, _N_COLS), math.nan), np.zeros(0)
    if w_slots:
        wb = np.full(2 * len(targets), math.nan)
        sizes = [
            (t.weight if k % 2 == 0 else t.bias).numel()  # type: ignore[union-attr]
            for k in w_slots
            for t in (targets[k // 2],)
        ]
        wb[w_slots] = w_host**2 / np.array(sizes, dtype=np.float64)
        for k, t in enumerate(targets):
            t.position = k
        rows = [p.target.position for p in done]
        stats[:, _W_SQ : _B_SQ + 1] = wb.reshape(-1, 2)[rows]

    def sq_sum(slots: list[int]) -> float:
        return float(sum(((raw[s, _R_NORM] / raw[s, _R_SCALE]) ** 2 for s in slots), 0.0))

    float_args = [a for a in args if a.is_floating_point()]
    n_in = sum(a.numel() for a in float_args)
    input_rms = math.sqrt(sq_sum(input_slots) / n_in) if n_in else math.nan
    n_grad = sum(store_numels[s] for s in grad_slots)
    input_grad_rms = math.sqrt(sq_sum(grad_slots) / n_grad) if n_grad else math.nan

    with np.errstate(divide="ignore", invalid="ignore"):
        has = numel_arr > 0
        out_sq = np.where(has, stats[:, _OUT_SQ] / np.where(has, numel_arr, 1.0), math.nan)
        bwd_sq = np.where(has, stats[:, _BWD_SQ] / np.where(has, numel_arr, 1.0), math.nan)
    in_sq = np.full(n, math.nan)
    for i, p in enumerate(done):
        if p.fed_by is not None:
            in_sq[i] = out_sq[p.fed_by]
        elif p.in_slot is not None:
            in_sq[i] = stats[i, _IN_SQ] / p.in_numel if p.in_numel else math.nan
    if not float_args and len(done):
        input_rms = math.sqrt(out_sq[0])
    fwd_rms = np.sqrt(out_sq)
    bwd_rms = np.sqrt(bwd_sq)
    # backward gains compare whole-gradient norms ||dL/dy||, i.e. RMS * sqrt(entries): a
    # norm-preserving layer keeps that whatever its output's shape (and He's fan-in init keeps
    # its expectation), while the RMS per entry falls wherever the same gradient is spread over
    # more entries (a 160-px ResNet's first maps hold ~8,000x more entries than its logits)
    with np.errstate(invalid="ignore"):
        bwd_norm = bwd_rms * np.sqrt(numel_arr)
    called_idx = [i for i in range(len(done)) if done[i].out_slot is not None]
    last = called_idx[-1] if called_idx else None
    bwd_idx = [i for i in called_idx if math.isfinite(bwd_rms[i]) or math.isinf(bwd_rms[i])]
    bwd_ref = bwd_norm[bwd_idx[-1]] if bwd_idx else math.nan
    chain = len(done) > 1 and all(p.fed_by == p.index - 1 for p in done[1:])

    records = _layer_records(
        done,
        stats,
        numel_arr,
        in_sq,
        out_sq,
        bwd_sq,
        (fwd_rms, bwd_rms, bwd_norm),
        input_rms,
        float(bwd_ref),
    )
    records = _with_uncalled(targets, records)
    forward_gain = _ratio(float(fwd_rms[last]), input_rms) if last is not None else math.nan
    if n_grad:
        backward_gain = _ratio(input_grad_rms * math.sqrt(n_grad), float(bwd_ref))
    else:
        backward_gain = _ratio(float(bwd_norm[bwd_idx[0]]), float(bwd_ref)) if bwd_idx else math.nan
    findings = _findings(
        records, dtype_name, loss_ok, vanishing_gain, exploding_gain, collapse_correlation
    )
    verdict, onset, direction = _verdict(
        records, forward_gain, backward_gain, findings, vanishing_gain, exploding_gain
    )
    batch = int(args[0].shape[0]) if args else 0
    return PropagationReport(
        layers=tuple(records),
        input_rms=input_rms,
        forward_gain=forward_gain,
        backward_gain=backward_gain,
        verdict=verdict,
        onset_index=onset,
        onset_layer=records[onset].name if onset is not None else None,
        onset_direction=direction,
        findings=tuple(findings),
        dtype=dtype_name,
        batch_size=batch,
        vanishing_gain=vanishing_gain,
        exploding_gain=exploding_gain,
        chain=chain,
    )


def _vratio(
    a: np.ndarray[Any, np.dtype[np.float64]], b: np.ndarray[Any, np.dtype[np.float64]] | float
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """:func:`_ratio` elementwise."""
    a = np.asarray(a, dtype=np.float64)
    b = np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = a / b
    bad = (b == 0) | ~np.isfinite(b)
    if bad.any():
        blank = (a == 0) | ~np.isfinite(a)
        out = np.where(bad, np.where(blank, math.nan, math.inf), out)
    return out


def _layer_records(
    done: list[_Pending],
    stats: np.ndarray[Any, np.dtype[np.float64]],
    numel: np.ndarray[Any, np.dtype[np.float64]],
    in_sq: np.ndarray[Any, np.dtype[np.float64]],
    out_sq: np.ndarray[Any, np.dtype[np.float64]],
    bwd_sq: np.ndarray[Any, np.dtype[np.float64]],
    rms: tuple[np.ndarray[Any, np.dtype[np.float64]], ...],
    input_rms: float,
    bwd_ref: float,
) -> list[LayerRecord]:
    """One :class:`LayerRecord` per recorded call, every number computed for all records at
    once (NumPy over the records; the per-record Python is the constructor call only)."""
    n = len(done)
    if n == 0:
        return []
    fwd_rms, bwd_rms, bwd_norm = rms
    nan = math.nan
    w_sq, b_sq = stats[:, _W_SQ], stats[:, _B_SQ]
    b_term = np.where(np.isfinite(b_sq), b_sq, 0.0)
    act_sq, act_dsq = _activation_maps(done, in_sq)
    # the output's second moment predicted from the input's (NaN: no closed form): an
    # activation's mean-field map; affine fan_in E[W^2] E[x^2] + E[b^2]; a norm's
    # E[gamma^2] + E[beta^2] (1 and 0 without them); an embedding's E[W^2]
    pred = np.full(n, nan)
    has_pred = np.zeros(n, dtype=bool)
    fan_in = np.zeros(n)
    theories: list[str | None] = [p.target.theory for p in done]
    for i, (p, theory) in enumerate(zip(done, theories, strict=True)):
        if theory == "activation":
            a = act_sq[i]
            if a is not None:
                pred[i], has_pred[i] = a, True
        elif theory is not None:
            has_pred[i] = True
            fan_in[i] = p.target.fan_in
    kinds = np.array([t or "" for t in theories])
    with np.errstate(invalid="ignore", over="ignore"):
        affine = kinds == "affine"
        pred[affine] = (fan_in * w_sq * in_sq + b_term)[affine]
        norm = kinds == "norm"
        pred[norm] = (np.where(np.isfinite(w_sq), w_sq, 1.0) + b_term)[norm]
        emb = kinds == "embedding"
        pred[emb] = w_sq[emb]
    # the factor by which the gradient's second moment changes passing back through the next
    # record when it is fed by this one: E[phi'^2] for an activation, fan_out E[W^2] for a
    # linear map or convolution
    factor = np.full(n, nan)
    has_factor = np.zeros(n, dtype=bool)
    for i in range(n - 1):
        nxt = done[i + 1]
        if nxt.fed_by != i:
            continue
        t = nxt.target
        if t.act is not None:
            d = act_dsq[i + 1]
            if d is not None:
                factor[i], has_factor[i] = d, True
        elif t.back_fan:
            factor[i], has_factor[i] = t.back_fan * w_sq[i + 1], True
    bwd_next = np.append(bwd_sq[1:], nan)
    has_factor &= np.isfinite(bwd_next)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        safe = np.where(numel > 0, numel, 1.0)
        has = numel > 0
        input_rms_l = np.where(in_sq >= 0, np.sqrt(np.abs(in_sq)), nan).tolist()
        mean_l = np.where(has, stats[:, _OUT_SUM] / safe, nan).tolist()
        zero_l = np.where(has, stats[:, _OUT_ZERO] / safe, nan).tolist()
        p_back = _vratio(np.sqrt(factor * bwd_next * numel), bwd_ref).tolist()
        p_fwd = _vratio(np.sqrt(pred), input_rms).tolist()
        p_layer = _vratio(pred, in_sq).tolist()
    fwd_gain = _vratio(fwd_rms, input_rms).tolist()
    bwd_gain = _vratio(bwd_norm, bwd_ref).tolist()
    layer_factor = _vratio(out_sq, in_sq).tolist()
    has_pred_l = has_pred.tolist()
    has_fwd_l = (has_pred & (pred >= 0)).tolist()
    has_factor_l = has_factor.tolist()
    f_l, b_l, cos_l = fwd_rms.tolist(), bwd_rms.tolist(), stats[:, _OUT_COS].tolist()
    new = _new_record  # LayerRecord(...) with its fields in order, positionally
    return [
        new(
            i,  # index
            p.target.name,
            p.target.kind,
            p.call,
            True,  # called
            p.shape,
            f_l[i],  # forward_rms
            b_l[i],  # backward_rms
            input_rms_l[i],
            mean_l[i],  # forward_mean
            fwd_gain[i],
            bwd_gain[i],
            layer_factor[i],
            p_layer[i] if has_pred_l[i] else None,  # predicted_layer_factor
            p_fwd[i] if has_fwd_l[i] else None,  # predicted_forward_gain
            p_back[i] if has_factor_l[i] else None,  # predicted_backward_gain
            zero_l[i],  # zero_fraction
            cos_l[i],  # correlation
        )
        for i, p in enumerate(done)
    ]


def _with_uncalled(targets: list[_Target], records: list[LayerRecord]) -> list[LayerRecord]:
    """Add a record for every module with parameters that the forward pass never called."""
    seen = {r.name for r in records}
    out = list(records)
    for target in targets:
        name = target.name
        if name in seen:
            continue
        # place it right after the last record of its parent (or at the end)
        parent = name.rsplit(".", 1)[0] if "." in name else ""
        pos = len(out)
        for j in range(len(out) - 1, -1, -1):
            if parent and (out[j].name == parent or out[j].name.startswith(parent + ".")):
                pos = j + 1
                break
        nan = math.nan
        out.insert(
            pos,
            LayerRecord(
                index=pos,
                name=name,
                kind=target.kind,
                call=0,
                called=False,
                shape=(),
                forward_rms=nan,
                backward_rms=nan,
                input_rms=nan,
                forward_mean=nan,
                forward_gain=nan,
                backward_gain=nan,
                layer_factor=nan,
                predicted_layer_factor=None,
                predicted_forward_gain=None,
                predicted_backward_gain=None,
                zero_fraction=nan,
                correlation=nan,
            ),
        )
    return [_reindex(r, i) for i, r in enumerate(out)]


def _reindex(r: LayerRecord, i: int) -> LayerRecord:
    if r.index == i:
        return r
    from dataclasses import replace

    return replace(r, index=i)


def _findings(
    records: list[LayerRecord],
    dtype_name: str,
    loss_ok: bool,
    vanishing_gain: float,
    exploding_gain: float,
    collapse_correlation: float,
) -> list[ProbeFinding]:
    found: list[ProbeFinding] = []
    called = [r for r in records if r.called]
    dt = getattr(torch, dtype_name, torch.float32)
    tiny = float(torch.finfo(dt).tiny)
    hint = (
        "; probe with dtype=torch.float64 to measure the true gain"
        if dtype_name != "float64"
        else ""
    )
    first_inf = next((r for r in called if math.isinf(r.forward_rms)), None)
    first_nan = next((r for r in called if math.isnan(r.forward_rms)), None)
    if first_inf is not None:
        found.append(
            ProbeFinding(
                "overflow",
                first_inf.name,
                first_inf.index,
                f"forward signal overflows to inf in {dtype_name} at layer {first_inf.name!r} "
                f"(#{first_inf.index}){hint}",
            )
        )
    elif first_nan is not None:
        found.append(
            ProbeFinding(
                "non_finite",
                first_nan.name,
                first_nan.index,
                f"forward signal becomes NaN at layer {first_nan.name!r} (#{first_nan.index})",
            )
        )
    first_zero = next(
        (
            r
            for r in called
            if r.forward_rms == 0.0 and all(s.forward_rms == 0.0 for s in called[r.index :])
        ),
        None,
    )
    if first_zero is not None:
        found.append(
            ProbeFinding(
                "underflow",
                first_zero.name,
                first_zero.index,
                f"forward signal is exactly 0 from layer {first_zero.name!r} "
                f"(#{first_zero.index}) on: {dtype_name} underflow or every unit dead{hint}",
            )
        )
    else:
        first_sub = next((r for r in called if 0.0 < r.forward_rms < tiny), None)
        if first_sub is not None:
            found.append(
                ProbeFinding(
                    "underflow",
                    first_sub.name,
                    first_sub.index,
                    f"forward signal falls below {dtype_name}'s smallest normal number "
                    f"({tiny:.3g}) at layer {first_sub.name!r}: precision is being lost{hint}",
                )
            )
    b_inf = next((r for r in called if math.isinf(r.backward_rms)), None)
    if b_inf is not None:
        found.append(
            ProbeFinding(
                "overflow",
                b_inf.name,
                b_inf.index,
                f"gradient overflows to inf in {dtype_name} at layer {b_inf.name!r}{hint}",
            )
        )
    b_zero = [r for r in called if r.backward_rms == 0.0]
    if b_zero and first_zero is None:
        r = b_zero[-1]
        found.append(
            ProbeFinding(
                "underflow",
                r.name,
                r.index,
                f"gradient is exactly 0 at layer {r.name!r} and before it{hint}",
            )
        )
    if not loss_ok:
        found.append(
            ProbeFinding(
                "no_gradient",
                None,
                None,
                "the loss does not depend on anything that requires grad; backward moments "
                "are NaN (set requires_grad on the parameters to measure them)",
            )
        )
    if called:
        first_corr = called[0].correlation
        last_corr = called[-1].correlation
        if (
            math.isfinite(last_corr)
            and last_corr > collapse_correlation
            and not (math.isfinite(first_corr) and first_corr > collapse_correlation)
        ):
            where = next(
                r
                for r in called
                if math.isfinite(r.correlation) and r.correlation > collapse_correlation
            )
            found.append(
                ProbeFinding(
                    "correlation_collapse",
                    where.name,
                    where.index,
                    f"different inputs become indistinguishable: mean cosine similarity "
                    f"{last_corr:.3f} at the output (> {collapse_correlation}) from layer "
                    f"{where.name!r} on; the signal is dominated by biases or one direction",
                )
            )
    return found


def _verdict(
    records: list[LayerRecord],
    forward_gain: float,
    backward_gain: float,
    findings: list[ProbeFinding],
    vanishing_gain: float,
    exploding_gain: float,
) -> tuple[Verdict, int | None, str | None]:
    called = [r for r in records if r.called]
    for kind in ("overflow", "non_finite"):
        first = next((f for f in findings if f.kind == kind), None)
        if first is not None:
            direction = "backward" if first.message.startswith("gradient") else "forward"
            return "exploding", first.index, direction
    zero = next((f for f in findings if f.kind == "underflow" and "exactly 0" in f.message), None)
    if zero is not None:
        direction = "forward" if "forward" in zero.message else "backward"
        return "vanishing", zero.index, direction
    lf = math.log10(forward_gain) if forward_gain > 0 and math.isfinite(forward_gain) else 0.0
    lb = math.log10(backward_gain) if backward_gain > 0 and math.isfinite(backward_gain) else 0.0
    hi, lo = math.log10(exploding_gain), math.log10(vanishing_gain)
    candidates: list[tuple[float, Verdict, str]] = []
    for value, direction in ((lf, "forward"), (lb, "backward")):
        if value > hi:
            candidates.append((value - hi, "exploding", direction))
        elif value < lo:
            candidates.append((lo - value, "vanishing", direction))
    if not candidates:
        return "healthy", None, None
    _, verdict, direction = max(candidates)
    if direction == "forward":
        onset = next(
            (r.index for r in called if not vanishing_gain <= r.forward_gain <= exploding_gain),
            None,
        )
    else:
        onset = next(
            (
                r.index
                for r in reversed(called)
                if math.isfinite(r.backward_gain)
                and not vanishing_gain <= r.backward_gain <= exploding_gain
            ),
            None,
        )
    return verdict, onset, direction
