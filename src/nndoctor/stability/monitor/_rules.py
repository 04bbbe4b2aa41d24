"""Judge: turn the quantities of one logging tick into findings, with named thresholds.

Nothing here measures: a :class:`RuleEngine` receives a :class:`~._quantities.TickQuantities`
(host floats, already brought back from the device) and returns the new :class:`Finding` objects.
Every threshold is a field of :class:`MonitorThresholds`, documented there.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from nndoctor._results import ResultMixin
from nndoctor.exceptions import InvalidParameterError
from nndoctor.stability.monitor._quantities import TickQuantities

__all__ = ["CHECKS", "Check", "Finding", "MonitorThresholds", "RuleEngine", "Severity"]

Check = Literal[
    "vanishing", "exploding", "dead_units", "saturation", "update_ratio", "symmetry", "nonfinite"
]
Severity = Literal["info", "warning", "error"]
CHECKS: tuple[Check, ...] = get_args(Check)
_SEVERITY_ORDER: dict[str, int] = {"info": 0, "warning": 1, "error": 2}


@dataclass(frozen=True, slots=True)
class Finding(ResultMixin):
    """One problem seen during training.

    Attributes
    ----------
    check : {"vanishing", "exploding", "dead_units", "saturation", "update_ratio", "symmetry", \
"nonfinite"}
        Which rule fired.
    severity : {"info", "warning", "error"}
        How serious it is.
    layer : str
        Module path (as in ``model.named_modules()``), or ``"(model)"`` for the whole network.
    step : int
        Optimizer step (counted from 1) at which the condition was first seen.
    value : float
        The measured value the rule compared.
    threshold : float
        The threshold it crossed (a field of :class:`MonitorThresholds`).
    message : str
        What was seen, in one sentence.
    remedy : str
        What to do about it.

    Examples
    --------
    >>> f = Finding("dead_units", "error", "3", 1, 1.0, 0.99, "all units dead", "re-initialize")
    >>> f.to_dict()["check"]
    'dead_units'
    """

    check: Check
    severity: Severity
    layer: str
    step: int
    value: float
    threshold: float
    message: str
    remedy: str


@dataclass(frozen=True, slots=True)
class MonitorThresholds(ResultMixin):
    r"""The thresholds of the monitor's rules; every one is named here and nowhere else.

    The backward signal of layer :math:`l` is the root mean square of the gradient of the loss
    with respect to the layer's *output*, :math:`\delta_l = \sqrt{\overline{(\partial L/\partial
    y_l)^2}}`. The depth rule compares like with like: layers are grouped by *role*, their type
    and their module path with every number replaced by ``*``
    (:func:`~nndoctor.stability.monitor._quantities.layer_role`: ``Linear:*`` for every
    ``Linear`` of a ``Sequential``, ``Linear:encoder.layer.*.attention.self.query`` for the
    query projection of every transformer block, ``Conv2d:layer*.*.conv*`` for the convolutions
    of a ResNet's blocks). A query projection is never compared with the logits, nor a
    LayerNorm or an embedding with a matrix multiplication: their backward signals differ for
    reasons that are not depth (a query's gradient is small while attention is near uniform).
    Within a role, in forward order :math:`1..D`, the depth ratio of layer :math:`l` compares
    per-sample norms with the deepest layer of the role, :math:`\rho_l = \delta_l \sqrt{n_l} /
    (\delta_D \sqrt{n_D})` with :math:`n_l` the entries per sample of the layer's output: a
    norm-preserving layer keeps :math:`\delta_l \sqrt{n_l}` whatever its output's shape, while
    :math:`\delta_l` alone falls wherever the gradient is spread over more entries (early
    feature maps). In a network that propagates gradients well, :math:`\rho_l \approx 1`;
    with per-layer backward gain :math:`\chi`, :math:`\rho_1 \approx \chi^{D-1}`
    (Schoenholz et al., 2017). A layer with no other layer of its role is not judged by it
    (the absolute rule still is).

    A depth condition is reported once it has held for ``depth_patience`` ticks in a row, dated
    from the first of them, so that a transient of the first steps (a ratio that recovers
    within a few updates) is not read as a depth problem; a run that ends while the condition
    still holds reports it when the monitor closes, so a run shorter than the patience still
    gets its evidence.

    Attributes
    ----------
    vanishing_depth_ratio : float
        Vanishing (warning) when :math:`\min_l \rho_l` falls below this (default 1e-2).
    vanishing_depth_ratio_error : float
        Vanishing (error) below this (default 1e-5).
    vanishing_grad_ratio : float
        Vanishing by absolute level: :math:`\|g_l\| / \|w_l\|` below this for a layer
        (default 1e-7, about float32's machine epsilon: an update this small does not move
        the weights).
    exploding_depth_ratio : float
        Exploding (warning) when :math:`\max_l \rho_l` exceeds this (default 1e2).
    exploding_depth_ratio_error : float
        Exploding (error) above this (default 1e5).
    spike_factor : float
        Exploding (spike) when a layer's gradient norm exceeds this many times its running median
        and the median of its last ``spike_recent`` ticks (default 10).
    spike_window : int
        Number of past ticks in the running median (default 50; the median is refreshed every
        5 ticks).
    spike_min_history : int
        Ticks needed before spikes are judged (default 10).
    dead_fraction : float
        Dead units (warning) when this fraction of a ReLU-family layer's units output zero for the
        whole batch (default 0.5).
    dead_fraction_error : float
        Dead units (error) at or above this fraction (default 0.99).
    saturation_fraction : float
        Saturation (warning) when this fraction of a tanh/sigmoid layer's outputs lie within
        ``1 - saturation_level`` of the asymptotes (default 0.5).
    saturation_level : float
        An output :math:`y` of tanh is saturated when :math:`|y| > s`; of sigmoid when
        :math:`|y - 1/2| > s/2` (default 0.99).
    update_ratio_high : float
        Update ratio (warning) when :math:`\|\Delta w_l\| / \|w_l\|` exceeds this (default 0.1).
    update_ratio_low : float
        Update ratio (info) when it falls below this (default 1e-7).
    patience : int
        Ticks in a row that a batch-noisy condition (dead units, saturation, update ratio) must
        hold before it is reported (default 3).
    symmetry_fraction : float
        Symmetry (warning) when effective units / units falls below this (default 0.5); error
        when a layer of more than one unit has a single effective unit.
    symmetry_tolerance : float
        Two units are tied when their incoming weights (and bias) differ by at most this,
        relative to their norm (default 1e-6).
    clip_factor : float
        ``clip="auto"`` clips the total gradient norm at this many times its running median
        (default 5).
    depth_patience : int
        Ticks in a row that a depth condition (vanishing or exploding within a role) must hold
        before it is reported (default 3); see above.
    spike_recent : int
        A spike must also exceed ``spike_factor`` times the median of the last this many ticks
        (default 5): gradients that grow steadily while a model learns (an embedding's, 20x in
        30 steps of an LSTM language model) leave a 50-tick median behind, but not this one.

    Examples
    --------
    >>> MonitorThresholds(dead_fraction=0.3).dead_fraction
    0.3
    >>> MonitorThresholds(patience=0)
    Traceback (most recent call last):
    ...
    nndoctor.exceptions.InvalidParameterError: threshold patience must be >= 1, got 0
    """

    vanishing_depth_ratio: float = 1e-2
    vanishing_depth_ratio_error: float = 1e-5
    vanishing_grad_ratio: float = 1e-7
    exploding_depth_ratio: float = 1e2
    exploding_depth_ratio_error: float = 1e5
    spike_factor: float = 10.0
    spike_window: int = 50
    spike_min_history: int = 10
    dead_fraction: float = 0.5
    dead_fraction_error: float = 0.99
    saturation_fraction: float = 0.5
    saturation_level: float = 0.99
    update_ratio_high: float = 0.1
    update_ratio_low: float = 1e-7
    patience: int = 3
    symmetry_fraction: float = 0.5
    symmetry_tolerance: float = 1e-6
    clip_factor: float = 5.0
    depth_patience: int = 3
    spike_recent: int = 5

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _INT_FIELDS:
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise InvalidParameterError(f"threshold {f.name} must be >= 1, got {value}")
            elif (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise InvalidParameterError(
                    f"threshold {f.name} must be a positive finite number, got {value!r}"
                )
        for name in ("dead_fraction", "dead_fraction_error", "saturation_level"):
            if getattr(self, name) > 1:
                raise InvalidParameterError(
                    f"threshold {name} is a fraction and must lie in (0, 1], "
                    f"got {getattr(self, name)}"
                )


_MEDIAN_REFRESH = 5
_INT_FIELDS = frozenset(
    {"spike_window", "spike_min_history", "spike_recent", "patience", "depth_patience"}
)


@dataclass(slots=True)
class _Streak:
    start: int
    count: int


_ESTIMATED = " (estimated from a fixed sample of about 256 coordinates per tensor)"


@dataclass(slots=True)
class RuleEngine:
    """Stateful judge: running medians for spikes, streaks for patience, deduplication.

    A finding is reported once per (check, layer) and again only if its severity rises.

    Examples
    --------
    >>> engine = RuleEngine(MonitorThresholds())
    >>> engine.reported
    {}
    """

    thresholds: MonitorThresholds
    reported: dict[tuple[str, str], int] = field(default_factory=dict)
    _streaks: dict[tuple[str, str], _Streak] = field(default_factory=dict)
    _history: npt.NDArray[np.float64] | None = None
    _history_layers: tuple[str, ...] = ()
    _n_history: int = 0
    _median: list[float] | None = None
    #: depth conditions seen but not yet persistent, by (check, role)
    pending: dict[tuple[str, str], Finding] = field(default_factory=dict)
    _depth_streaks: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)

    # ------------------------------------------------------------------ helpers
    def _emit(self, out: list[Finding], finding: Finding) -> None:
        key = (finding.check, finding.layer)
        level = _SEVERITY_ORDER[finding.severity]
        if self.reported.get(key, -1) >= level:
            return
        self.reported[key] = level
        out.append(finding)

    def has_pending(self) -> bool:
        """Whether a condition of the activation or backward rules holds, not yet reported."""
        if self.pending:
            return True
        return any(
            k[0] in ("dead_units", "saturation") and k not in self.reported for k in self._streaks
        )

    def _streak(self, key: tuple[str, str], holds: bool, step: int) -> int | None:
        """Update a streak; return its start step once it reached ``patience`` ticks."""
        if not holds:
            self._streaks.pop(key, None)
            return None
        streak = self._streaks.get(key)
        if streak is None:
            streak = self._streaks[key] = _Streak(step, 0)
        streak.count += 1
        return streak.start if streak.count >= self.thresholds.patience else None

    def running_median(self) -> npt.NDArray[np.float64] | None:
        """Per-layer running median of the gradient norm (``None`` before any history)."""
        if self._history is None or self._n_history == 0:
            return None
        n = min(self._n_history, self._history.shape[1])
        return np.asarray(np.median(self._history[:, :n], axis=1), dtype=np.float64)

    def total_norm_median(self) -> float:
        """Running median of the total gradient norm (NaN before any history)."""
        if self._history is None or self._n_history == 0:
            return math.nan
        n = min(self._n_history, self._history.shape[1])
        totals = np.sqrt(np.sum(self._history[:, :n] ** 2, axis=0))
        return float(np.median(totals))

    # ------------------------------------------------------------------ rules
    def evaluate(self, q: TickQuantities) -> list[Finding]:
        """Judge one tick; return the findings that are new (or more severe) at this tick."""
        out: list[Finding] = []
        self._depth(q, out)
        self._absolute(q, out)
        self._spikes(q, out)
        self._activations(q, out)
        self._updates(q, out)
        self._symmetry(q, out)
        return out

    def _depth(self, q: TickQuantities, out: list[Finding]) -> None:
        # an exactly-zero signal means no gradient reaches the layer at all (dead units upstream
        # or an unused layer): the dead-units and update-ratio rules speak to that
        groups: dict[str, list[str]] = {}
        for n in q.order:
            v = q.backward_rms.get(n, math.nan)
            if math.isfinite(v) and v > 0:
                groups.setdefault(q.roles.get(n, ""), []).append(n)
        for role, names in groups.items():
            if len(names) >= 2:
                self._depth_group(q, role, names, out)

    def _depth_group(
        self, q: TickQuantities, role: str, names: list[str], out: list[Finding]
    ) -> None:
        """The depth rule within one role: each layer against the deepest layer of its role."""
        t = self.thresholds
        # compare per-sample gradient norms, ||dL/dy_l|| per row = RMS_l * sqrt(entries per
        # row): a norm-preserving layer keeps it whatever its output's shape, while the RMS per
        # entry falls with the number of entries (a 160-px ResNet's early maps have 2,500x more
        # entries per sample than its logits: a healthy network would read as "vanishing")
        widths = [math.sqrt(q.backward_width.get(n, 1)) for n in names]
        last = q.backward_rms[names[-1]] * widths[-1]
        ratios = [q.backward_rms[n] * w / last for n, w in zip(names, widths, strict=True)]
        lo = min(range(len(ratios)), key=lambda i: ratios[i])
        hi = max(range(len(ratios)), key=lambda i: ratios[i])
        kind, _, pattern = role.partition(":")
        compared = (
            f"that at {names[-1]}, the last of the {len(names)} layers of the same role "
            f"({kind} {pattern or '(root)'}) in forward order"
        )
        vanishing = None
        if ratios[lo] < t.vanishing_depth_ratio:
            error = ratios[lo] < t.vanishing_depth_ratio_error
            vanishing = Finding(
                "vanishing",
                "error" if error else "warning",
                names[lo],
                q.step,
                ratios[lo],
                t.vanishing_depth_ratio_error if error else t.vanishing_depth_ratio,
                f"the backward signal (per-sample norm of dL/dy) at {names[lo]} is "
                f"{ratios[lo]:.2g} times {compared}: gradients vanish with depth",
                "re-initialize with a scheme matched to the activation (kaiming_normal for "
                "ReLU, xavier_normal or 'critical' for tanh), add normalization "
                "(BatchNorm/LayerNorm) or residual connections, or prefer ReLU over sigmoid",
            )
        self._persist(("vanishing", role), vanishing, q.step, out)
        exploding = None
        if ratios[hi] > t.exploding_depth_ratio:
            error = ratios[hi] > t.exploding_depth_ratio_error
            exploding = Finding(
                "exploding",
                "error" if error else "warning",
                names[hi],
                q.step,
                ratios[hi],
                t.exploding_depth_ratio_error if error else t.exploding_depth_ratio,
                f"the backward signal (per-sample norm of dL/dy) at {names[hi]} is "
                f"{ratios[hi]:.3g} times {compared}: gradients grow with depth",
                "re-initialize with a smaller gain (kaiming_normal for ReLU gives "
                "fan_in·Var(W)=2), add normalization, and clip the gradient norm "
                "(Monitor(clip='auto'))",
            )
        self._persist(("exploding", role), exploding, q.step, out)

    def _persist(
        self, key: tuple[str, str], finding: Finding | None, step: int, out: list[Finding]
    ) -> None:
        """Report a depth condition once it held ``depth_patience`` ticks in a row.

        The finding is dated from the first tick of the run of ticks; until then it waits in
        :attr:`pending`, which :meth:`flush` reports when the run ends while it still holds.
        """
        if finding is None:
            self._depth_streaks.pop(key, None)
            self.pending.pop(key, None)
            return
        start, count = self._depth_streaks.get(key, (step, 0))
        self._depth_streaks[key] = (start, count + 1)
        dated = replace(finding, step=start)
        if count + 1 >= self.thresholds.depth_patience:
            self.pending.pop(key, None)
            self._emit(out, dated)
        else:
            self.pending[key] = dated

    def flush(self) -> list[Finding]:
        """At the end of a run: the depth conditions that still held but had not yet persisted."""
        out: list[Finding] = []
        for finding in self.pending.values():
            self._emit(out, finding)
        self.pending.clear()
        self._depth_streaks.clear()
        return out

    def _absolute(self, q: TickQuantities, out: list[Finding]) -> None:
        t = self.thresholds
        for name in q.order:
            g = q.grad_norm.get(name, math.nan)
            w = q.weight_norm.get(name, math.nan)
            if not (math.isfinite(g) and math.isfinite(w)) or w <= 0 or g == 0:
                continue
            ratio = g / w
            if ratio < t.vanishing_grad_ratio:
                self._emit(
                    out,
                    Finding(
                        "vanishing",
                        "warning",
                        name,
                        q.step,
                        ratio,
                        t.vanishing_grad_ratio,
                        f"the gradient of {name} is {ratio:.2g} of its weights' norm: too small "
                        "to change them in float32",
                        "re-initialize with kaiming_normal (ReLU) or xavier_normal (tanh), add "
                        "normalization, or check that the loss depends on this layer",
                    ),
                )

    def quiet_tick(
        self,
        order: tuple[str, ...],
        grads: list[float],
        weights: list[float],
        ratios: list[float],
    ) -> bool:
        """Judge a light tick that no rule can act on, at the cost of a few comparisons.

        ``grads`` and ``weights`` are the layers' gradient and weight norms in ``order`` (the
        forward order), ``ratios`` the update ratios of every layer (empty when not measured).
        When no rule would emit a finding or change its state on these values (no update-ratio
        condition holds or is pending, no layer's gradient is below ``vanishing_grad_ratio`` of
        its weights, none jumps above ``spike_factor`` times its running median), the gradient
        norms join the spike history and ``True`` is returned: exactly what :meth:`evaluate`
        would have done. Otherwise nothing changes and ``False`` is returned: call
        :meth:`evaluate`.
        """
        t = self.thresholds
        if (
            not order
            or not math.isfinite(sum(grads) + sum(weights) + sum(ratios))
            or any(k[0] in ("update_high", "update_low") for k in self._streaks)
            or self._history is None
            or self._history_layers != order
        ):
            return False
        high, low = t.update_ratio_high, t.update_ratio_low
        for r in ratios:
            if r > high or 0 <= r < low:
                return False
        vanishing = t.vanishing_grad_ratio
        for g, w in zip(grads, weights, strict=True):
            if w > 0 and g != 0 and g / w < vanishing:
                return False
        medians = self._spike_medians(order)
        if medians is not None:
            factor = t.spike_factor
            for value, med in zip(grads, medians, strict=True):
                if med > 0 and value / med > factor:
                    return False
        self._push_history(grads)
        return True

    def _spike_medians(self, layers: tuple[str, ...]) -> list[float] | None:
        """The running medians the spike rule compares with (``None`` while history is short)."""
        t = self.thresholds
        if self._history is None or self._history_layers != layers:
            self._history = np.full((len(layers), t.spike_window), np.nan)
            self._history_layers = layers
            self._n_history = 0
            self._median = None
        if self._n_history % _MEDIAN_REFRESH == 0 or self._median is None:
            median = self.running_median()  # refreshed every few ticks: np.median is slow
            self._median = None if median is None else median.tolist()
        return self._median if self._n_history >= t.spike_min_history else None

    def _push_history(self, values: list[float]) -> None:
        """Add a tick's gradient norms (in the history's layer order) to the spike history."""
        assert self._history is not None
        # a layer without a gradient this tick (unused, frozen) enters as 0 and is never judged
        self._history[:, self._n_history % self.thresholds.spike_window] = [
            v if math.isfinite(v) else _finite(v) for v in values
        ]
        self._n_history += 1

    def _spikes(self, q: TickQuantities, out: list[Finding]) -> None:
        t = self.thresholds
        layers = tuple(q.order)
        if not layers:
            return
        values = [q.grad_norm.get(n, math.nan) for n in layers]
        medians = self._spike_medians(layers)
        history = self._history
        if medians is not None and history is not None:
            # plain floats: NumPy's per-call overhead exceeds the work for a few layers
            for i, (name, value, med) in enumerate(zip(layers, values, medians, strict=True)):
                if not med > 0:
                    continue
                f = value / med
                if math.isfinite(f) and f > t.spike_factor:
                    # a jump, not a trend: gradients that grow steadily while a model learns
                    # leave the window's median behind but not the median of the last ticks
                    recent = self._recent_median(history, i)
                    if recent > med:
                        med, f = recent, value / recent
                    if not f > t.spike_factor:
                        continue
                    clip_at = t.clip_factor * self.total_norm_median()
                    self._emit(
                        out,
                        Finding(
                            "exploding",
                            "warning",
                            name,
                            q.step,
                            f,
                            t.spike_factor,
                            f"the gradient norm of {name} jumped to {f:.3g} times its running "
                            f"median ({med:.3g}, the larger of the medians over the last "
                            f"{t.spike_window} and the last {t.spike_recent} ticks)",
                            f"clip the total gradient norm at {clip_at:.3g} ({t.clip_factor:g}× "
                            "its running median; Monitor(clip='auto') does this) or lower the "
                            "learning rate",
                        ),
                    )
        self._push_history(values)

    def _recent_median(self, history: npt.NDArray[np.float64], layer: int) -> float:
        """Median gradient norm of one layer over the last ``spike_recent`` ticks."""
        window = history.shape[1]
        k = min(self.thresholds.spike_recent, self._n_history, window)
        cols = [(self._n_history - 1 - j) % window for j in range(k)]
        return float(np.median(history[layer, cols]))

    def _activations(self, q: TickQuantities, out: list[Finding]) -> None:
        t = self.thresholds
        for name, frac in q.dead_fraction.items():
            start = self._streak(("dead_units", name), frac >= t.dead_fraction, q.step)
            if start is None:
                continue
            error = frac >= t.dead_fraction_error
            feeder = q.feeds.get(name)
            src = f" (fed by {feeder})" if feeder else ""
            self._emit(
                out,
                Finding(
                    "dead_units",
                    "error" if error else "warning",
                    name,
                    start,
                    frac,
                    t.dead_fraction_error if error else t.dead_fraction,
                    f"{frac:.0%} of the units of {name}{src} output zero for every example of "
                    "the batch: they pass no gradient",
                    "re-initialize the layer that feeds them (kaiming_normal, bias 0), lower the "
                    "learning rate, or use LeakyReLU/GELU",
                ),
            )
        for name, frac in q.saturation_fraction.items():
            start = self._streak(("saturation", name), frac >= t.saturation_fraction, q.step)
            if start is None:
                continue
            self._emit(
                out,
                Finding(
                    "saturation",
                    "warning",
                    name,
                    start,
                    frac,
                    t.saturation_fraction,
                    f"{frac:.0%} of the outputs of {name} sit on the flat ends of the "
                    "nonlinearity: their gradient is almost zero",
                    "re-initialize the layer that feeds them with xavier_normal (smaller "
                    "weights), add normalization before the nonlinearity, or lower the "
                    "learning rate",
                ),
            )

    def _updates(self, q: TickQuantities, out: list[Finding]) -> None:
        t = self.thresholds
        for name, ratio in q.update_ratio.items():
            if not math.isfinite(ratio):
                continue
            start = self._streak(("update_high", name), ratio > t.update_ratio_high, q.step)
            if start is not None:
                self._emit(
                    out,
                    Finding(
                        "update_ratio",
                        "warning",
                        name,
                        start,
                        ratio,
                        t.update_ratio_high,
                        f"each step changes the weights of {name} by {ratio:.2g} of their norm"
                        + (_ESTIMATED if q.update_estimated else ""),
                        "lower the learning rate (a ratio near 1e-3 is typical) or clip gradients",
                    ),
                )
            start = self._streak(("update_low", name), 0 <= ratio < t.update_ratio_low, q.step)
            if start is not None:
                self._emit(
                    out,
                    Finding(
                        "update_ratio",
                        "info",
                        name,
                        start,
                        ratio,
                        t.update_ratio_low,
                        f"each step changes the weights of {name} by only {ratio:.2g} of their "
                        "norm" + (_ESTIMATED if q.update_estimated else ""),
                        "raise the learning rate, or look for vanishing gradients",
                    ),
                )

    def _symmetry(self, q: TickQuantities, out: list[Finding]) -> None:
        t = self.thresholds
        for name, eff in q.effective_units.items():
            units = q.units.get(name, 0)
            if units <= 1 or not math.isfinite(eff):
                continue
            frac = eff / units
            if eff <= 1 or frac < t.symmetry_fraction:
                error = eff <= 1
                self._emit(
                    out,
                    Finding(
                        "symmetry",
                        "error" if error else "warning",
                        name,
                        q.step,
                        eff,
                        1.0 if error else t.symmetry_fraction * units,
                        f"{name} has {units} units but only {eff:.0f} distinct ones: units "
                        "that start identical receive identical gradients and stay tied",
                        "re-initialize with random weights (kaiming_normal or xavier_normal); "
                        "constant initialization never breaks the tie",
                    ),
                )


def _finite(value: float) -> float:
    """NaN to 0 and infinities to the largest float (what ``np.nan_to_num`` does)."""
    if math.isnan(value):
        return 0.0
    return math.copysign(sys.float_info.max, value)


def nonfinite_finding(
    step: int, layer: str, op: str | None, message: str, *, remedy: str | None = None
) -> Finding:
    """The finding for the first non-finite value (always an error)."""
    return Finding(
        "nonfinite",
        "error",
        layer,
        step,
        math.nan,
        math.inf,
        message,
        remedy
        or (
            "guard the operation (clamp before log/sqrt/division, e.g. torch.log(x.clamp_min("
            "1e-12))), lower the learning rate, or clip gradients"
        ),
    )


def worst(findings: Sequence[Finding]) -> str:
    """The worst severity among findings, ``"ok"`` when there is none.

    Examples
    --------
    >>> worst([])
    'ok'
    """
    if not findings:
        return "ok"
    return max((f.severity for f in findings), key=lambda s: _SEVERITY_ORDER[s])
