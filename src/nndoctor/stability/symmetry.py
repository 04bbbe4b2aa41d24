r"""Symmetric (tied) units: hidden units that compute the same function and can never separate.

Units :math:`i` and :math:`j` of a layer are *tied* when their incoming weights and biases are
equal, :math:`W_{i\cdot} = W_{j\cdot}` and :math:`b_i = b_j`: they compute equal values on every
input. The tie is *permanent* under gradient descent when, in addition, everything downstream
treats them alike — equal outgoing weights :math:`W'_{\cdot i} = W'_{\cdot j}`, the same
elementwise activation, equal per-unit norm parameters, no dropout between — because then their
gradients are equal too, :math:`\partial L/\partial W_{i\cdot} = \partial L/\partial W_{j\cdot}`,
and every update keeps them equal. A width-:math:`n` layer with one tied group of all its units
has one effective unit. This is why weights are initialized at random.

References
----------
Goodfellow, Bengio & Courville (2016), *Deep Learning*, §8.4 ("break symmetry").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from nndoctor._results import ResultMixin
from nndoctor._validation import check_module, check_number, forward_errors
from nndoctor.stability._layers import (
    CONV_TYPES,
    check_call_inputs,
    following_activations,
    is_hf_conv1d,
    is_norm,
    model_device,
    param,
    preserve_state,
    split_inputs,
    unit_rows,
)
from nndoctor.stability.theory import Activation, activation_of

__all__ = ["SymmetryLayer", "SymmetryReport", "find_symmetric_units"]

_MAX_ROWS = 4096


@dataclass(frozen=True, slots=True)
class SymmetryLayer(ResultMixin):
    """Tied units of one weight layer.

    Attributes
    ----------
    name, kind : str
        Module path and class name.
    units : int
        Output units (features or channels); a recurrent layer's are the hidden units of every
        layer and direction (layer 0 forward, layer 0 reverse, layer 1 forward, ...), an
        attention layer's its query, key and value projections' (in that order).
    effective_units : int
        Distinct units: ``units`` minus, for each tied group, its size minus one.
    groups : tuple of tuple of int
        Groups (size >= 2) of unit indices with equal incoming weights and biases.
    permanent : bool
        True when the layer has tied groups and every one of them is also treated alike
        downstream, so gradient descent can never separate them.
    permanent_groups : tuple of tuple of int
        The tied groups (or their parts) that are permanent.
    downstream : str
        What consumes the units: the next layer's name, ``"loss"`` for the last layer, or
        ``"unknown"`` (then nothing is called permanent).
    activation_groups : tuple of tuple of int or None
        With inputs: groups of units whose activations are equal on every sample.
    effective_activation_units : int or None
        With inputs: distinct activation columns (of the layer's output: a multi-layer
        recurrent layer's are its last layer's units).
    activation_rank : int or None
        With inputs: numerical rank of the (samples x units) activation matrix.
    dead_units : int or None
        With inputs: units whose activation is 0 on every sample.
    """

    name: str
    kind: str
    units: int
    effective_units: int
    groups: tuple[tuple[int, ...], ...]
    permanent: bool
    permanent_groups: tuple[tuple[int, ...], ...]
    downstream: str
    activation_groups: tuple[tuple[int, ...], ...] | None = None
    effective_activation_units: int | None = None
    activation_rank: int | None = None
    dead_units: int | None = None


@dataclass(frozen=True, slots=True)
class SymmetryReport(ResultMixin):
    """The symmetry check of a model.

    Attributes
    ----------
    layers : tuple of SymmetryLayer
    collapsed : bool
        Some layer has fewer effective units than units.
    permanent : bool
        Some layer has a permanent tie.
    verdict : str
        One sentence.
    atol, rtol : float
        Tolerances of the equality tests.
    """

    layers: tuple[SymmetryLayer, ...]
    collapsed: bool
    permanent: bool
    verdict: str
    atol: float
    rtol: float


def tie_groups(rows: npt.NDArray[np.float64], *, atol: float, rtol: float) -> list[list[int]]:
    """Groups (size >= 2) of rows equal within ``atol + rtol * max|rows|`` (max-abs distance).

    Candidates are found by sorting a random projection of the rows (equal rows project within
    ``tol * ||v||_1`` of each other), then checked row by row: O(n log n) for distinct rows.

    Examples
    --------
    >>> import numpy as np
    >>> tie_groups(np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]]), atol=1e-8, rtol=1e-6)
    [[0, 2]]
    """
    n = rows.shape[0]
    if n < 2:
        return []
    flat = rows.reshape(n, -1)
    scale = float(np.max(np.abs(flat))) if flat.size else 0.0
    tol = atol + rtol * scale
    v = np.random.default_rng(12345).standard_normal(flat.shape[1])
    keys = flat @ v
    window = tol * float(np.sum(np.abs(v))) + 1e-300
    order = np.argsort(keys, kind="stable")
    groups: list[list[int]] = []
    start = 0
    while start < n:
        end = start + 1
        while end < n and keys[order[end]] - keys[order[end - 1]] <= window:
            end += 1
        block = [int(i) for i in order[start:end]]
        reps: list[list[int]] = []
        for i in block:
            for g in reps:
                if np.max(np.abs(flat[i] - flat[g[0]])) <= tol:
                    g.append(i)
                    break
            else:
                reps.append([i])
        groups.extend(sorted(g) for g in reps if len(g) > 1)
        start = end
    return sorted(groups)


def _dense_or_conv(m: nn.Module) -> bool:
    return isinstance(
        m, (nn.Linear, *CONV_TYPES, nn.RNNBase, nn.MultiheadAttention)
    ) or is_hf_conv1d(m)


def _f64(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float64).cpu()


def _incoming(module: nn.Module) -> list[npt.NDArray[np.float64]]:
    """One matrix per group of units, one row per unit: every weight and bias that feeds it
    (:func:`~nndoctor.stability._layers.unit_rows`), in float64."""
    return [np.ascontiguousarray(_f64(rows).numpy()) for rows in unit_rows(module)]


def _groups_of(
    incoming: list[npt.NDArray[np.float64]], *, atol: float, rtol: float
) -> list[list[int]]:
    """Tied units within each group, numbered across the groups (first group's units first)."""
    groups: list[list[int]] = []
    start = 0
    for rows in incoming:
        groups.extend([start + i for i in g] for g in tie_groups(rows, atol=atol, rtol=rtol))
        start += rows.shape[0]
    return groups


def _outgoing(module: nn.Module, units: int) -> npt.NDArray[np.float64] | None:
    """Columns of the next layer's weight, one row per unit of the previous layer."""
    if isinstance(module, nn.RNNBase | nn.MultiheadAttention):
        return None
    w = _f64(param(module))
    if isinstance(module, nn.Linear) and w.shape[1] == units:
        out: npt.NDArray[np.float64] = w.T.contiguous().numpy()
        return out
    if is_hf_conv1d(module) and w.shape[0] == units:
        out = w.contiguous().numpy()
        return out
    groups = getattr(module, "groups", 1)
    if isinstance(module, CONV_TYPES) and groups == 1 and w.shape[1] == units:
        out = w.transpose(0, 1).reshape(units, -1).contiguous().numpy()
        return out
    return None


def _between_ok(
    between: list[nn.Module], units: int, atol: float, rtol: float
) -> tuple[bool, list[npt.NDArray[np.float64]]]:
    """Whether the modules between two layers treat units alike; per-unit parameters to match."""
    per_unit: list[npt.NDArray[np.float64]] = []
    for m in between:
        if activation_of(m) is not None or isinstance(m, nn.Identity):
            continue
        if isinstance(m, nn.Dropout | nn.Dropout1d | nn.Dropout2d | nn.Dropout3d):
            if m.p > 0:
                return False, []
            continue
        if is_norm(m):
            for attr in ("weight", "bias"):
                p = getattr(m, attr, None)
                if isinstance(p, torch.Tensor):
                    if p.numel() != units:
                        return False, []
                    per_unit.append(_f64(p).reshape(units, 1).numpy())
            continue
        return False, []
    return True, per_unit


def _with_inputs(
    model: nn.Module,
    inputs: torch.Tensor | Sequence[torch.Tensor] | Mapping[str, Any],
    layers: list[tuple[str, nn.Module]],
    acts: dict[str, Activation],
    atol: float,
    rtol: float,
) -> dict[str, tuple[tuple[tuple[int, ...], ...], int, int, int, int]]:
    args, kwargs = split_inputs(inputs)
    check_call_inputs(args, kwargs)
    device = model_device(model)
    args = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args)
    kwargs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    captured: dict[str, torch.Tensor] = {}
    channel_axis: dict[str, bool] = {n: isinstance(m, CONV_TYPES) for n, m in layers}
    handles = []

    def make_hook(name: str):  # type: ignore[no-untyped-def]
        def hook(_m: nn.Module, _i: object, out: object) -> None:
            y = out[0] if isinstance(out, tuple) and out else out  # (LSTM: (output, state))
            if isinstance(y, torch.Tensor) and name not in captured:
                captured[name] = y.detach()

        return hook

    try:
        for name, m in layers:
            if isinstance(m, nn.MultiheadAttention):  # its output is out_proj's, not its units
                continue
            handles.append(m.register_forward_hook(make_hook(name)))
        with (
            preserve_state(model),
            torch.no_grad(),
            forward_errors(model, args or tuple(kwargs.values())),
        ):
            model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    result = {}
    rng = np.random.default_rng(0)
    for name, y in captured.items():
        cols = _unit_columns(y, channels=channel_axis.get(name, False))
        units = cols.shape[0]
        if cols.shape[1] > _MAX_ROWS:
            cols = cols[:, np.sort(rng.choice(cols.shape[1], _MAX_ROWS, replace=False))]
        a = acts.get(name, Activation("identity")).phi(cols)
        groups = tie_groups(a, atol=atol, rtol=rtol)
        dead = int(np.sum(np.all(a == 0, axis=1)))
        rank = int(np.linalg.matrix_rank(a.T)) if a.size else 0
        eff = units - sum(len(g) - 1 for g in groups)
        result[name] = (tuple(tuple(g) for g in groups), eff, rank, dead, units)
    return result


def _unit_columns(y: torch.Tensor, *, channels: bool) -> npt.NDArray[np.float64]:
    """The (units x observations) matrix of a layer's output: units are the channel axis (1)
    of a convolution's output and the last (feature) axis of any other layer's, so the batch
    and sequence or spatial positions of a (batch, sequence, hidden) output are observations,
    never units."""
    if y.dim() < 2:
        flat: npt.NDArray[np.float64] = _f64(y).reshape(1, -1).numpy()
        return flat
    axis = 1 if channels else y.dim() - 1
    units = y.shape[axis]
    cols: npt.NDArray[np.float64] = _f64(y.movedim(axis, 0).reshape(units, -1)).numpy()
    return cols


def find_symmetric_units(
    model: nn.Module,
    inputs: torch.Tensor | Sequence[torch.Tensor] | Mapping[str, Any] | None = None,
    *,
    atol: float = 1e-6,
    rtol: float = 1e-5,
) -> SymmetryReport:
    r"""Find tied units in every weight layer, and whether the tie is permanent.

    Weight layers: Linear and Conv; Hugging Face ``Conv1D`` (weights stored (in, out)); LSTM,
    GRU and RNN layers (a hidden unit of one layer and direction; its incoming weights are its
    rows in every gate of that layer's input and recurrent weights and biases);
    ``nn.MultiheadAttention`` (the rows of its query, key and value projections). Units tie
    only within such a group (:func:`~nndoctor.stability._layers.unit_rows`).

    Two units are tied when their incoming weight rows and biases agree within
    :math:`\text{atol} + \text{rtol}\cdot\max|W|` (max-abs distance). A layer's tie is
    permanent when its next layer (the next Linear/Conv in registration order whose input size
    equals this layer's units) has equal outgoing columns for the tied units and only
    elementwise activations, norms with equal per-unit parameters, identity or dropout with
    p = 0 sit between. The last layer's units feed the loss, which treats them differently, so
    its ties are never permanent.

    With ``inputs``, one forward pass (no gradient; the model is left as it was) also gives,
    per layer, groups of identical activation columns, the rank of the activation matrix
    (observations × units, subsampled to 4,096 observations) and the number of dead units
    (0 on every observation; not counted as tied to each other). Units are the channel axis of
    a convolution's output and the last (feature) axis of any other layer's output: the batch
    and the sequence or spatial positions are observations, so a (batch, sequence, hidden)
    output has ``hidden`` units.

    Parameters
    ----------
    model : nn.Module
    inputs : Tensor, sequence of Tensor or mapping of str to Tensor, optional
        A batch; a sequence is passed as positional arguments, a mapping (a Hugging Face
        batch) as keyword arguments.
    atol, rtol : float
        Equality tolerances.

    Returns
    -------
    SymmetryReport

    Examples
    --------
    >>> from nndoctor.scenarios import symmetric_mlp
    >>> report = find_symmetric_units(symmetric_mlp(width=16))
    >>> [(layer.units, layer.effective_units, layer.permanent) for layer in report.layers]
    [(16, 1, True), (16, 1, True), (3, 1, False)]
    """
    check_module(model)
    atol = check_number(atol, name="atol", minimum=0.0)
    rtol = check_number(rtol, name="rtol", minimum=0.0)
    layers = [(n, m) for n, m in model.named_modules() if _dense_or_conv(m)]
    acts = following_activations(model)
    order = {id(m): i for i, (_, m) in enumerate(model.named_modules())}
    all_modules = [m for _, m in model.named_modules()]
    measured = _with_inputs(model, inputs, layers, acts, atol, rtol) if inputs is not None else {}
    out = []
    for k, (name, m) in enumerate(layers):
        incoming = _incoming(m)
        units = sum(rows.shape[0] for rows in incoming)
        groups = _groups_of(incoming, atol=atol, rtol=rtol)
        effective = units - sum(len(g) - 1 for g in groups)
        downstream = "loss"
        perm_groups: list[list[int]] = []
        if k + 1 < len(layers):
            nxt_name, nxt = layers[k + 1]
            outgoing = _outgoing(nxt, units)
            between = all_modules[order[id(m)] + 1 : order[id(nxt)]]
            between = [b for b in between if not any(b is c for c in m.modules())]
            ok, per_unit = _between_ok(between, units, atol, rtol)
            if outgoing is None or not ok:
                downstream = "unknown"
            else:
                downstream = nxt_name
                treat = np.concatenate([outgoing, *per_unit], axis=1)
                for g in groups:
                    sub = tie_groups(treat[g], atol=atol, rtol=rtol)
                    perm_groups.extend([g[i] for i in s] for s in sub)
        permanent = bool(groups) and sum(len(g) for g in perm_groups) == sum(len(g) for g in groups)
        extra = measured.get(name)
        out.append(
            SymmetryLayer(
                name=name,
                kind=type(m).__name__,
                units=units,
                effective_units=effective,
                groups=tuple(tuple(g) for g in groups),
                permanent=permanent,
                permanent_groups=tuple(tuple(sorted(g)) for g in perm_groups),
                downstream=downstream,
                activation_groups=extra[0] if extra else None,
                effective_activation_units=extra[1] if extra else None,
                activation_rank=extra[2] if extra else None,
                dead_units=extra[3] if extra else None,
            )
        )
    collapsed = any(la.effective_units < la.units for la in out)
    permanent = any(la.permanent for la in out)
    return SymmetryReport(
        layers=tuple(out),
        collapsed=collapsed,
        permanent=permanent,
        verdict=_verdict(out, {name: extra[4] for name, extra in measured.items()}),
        atol=atol,
        rtol=rtol,
    )


def _verdict(layers: list[SymmetryLayer], columns: dict[str, int]) -> str:
    """The verdict sentence; ``columns``: each measured layer's activation columns (its output's
    units: a multi-layer RNN's last layer only, where ``units`` counts every layer's)."""
    tied = [la for la in layers if la.effective_units < la.units]
    if not tied:
        # dead units (0 on every sample) are one group of equal columns: counted as dead,
        # not as a collapse of distinct units
        act = [
            la
            for la in layers
            if la.effective_activation_units is not None
            and la.effective_activation_units + max((la.dead_units or 0) - 1, 0) < columns[la.name]
        ]
        if act:
            la = act[0]
            return (
                f"No tied weights, but layer {la.name!r} has only {la.effective_activation_units} "
                f"distinct activation columns of {columns[la.name]} on these inputs."
            )
        return "No tied units: every unit has its own incoming weights."
    la = tied[0]
    lost = sum(x.units - x.effective_units for x in tied)
    perm = [x for x in tied if x.permanent]
    tail = (
        " The ties are permanent: gradient descent keeps the tied units equal forever; "
        "re-initialize with random weights (e.g. init_(model, 'xavier_uniform'))."
        if perm
        else " Downstream weights differ, so training can still separate them."
    )
    ratio = f"{la.effective_units} effective unit{'s' if la.effective_units != 1 else ''}"
    return (
        f"{len(tied)} layer(s) have tied units ({lost} redundant in all); layer {la.name!r} has "
        f"{ratio} of {la.units}.{tail}"
    )
