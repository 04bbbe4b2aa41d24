"""The :class:`Monitor`: a context manager that watches a PyTorch training loop."""

from __future__ import annotations

import json
import math
import os
import time
import warnings
import weakref
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from nndoctor._display import notebook_renderer
from nndoctor._validation import check_choice, check_int, check_module
from nndoctor.exceptions import InvalidParameterError, NNDoctorWarning, NonFiniteError
from nndoctor.stability.monitor._hooks import Collector
from nndoctor.stability.monitor._log import (
    JsonlWriter,
    MonitorLog,
    TensorBoardWriter,
    build_log,
    finding_record,
    header_record,
    light_line_template,
    nonfinite_record,
    sampling_record,
    tick_record,
)
from nndoctor.stability.monitor._nonfinite import NonFiniteLocation, rerun_batch
from nndoctor.stability.monitor._plan import TickMeta, TickPlan
from nndoctor.stability.monitor._quantities import (
    TickQuantities,
    clip_grad_norm_any,
    dense_grad,
    layer_effective_units,
)
from nndoctor.stability.monitor._rules import (
    Finding,
    MonitorThresholds,
    RuleEngine,
    nonfinite_finding,
)

__all__ = ["Monitor"]

#: coordinates per parameter read by the update-ratio estimate of every tick
SUBSET_SIZE = 256
SUBSET_SEED = 20_240_515
#: with a budget, the activation and backward statistics are measured at least every
#: MAX_PERIOD ticks, and on every tick while one of their rules has a condition pending: a
#: fault that starts just after a detailed tick is seen MAX_PERIOD - 1 ticks later and reported
#: patience - 1 (= 2) ticks after that, within MAX_PERIOD + 1 = 5 steps of its onset
MAX_PERIOD = 4
_REFRESH = 4  # the budget's medians are recomputed every _REFRESH ticks of each kind
_PROBE = 16  # at period 1, one tick in _PROBE is light, to keep its cost measured
_MATRIX_MAX = 1 << 18  # entries of the estimate's (coordinates, layers) matrix; else index_add
_WINDOW = 15  # ticks of each kind whose median times the budget uses

OnNonFinite = Literal["raise", "warn", "skip"]
Quantity = Literal["grad_norm", "weight_norm", "update_ratio", "backward", "activations"]
DEFAULT_QUANTITIES: tuple[Quantity, ...] = (
    "grad_norm",
    "weight_norm",
    "update_ratio",
    "backward",
    "activations",
)


def _dist_info() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class _Pack:
    """One tick's device results, packed for the tick's single device-to-host transfer."""

    __slots__ = ("cursor", "device", "offsets", "parts", "vec_offsets", "zero_d")

    def __init__(self, device: torch.device) -> None:
        self.device = device
        # 0-d results are stacked once, in front; vectors are concatenated after them
        self.zero_d: list[torch.Tensor] = []
        self.parts: list[torch.Tensor] = []
        self.offsets: dict[str, tuple[int, int]] = {}
        self.vec_offsets: dict[str, tuple[int, int]] = {}
        self.cursor = 0

    def add(self, key: str, tensor: torch.Tensor) -> None:
        """Pack a tensor (flattened, float32, on the tick's device) under ``key``."""
        t = tensor.reshape(-1)
        if t.dtype != torch.float32:
            t = t.float()
        if t.device != self.device:
            t = t.to(self.device)
        self.parts.append(t)
        self.vec_offsets[key] = (self.cursor, self.cursor + t.numel())
        self.cursor += t.numel()

    def add0(self, key: str, tensors: list[torch.Tensor]) -> None:
        """Pack 0-d tensors under ``key`` (stacked in front at the transfer)."""
        self.offsets[key] = (len(self.zero_d), len(self.zero_d) + len(tensors))
        self.zero_d.extend(tensors)

    def transfer(self) -> list[float] | None:
        """The packed values on the host (one transfer) with final offsets; None if nothing."""
        zero_d, parts = self.zero_d, self.parts
        if zero_d:
            head = torch.stack(zero_d)
            if head.dtype != torch.float32:
                head = head.float()
            parts.insert(0, head)
        if not parts:
            return None
        for key, (a, b) in self.vec_offsets.items():
            self.offsets[key] = (a + len(zero_d), b + len(zero_d))
        host: list[float] = (torch.cat(parts) if len(parts) > 1 else parts[0]).tolist()
        return host


class Monitor:
    r"""Watch a training loop: per-layer gradient and activation statistics, rules, first NaN.

    Use it as a context manager around the loop and call :meth:`step` after each
    ``optimizer.step()`` (or call :meth:`watch` once so that the optimizer calls it). Every
    ``every`` optimizer steps (a *tick*) it measures, on the model's device, per layer: the
    gradient norm :math:`\|g_l\|`, the weight norm :math:`\|w_l\|`, the backward signal
    :math:`\delta_l = \mathrm{RMS}(\partial L/\partial y_l)`; per activation module: mean,
    standard deviation, fraction of dead units (ReLU family: never positive over the batch),
    saturated fraction (tanh, sigmoid), non-finite count; on every tick the update ratio
    :math:`\|w_l^{(t)} - w_l^{(t-1)}\| / \|w_l^{(t)}\|` of that tick's optimizer step (exact on
    the first tick and every ``update_every`` ticks, where the weights are copied at the end of
    the step before; elsewhere estimated from a fixed sample of about 256 coordinates per
    tensor, :math:`\widehat{\|\Delta w_l\|^2} = \sum (n/k) \|\Delta w_S\|^2`); and every
    ``symmetry_every`` ticks
    the effective number of distinct units. One tensor per tick comes back to the host. The
    rules of :class:`MonitorThresholds` turn the quantities into :class:`Finding` objects.

    When the loss, a gradient or an activation becomes non-finite, the monitor re-runs the
    failing batch (from the parameters before the failing step) under a dispatch-level checker
    and names the first operator whose output is non-finite, with its module and source line.
    On the CPU the gradient norms are taken in a global optimizer pre-step hook
    (``torch.optim.optimizer.register_optimizer_step_pre_hook``, for a ``torch.optim``
    optimizer that holds the model's parameters), where reading a finiteness flag costs no
    device synchronization: a non-finite gradient, activation or backward statistic is caught
    before the optimizer applies the step, and only then are the weights copied for the re-run.
    Elsewhere (a GPU, where that read would synchronize every step; or a loop that updates the
    weights without a ``torch.optim`` optimizer) the weights are copied at every tick instead.

    The monitor never changes the computation: a monitored run is bitwise identical to an
    unmonitored one, unless ``clip`` is set.

    Parameters
    ----------
    model : nn.Module
        The network (a ``DistributedDataParallel`` wrapper is unwrapped for naming).
    every : int
        Measure every ``every`` optimizer steps (default 1: every step).
    log_dir : path, optional
        Directory for ``monitor.jsonl`` (appended to; only rank 0 writes).
    rules : MonitorThresholds, optional
        Thresholds of the rules; the documented defaults when omitted.
    scaler : torch.amp.GradScaler, optional
        Report gradients unscaled, and do not treat the scaler's own skipped steps (overflow
        while it calibrates the scale) as errors.
    on_nonfinite : {"raise", "warn", "skip"}
        ``"raise"``: raise :class:`~nndoctor.exceptions.NonFiniteError` (with ``module``,
        ``op``, ``step``) and restore the parameters of before the failing step; ``"warn"``:
        warn and go on; ``"skip"``: undo the failing step (with :meth:`watch`, the optimizer
        never applies it) and go on.
    clip : None, float or "auto"
        Clip the total gradient norm before each optimizer step at this value, or with
        ``"auto"`` at ``clip_factor`` × its running median. Needs :meth:`watch` or a call of
        :meth:`clip_gradients` before ``optimizer.step()``.
    quantities : sequence of str
        Which quantity groups to measure (default all): ``"grad_norm"``, ``"weight_norm"``
        (always measured: the other rules divide by it), ``"update_ratio"`` (copies the
        parameters before each sampled tick), ``"backward"`` (a tensor hook per layer output),
        ``"activations"`` (a forward hook per activation module); leaving a group out removes
        its hooks and its work.
    symmetry_every : int
        Effective units are measured on the first tick and every ``symmetry_every`` ticks
        (0 turns it off).
    update_every : int
        The update ratio is measured on the first tick and every ``update_every`` ticks
        (default 10; 1: every tick) exactly. It needs a copy of all parameters at the end of the
        step before, which is most of the monitor's memory traffic; on the other ticks it is
        estimated from a fixed sample of each tensor's coordinates (the finding's
        message says "estimated").
    tensorboard : bool
        Also write TensorBoard scalars under ``log_dir/tensorboard``.
    history : int
        Ticks kept in memory for :meth:`summary`.
    budget : float or None
        The monitor's own cost, as a fraction of the user's step, that it aims to keep
        (default 0.05). It times its own work (on the CPU ``time.thread_time``, the training
        thread's CPU time; elsewhere ``time.perf_counter``; no device
        synchronization added) against the time between ticks and measures the activation and
        backward statistics only every 1-4 ticks (:data:`MAX_PERIOD`), and on every tick while
        one of their rules has a condition pending; the non-finite check, gradient and weight
        norms, the loss and the (estimated) update ratio are measured on every tick. ``None``:
        everything on every tick. :meth:`overhead` gives the accounting.
    background : bool
        Judge the ticks and write the log in a background thread, so that the training thread
        only launches the device reductions and makes the one transfer; a tick with a
        non-finite value is always handled in the training thread. Reading :attr:`findings` or
        calling :meth:`summary` waits for the judge to catch up. Off by default: the judge
        needs the GIL, and on a CPU-bound loop the switching costs more than it saves
        (measured in ``benchmarks/results_monitor.md``).

    Attributes
    ----------
    findings : list of Finding
        Everything found so far, in order.
    nonfinite : list of NonFiniteLocation
        Localized non-finite values.
    step_count : int
        Optimizer steps seen.

    References
    ----------
    Schoenholz, Gilmer, Ganguli and Sohl-Dickstein, "Deep Information Propagation", ICLR 2017;
    Glorot and Bengio, AISTATS 2010; He et al., ICCV 2015; Pascanu, Mikolov and Bengio, "On the
    difficulty of training recurrent neural networks", ICML 2013 (gradient clipping).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from nndoctor import Monitor
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    >>> nn.init.constant_(model[0].bias, -5.0)  # every ReLU unit dead  # doctest: +ELLIPSIS
    Parameter containing: ...
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> x, y = torch.rand(32, 4), torch.randn(32, 1)
    >>> with Monitor(model) as monitor:
    ...     for _ in range(3):
    ...         opt.zero_grad()
    ...         loss = nn.functional.mse_loss(model(x), y)
    ...         loss.backward()
    ...         opt.step()
    ...         _ = monitor.step(loss)
    >>> [(f.check, f.severity, f.layer, f.step) for f in monitor.findings if f.severity != "info"]
    [('dead_units', 'error', '1', 1)]
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        every: int = 1,
        log_dir: str | os.PathLike[str] | None = None,
        rules: MonitorThresholds | None = None,
        scaler: Any = None,
        on_nonfinite: OnNonFinite = "raise",
        clip: float | Literal["auto"] | None = None,
        quantities: tuple[Quantity, ...] | list[Quantity] = DEFAULT_QUANTITIES,
        symmetry_every: int = 100,
        update_every: int = 10,
        tensorboard: bool = False,
        history: int = 100_000,
        background: bool = False,
        budget: float | None = 0.05,
    ) -> None:
        root = check_module(model)
        inner = root
        if isinstance(root, nn.parallel.DistributedDataParallel | nn.DataParallel):
            inner = root.module
        self.model = root
        self.every = check_int(every, name="every", minimum=1)
        self.symmetry_every = check_int(symmetry_every, name="symmetry_every", minimum=0)
        self.update_every = check_int(update_every, name="update_every", minimum=1)
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, int | float) or not budget > 0
        ):
            raise InvalidParameterError(
                f"budget must be None or a positive fraction of the step time, got {budget!r}; "
                "pass e.g. budget=0.05 (5 %) or budget=None to measure everything every tick"
            )
        self.budget = None if budget is None else float(budget)
        if rules is not None and not isinstance(rules, MonitorThresholds):
            raise InvalidParameterError(
                f"rules must be a MonitorThresholds, got {type(rules).__name__}; pass "
                "MonitorThresholds(name=value, ...)"
            )
        self.thresholds = rules or MonitorThresholds()
        self.on_nonfinite: OnNonFinite = check_choice(  # type: ignore[assignment]
            on_nonfinite, ("raise", "warn", "skip"), name="on_nonfinite"
        )
        if (clip is not None and clip != "auto") and (
            isinstance(clip, bool) or not isinstance(clip, int | float) or not clip > 0
        ):
            raise InvalidParameterError(
                f"clip must be None, 'auto' or a positive number, got {clip!r}"
            )
        self.clip = clip
        given: Any = quantities  # checked at run time: callers pass anything
        if isinstance(given, str):
            raise InvalidParameterError(
                f"quantities must be a list of names, got the string {given!r}; pass "
                f"quantities=[{given!r}]"
            )
        bad = [q for q in quantities if q not in DEFAULT_QUANTITIES]
        if bad:
            raise InvalidParameterError(
                f"quantities {bad} are unknown; choose from: {', '.join(DEFAULT_QUANTITIES)}"
            )
        self.quantities = frozenset(quantities)
        self.scaler = scaler
        if log_dir is not None and not isinstance(log_dir, str | os.PathLike):
            raise InvalidParameterError(
                f"log_dir must be a path (str or os.PathLike), got {type(log_dir).__name__}; "
                "pass the directory for the JSONL log"
            )
        self.log_dir = log_dir
        self.tensorboard = tensorboard
        self.history = check_int(history, name="history", minimum=1)
        self._findings: list[Finding] = []
        self.background = bool(background)
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[list[Finding]] | None = None
        self.nonfinite: list[NonFiniteLocation] = []
        self.step_count = 0
        self._inner = inner
        self._collector: Collector | None = None
        self._engine = RuleEngine(self.thresholds)
        self._writer: JsonlWriter | None = None
        self._tb: TensorBoardWriter | None = None
        # a quiet light tick is kept as its JSONL line (parsed only by summary())
        self._records: deque[dict[str, Any] | str] = deque(maxlen=self.history)
        self._line_templates: dict[tuple[bool, bool, bool], str] = {}
        self._order_index: tuple[list[str], list[int]] | None = None
        self._all_findings_records: list[dict[str, Any]] = []
        self._snapshot: list[torch.Tensor] | None = None
        self._snapshot_step = -1  # the step whose pre-step weights the snapshot holds
        self._pre_norms: list[torch.Tensor] | None = None  # gradient norms taken before the step
        # before the step: [gradient norms, activation and backward scalars] as one float32
        # vector, and its layout (number of gradients, number of scalars)
        self._pre_vec: torch.Tensor | None = None
        self._pre_layout = (0, 0)
        self._pre_step = -1  # the step whose optimizer step ran the pre-step check
        self._pre_reliable = False  # the pre-step check ran at the last tick: no routine snapshot
        self._on_cpu = False
        self._closure_step = -1  # the last step whose optimizer step took a closure (CPU)
        self._global_handle: Any = None
        self._param_ids: set[int] = set()
        self._our_optimizers: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
        self._watched: set[int] = set()  # ids of the optimizers that watch() hooked
        self._stepped: set[int] = set()  # those of them that stepped since the last step()
        self._scratch: list[torch.Tensor] | None = None
        self._loss: torch.Tensor | None = None
        self._opt_handles: list[Any] = []
        self._clipped = False
        self._clipped_at: float | None = None
        self._skipped_by_guard = False
        self._scale_used: torch.Tensor | None = None
        self._ticks = 0
        self._rank, self._world = 0, 1
        self._plans: dict[tuple[Any, ...], TickPlan] = {}
        self._order_copy: list[str] = []
        self._copied_sizes = (-1, -1)
        self._feeds_copy: dict[str, str] = {}
        self._last_act_counts: dict[str, int] = {}
        self._open = False
        self._pending_error: NonFiniteError | None = None
        # the update-ratio estimate of every tick: a fixed sample of each parameter's
        # coordinates, gathered before the step (see _gather_subset)
        # per parameter: a strided view of its coordinates (float32, contiguous, on the tick's
        # device: read in place, no gather), or else the indices to gather
        self._sub_views: list[torch.Tensor | None] = []
        self._sub_index: list[torch.Tensor | None] = []
        self._sub_ptrs: list[int] = []  # the parameters' data pointers when the views were made
        self._sub_scale: list[float] = []  # numel / k of each parameter
        self._sub_prev: torch.Tensor | None = None  # the sampled coordinates, one vector
        # per-layer sums of the scaled squares: a (k, layers) matrix with numel / k of each
        # coordinate's parameter in its layer's column (small models), or index_add
        self._sub_matrix: torch.Tensor | None = None
        self._sub_layer: torch.Tensor | None = None
        self._sub_weights: torch.Tensor | None = None
        self._pre_host: list[float] | None = None  # the pre-step check's values, on the host
        self._sub_step = -1  # the step whose pre-step weights _sub_prev holds
        # the budget's accounting (seconds, medians over the last ticks): the time between two
        # ticks outside the monitor's own work, on detailed and on light ticks, and the
        # monitor's own time on each
        self._t_end: float | None = None
        self._clock = time.perf_counter
        self._own = 0.0  # own time spent in the pre-step hook since the last tick
        self._samples: dict[str, deque[float]] = {}
        self._median: dict[str, float] = {}  # the medians of the samples (robust to preemption)
        self._period = 1
        self._since_detail = 0
        self._since_light = 0
        self._counts = {"detailed": 0, "light": 0}
        self._one_off = False  # this tick did rare work (the first tick, effective units)
        self._last_overhead = math.nan

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Monitor:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> Monitor:
        """Attach hooks and open the log (what ``with`` does on entry)."""
        if self._open:
            return self
        self._rank, self._world = _dist_info()
        self._collector = Collector(
            self._inner,
            self.model,
            self.thresholds.saturation_level,
            activations="activations" in self.quantities,
            backward="backward" in self.quantities,
        )
        if self.scaler is not None:
            self._collector.on_backward_start = self._record_scale
        self._collector.active = self._is_tick(self.step_count + 1)
        self._params = self._collector.params
        self._device = self._params[0].device if self._params else torch.device("cpu")
        n_layers = len(self._collector.layers)
        self._weight_slots = [n_layers + i for i in self._collector.param_layer]
        self._delta_slots = [2 * n_layers + i for i in self._collector.param_layer]
        self._on_cpu = bool(self._params) and all(p.device.type == "cpu" for p in self._params)
        # the budget's clock: on the CPU the training thread's own CPU time, so that time the
        # thread waits for a core (a loaded machine) or sleeps counts neither as the monitor's
        # cost nor as the user's step; elsewhere the wall clock (the user's step is mostly
        # waiting for the device)
        self._clock = time.thread_time if self._on_cpu else time.perf_counter
        self._param_ids = {id(p) for p in self._params}
        if self._on_cpu:
            self._global_handle = register_optimizer_step_pre_hook(self._before_optimizer_step)
        if "update_ratio" in self.quantities:
            self._build_subset()
        if self._collector.active:
            self._maybe_snapshot(self.step_count + 1)
            self._gather_subset(self.step_count + 1)
        if self.log_dir is not None and self._rank == 0:
            self._writer = JsonlWriter(self.log_dir)
            self._writer.write(
                header_record(
                    layers=self._collector.layers + list(self._collector.acts),
                    layer_types=self._collector.layer_types,
                    thresholds=self.thresholds.to_dict(),
                    every=self.every,
                )
            )
            if self.tensorboard:
                self._tb = TensorBoardWriter(os.path.join(os.fspath(self.log_dir), "tensorboard"))
        if self.background:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nndoctor-monitor")
        self._open = True
        return self

    def close(self) -> None:
        """Remove every hook and close the logs (idempotent; ``with`` does it on exit)."""
        pending, self._pending = self._pending, None
        if self._writer is not None:
            self._writer.write(sampling_record(self.overhead()))
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._open and (pending is None or pending.exception() is None):
            # depth conditions that held to the end of a run shorter than their patience
            self._publish(self._engine.flush())
        if self._collector is not None:
            self._collector.remove()
        for h in self._opt_handles:
            h.remove()
        self._opt_handles.clear()
        self._watched.clear()
        self._stepped.clear()
        if self._global_handle is not None:
            self._global_handle.remove()
            self._global_handle = None
        self._pre_norms = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        self._snapshot = None
        self._scratch = None
        self._open = False
        if pending is not None and pending.exception() is not None:
            raise RuntimeError("the monitor's background judge failed") from pending.exception()

    def _require_collector(self) -> Collector:
        if self._collector is None:
            raise InvalidParameterError("the monitor was never opened; use `with Monitor(model)`")
        return self._collector

    def _require_open(self) -> Collector:
        if not self._open or self._collector is None:
            raise InvalidParameterError(
                "the monitor is not open; use it as `with Monitor(model) as monitor:` (or call "
                "monitor.open()) before monitor.step()"
            )
        return self._collector

    @property
    def n_hooks(self) -> int:
        """Hooks currently attached to the model and optimizer (0 after exit)."""
        n = self._collector.n_hooks if self._collector is not None else 0
        return n + len(self._opt_handles) + (self._global_handle is not None)

    def watch(self, optimizer: torch.optim.Optimizer) -> Monitor:
        """Let ``optimizer`` drive the monitor: no :meth:`step` call is needed.

        A post-step hook calls :meth:`step`; a pre-step hook clips (``clip``) and, with
        ``on_nonfinite="skip"``, keeps a step with non-finite gradients from being applied.
        With several watched optimizers (one per part of the model), one training step is
        one monitor step: :meth:`step` runs once every watched optimizer has stepped since
        the last one, or when one steps a second time first (one that steps less often).
        Returns the monitor.
        """
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise InvalidParameterError(
                f"watch needs a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        self.open()

        def pre(opt: Any, args: Any, kwargs: Any) -> None:
            if self.clip is not None:
                self.clip_gradients()
                self._before_optimizer_step(opt, args, kwargs)  # on the clipped gradients
            if self.on_nonfinite == "skip":
                self._guard()

        key = id(optimizer)
        self._watched.add(key)

        def post(opt: Any, args: Any, kwargs: Any) -> None:
            if key not in self._stepped and self._stepped | {key} < self._watched:
                self._stepped.add(key)  # the round goes on: other optimizers step next
                return
            self._stepped.clear()
            self.step()

        self._opt_handles.append(optimizer.register_step_pre_hook(pre))
        self._opt_handles.append(optimizer.register_step_post_hook(post))
        return self

    def record_loss(self, loss: torch.Tensor | float) -> None:
        """Give the loss of the current step (for the log) when :meth:`watch` drives the monitor."""
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            self._loss = loss.detach()
            return
        if isinstance(loss, bool) or not isinstance(loss, int | float | np.integer | np.floating):
            shape = f" of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else ""
            raise InvalidParameterError(
                f"loss must be a number or a one-element tensor, got {type(loss).__name__}"
                f"{shape}; pass the reduced loss (loss.mean())"
            )
        self._loss = torch.tensor(float(loss))

    # ------------------------------------------------------------------ helpers
    def _is_tick(self, step: int) -> bool:
        return step % self.every == 0

    def _record_scale(self) -> None:
        scale = getattr(self.scaler, "_scale", None)
        if isinstance(scale, torch.Tensor):
            self._scale_used = scale.detach().clone()

    def _take_snapshot(self, valid_for: int) -> None:
        """Copy the parameters: the weights before the optimizer step of step ``valid_for``."""
        with torch.no_grad():
            if self._snapshot is None:
                self._snapshot = [p.detach().clone() for p in self._params]
            else:
                torch._foreach_copy_(self._snapshot, [p.detach() for p in self._params])
        self._snapshot_step = valid_for

    def _build_subset(self) -> None:
        """Choose, once, the coordinates of each parameter that the update-ratio estimate reads.

        A systematic sample of about :data:`SUBSET_SIZE` coordinates per parameter: every
        ``s``-th coordinate of the flattened tensor from an offset drawn with a fixed seed, with
        ``s = numel // SUBSET_SIZE`` raised until it shares no factor with the row length (so
        the sample meets every row and spreads over the columns); a parameter with at most
        :data:`SUBSET_SIZE` coordinates is read whole. Each coordinate is in the sample with
        probability ``1/s`` over the offset, so ``numel / k`` times its squared change is an
        unbiased estimate of the parameter's share of :math:`\\|\\Delta w_l\\|^2`. For a
        contiguous float32 parameter the sample is a strided *view*: a tick reads it in place,
        with no gather.
        """
        gen = torch.Generator().manual_seed(SUBSET_SEED)
        views: list[torch.Tensor | None] = []
        index: list[torch.Tensor | None] = []
        scale: list[float] = []
        spans: list[tuple[int, int, int]] = []  # (offset, numel, stride) per parameter
        f32, device = torch.float32, self._device
        for p in self._params:
            n = p.numel()
            stride, offset = 1, 0
            if n > SUBSET_SIZE:
                stride = n // SUBSET_SIZE
                cols = n // p.shape[0] if p.dim() >= 2 and p.shape[0] else n
                while math.gcd(stride, cols) != 1:
                    stride += 1
                offset = int(torch.randint(0, stride, (1,), generator=gen))
            k = len(range(offset, n, stride))
            scale.append(n / k if k else 0.0)
            spans.append((offset, n, stride))
            if p.is_contiguous() and p.dtype == f32 and p.device == device:
                views.append(p.detach().view(-1)[offset::stride])
                index.append(None)
            else:
                views.append(None)
                index.append(torch.arange(offset, n, stride, device=p.device))
        self._sub_views = views
        self._sub_index = index
        self._sub_scale = scale
        self._sub_ptrs = [p.data_ptr() for p in self._params]
        self._sub_prev = None
        self._sub_step = -1
        layer_of = self._require_collector().param_layer
        sizes = [len(range(o, n, st)) for o, n, st in spans]
        k, n_layers = sum(sizes), len(self._require_collector().layers)
        layer = torch.repeat_interleave(
            torch.tensor(layer_of, dtype=torch.long), torch.tensor(sizes, dtype=torch.long)
        )
        weights = torch.repeat_interleave(
            torch.tensor(scale, dtype=torch.float32), torch.tensor(sizes, dtype=torch.long)
        )
        self._sub_matrix = None
        if k * n_layers <= _MATRIX_MAX:
            matrix = torch.zeros(k, n_layers)
            matrix[torch.arange(k), layer] = weights
            self._sub_matrix = matrix.to(device)
        self._sub_layer = layer.to(device)
        self._sub_weights = weights.to(device)

    def _check_subset(self) -> None:
        """Make the views again if a parameter's storage was replaced (``p.data = ...``)."""
        if self._sub_scale and [p.data_ptr() for p in self._params] != self._sub_ptrs:
            prev, step = self._sub_prev, self._sub_step
            self._build_subset()
            weights = self._sub_weights
            if prev is not None and weights is not None and prev.numel() == weights.numel():
                # the same coordinates (same shapes, same seed): what was gathered still holds
                self._sub_prev, self._sub_step = prev, step

    def _subset(self) -> torch.Tensor:
        """The sampled coordinates of every parameter now, as one float32 vector (a copy)."""
        out: list[torch.Tensor] = []
        f32, device = torch.float32, self._device
        with torch.no_grad():
            for p, v, i in zip(self._params, self._sub_views, self._sub_index, strict=True):
                if v is not None:
                    out.append(v)
                    continue
                t = p.reshape(-1).index_select(0, i)  # type: ignore[arg-type]
                if t.dtype != f32 or t.device != device:
                    t = t.to(device=device, dtype=f32)
                out.append(t)
            return torch.cat(out) if len(out) > 1 else out[0].clone()

    def _advance_subset(self, now: torch.Tensor, step: int) -> None:
        """Keep the sampled coordinates ``now`` as the "before" of the next step's update."""
        self._sub_prev = now
        self._sub_step = step + 1

    def _layer_sums(self, now: torch.Tensor, prev: torch.Tensor, weights: bool) -> torch.Tensor:
        """Per layer, the estimated squared update norm (and squared weight norm), on the device.

        .. math:: \\widehat{\\|\\Delta w_l\\|^2} = \\sum_{p \\in l} (n_p / k_p)
           \\|\\Delta w_{p,S}\\|^2

        Returns a (1, layers) tensor, or (2, layers) with the weights' row when ``weights``.
        """
        both = torch.stack([now - prev, now]) if weights else (now - prev).unsqueeze(0)
        both.square_()
        if self._sub_matrix is not None:
            return both @ self._sub_matrix
        assert self._sub_layer is not None
        assert self._sub_weights is not None
        both.mul_(self._sub_weights)
        n_layers = len(self._require_collector().layers)
        return both.new_zeros(both.shape[0], n_layers).index_add_(1, self._sub_layer, both)

    def _gather_subset(self, valid_for: int) -> None:
        """Before the optimizer step of step ``valid_for``: gather the sampled coordinates."""
        self._check_subset()
        if not self._sub_scale or self._sub_step == valid_for:
            return
        self._advance_subset(self._subset(), valid_for - 1)
        self._sub_step = valid_for

    def _wants_update(self) -> bool:
        """Whether the next tick measures the update ratio (the first, then every k-th)."""
        return "update_ratio" in self.quantities and self._ticks % self.update_every == 0

    def _maybe_snapshot(self, step: int) -> None:
        """Before tick step ``step``: copy the parameters if that tick needs the old weights.

        They are needed for the update ratio (on its sampled ticks) and for the non-finite
        re-run, which must start from the weights before the failing step. On the CPU, the
        pre-step check (:meth:`_before_optimizer_step`) catches non-finite gradients before the
        optimizer applies them and copies the weights only then, so no routine copy is needed
        once that check has been seen to run. On other devices the check would cost a host
        synchronization per step, so the copy is taken at every tick there.
        """
        # after a step(closure), the next one's pre-step hook copies the weights (above); a
        # step without a closure there takes the CPU's pre-step check instead
        closure_loop = self._closure_step == step - 1
        if self._wants_update() or not (self._pre_reliable or closure_loop):
            self._take_snapshot(step)

    def _owns(self, optimizer: Any) -> bool:
        """Whether ``optimizer`` updates some of the model's parameters (a yes is cached)."""
        if optimizer in self._our_optimizers:
            return True
        ids = self._param_ids
        if any(id(p) in ids for g in optimizer.param_groups for p in g["params"]):
            self._our_optimizers[optimizer] = True  # a later add_param_group cannot undo it
            return True
        return False

    def _before_optimizer_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        """Global optimizer pre-step hook (CPU only): gradient norms and a finiteness check.

        Runs before ``optimizer.step()`` of a tick step, after backward: the gradients are final
        and the weights still those of the forward pass. The gradient norms are kept for the
        tick (they are the same after the step); reading the finiteness flag costs no device
        synchronization on the CPU. When a gradient, an activation statistic, a backward
        signal or the loss is non-finite, the weights are copied now, so that the tick re-runs
        the failing batch from them and, with ``on_nonfinite`` in ``{"raise", "skip"}``,
        restores them.
        """
        col = self._collector
        step = self.step_count + 1
        # step(closure) (LBFGS, Lightning): forward and backward have not run yet; args holds
        # the optimizer itself first, then the step's own arguments
        closure = any(a is not None for a in args[1:]) or kwargs.get("closure") is not None
        if closure and col is not None and self._owns(optimizer):
            self._closure_step = step
            if col.active:
                # the closure's passes start from the weights as they are now: a failing batch
                # is re-run from these, whatever happened to the weights since the last tick
                t0 = self._clock()
                self._take_snapshot(step)
                self._own += self._clock() - t0
            return
        if (
            col is None
            or not col.active
            or closure
            or self._pre_step == step
            or (self.clip is not None and not self._clipped)  # wait for the clipped gradients
            or not self._owns(optimizer)
        ):
            return
        self._pre_step = step
        t0 = self._clock()
        try:
            self._pre_check(step)
        finally:
            self._own += self._clock() - t0

    def _pre_check(self, step: int) -> None:
        col = self._require_collector()
        grads, _ = self._grads()
        want_grad = "grad_norm" in self.quantities
        with torch.no_grad():
            norms = list(torch._foreach_norm(grads)) if grads else []
            scalars = [t for rec in col.act_records for t in rec[1]]
            scalars += [r[1] for r in col.bwd_records]
            checks = norms + scalars
            vec = torch.stack(checks) if checks else None
            if vec is not None and vec.dtype != torch.float32:
                vec = vec.float()
            # the values on the host (no sync: the CPU only); their sum is finite iff each is,
            # unless it overflows (then the tick checks them one by one)
            host = vec.tolist() if vec is not None else []
            finite = math.isfinite(sum(host))
            loss = self._loss
            if loss is not None and loss.device.type == "cpu":
                total = loss if loss.dim() == 0 else loss.reshape(-1).sum()
                finite = finite and math.isfinite(float(total))
        self._pre_host = host if finite else None
        self._pre_norms = norms if want_grad else None
        self._pre_vec = vec if want_grad and self._world == 1 else None
        self._pre_layout = (len(norms), len(scalars))
        if not finite and self._snapshot_step != step:
            self._take_snapshot(step)

    def _grads(self) -> tuple[list[torch.Tensor], list[int]]:
        """The gradients that exist and the layer of each."""
        grads = [None if p.grad is None else dense_grad(p.grad) for p in self._params]
        col = self._require_collector()
        if all(g is not None for g in grads):
            return grads, col.param_layer  # type: ignore[return-value]
        keep = [i for i, g in enumerate(grads) if g is not None]
        return [grads[i] for i in keep], [col.param_layer[i] for i in keep]  # type: ignore[misc]

    def clip_gradients(self) -> float | None:
        """Clip the total gradient norm as ``clip`` says; call before ``optimizer.step()``.

        Returns the norm clipped at (``None`` when ``"auto"`` has too little history yet).
        """
        self._clipped = True
        if self.clip is None:
            return None
        if self.clip == "auto":
            median = self._engine.total_norm_median()
            if self._engine._n_history < self.thresholds.spike_min_history or not (median > 0):
                self._clipped_at = None
                return None
            max_norm = self.thresholds.clip_factor * median
        else:
            max_norm = float(self.clip)
        grads, _ = self._grads()
        if grads:
            # a weight shared by two layers (GPT-2's tied embedding and head) counts once
            unique = {id(p): p for p in self._params if p.grad is not None}
            clip_grad_norm_any(list(unique.values()), max_norm)
        self._clipped_at = max_norm
        return max_norm

    def _guard(self) -> None:
        """Before the optimizer step: drop non-finite gradients so that the step does nothing."""
        grads, _ = self._grads()
        if not grads:
            return
        norms = torch.stack(torch._foreach_norm(grads))
        if not bool(torch.isfinite(norms).all()):  # one sync, only with on_nonfinite="skip"
            for p in self._params:
                p.grad = None
            self._skipped_by_guard = True

    # ------------------------------------------------------------------ the tick
    def step(self, loss: torch.Tensor | float | None = None) -> list[Finding]:
        """Call after ``optimizer.step()``; on a tick, measure, judge and log.

        Parameters
        ----------
        loss : tensor or float, optional
            The step's loss, for the log (kept on the device until the tick's transfer).

        Returns
        -------
        list of Finding
            The findings new at this step (empty when they are judged in the background: read
            :attr:`findings`).

        Raises
        ------
        NonFiniteError
            With ``on_nonfinite="raise"``, when a non-finite value appeared.
        """
        t0 = self._clock()
        col = self._require_open()
        if loss is not None:
            self.record_loss(loss)
        self.step_count += 1
        step = self.step_count
        ticked = self._is_tick(step)
        detailed = ticked and col.detail
        new: list[Finding] = []
        try:
            new = self._step(col, step)
        finally:
            self._account(t0, detailed, ticked)
        return new

    def _step(self, col: Collector, step: int) -> list[Finding]:
        new: list[Finding] = []
        if self._is_tick(step):
            if self.clip is not None and not self._clipped:
                raise InvalidParameterError(
                    f"clip={self.clip!r} needs monitor.watch(optimizer), or "
                    "monitor.clip_gradients() before optimizer.step()"
                )
            new = self._tick(step)
            self._pre_reliable = self._on_cpu and self._pre_step == step
        self._pre_norms = None
        self._pre_host = None
        self._clipped = False
        self._loss = None
        col.reset()
        nxt = self._is_tick(step + 1)
        col.active = nxt
        if nxt:
            col.detail = self._next_detailed()
            self._maybe_snapshot(step + 1)
            self._gather_subset(step + 1)
        return new

    # ------------------------------------------------------------------ the budget
    def _next_detailed(self) -> bool:
        """Whether the next tick measures the activation and backward statistics.

        Under DDP (``world > 1``) every tick does: the statistics are all-reduced, so every
        rank must measure on the same ticks, and a schedule timed per rank would differ (one
        rank's long steps, another's short ones) and leave the ranks' collectives unmatched.
        """
        if self.budget is None or not self._ticks or self._world > 1:
            return True
        self._since_detail += 1
        self._since_light += 1
        pending = self._engine.has_pending()
        if pending or self._since_detail >= self._period or self._counts["light"] == 0:
            if (
                (self._counts["light"] == 0 and self._counts["detailed"])
                # at period 1, a light tick now and then keeps what a light tick costs
                # measured (the hooks' cost is the difference): a stale one could hold the
                # period at 1 for good
                or self._since_light >= _PROBE
            ) and not pending:
                self._since_light = 0
                return False  # a light tick, to learn (again) what a detailed one costs
            self._since_detail = 0
            return True
        self._since_light = 0
        return False

    def _account(self, t0: float, detailed: bool, ticked: bool) -> None:
        """Time the step's own work and choose the period of the detailed ticks.

        The monitor's own time is what it spends in :meth:`step` and in the pre-step hook;
        the time between the end of one :meth:`step` and the start of the next, less the
        pre-step hook, is the user's step plus the hooks' share. The hooks' cost is the
        difference of that interval between detailed and light ticks. ``budget`` bounds the
        monitor's cost per step, ``own_light + (hooks + own_detail - own_light) / period``, as a
        fraction of the user's step (the interval on light ticks); the smallest period within
        ``[1, MAX_PERIOD]`` that keeps it is chosen. No device synchronization is added: the
        tick's one transfer already waits for the device.
        """
        t1 = self._clock()
        own = t1 - t0 + self._own
        last, self._t_end, self._own = self._t_end, t1, 0.0
        one_off, self._one_off = self._one_off, False
        if not ticked:
            return
        kind = "detailed" if detailed else "light"
        self._counts[kind] += 1
        if last is None or one_off:  # not representative of a step's cost
            return
        between = t0 - last - (own - (t1 - t0))
        med = self._median
        for key, value in ((f"own_{kind}", own), (f"between_{kind}", between)):
            window = self._samples.get(key)
            if window is None:
                window = self._samples[key] = deque(maxlen=_WINDOW)
            window.append(value)
            if key not in med or self._counts[kind] % _REFRESH == 0:  # O(1) on average
                med[key] = sorted(window)[len(window) // 2]
        if "between_light" not in med or "between_detailed" not in med:
            return
        if self.budget is not None:
            self._period = self._choose_period()
        self._last_overhead = self._cost(self._period if self.budget is not None else 1)

    def _cost(self, period: int) -> float:
        """The monitor's cost per step at this period, as a fraction of the user's step."""
        med = self._median
        user = med["between_light"]
        hooks = max(med["between_detailed"] - user, 0.0)
        base = med["own_light"]
        cost = base + (hooks + med["own_detailed"] - base) / period
        return cost / user if user > 0 else math.nan

    def _choose_period(self) -> int:
        med = self._median
        user = med["between_light"]
        base = med["own_light"]
        extra = max(med["between_detailed"] - user, 0.0) + med["own_detailed"] - base
        allowed = (self.budget or 0.0) * user - base
        if extra <= 0:
            return 1
        if allowed <= 0:
            return MAX_PERIOD
        return min(MAX_PERIOD, max(1, math.ceil(extra / allowed)))

    def overhead(self) -> dict[str, Any]:
        """The monitor's own accounting: how often each quantity is measured, and its cost.

        Returns
        -------
        dict
            ``period``: per quantity, every how many ticks it is measured now (1: every tick);
            ``overhead``: the monitor's estimated cost per step as a fraction of the user's step
            (NaN until a light and a detailed tick have been timed); ``floor``: the same for the
            work done on every tick whatever the period (a light tick: the non-finite check,
            gradient norms, the update-ratio estimate, the rules and the log line), the least
            any schedule can cost; ``own_s``: its own seconds
            per tick on light and detailed ticks; ``step_s``: the user's step in seconds;
            ``ticks``: how many ticks were detailed and light; ``budget``; ``within_budget``.
            With ``budget=None`` nothing is sampled and the wall-clock entries (``overhead``,
            ``own_s``, ``step_s``) are left out, so that the same seed gives the same log.

        Examples
        --------
        >>> from torch import nn
        >>> from nndoctor import Monitor
        >>> acct = Monitor(nn.Linear(2, 2)).overhead()
        >>> acct["budget"], acct["period"]["nonfinite"], acct["period"]["activations"]
        (0.05, 1, 1)
        """
        med = self._median
        period = 1 if self.budget is None else self._period
        user = med.get("between_light", med.get("between_detailed", math.nan))
        if "between_light" in med and "between_detailed" in med:
            overhead = self._cost(period)
        else:
            own = med.get("own_detailed", med.get("own_light", math.nan))
            overhead = own / user if user > 0 else math.nan
        sampled = {"activations": period, "backward": period}
        periods: dict[str, int] = {
            "grad_norm": 1,
            "weight_norm": 1,
            "update_ratio": 1,
            "update_ratio_exact": self.update_every,
            "nonfinite": 1,
            "loss": 1,
            **{k: v for k, v in sampled.items() if k in self.quantities},
        }
        if self.symmetry_every:
            periods["effective_units"] = self.symmetry_every
        if "update_ratio" not in self.quantities:
            del periods["update_ratio"], periods["update_ratio_exact"]
        if self.budget is None:  # nothing is sampled, so no wall-clock reading is part of it:
            # a run without a budget (the checkup's) gives the same log for the same seed
            return {"budget": None, "period": periods, "within_budget": True,
                    "ticks": dict(self._counts)}  # fmt: skip
        light = med.get("own_light", math.nan)
        return {
            "budget": self.budget,
            "period": periods,
            "overhead": overhead,
            "floor": light / user if user > 0 else math.nan,
            "within_budget": self.budget is None or overhead <= self.budget,
            "own_s": {k[4:]: v for k, v in med.items() if k.startswith("own_")},
            "step_s": user,
            "ticks": dict(self._counts),
        }

    def _plan(
        self,
        col: Collector,
        act_records: list[tuple[str, list[torch.Tensor], torch.Tensor, int]],
        bwd_records: list[tuple[str, torch.Tensor, int, int]],
        device: torch.device,
    ) -> TickPlan:
        """The layout of a tick's records (cached: it is the same from one tick to the next)."""
        key = (
            tuple((r[0], len(r[1]), r[2].numel(), r[3]) for r in act_records),
            tuple((r[0], r[2], r[3]) for r in bwd_records),
            tuple(col.order),
        )
        plan = self._plans.get(key)
        if plan is None or plan.device != device:
            plan = TickPlan.build(key, col.order, self._world, device, col.layers)
            self._plans[key] = plan
        return plan

    def _light_ready(self, step: int, col: Collector) -> bool:
        """Whether this tick can take the light path (:meth:`_light_tick`)."""
        return (
            self.budget is not None
            and not col.detail
            and self._pre_host is not None
            and self._pre_step == step
            and self._sub_step == step
            and self._sub_prev is not None
            and self._pre_layout == (len(self._params), 0)
            and all(p.grad is not None for p in self._params)
            and "grad_norm" in self.quantities
            and not self._wants_update()
            and not (self.symmetry_every and self._ticks % self.symmetry_every == 0)
            and self._world == 1
            and self.scaler is None
            and self._pool is None
            and not self._skipped_by_guard
            and (self._loss is None or (self._loss.dim() == 0 and self._loss.device.type == "cpu"))
        )

    def _light_tick(self, step: int, col: Collector, pre_host: list[float]) -> list[Finding]:
        """A light tick on the CPU: only what every tick guarantees, from one more reduction.

        The gradient norms (and with them the non-finite check) were read by the pre-step
        check; here the update and the weights are estimated from the sampled coordinates
        (per parameter: the norm of their change and of themselves, one ``foreach`` pass) and
        the loss joins them in one read. The rules whose inputs these are (update ratio,
        gradient spikes, gradient-to-weight ratio) judge them; the log line is batched.
        """
        with torch.no_grad():
            now = self._subset()
            prev = self._sub_prev
            assert prev is not None  # checked by _light_ready
            d_sq, w_sq = self._layer_sums(now, prev, True).tolist()
            self._advance_subset(now, step)
        loss = self._loss
        loss_value = None if loss is None else float(loss)  # on the CPU: no sync
        self._ticks += 1
        n_layers = len(col.layers)
        g_sq = [0.0] * n_layers
        for v, li in zip(pre_host, col.param_layer, strict=False):
            g_sq[li] += v * v
        if self._copied_sizes == (-1, -1):
            self._order_copy = list(col.order) or list(col.layers)
        sqrt, nan = math.sqrt, math.nan
        g_part = [sqrt(v) for v in g_sq]
        w_part = [sqrt(v) for v in w_sq]
        ratios: list[float] = []
        if "update_ratio" in self.quantities:
            ratios = [(sqrt(d) / w if w > 0 else nan) for d, w in zip(d_sq, w_part, strict=True)]
        clean = math.isfinite(sum(d_sq) + sum(w_sq) + (loss_value or 0.0))
        total = sqrt(sum(g_sq))
        overhead = None if math.isnan(self._last_overhead) else self._last_overhead
        sampling = {"detailed": False, "period": self._period, "overhead": overhead}
        self._drain()
        if clean and self._quiet(g_part, w_part, ratios):
            # nothing to find: the tick is logged from a template, with no per-layer dicts
            line = self._light_line(step, g_part, w_part, ratios, loss_value, total, overhead)
            if line is not None:
                self._records.append(line)
                if self._writer is not None:
                    self._writer.write_line(line, hold=True)
                return []
        q = TickQuantities(step=step, order=self._order_copy)
        q.feeds = self._feeds_copy
        q.roles = col.roles
        names = col.layers
        q.grad_norm = dict(zip(names, g_part, strict=True))
        q.weight_norm = dict(zip(names, w_part, strict=True))
        q.weight_estimated = True
        if ratios:
            q.update_ratio = dict(zip(names, ratios, strict=True))
            q.update_estimated = True
        if loss_value is not None:
            q.loss = loss_value
        return self._conclude(q, total, self._clipped_at, sampling, clean, True)

    def _quiet(self, g_part: list[float], w_part: list[float], ratios: list[float]) -> bool:
        """Whether the rules find nothing in a light tick (then its spike history is kept)."""
        if self._tb is not None:
            return False
        order = self._order_copy
        layers = self._require_collector().layers
        index = self._order_index
        if index is None or index[0] is not order:
            position = {n: i for i, n in enumerate(layers)}
            index = self._order_index = (order, [position[n] for n in order])
        at = index[1]
        grads = [g_part[i] for i in at]
        weights = [w_part[i] for i in at]
        return self._engine.quiet_tick(tuple(order), grads, weights, ratios)

    def _light_line(
        self,
        step: int,
        g_part: list[float],
        w_part: list[float],
        ratios: list[float],
        loss: float | None,
        total: float,
        overhead: float | None,
    ) -> str | None:
        """The JSONL line of a quiet light tick, as :func:`tick_record` and the encoder write it.

        ``None`` when a value cannot be written this way (a non-finite overhead).
        """
        if overhead is not None and not math.isfinite(overhead):
            return None
        clipped = self._clipped_at
        key = (len(ratios) > 0, loss is not None, clipped is not None)
        template = self._line_templates.get(key)
        if template is None:
            template = self._line_templates[key] = light_line_template(
                self._require_collector().layers, *key
            )
        values: list[Any] = [step, time.time(), total]
        if ratios:
            for g, w, r in zip(g_part, w_part, ratios, strict=True):
                values += (g, w, r)
        else:
            for g, w in zip(g_part, w_part, strict=True):
                values += (g, w)
        if loss is not None:
            values.append(loss)
        if clipped is not None:
            values.append(clipped)
        values += (self._period, "null" if overhead is None else repr(overhead))
        return template % tuple(values)

    def _tick(self, step: int) -> list[Finding]:
        """One tick: pack what is measured on the device, transfer it once, then judge it."""
        col = self._require_open()
        self._check_subset()
        pre_host = self._pre_host
        if pre_host is not None and self._light_ready(step, col):
            return self._light_tick(step, col, pre_host)
        pack = _Pack(self._device)
        grads, grad_layers = self._grads()
        want_grad = "grad_norm" in self.quantities and bool(grads)
        want_delta = self._wants_update() and self._snapshot_step == step
        pre_norms = self._pre_norms if self._pre_step == step else None
        pre_vec = self._pre_vec if self._pre_step == step else None
        plan = self._plan(col, col.act_records, col.bwd_records, self._device)
        if pre_vec is not None and (
            self._pre_layout != (len(grads), plan.n_scalars) or not want_grad
        ):
            pre_vec = None  # the records changed after the optimizer step
        with torch.no_grad():
            slots, prev, light_w = self._pack_norms(
                pack, step, col, grads, grad_layers, want_grad, want_delta, pre_norms, pre_vec
            )
            self._pack_estimate(pack, step, prev, light_w, len(col.layers))
            self._pack_records(pack, plan, col, pre_vec)
            self._pack_extras(pack, col)
            sym_names, sym_units = self._pack_symmetry(pack, col)
            self._one_off = self._one_off or self._ticks == 0
            self._ticks += 1
            host = pack.transfer()  # the tick's one device-to-host transfer
            if host is None:
                return []
        meta = self._tick_meta(
            step, col, plan, pack.offsets, slots, len(grads), want_grad, want_delta,
            prev is not None, sym_names, sym_units,
        )  # fmt: skip
        # a sum of finite values is finite unless it overflows: then check one by one
        clean = not self._skipped_by_guard and (
            math.isfinite(sum(host)) or all(math.isfinite(v) for v in host)
        )
        meta.clean = clean
        if clean and self._pool is not None and self.scaler is None:
            # judging, the record and the JSONL line happen off the training thread
            self._check_worker()
            self._pending = self._pool.submit(self._judge, host, meta)
            return []
        self._drain()
        return self._judge(host, meta, synchronous=True)

    def _pack_norms(
        self,
        pack: _Pack,
        step: int,
        col: Collector,
        grads: list[torch.Tensor],
        grad_layers: list[int],
        want_grad: bool,
        want_delta: bool,
        pre_norms: list[torch.Tensor] | None,
        pre_vec: torch.Tensor | None,
    ) -> tuple[list[int], torch.Tensor | None, bool]:
        """Which per-tensor norms (gradients, weights, updates) the tick measures exactly."""
        # per-tensor norms of gradients, weights and updates: one fused foreach_norm;
        # the per-layer sums of squares are formed on the host from the transferred norms
        tensors: list[torch.Tensor] = []
        slots: list[int] = []
        norms: list[torch.Tensor] = []
        if want_grad:
            if pre_vec is not None:
                # gradient norms and per-record scalars, stacked before the optimizer step
                # (the same gradients: the optimizer reads them, it does not change them)
                pack.add("gnorms", pre_vec)  # one part, two segments
                a, b = pack.vec_offsets["gnorms"]
                pack.vec_offsets["gnorms"] = (a, a + len(grads))
                pack.vec_offsets["scalars"] = (a + len(grads), b)
            elif pre_norms is not None and len(pre_norms) == len(grads):
                norms = list(pre_norms)
            else:
                tensors += grads
            slots += grad_layers
        params = self._params  # under no_grad: no detach needed
        prev = self._sub_prev if self._sub_step == step and not want_delta else None
        # within a budget, the weight norms, like the update, are estimated from the sampled
        # coordinates on every tick with an estimate: the full pass over the weights is left to
        # the ticks with the exact update ratio (every update_every ticks)
        light_w = prev is not None and self.budget is not None and self._world == 1
        if not light_w:
            tensors += params
            slots += self._weight_slots
        if want_delta:
            snapshot = self._snapshot
            if snapshot is not None:
                # into a persistent scratch buffer: no fresh allocation per step (slow on
                # CPU), and the snapshot stays intact for a non-finite re-run
                if self._scratch is None:
                    self._scratch = [torch.empty_like(t) for t in snapshot]
                for d, w, w0 in zip(self._scratch, params, snapshot, strict=True):
                    torch.sub(w, w0, out=d)
                tensors += self._scratch
                slots += self._delta_slots
        if tensors:
            norms += torch._foreach_norm(tensors)
        if norms:
            pack.add0("norms", norms)
        return slots, prev, light_w

    def _pack_estimate(
        self, pack: _Pack, step: int, prev: torch.Tensor | None, light_w: bool, n_layers: int
    ) -> None:
        """The update (and, on a light tick, the weights) estimated from sampled coordinates."""
        if prev is None:
            return
        # per layer, the squared change of the sampled coordinates (and the squared
        # coordinates), scaled to the parameters' sizes; the weights gathered now are those
        # before the next step
        now = self._subset()
        pack.add("est", self._layer_sums(now, prev, light_w))
        self._advance_subset(now, step)

    def _pack_records(
        self, pack: _Pack, plan: TickPlan, col: Collector, pre_vec: torch.Tensor | None
    ) -> None:
        """The hooks' per-record scalars, the activations' unit sums and their dead units."""
        act_records, bwd_records = col.act_records, col.bwd_records
        if plan.n_scalars and pre_vec is None:
            # every per-record scalar (activation sums, norms, saturated counts; backward
            # norms) in one vector: micro-batches and layers are summed on the host
            scalars = [t for rec in act_records for t in rec[1]] + [r[1] for r in bwd_records]
            if self._world > 1:
                vec = torch.stack(scalars).float().pow(plan.exponents)  # squares add up
                torch.distributed.all_reduce(vec)
                pack.add("scalars", vec)
            else:
                pack.add0("scalars", scalars)
        if not act_records:
            return
        maxima = torch.cat([rec[2] for rec in act_records])
        if any(plan.act_rsum):  # the sums of the records that carry unit sums
            if plan.record_index is None:
                rsums = maxima.view(plan.n_records, -1).sum(1)
            else:
                rsums = maxima.new_zeros(plan.n_records).index_add_(0, plan.record_index, maxima)
            if self._world > 1:
                torch.distributed.all_reduce(rsums)
            pack.add("rsums", rsums)
        if plan.unit_index is not None:  # micro-batches: max over them per unit
            maxima = maxima.new_full((plan.n_units,), -math.inf).scatter_reduce_(
                0, plan.unit_index, maxima, "amax"
            )
        if self._world > 1:
            torch.distributed.all_reduce(maxima, op=torch.distributed.ReduceOp.MAX)
        dead_units = maxima <= 0
        if plan.owner is None:  # every activation has the same number of units
            dead = dead_units.view(len(plan.act_names), -1).sum(1, dtype=torch.float32)
        else:
            dead = maxima.new_zeros(len(plan.act_names)).index_add_(
                0, plan.owner, dead_units.float()
            )
        pack.add("dead", dead)

    def _pack_extras(self, pack: _Pack, col: Collector) -> None:
        """The loss scale used, the loss, and whether the grad scaler skipped the step."""
        if col.bwd_records and self._scale_used is not None:
            pack.add("scale", self._scale_used)
        if self._loss is not None:
            loss = self._loss
            if loss.device == pack.device and loss.dim() == 0:
                pack.add0("loss", [loss])
            else:
                pack.add("loss", loss)
        if self.scaler is not None and self._scale_used is not None:
            scale_now = getattr(self.scaler, "_scale", None)
            if isinstance(scale_now, torch.Tensor):
                pack.add("scaler_skipped", (scale_now < self._scale_used).float())

    def _pack_symmetry(self, pack: _Pack, col: Collector) -> tuple[list[str], dict[str, int]]:
        """Whether this tick counts effective units (every ``symmetry_every`` ticks), and them."""
        sym_names: list[str] = []
        sym_units: dict[str, int] = {}
        if self.symmetry_every and self._ticks % self.symmetry_every == 0:
            effs: list[torch.Tensor] = []
            for n in col.layers:
                counted = layer_effective_units(
                    col.layer_modules[n], self.thresholds.symmetry_tolerance
                )
                if counted is not None:
                    sym_names.append(n)
                    effs.append(counted[0])
                    sym_units[n] = counted[1]
            if effs:
                pack.add("sym", torch.stack(effs))
            self._one_off = True
        return sym_names, sym_units

    def _tick_meta(
        self,
        step: int,
        col: Collector,
        plan: TickPlan,
        offsets: dict[str, tuple[int, int]],
        slots: list[int],
        n_grads: int,
        want_grad: bool,
        want_delta: bool,
        want_estimate: bool,
        sym_names: list[str],
        sym_units: dict[str, int],
    ) -> TickMeta:
        """What the judge needs to read the transferred values: layout, names and layers."""
        with_grad = plan.all_layers
        if want_grad and n_grads != len(self._params):
            with_grad = frozenset(
                col.layers[i]
                for i, p in zip(col.param_layer, self._params, strict=True)
                if p.grad is not None
            )
        sizes = (len(col.order), len(col.feeds))
        if sizes != self._copied_sizes:  # the forward order and feeds only ever grow
            self._copied_sizes = sizes
            self._order_copy = list(col.order) or list(col.layers)
            self._feeds_copy = dict(col.feeds)
        meta = TickMeta(
            step=step,
            with_grad=with_grad,
            offsets=offsets,
            n_layers=len(col.layers),
            norm_slots=slots,
            want_grad=want_grad,
            want_delta=want_delta,
            want_estimate=want_estimate,
            act_names=plan.act_names,
            act_n=plan.act_n,
            act_units=plan.act_units,
            bwd_names=plan.bwd_names,
            bwd_n=plan.bwd_n,
            bwd_width=plan.bwd_width,
            plan=plan,
            sym_names=sym_names,
            order=self._order_copy,  # copied when it grows: the judge may run in a thread
            feeds=self._feeds_copy,
            clipped_at=self._clipped_at,
            clean=False,
            sampling={
                "detailed": col.detail,
                "period": 1 if self.budget is None else self._period,
                "overhead": None if math.isnan(self._last_overhead) else self._last_overhead,
            },
        )
        if sym_names:
            meta.act_units = dict(plan.act_units)
            meta.act_units.update(sym_units)
        return meta

    def _judge(
        self, host: list[float], meta: TickMeta, *, synchronous: bool = False
    ) -> list[Finding]:
        """Host side of a tick: quantities from the transferred vector, rules, log line."""
        col = self._require_collector()
        step, offsets, n_layers = meta.step, meta.offsets, meta.n_layers

        def seg(key: str) -> list[float]:
            if key not in offsets:
                return []
            a, b = offsets[key]
            return host[a:b]

        q = TickQuantities(step=step, order=meta.order)
        q.feeds = meta.feeds
        q.roles = col.roles
        raw_norms = seg("gnorms") + seg("norms")
        if raw_norms:
            sq = [0.0] * (3 * n_layers)
            for v, k in zip(raw_norms, meta.norm_slots, strict=True):
                sq[k] += v * v
            norms_host = [math.sqrt(v) for v in sq]
            g_part = norms_host[:n_layers]
            w_part = norms_host[n_layers : 2 * n_layers]
            d_part = norms_host[2 * n_layers :]
            est = seg("est")
            if len(est) == 2 * n_layers:  # the weight norms estimated too
                w_part = [math.sqrt(v) if v >= 0 else math.nan for v in est[n_layers:]]
                est = est[:n_layers]
                q.weight_estimated = True
            if meta.want_grad:
                q.grad_norm = {
                    n: (g if n in meta.with_grad else math.nan)
                    for n, g in zip(col.layers, g_part, strict=True)
                }
                if not meta.clean:  # read only to decide on the non-finite path
                    q.grad_nonfinite = {
                        n: not math.isfinite(v)
                        for n, v in q.grad_norm.items()
                        if n in meta.with_grad
                    }
            q.weight_norm = dict(zip(col.layers, w_part, strict=True))
            if meta.want_delta:
                q.update_ratio = {
                    n: (d / w if w > 0 else math.nan)
                    for n, d, w in zip(col.layers, d_part, w_part, strict=True)
                    if n in meta.with_grad
                }
            elif meta.want_estimate:
                q.update_ratio = {
                    n: (math.sqrt(d) / w if w > 0 and d >= 0 else math.nan)
                    for n, d, w in zip(col.layers, est, w_part, strict=True)
                    if n in meta.with_grad
                }
                q.update_estimated = True
        plan = meta.plan
        scal = seg("scalars")
        if plan.square:
            for j in plan.norm_slots:
                scal[j] = scal[j] * scal[j]
        at = scal.__getitem__  # sum(map(at, slots)): the records of a module over micro-batches
        if meta.act_names:
            dead_host = seg("dead")
            rat = seg("rsums").__getitem__
            for i, name in enumerate(meta.act_names):
                s_sum = sum(map(at, plan.act_sum[i])) + sum(map(rat, plan.act_rsum[i]))
                ss = sum(map(at, plan.act_sq[i]))
                n = meta.act_n[name] * self._world
                units = meta.act_units[name]
                mean = s_sum / n
                q.act_mean[name] = mean
                q.act_std[name] = (
                    math.sqrt(max(ss / n - mean * mean, 0.0)) if math.isfinite(ss) else ss
                )
                q.units[name] = units
                if col.acts[name] == "relu":
                    q.dead_fraction[name] = dead_host[i] / units
                else:
                    q.saturation_fraction[name] = sum(map(at, plan.act_sat[i])) / n
        scale = seg("scale")
        scale_sq = scale[0] * scale[0] if scale else 1.0
        for i, name in enumerate(meta.bwd_names):
            sq_sum = sum(map(at, plan.bwd_sq[i])) / scale_sq
            count = meta.bwd_n[name] * self._world
            q.backward_rms[name] = math.sqrt(sq_sum / count) if sq_sum >= 0 else sq_sum
            q.backward_width[name] = meta.bwd_width[name]
        loss_vals = seg("loss")
        if loss_vals:
            q.loss = loss_vals[0]
        for name, eff in zip(meta.sym_names, seg("sym"), strict=False):
            q.effective_units[name] = eff
            q.units[name] = meta.act_units[name]
        skipped = seg("scaler_skipped")
        scaler_skipped = bool(skipped and skipped[0] > 0)
        finite_norms = [v * v for n, v in q.grad_norm.items() if n in meta.with_grad]
        total = math.sqrt(sum(finite_norms)) if finite_norms else math.nan

        return self._conclude(
            q, total, meta.clipped_at, meta.sampling, meta.clean, synchronous, scaler_skipped
        )

    def _conclude(
        self,
        q: TickQuantities,
        total: float,
        clipped_at: float | None,
        sampling: dict[str, Any],
        clean: bool,
        synchronous: bool,
        scaler_skipped: bool = False,
    ) -> list[Finding]:
        """Judge a tick's quantities, record and log them, publish the findings."""
        new: list[Finding] = []
        if scaler_skipped:
            pass  # the GradScaler saw inf/NaN and skipped the step itself: expected, not judged
        elif synchronous and (self._skipped_by_guard or (not clean and q.has_nonfinite())):
            new.extend(self._handle_nonfinite(q, q.step))
        else:
            new.extend(self._engine.evaluate(q))
        if synchronous:
            self._skipped_by_guard = False
        record = tick_record(q, grad_norm_total=total, clipped_at=clipped_at)
        record["sampling"] = sampling
        if scaler_skipped:
            record["scaler_skipped"] = True
        self._records.append(record)
        if self._writer is not None:
            # a light tick's line may wait in the writer's buffer (whole lines, at most
            # FLUSH_TICKS of them); anything else goes to the file at once, with what waits
            self._writer.write(record, hold=not (new or sampling.get("detailed", True)))
        if self._tb is not None:
            self._tb.write(q, grad_norm_total=total)
        self._publish(new)
        if synchronous:
            self._raise_if_needed(new)
        return new

    # ------------------------------------------------------------------ background judging
    def _check_worker(self) -> None:
        """Re-raise an error of the background judge in the training thread."""
        pending = self._pending
        if pending is not None and pending.done():
            self._pending = None
            pending.result()

    def _drain(self) -> None:
        """Wait until every submitted tick has been judged and logged."""
        pending = self._pending
        if pending is not None:
            self._pending = None
            pending.result()

    @property
    def findings(self) -> list[Finding]:
        """Everything found so far, in order (waits for the background judge to catch up)."""
        self._drain()
        return self._findings

    def _publish(self, new: list[Finding]) -> None:
        for f in new:
            self._findings.append(f)
            rec = finding_record(f)
            self._all_findings_records.append(rec)
            if self._writer is not None:
                self._writer.write(rec)
            if self._tb is not None:
                self._tb.finding(f)

    # ------------------------------------------------------------------ non-finite
    def _handle_nonfinite(self, q: TickQuantities, step: int) -> list[Finding]:
        col = self._require_open()
        with torch.no_grad():  # exact per-layer counts, only on this slow path
            for name in col.layers:
                grads = [
                    p.grad
                    for p in col.layer_modules[name].parameters(recurse=False)
                    if p.grad is not None
                ]
                q.grad_nonfinite_count[name] = float(
                    sum(int((~torch.isfinite(dense_grad(g))).sum()) for g in grads)
                )
        loc = self._localize(step)
        self._sub_step = -1  # the weights may have been restored: gather them again
        q.act_nonfinite = {k: float(v) for k, v in self._last_act_counts.items()}
        self.nonfinite.append(loc)
        if self._writer is not None:
            self._writer.write(nonfinite_record(loc))
        layer = loc.module if loc.module not in ("",) else "(model)"
        op = loc.op
        if loc.phase == "backward" and loc.backward_node:
            op = f"{loc.backward_node}: {loc.op}"
        self._pending_error = NonFiniteError(
            f"non-finite value at step {step}: {loc.describe()}; guard the operation (clamp "
            "the input of log/sqrt/division), lower the learning rate or clip gradients",
            module=layer,
            op=op,
            step=step,
        )
        return [nonfinite_finding(step, layer, op, f"first non-finite value: {loc.describe()}")]

    def _raise_if_needed(self, new: list[Finding]) -> None:
        err = self._pending_error
        if err is None:
            return
        self._pending_error = None
        if self.on_nonfinite == "raise":
            raise err
        if self.on_nonfinite == "warn":
            warnings.warn(str(err), NNDoctorWarning, stacklevel=3)

    def _localize(self, step: int) -> NonFiniteLocation:
        col = self._require_open()
        if col.last_inputs is None:
            return NonFiniteLocation(
                "forward", None, "", "", "<no batch recorded>", step=step, reproduced=False
            )
        params = self._params
        # the weights before the failing step, when they were copied (see _maybe_snapshot)
        before = self._snapshot if self._snapshot_step == step else None
        with torch.no_grad():
            after = [p.detach().clone() for p in params]
            if before is not None:
                torch._foreach_copy_([p.detach() for p in params], before)
            buffers = [b.detach().clone() for b in self._inner.buffers()]
        devices = sorted({p.device.index or 0 for p in params if p.device.type == "cuda"})
        args, kwargs = col.last_inputs
        try:
            with torch.random.fork_rng(devices=devices), torch.enable_grad():
                col.active = False
                col.attach(True)  # the re-run counts non-finite activations per module
                col.nonfinite_counts = {}
                loc = rerun_batch(self._inner, args, kwargs, col.last_grad_output)
                self._last_act_counts = col.nonfinite_counts
        finally:
            col.nonfinite_counts = None
            col.attach(False)
            with torch.no_grad():
                for b, saved in zip(self._inner.buffers(), buffers, strict=True):
                    b.copy_(saved)
                keep_before = before is not None and self.on_nonfinite in ("raise", "skip")
                if not keep_before:
                    torch._foreach_copy_([p.detach() for p in params], after)
        return NonFiniteLocation(
            loc.phase,
            loc.op,
            loc.module,
            loc.module_type,
            loc.source,
            loc.backward_node,
            loc.forward_op,
            step,
            loc.reproduced,
        )

    # ------------------------------------------------------------------ results
    def summary(self) -> MonitorLog:
        """What the monitor saw, as a :class:`MonitorLog` (the object :func:`read_log` gives)."""
        self._drain()
        col = self._collector
        header = header_record(
            layers=(col.layers + list(col.acts)) if col else [],
            layer_types=col.layer_types if col else {},
            thresholds=self.thresholds.to_dict(),
            every=self.every,
        )
        records = [header, *self._tick_records(), *self._all_findings_records]
        records += [nonfinite_record(loc) for loc in self.nonfinite]
        records.append(sampling_record(self.overhead()))
        return build_log(records)

    def _tick_records(self) -> list[dict[str, Any]]:
        """The ticks kept for :meth:`summary`, as records (a quiet light tick keeps its line)."""
        return [json.loads(r) if isinstance(r, str) else r for r in self._records]

    def _repr_html_(self) -> str:
        """The notebook view: the findings so far, as the report renders :meth:`summary`."""
        return notebook_renderer().monitor_html(self)  # the report's (see nndoctor._display)
