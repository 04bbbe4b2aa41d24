"""Shared helpers: weight layers, their fans, what follows them, state snapshots."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from nndoctor._validation import check_finite_tensor, check_inputs
from nndoctor.exceptions import DataValidationError
from nndoctor.stability.theory import Activation, activation_of

__all__ = [
    "CONV_TYPES",
    "NORM_TYPES",
    "RNN_GATES",
    "WEIGHT_TYPES",
    "check_call_inputs",
    "fans",
    "first_batch_tensor",
    "following_activations",
    "forward_seed",
    "inputs_tuple",
    "is_hf_conv1d",
    "is_norm",
    "main_output",
    "model_device",
    "own_rng",
    "param",
    "preserve_state",
    "split_inputs",
    "tensors_in",
    "unit_rows",
    "weight_layers",
]

CONV_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
CONV_T_TYPES: tuple[type[nn.Module], ...] = (
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
WEIGHT_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Bilinear, *CONV_TYPES, *CONV_T_TYPES)
NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.LayerNorm,
    nn.GroupNorm,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.RMSNorm,
)


def is_norm(module: nn.Module) -> bool:
    """A normalization layer: PyTorch's (:data:`NORM_TYPES`), or one named like one
    (``LlamaRMSNorm``, ``T5LayerNorm``, ...: models define their own).

    Examples
    --------
    >>> class LlamaRMSNorm(nn.Module): ...
    >>> is_norm(nn.LayerNorm(4)), is_norm(LlamaRMSNorm()), is_norm(nn.Linear(2, 2))
    (True, True, False)
    """
    if isinstance(module, NORM_TYPES):
        return True
    return type(module).__name__.endswith(("LayerNorm", "RMSNorm", "GroupNorm", "BatchNorm"))


# gates stacked in the rows of a recurrent layer's weights (``nn.RNNBase.mode``; plain RNN: 1)
RNN_GATES: dict[str, int] = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def is_hf_conv1d(module: nn.Module) -> bool:
    """Hugging Face's ``Conv1D`` (GPT-2): a linear layer whose weight is stored (in, out)."""
    w = module._parameters.get("weight")
    return (
        type(module).__name__ == "Conv1D"
        and isinstance(w, torch.Tensor)
        and w.dim() == 2
        and getattr(module, "nf", None) == w.shape[1]
    )


def param(module: nn.Module, attr: str = "weight") -> torch.Tensor:
    """A module's parameter (or buffer) tensor by name; raises when it has none."""
    value = getattr(module, attr, None)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{type(module).__name__} has no tensor {attr!r}")
    return value


def _ints(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, tuple | list) else (int(value),)


def fans(module: nn.Module) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight layer as seen by the forward pass.

    For a transposed convolution each output receives ``in_channels/groups · prod(kernel) /
    prod(stride)`` inputs, so fans are computed from that rather than from the weight's layout.
    """
    weight = param(module)
    if isinstance(module, CONV_T_TYPES):
        k = math.prod(weight.shape[2:])
        stride = math.prod(_ints(module.stride))
        groups = _ints(module.groups)[0]
        fan_in = max(1, round(weight.shape[0] / groups * k / stride))
        fan_out = int(weight.shape[1]) * k
        return fan_in, fan_out
    if isinstance(module, nn.Bilinear):
        return int(weight.shape[1] * weight.shape[2]), int(weight.shape[0])
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    return int(fan_in), int(fan_out)


def backward_fan(module: nn.Module) -> int:
    """How many outputs each input feeds (fan_out, divided by the stride for convolutions)."""
    _, fan_out = fans(module)
    if isinstance(module, CONV_TYPES):
        stride = math.prod(_ints(module.stride))
        return max(1, round(fan_out / stride))
    return fan_out


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Linear, bilinear and convolution layers, in registration order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, WEIGHT_TYPES)]


def following_activations(model: nn.Module) -> dict[str, Activation]:
    """The activation that follows each weight layer, found in registration order.

    A weight layer is followed by the first activation module registered after it and before the
    next weight layer; a module that stores its activation as an attribute (e.g.
    ``nn.TransformerEncoderLayer.activation``) counts too. Layers with none map to identity.
    """
    result: dict[str, Activation] = {}
    pending: list[str] = []
    for name, m in model.named_modules():
        if isinstance(m, WEIGHT_TYPES):
            for p in pending:
                result.setdefault(p, Activation("identity"))
            pending = [name]
            continue
        act = activation_of(m)
        if act is None:
            fn = getattr(m, "activation", None)
            if fn is torch.nn.functional.relu:
                act = Activation("relu")
            elif fn is torch.nn.functional.gelu:
                act = Activation("gelu")
        if act is not None and pending:
            for p in pending:
                result[p] = act
            pending = []
    for p in pending:
        result.setdefault(p, Activation("identity"))
    return result


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without any)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def inputs_tuple(inputs: Any) -> tuple[Any, ...]:
    """Inputs as the positional arguments of ``model(*args)``."""
    return tuple(inputs) if isinstance(inputs, tuple | list) else (inputs,)


def split_inputs(inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Inputs as ``(args, kwargs)`` of ``model(*args, **kwargs)``: a mapping (a Hugging Face
    batch such as ``{"input_ids": ..., "attention_mask": ...}``) is passed as keyword
    arguments, a tuple or list as positional ones, anything else as the one positional one."""
    if isinstance(inputs, Mapping):
        return (), dict(inputs)
    return inputs_tuple(inputs), {}


def check_call_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Raise unless the positional inputs are finite batch tensors, or (keyword inputs) at
    least one keyword value is a tensor and every tensor among them is a finite batch."""
    if not kwargs:
        check_inputs(args)
        return
    tensors = {k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise DataValidationError(
            f"inputs is a mapping with no tensor (keys: {', '.join(map(str, kwargs))}); pass "
            "the batch as a dict of tensors, e.g. {'input_ids': ids, 'attention_mask': mask}"
        )
    for key, t in tensors.items():
        if t.dim() == 0 or t.shape[0] == 0:
            raise DataValidationError(
                f"inputs[{key!r}] has shape {tuple(t.shape)}; pass a batch with at least one "
                "sample along the first dimension"
            )
        check_finite_tensor(t, name=f"inputs[{key!r}]")


def first_batch_tensor(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
    """The first tensor among the inputs (positional first), whose first dim is the batch."""
    for v in (*args, *kwargs.values()):
        if isinstance(v, torch.Tensor):
            return v
    raise DataValidationError("inputs hold no tensor; pass a batch tensor (first dim = samples)")


def main_output(out: Any) -> torch.Tensor | None:
    """The tensor a model's output is about: the output itself; a Hugging Face
    ``ModelOutput``'s ``logits`` (else ``last_hidden_state``, else its first floating tensor);
    the first element of a tuple or list (the convention of ``nn.LSTM``'s ``(output, state)``
    and of ``return_dict=False``), or its first floating tensor. None when it holds no
    floating tensor.

    Examples
    --------
    >>> out = (torch.ones(2, 3), (torch.zeros(1, 2, 3), torch.zeros(1, 2, 3)))
    >>> tuple(main_output(out).shape)
    (2, 3)
    """
    if isinstance(out, torch.Tensor):
        return out if out.is_floating_point() else None
    if isinstance(out, Mapping) or hasattr(out, "logits"):
        for key in ("logits", "last_hidden_state"):
            value = out.get(key) if isinstance(out, Mapping) else getattr(out, key, None)
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                return value
    if isinstance(out, tuple | list) and out:
        first = main_output(out[0])
        if first is not None:
            return first
    return next((t for t in tensors_in(out) if t.is_floating_point()), None)


@contextlib.contextmanager
def preserve_state(model: nn.Module, modules: list[nn.Module] | None = None) -> Iterator[None]:
    """Restore buffers (e.g. BatchNorm running statistics), train/eval flags and requires_grad.

    Parameters themselves are never written by the callers; their ``.grad`` is left alone.
    Stock BatchNorm layers in training mode run with ``track_running_stats`` off meanwhile (same
    output, no buffer writes); other buffers are copied and those that changed are written back.
    ``modules``: ``list(model.modules())`` when the caller has it already.
    """
    if modules is None:
        modules = list(model.modules())
    # stock BatchNorm layers in training mode that track running statistics compute exactly
    # the same output with track_running_stats off, and write none of their buffers
    stock = nn.modules.batchnorm._BatchNorm.forward
    quiet = [
        m
        for m in modules
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        and type(m).forward is stock
        and m.training
        and m.track_running_stats
    ]
    skip = {id(b) for m in quiet for b in m._buffers.values() if b is not None}
    # buffers and parameters read off the module list (model.buffers() / .parameters() would
    # walk the module tree again, each), shared ones once
    seen: set[int] = set()
    buffers: list[torch.Tensor] = []
    params: list[torch.Tensor] = []
    for m in modules:
        for group, out in ((m._buffers, buffers), (m._parameters, params)):
            for t in group.values():
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    if id(t) not in skip:
                        out.append(t)
    versions = [b._version for b in buffers]
    saved = [b.detach().clone() for b in buffers]
    modes = [(m, m.training) for m in modules]
    flags = [(p, p.requires_grad) for p in params]
    for bn in quiet:
        bn.track_running_stats = False
    try:
        yield
    finally:
        for bn in quiet:
            bn.track_running_stats = True
        changed = [i for i, b in enumerate(buffers) if b._version != versions[i]]
        if changed:
            with torch.no_grad():
                torch._foreach_copy_([buffers[i] for i in changed], [saved[i] for i in changed])
        for m, mode in modes:
            if m.training != mode:  # nn.Module.__setattr__ is slow: only where it changed
                m.training = mode
        for p, flag in flags:
            if p.requires_grad != flag:
                p.requires_grad_(flag)


def forward_seed(generator: torch.Generator | None) -> int:
    """The seed of a pass's own random numbers: the second draw from a copy of ``generator``
    (default seeded with 0), so that ``generator`` itself is not advanced (what the caller draws
    from it is unchanged) and the seed is not the probe's first draw (which seeds a large
    output's cotangent on its device)."""
    source = torch.Generator(device=generator.device if generator is not None else "cpu")
    if generator is not None:
        source.set_state(generator.get_state())
    else:
        source.manual_seed(0)
    draws = torch.randint(0, 2**62, (2,), generator=source, device=source.device)
    return int(draws[1])


@contextlib.contextmanager
def own_rng(model: nn.Module, seed: int) -> Iterator[None]:
    """Run the model's forward passes on their own random numbers (dropout masks in training
    mode, any sampling in a forward): the global CPU generator and those of the model's CUDA
    devices are forked, seeded with ``seed`` (see :func:`forward_seed`) and restored afterwards,
    so the result does not depend on what ran before and the caller's random state is left as
    it was.

    Examples
    --------
    >>> drop = nn.Dropout(0.5)
    >>> state = torch.get_rng_state()
    >>> with own_rng(drop, forward_seed(None)):
    ...     a = drop(torch.ones(8))
    >>> with own_rng(drop, forward_seed(None)):
    ...     b = drop(torch.ones(8))
    >>> torch.equal(a, b), torch.equal(torch.get_rng_state(), state)
    (True, True)
    """
    cuda = sorted(
        {t.device.index or 0 for t in (*model.parameters(), *model.buffers()) if t.is_cuda}
    )
    with torch.random.fork_rng(devices=cuda, device_type="cuda"):
        torch.default_generator.manual_seed(seed)
        for index in cuda:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


def tensors_in(obj: Any) -> list[torch.Tensor]:
    """The tensors inside a module's output (or any nest of tuples, lists, dicts), in order.

    Examples
    --------
    >>> [tuple(t.shape) for t in tensors_in({"a": torch.zeros(2), "b": (1, torch.ones(3))})]
    [(2,), (3,)]
    """
    return [t for t in tree_flatten(obj)[0] if isinstance(t, torch.Tensor)]


def _rows(weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Units as rows: (units, fan_in [+ 1]) from a weight whose first dimension is the unit."""
    rows = weight.detach().reshape(weight.shape[0], -1)
    if bias is not None and bias.dim() == 1 and bias.shape[0] == rows.shape[0]:
        rows = torch.cat([rows, bias.detach().to(rows.dtype)[:, None]], dim=1)
    return rows


def _tensor(module: nn.Module, name: str) -> torch.Tensor | None:
    value = getattr(module, name, None)
    return value if isinstance(value, torch.Tensor) else None


def _rnn_rows(module: nn.RNNBase) -> list[torch.Tensor]:
    """One (hidden units, all gates' incoming weights and biases) matrix per layer and direction."""
    gates = RNN_GATES.get(module.mode, 1)
    hidden = module.hidden_size
    out = []
    suffixes = [""] + (["_reverse"] if module.bidirectional else [])
    for k in range(module.num_layers):
        for sfx in suffixes:
            parts = []
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                t = _tensor(module, f"{kind}_l{k}{sfx}")
                if t is None:
                    continue
                # rows g*H + i belong to gate g of unit i: gather each unit's gates side by side
                parts.append(t.detach().reshape(gates, hidden, -1).transpose(0, 1))
            if parts:
                out.append(torch.cat(parts, dim=2).reshape(hidden, -1))
    return out


def _attention_rows(module: nn.MultiheadAttention) -> list[torch.Tensor]:
    """The query, key and value projections' units (the output projection is its own Linear)."""
    e = module.embed_dim
    in_proj = _tensor(module, "in_proj_weight")
    if in_proj is not None:  # one (3E, E) matrix: query, key, value stacked
        weights = [in_proj[i * e : (i + 1) * e] for i in range(3)]
    else:  # kdim or vdim differs from embed_dim: three matrices
        names = ("q_proj_weight", "k_proj_weight", "v_proj_weight")
        weights = [w for w in (_tensor(module, n) for n in names) if w is not None]
    bias = _tensor(module, "in_proj_bias")
    return [
        _rows(w, None if bias is None else bias[i * e : (i + 1) * e]) for i, w in enumerate(weights)
    ]


def unit_rows(module: nn.Module) -> list[torch.Tensor]:
    r"""Each unit's incoming weights (and bias) as the rows of one matrix per group of units.

    The one definition of "a unit and what feeds it", used by the symmetry check and by the
    monitor's effective-units count. Units of different groups never compare: they feed
    different computations.

    A *unit* is one output feature (channel) of the layer; its row holds every parameter that
    feeds it, so two units with equal rows compute the same function of the input. How a layer
    stores them:

    * ``nn.Linear``, ``nn.Bilinear``, convolutions: ``weight`` is (out, in, ...), one row per
      output; transposed convolutions store (in, out / groups, ...) and are regrouped;
    * Hugging Face ``Conv1D`` (GPT-2's projections) stores (in, out): rows of the transpose;
    * ``nn.Embedding``: a unit is an embedding dimension, fed by one value per token: the
      columns of the (vocabulary, dim) table;
    * ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``: one group per layer and direction (layer 0
      forward, layer 0 reverse, layer 1 forward, ...); a hidden unit's row holds its rows of
      every gate (4 for LSTM, 3 for GRU) from that layer's input and recurrent weights and both
      biases, gate by gate (an LSTM's projection ``weight_hr`` feeds no hidden unit);
    * ``nn.MultiheadAttention``: three groups, the query, key and value projections;
    * normalization layers, and any layer whose parameters are all vectors (per-unit scales
      and shifts): no incoming weights, no rows (an empty list).

    Examples
    --------
    >>> [tuple(r.shape) for r in unit_rows(nn.Linear(3, 4))]
    [(4, 4)]
    >>> [tuple(r.shape) for r in unit_rows(nn.LSTM(3, 5))]
    [(5, 40)]
    >>> [tuple(r.shape) for r in unit_rows(nn.LSTM(3, 5, num_layers=2, bidirectional=True))]
    [(5, 40), (5, 40), (5, 68), (5, 68)]
    >>> unit_rows(nn.LayerNorm(8))
    []
    """
    if isinstance(module, nn.RNNBase):
        return _rnn_rows(module)
    if isinstance(module, nn.MultiheadAttention):
        return _attention_rows(module)
    weight = _tensor(module, "weight")
    if weight is None or weight.dim() < 2:
        return []
    bias = _tensor(module, "bias")
    if isinstance(module, nn.Embedding | nn.EmbeddingBag):
        return [weight.detach().t()]
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        g = module.groups
        w = weight.detach()
        per = w.reshape(g, w.shape[0] // g, w.shape[1], -1).transpose(1, 2)
        return [_rows(per.reshape(g * w.shape[1], -1), bias)]
    if is_hf_conv1d(module):
        return [_rows(weight.t(), bias)]  # Hugging Face Conv1D: (in, out), nf outputs
    if (
        weight.dim() == 2
        and bias is not None
        and bias.dim() == 1
        and bias.shape[0] == weight.shape[1] != weight.shape[0]
    ):
        return [_rows(weight.t(), bias)]  # another (in, out) layout: the bias names the units
    return [_rows(weight, bias)]
