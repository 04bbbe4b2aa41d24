"""Hooks: what the monitor attaches to a model, and the device-side accumulators they fill.

* parametrized layers (modules with parameters of their own): a forward hook that records the
  forward order and registers a tensor hook on the output, which accumulates the squared norm
  of the backward signal :math:`\\partial L / \\partial y_l`;
* activation modules (ReLU, tanh and sigmoid families): a forward hook that accumulates the
  output's moments, non-finite count, saturated count, and each unit's maximum over the batch;
* the root: a forward pre-hook that keeps a reference to the batch, and a forward hook that
  keeps a reference to the gradient flowing back into the model's output (both used only to
  re-run a batch that produced a non-finite value).

Hooks compute only while a tick is being measured, the model is in training mode and grad is
enabled (validation passes are not counted). Accumulators add over micro-batches, so with
gradient accumulation a tick covers every micro-batch of the optimizer step. Nothing here
synchronizes with the host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nndoctor.stability._layers import tensors_in
from nndoctor.stability.monitor._quantities import (
    ActivationKind,
    activation_kind,
    activation_moments,
    layer_role,
    unit_maxima,
)

__all__ = ["Collector"]

# layers whose output's units are its channels (dimension 1); others put them last
_CONV = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
)


class Collector:
    """Owns the hooks on one model and the per-step accumulators they fill.

    Parameters
    ----------
    model : nn.Module
        The module whose submodules are hooked (for DDP, the wrapped module).
    root : nn.Module
        The module the user calls (the DDP wrapper, or ``model``).
    saturation_level : float
        See :class:`MonitorThresholds`.
    activations : bool
        Measure activation modules (hook them).
    backward : bool
        Measure the backward signal at each layer's output.
    unit_sums : bool
        For ``nn.ReLU``/``nn.ReLU6`` (outputs never negative) record each unit's sum over the
        batch instead of its maximum: a unit is dead exactly when that sum is 0, and the total
        sum follows from the unit sums, so the hook needs two reductions instead of three.
        Such a record carries one scalar (the norm) instead of two (sum, norm).
    """

    def __init__(
        self,
        model: nn.Module,
        root: nn.Module,
        saturation_level: float,
        *,
        activations: bool = True,
        backward: bool = True,
        unit_sums: bool = True,
    ) -> None:
        self.model = model
        self.backward = backward
        self.unit_sums = unit_sums
        self.saturation_level = saturation_level
        self.layers: list[str] = []
        self.layer_types: dict[str, str] = {}
        self.layer_modules: dict[str, nn.Module] = {}
        self.params: list[torch.Tensor] = []
        self.param_layer: list[int] = []
        self.acts: dict[str, ActivationKind] = {}
        self.roles: dict[str, str] = {}
        for name, module in model.named_modules():
            own = [p for p in module.parameters(recurse=False) if p.requires_grad]
            if own:
                self.layer_types[name] = type(module).__name__
                self.layer_modules[name] = module
                self.roles[name] = layer_role(name, module)
                for p in own:
                    self.params.append(p)
                    self.param_layer.append(len(self.layers))
                self.layers.append(name)
            kind = activation_kind(module)
            if kind is not None:
                self.acts[name] = kind
                self.layer_types[name] = type(module).__name__
        self.order: list[str] = []
        self._order_set: set[str] = set()
        self.feeds: dict[str, str] = {}
        self._last_layer: str | None = None
        self._conv_layers = {n for n, m in self.layer_modules.items() if isinstance(m, _CONV)}
        self._active = False
        # the activation and backward hooks measure only on detailed ticks (the budget's choice)
        self._detail = True
        self.reset()
        self.last_inputs: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self.last_grad_output: list[torch.Tensor | None] | None = None
        self.on_backward_start: Callable[[], None] | None = None
        self.nonfinite_counts: dict[str, int] | None = None
        self._handles: list[Any] = []
        # the layer and activation hooks: registered only while a tick is measured in detail
        # (or a non-finite batch is re-run); on other steps the modules carry no hook of ours,
        # so PyTorch calls their forward directly instead of dispatching to a hook that returns
        self._specs: list[tuple[nn.Module, Callable[[nn.Module, Any, Any], None]]] = []
        self._sub_handles: list[Any] = []
        for name, module in model.named_modules():
            if name in self.layer_modules:
                self._specs.append((module, self._layer_hook(name)))
            if name in self.acts and activations:
                self._specs.append((module, self._act_hook(name, module)))
        self._handles.append(root.register_forward_pre_hook(self._root_pre, with_kwargs=True))
        self._handles.append(root.register_forward_hook(self._root_post))
        self._removed = False
        self._sync_attached()

    # ------------------------------------------------------------------ attachment
    @property
    def active(self) -> bool:
        """Whether the coming optimizer step is a tick (the hooks measure)."""
        return self._active

    @active.setter
    def active(self, value: bool) -> None:
        self._active = value
        self._sync_attached()

    @property
    def detail(self) -> bool:
        """Whether the coming tick measures the activation and backward statistics."""
        return self._detail

    @detail.setter
    def detail(self, value: bool) -> None:
        self._detail = value
        self._sync_attached()

    def attach(self, on: bool) -> None:
        """Register (``True``) or remove the layer and activation hooks, whatever the schedule."""
        if on and not self._sub_handles and not self._removed:
            self._sub_handles = [m.register_forward_hook(h) for m, h in self._specs]
        elif not on and self._sub_handles:
            for h in self._sub_handles:
                h.remove()
            self._sub_handles = []

    def _sync_attached(self) -> None:
        self.attach(self._active and self._detail)

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Clear the accumulators (after a tick)."""
        # one record per hook call: (name, scalars, per-unit maxima, numel); with one scalar
        # (the norm), the per-unit vector holds unit sums of a non-negative output instead
        self.act_records: list[tuple[str, list[torch.Tensor], torch.Tensor, int]] = []
        # one record per backward hook call: (name, norm of dL/dy, numel, numel per sample)
        self.bwd_records: list[tuple[str, torch.Tensor, int, int]] = []

    def remove(self) -> None:
        """Remove every hook (idempotent)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self.attach(False)
        self._removed = True
        self._specs = []
        self.last_inputs = None
        self.last_grad_output = None

    @property
    def n_hooks(self) -> int:
        """Number of hooks the collector owns (registered now, or on its detailed ticks)."""
        return len(self._handles) + len(self._specs)

    # ------------------------------------------------------------------ hooks
    def _layer_hook(self, name: str) -> Callable[[nn.Module, Any, Any], None]:
        grad_hook = self._grad_hook(name)  # one closure per layer, not one per call

        def hook(module: nn.Module, args: Any, output: Any) -> None:
            self._last_layer = name
            rerun = self.nonfinite_counts is not None
            if not (rerun or (self.active and module.training and torch.is_grad_enabled())):
                return
            if name not in self._order_set:
                self._order_set.add(name)
                self.order.append(name)
            if rerun or not (self.backward and self.detail):
                return
            # recurrent layers and nn.MultiheadAttention return a tuple: the output comes first
            out = output[0] if isinstance(output, tuple | list) and output else output
            if isinstance(out, torch.Tensor) and out.requires_grad:
                out.register_hook(grad_hook)  # type: ignore[no-untyped-call]

        return hook

    def _grad_hook(self, name: str) -> Callable[[torch.Tensor], None]:
        def hook(grad: torch.Tensor) -> None:
            g = grad.detach()  # no graph even under create_graph=True
            low = g.dtype in (torch.float16, torch.bfloat16)  # accumulate those in float32
            norm = torch.linalg.vector_norm(g, dtype=torch.float32 if low else None)
            n = grad.numel()
            # entries per sample: the first dimension is the batch ((B,) outputs: one each)
            per_sample = n // grad.shape[0] if grad.dim() >= 1 and grad.shape[0] else 1
            self.bwd_records.append((name, norm, n, per_sample))

        return hook

    def _act_hook(self, name: str, module: nn.Module) -> Callable[[nn.Module, Any, Any], None]:
        kind = self.acts[name]
        level = self.saturation_level
        nonneg = type(module) in (nn.ReLU, nn.ReLU6)
        vector_norm = torch.linalg.vector_norm
        f32 = torch.float32
        # the unit dimension, known once the feeding layer is (a float32 output then takes the
        # lean path below: three reductions and no helper calls, since this runs per forward)
        unit_dims: list[int] = []

        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor):
                return
            counts = self.nonfinite_counts
            if counts is None and not (
                self.active and self.detail and module.training and torch.is_grad_enabled()
            ):
                return
            if counts is not None:  # diagnostic re-run only (syncs)
                bad = int((~torch.isfinite(output.detach())).sum())
                counts[name] = counts.get(name, 0) + bad
                return
            if not unit_dims:
                feeder = self.feeds.get(name)
                if feeder is None and self._last_layer is not None:
                    feeder = self.feeds[name] = self._last_layer
                unit_dims.append(1 if feeder in self._conv_layers else -1)
            d = output.detach()
            if nonneg and self.unit_sums and d.dtype == f32 and d.dim() >= 2:
                # outputs >= 0: unit sums give the total sum and the dead units (sum == 0)
                if d.dim() == 2:
                    sums = d.sum(0)
                elif unit_dims[0] == 1:  # per channel: space first, then the batch (faster
                    # on the CPU than one reduction over the non-adjacent dims 0, 2, 3)
                    sums = d.sum(dim=list(range(2, d.dim()))).sum(0)
                else:
                    sums = d.reshape(-1, d.shape[-1]).sum(0)
                self.act_records.append((name, [vector_norm(d)], sums, d.numel()))
                return
            scalars = activation_moments(d, kind, level)
            maxima = unit_maxima(d, unit_dims[0])
            self.act_records.append((name, scalars, maxima, d.numel()))

        return hook

    def _root_pre(self, module: nn.Module, args: Any, kwargs: Any) -> None:
        if module.training and torch.is_grad_enabled():
            self.last_inputs = (tuple(args), dict(kwargs))
            self.last_grad_output = None

    def _root_post(self, module: nn.Module, args: Any, output: Any) -> None:
        if not (module.training and torch.is_grad_enabled()):
            return
        # the common case (one tensor) without a pytree walk
        outs = [output] if isinstance(output, torch.Tensor) else tensors_in(output)
        grads: list[torch.Tensor | None] = [None] * len(outs)
        self.last_grad_output = grads
        for i, t in enumerate(outs):
            if t.requires_grad:

                def hook(g: torch.Tensor, i: int = i) -> None:
                    grads[i] = g
                    if self.on_backward_start is not None:
                        self.on_backward_start()

                t.register_hook(hook)  # type: ignore[no-untyped-call]  # untyped in torch
