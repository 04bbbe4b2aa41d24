"""The layout of a monitor tick: where each quantity sits in the one transferred vector.

:class:`TickPlan` is built once per layout of the hook records (which modules ran, how often) and
cached by the :class:`~nndoctor.stability.monitor.Monitor`; :class:`TickMeta` carries what the
host side of one tick needs besides the transferred numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["TickMeta", "TickPlan"]


@dataclass(slots=True)
class TickMeta:
    """What the host side of a tick needs besides the transferred vector."""

    step: int
    with_grad: frozenset[str]
    offsets: dict[str, tuple[int, int]]
    n_layers: int
    norm_slots: list[int]
    want_grad: bool
    want_delta: bool
    want_estimate: bool
    act_names: list[str]
    act_n: dict[str, int]
    act_units: dict[str, int]
    bwd_names: list[str]
    bwd_n: dict[str, int]
    bwd_width: dict[str, int]
    sym_names: list[str]
    plan: TickPlan
    order: list[str]
    feeds: dict[str, str]
    clipped_at: float | None
    clean: bool
    sampling: dict[str, Any]


@dataclass(slots=True)
class TickPlan:
    """Where each activation and backward quantity sits in a tick's transferred vector.

    Built once per layout of the hook records (which modules ran, how often: micro-batches), so
    that a tick does no per-layer bookkeeping on the device and no index building on the host.
    """

    device: torch.device
    act_names: list[str]
    bwd_names: list[str]
    n_scalars: int
    act_sum: list[list[int]]
    act_sq: list[list[int]]
    act_sat: list[list[int]]
    act_rsum: list[list[int]]  # per module: records whose sum comes from their unit sums
    n_records: int
    record_index: torch.Tensor | None  # record of each unit entry (records of unequal widths)
    bwd_sq: list[list[int]]
    norm_slots: list[int]
    square: bool
    exponents: torch.Tensor
    n_units: int
    unit_index: torch.Tensor | None
    owner: torch.Tensor | None
    act_n: dict[str, int]
    act_units: dict[str, int]
    bwd_n: dict[str, int]
    bwd_width: dict[str, int]
    all_layers: frozenset[str]

    @classmethod
    def build(
        cls,
        key: tuple[Any, ...],
        order: list[str],
        world: int,
        device: torch.device,
        layers: list[str],
    ) -> TickPlan:
        acts: tuple[tuple[str, int, int, int], ...] = key[0]
        bwds: tuple[tuple[str, int, int], ...] = key[1]
        act_names = list(dict.fromkeys(a[0] for a in acts))
        a_index = {n: i for i, n in enumerate(act_names)}
        recorded = {b[0] for b in bwds}
        act_n: dict[str, int] = {}
        act_units: dict[str, int] = {}
        bwd_n: dict[str, int] = {}
        for name, _, units, numel in acts:
            act_n[name] = act_n.get(name, 0) + numel
            act_units[name] = units
        bwd_width: dict[str, int] = {}
        for name, numel, per_sample in bwds:
            bwd_n[name] = bwd_n.get(name, 0) + numel
            bwd_width[name] = per_sample
        bwd_names = [n for n in order if n in recorded]
        b_index = {n: i for i, n in enumerate(bwd_names)}
        act_sum: list[list[int]] = [[] for _ in act_names]
        act_sq: list[list[int]] = [[] for _ in act_names]
        act_sat: list[list[int]] = [[] for _ in act_names]
        act_rsum: list[list[int]] = [[] for _ in act_names]
        bwd_sq: list[list[int]] = [[] for _ in bwd_names]
        norm_slots: list[int] = []
        j = 0
        for r, (name, n_scalars, _, _) in enumerate(acts):
            i = a_index[name]
            if n_scalars == 1:  # [norm]; the sum comes from the record's unit sums
                act_rsum[i].append(r)
                act_sq[i].append(j)
                norm_slots.append(j)
            else:  # [sum, norm] or [sum, norm, saturated count]
                act_sum[i].append(j)
                act_sq[i].append(j + 1)
                norm_slots.append(j + 1)
                if n_scalars > 2:
                    act_sat[i].append(j + 2)
            j += n_scalars
        for name, _, _ in bwds:
            bwd_sq[b_index[name]].append(j)
            norm_slots.append(j)
            j += 1
        exps = [1.0] * j
        for k in norm_slots:
            exps[k] = 2.0
        record_index = None
        if any(act_rsum) and len({a[2] for a in acts}) > 1:  # records of different widths
            owners = [r for r, a in enumerate(acts) for _ in range(a[2])]
            record_index = torch.tensor(owners, dtype=torch.long, device=device)
        sizes = {a[0]: a[2] for a in acts}
        unit_counts = [sizes[n] for n in act_names]
        n_units = sum(unit_counts)
        unit_index = None
        if len(acts) != len(act_names):
            starts: dict[str, int] = {}
            cursor = 0
            for name in act_names:
                starts[name] = cursor
                cursor += sizes[name]
            unit_index = torch.tensor(
                [starts[a[0]] + u for a in acts for u in range(a[2])],
                dtype=torch.long,
                device=device,
            )
        owner = None
        if len(set(unit_counts)) > 1:
            owner = torch.tensor(
                [i for i, c in enumerate(unit_counts) for _ in range(c)],
                dtype=torch.long,
                device=device,
            )
        return cls(
            device=device,
            act_names=act_names,
            bwd_names=bwd_names,
            n_scalars=j,
            act_sum=act_sum,
            act_sq=act_sq,
            act_sat=act_sat,
            act_rsum=act_rsum,
            n_records=len(acts),
            record_index=record_index,
            bwd_sq=bwd_sq,
            norm_slots=norm_slots,
            square=world == 1,
            exponents=torch.tensor(exps, device=device),
            n_units=n_units,
            unit_index=unit_index,
            owner=owner,
            act_n=act_n,
            act_units=act_units,
            bwd_n=bwd_n,
            bwd_width=bwd_width,
            all_layers=frozenset(layers),
        )
