"""A short, seeded training run on the digits data under the monitor (checkup and CLI use it)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from nndoctor._results import ResultMixin
from nndoctor._validation import check_int
from nndoctor.exceptions import InvalidParameterError, NonFiniteError
from nndoctor.stability.monitor._log import MonitorLog
from nndoctor.stability.monitor._monitor import Monitor
from nndoctor.stability.monitor._rules import Finding

__all__ = ["DigitsRun", "describe_optimizer", "train_digits"]

LR = 0.05
"""SGD learning rate of :func:`train_digits` (its default)."""
MOMENTUM = 0.9
"""SGD momentum of :func:`train_digits`."""
BATCH_SIZE = 64
"""Mini-batch size of :func:`train_digits` (its default)."""


def describe_optimizer(*, lr: float = LR, batch_size: int = BATCH_SIZE) -> str:
    """How :func:`train_digits` trains, in words (for a report's evidence).

    Examples
    --------
    >>> describe_optimizer()
    'SGD (lr 0.05, momentum 0.9, batch 64)'
    """
    return f"SGD (lr {lr:g}, momentum {MOMENTUM:g}, batch {batch_size})"


@dataclass(frozen=True, slots=True)
class DigitsRun(ResultMixin):
    """Outcome of :func:`train_digits`: the log, the losses and the held-out accuracy."""

    log: MonitorLog
    findings: tuple[Finding, ...]
    first_loss: float
    last_loss: float
    test_accuracy: float
    steps: int
    stopped_by: str | None = None


def train_digits(
    model: nn.Module,
    *,
    steps: int = 60,
    lr: float = LR,
    batch_size: int = BATCH_SIZE,
    seed: int = 0,
    log_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[float, str], None] | None = None,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    every: int = 1,
    update_every: int = 10,
    budget: float | None = None,
) -> DigitsRun:
    """Train ``model`` (64 inputs, 10 outputs) on the digits with SGD under a :class:`Monitor`.

    A non-finite value stops the run (it is reported in the log, not raised). ``data`` replaces
    the digits with ``(X_train, X_test, y_train, y_test)`` tensors (integer class labels
    0..K-1); the model must then have K outputs. ``every``, ``update_every`` and ``budget`` are
    passed to the :class:`Monitor`; the default ``budget=None`` measures every quantity on every
    tick, so that a diagnostic run (the checkup, ``nndoctor monitor run``) does not depend on
    timing and the same seed gives the same findings.

    Examples
    --------
    >>> from nndoctor.scenarios import digits_mlp
    >>> run = train_digits(digits_mlp(depth=2, width=16), steps=3)
    >>> run.steps
    3
    """
    from nndoctor.scenarios import digits_data

    steps = check_int(steps, name="steps", minimum=1)
    batch_size = check_int(batch_size, name="batch_size", minimum=1)
    if not lr > 0:
        raise InvalidParameterError(f"lr must be positive, got {lr!r}")
    X, X_test, y, y_test = data if data is not None else digits_data(random_state=seed).tensors()
    n_classes = int(torch.cat([y, y_test]).max()) + 1
    device = next(model.parameters()).device
    X, X_test, y, y_test = X.to(device), X_test.to(device), y.to(device), y_test.to(device)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM)
    losses: list[float] = []
    stopped: str | None = None
    model.train()
    done = 0
    with Monitor(
        model, log_dir=log_dir, every=every, update_every=update_every, budget=budget
    ) as monitor:
        for i in range(steps):
            idx = torch.randint(0, X.shape[0], (batch_size,), generator=gen).to(device)
            opt.zero_grad(set_to_none=True)
            out = model(X[idx])
            if out.dim() != 2 or out.shape[-1] != n_classes:
                raise InvalidParameterError(
                    f"the model returns outputs of shape {tuple(out.shape)}; the data have "
                    f"{n_classes} classes: build the model with a {n_classes}-way head"
                )
            loss = nn.functional.cross_entropy(out, y[idx])
            loss.backward()  # type: ignore[no-untyped-call]  # untyped in torch
            opt.step()
            try:
                monitor.step(loss)
            except NonFiniteError as err:
                stopped = str(err)
                done = i + 1
                break
            done = i + 1
            if progress is not None and (i % 10 == 0 or i == steps - 1):
                progress((i + 1) / steps, f"step {i + 1}/{steps}")
        log = monitor.summary()
        findings = tuple(monitor.findings)
    losses = [float(v) for v in log.loss if v == v]
    model.eval()
    with torch.no_grad():
        accuracy = float((model(X_test).argmax(dim=1) == y_test).float().mean())
    model.train()
    return DigitsRun(
        log=log,
        findings=findings,
        first_loss=losses[0] if losses else float("nan"),
        last_loss=losses[-1] if losses else float("nan"),
        test_accuracy=accuracy,
        steps=done,
        stopped_by=stopped,
    )
