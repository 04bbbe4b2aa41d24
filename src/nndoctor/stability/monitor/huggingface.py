"""A Hugging Face ``Trainer`` callback that runs a :class:`~nndoctor.stability.monitor.Monitor`.

Needs the optional extra: ``pip install 'nndoctor[transformers]'``.

Examples
--------
>>> from nndoctor.stability.monitor.huggingface import MonitorCallback
>>> cb = MonitorCallback(every=1)
>>> cb.monitor is None
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nndoctor.exceptions import InvalidParameterError, MissingDependencyError
from nndoctor.stability.monitor._monitor import Monitor
from nndoctor.stability.monitor._rules import Finding

try:
    import transformers
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(
        "the Hugging Face Trainer callback needs transformers; pip install 'nndoctor[transformers]'"
    ) from err

__all__ = ["MonitorCallback"]

#: Prefix of the keys the callback adds to the Trainer's logs.
LOG_PREFIX = "nndoctor"


class MonitorCallback(transformers.TrainerCallback):
    """Watch a Hugging Face ``Trainer``'s training with a :class:`Monitor`.

    The monitor is opened on ``on_train_begin`` around the Trainer's model and its optimizer
    (:meth:`Monitor.watch`, as the Lightning callback does: the optimizer's step hooks tick the
    monitor on each optimizer step, after ``optimizer.step()`` and before the Trainer zeroes the
    gradients, so also once per accumulated step with gradient accumulation; ``clip`` and
    ``on_nonfinite="skip"`` act before the step is applied). The loss of the step's last
    forward pass (``outputs.loss``) is recorded for the log. The JSONL log goes to
    ``log_dir``, or to ``<output_dir>/nndoctor`` when none is given. The monitor is closed (its
    hooks removed, the log flushed) on ``on_train_end``, when its own step raises, and by
    :meth:`close` (the Trainer has no exception event: after a training loop that raised for
    another reason, call :meth:`close`, or the next ``train()`` closes the old monitor first).

    Findings reach the Trainer's logs: when a step brings new findings the callback asks for a
    log (``control.should_log``), and on each log event adds, as numbers,
    ``nndoctor/errors`` and ``nndoctor/warnings`` (new findings of that severity since the last
    log) and ``nndoctor/<check>/<layer>`` (the measured value of each new finding) to the log
    record and to ``state.log_history``. The ``report_to`` integrations are called before the
    callbacks given to the Trainer; :meth:`add_to` puts the callback ahead of them so that
    they log these keys too.

    With ``on_nonfinite="raise"`` (the default, as for the Lightning callback) a non-finite
    value stops training: ``trainer.train()`` raises :class:`~nndoctor.exceptions.NonFiniteError`
    naming the module and operator, with the parameters of before the failing step restored.

    Parameters
    ----------
    **monitor_kwargs
        Passed to :class:`Monitor` (``every``, ``log_dir``, ``tensorboard``, ``rules``,
        ``on_nonfinite``, ...), the same options as
        :class:`nndoctor.stability.monitor.lightning.MonitorCallback`.

    Attributes
    ----------
    monitor : Monitor or None
        The monitor of the current (or last) ``train()``.
    findings : list of Finding
        Its findings.

    Examples
    --------
    >>> from nndoctor.stability.monitor.huggingface import MonitorCallback
    >>> cb = MonitorCallback(every=2, on_nonfinite="warn")
    >>> cb.findings
    []
    """

    def __init__(self, **monitor_kwargs: Any) -> None:
        super().__init__()
        self.monitor_kwargs = monitor_kwargs
        self.monitor: Monitor | None = None
        self._loss: torch.Tensor | None = None
        self._loss_handle: Any = None
        self._logged = 0  # findings already added to a log record

    @property
    def findings(self) -> list[Finding]:
        """Findings of the current (or last) run."""
        return list(self.monitor.findings) if self.monitor is not None else []

    def add_to(self, trainer: Any) -> MonitorCallback:
        """Add the callback to ``trainer`` ahead of its ``report_to`` integrations; return it."""
        handler = getattr(trainer, "callback_handler", None)
        if handler is None or not isinstance(getattr(handler, "callbacks", None), list):
            raise InvalidParameterError(
                f"add_to needs a transformers.Trainer, got {type(trainer).__name__}; pass the "
                "Trainer (or give the callback to Trainer(callbacks=[...]))"
            )
        if self in handler.callbacks:
            handler.callbacks.remove(self)
        handler.callbacks.insert(0, self)
        return self

    # ------------------------------------------------------------------ lifecycle
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Open a monitor around the Trainer's model."""
        self.close()
        model = kwargs.get("model")
        if not isinstance(model, nn.Module):
            raise InvalidParameterError(
                f"the Trainer gave no torch model to the callback (got {type(model).__name__}); "
                "MonitorCallback watches a torch.nn.Module"
            )
        if not any(p.requires_grad for p in model.parameters()):
            raise InvalidParameterError(
                f"the model {type(model).__name__} has no trainable parameters (every "
                "parameter has requires_grad=False), so there is no training to monitor; "
                "unfreeze some layers or remove the MonitorCallback"
            )
        options = dict(self.monitor_kwargs)
        if options.get("log_dir") is None and getattr(args, "output_dir", None):
            options["log_dir"] = os.path.join(os.fspath(args.output_dir), "nndoctor")
        self._logged = 0
        monitor = _ClosingMonitor(model, **options)
        monitor.on_error = self.close
        self.monitor = monitor.open()
        self._loss_handle = model.register_forward_hook(self._keep_loss)
        optimizer = kwargs.get("optimizer")
        # accelerate wraps the optimizer; its step hooks are those of the wrapped one
        inner = getattr(optimizer, "optimizer", optimizer)
        if not isinstance(inner, torch.optim.Optimizer):
            self.close()
            raise InvalidParameterError(
                f"the Trainer's optimizer is a {type(inner).__name__}, not a torch.optim."
                "Optimizer; MonitorCallback needs one to tick on each optimizer step"
            )
        monitor.watch(inner)

    def close(self) -> None:
        """Close the monitor: remove its hooks and flush its log (idempotent)."""
        if self._loss_handle is not None:
            self._loss_handle.remove()
            self._loss_handle = None
        self._loss = None
        if self.monitor is not None:
            self.monitor.close()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Close the monitor."""
        self.close()

    # ------------------------------------------------------------------ steps
    def _keep_loss(self, module: nn.Module, inputs: Any, output: Any) -> None:
        """Forward hook: keep the step's loss (on the device) from ``outputs.loss``."""
        loss = output.get("loss") if isinstance(output, Mapping) else getattr(output, "loss", None)
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            self._loss = loss.detach()

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Give the monitor the step's loss before the optimizer step ticks it."""
        if self.monitor is not None and self._loss is not None:
            self.monitor.record_loss(self._loss)
            self._loss = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Ask the Trainer for a log when the step brought new findings."""
        if self.monitor is not None and len(self.monitor.findings) > self._logged:
            control.should_log = True
        return control

    def on_log(
        self,
        args: Any,
        state: Any,
        control: Any,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Add the new findings to the log record and to ``state.log_history``."""
        if self.monitor is None or logs is None:
            return
        new = self.monitor.findings[self._logged :]
        if not new:
            return
        self._logged += len(new)
        entries = finding_log_entries(new)
        logs.update(entries)
        history = getattr(state, "log_history", None)
        if history and isinstance(history[-1], dict):
            history[-1].update(entries)


class _ClosingMonitor(Monitor):
    """A monitor whose :meth:`step` closes it (through ``on_error``) when it raises.

    The Trainer has no exception event; the step runs in the optimizer's post-step hook, so a
    :class:`~nndoctor.exceptions.NonFiniteError` leaves ``trainer.train()`` with no callback
    called: closing here leaves no hooks on the model.
    """

    on_error: Any = None

    def step(self, loss: torch.Tensor | float | None = None) -> list[Finding]:
        try:
            return super().step(loss)
        except BaseException:
            if self.on_error is not None:
                self.on_error()
            raise


def finding_log_entries(findings: list[Finding]) -> dict[str, float]:
    """The numeric log keys of ``findings`` (every ``report_to`` logger takes numbers)."""
    out: dict[str, float] = {
        f"{LOG_PREFIX}/errors": float(sum(f.severity == "error" for f in findings)),
        f"{LOG_PREFIX}/warnings": float(sum(f.severity == "warning" for f in findings)),
    }
    for f in findings:
        out[f"{LOG_PREFIX}/{f.check}/{f.layer}"] = float(f.value)
    return out
