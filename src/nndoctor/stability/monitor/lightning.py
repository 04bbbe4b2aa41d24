"""A Lightning callback that runs a :class:`~nndoctor.stability.monitor.Monitor` during ``fit``.

Needs the optional extra: ``pip install 'nndoctor[lightning]'``.

Examples
--------
>>> from nndoctor.stability.monitor.lightning import MonitorCallback
>>> cb = MonitorCallback(every=1)
>>> cb.monitor is None
True
"""

from __future__ import annotations

from typing import Any

from nndoctor.exceptions import MissingDependencyError
from nndoctor.stability.monitor._monitor import Monitor
from nndoctor.stability.monitor._rules import Finding

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - exercised only without the extra
    try:
        import pytorch_lightning as pl  # type: ignore[no-redef]
    except ImportError as err:
        raise MissingDependencyError(
            "the Lightning callback needs lightning; pip install 'nndoctor[lightning]'"
        ) from err

__all__ = ["MonitorCallback"]


class MonitorCallback(pl.Callback):
    """Watch a LightningModule's training with a :class:`Monitor`.

    The monitor is opened at the start of ``fit`` around the LightningModule and its first
    optimizer (:meth:`Monitor.watch`, so every optimizer step is a step, also with gradient
    accumulation); the training loss is logged; hooks are removed when ``fit`` ends or raises.

    Parameters
    ----------
    **monitor_kwargs
        Passed to :class:`Monitor` (``every``, ``log_dir``, ``rules``, ``on_nonfinite``, ...).

    Attributes
    ----------
    monitor : Monitor or None
        The monitor of the current (or last) ``fit``.
    findings : list of Finding
        Its findings.
    """

    def __init__(self, **monitor_kwargs: Any) -> None:
        super().__init__()
        self.monitor_kwargs = monitor_kwargs
        self.monitor: Monitor | None = None

    @property
    def findings(self) -> list[Finding]:
        """Findings of the current (or last) run."""
        return list(self.monitor.findings) if self.monitor is not None else []

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self.monitor = Monitor(pl_module, **self.monitor_kwargs).open()

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if self.monitor is not None and trainer.optimizers:
            self.monitor.watch(trainer.optimizers[0])

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if self.monitor is not None and loss is not None:
            self.monitor.record_loss(loss)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self.monitor is not None:
            self.monitor.close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.monitor is not None:
            self.monitor.close()
