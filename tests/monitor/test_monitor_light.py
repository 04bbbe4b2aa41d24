"""The quiet light tick: judged in a few comparisons, logged from a template, as in full."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from _monitor_helpers import data, he_, mlp
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nndoctor import Monitor
from nndoctor.stability.monitor._log import _ENCODER, light_line_template
from nndoctor.stability.monitor._monitor import MAX_PERIOD
from nndoctor.stability.monitor._quantities import TickQuantities
from nndoctor.stability.monitor._rules import MonitorThresholds, RuleEngine

_names = st.lists(
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=6),
    min_size=1,
    max_size=4,
    unique=True,
)
_floats = st.floats(allow_nan=False, allow_infinity=False)


@given(
    names=_names,
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    values=st.lists(_floats, min_size=3 + 3 * 4 + 2, max_size=3 + 3 * 4 + 2),
    step=st.integers(0, 10**9),
    period=st.integers(1, MAX_PERIOD),
    overhead=st.none() | _floats,
)
def test_the_light_line_is_the_line_the_encoder_writes(
    names: list[str],
    flags: tuple[bool, bool, bool],
    values: list[float],
    step: int,
    period: int,
    overhead: float | None,
) -> None:
    """Names with ``%``, quotes, backslashes and any character; any finite float."""
    update, with_loss, clipped = flags
    it = iter(values)
    record: dict[str, Any] = {"kind": "tick", "step": step, "time": next(it)}
    record["grad_norm_total"] = next(it)
    layers: dict[str, dict[str, float]] = {}
    args: list[Any] = [step, record["time"], record["grad_norm_total"]]
    for name in names:
        layer = {"grad_norm": next(it), "weight_norm": next(it)}
        if update:
            layer["update_ratio"] = next(it)
        layers[name] = layer
        args += layer.values()
    record["layers"] = layers
    if with_loss:
        record["loss"] = next(it)
        args.append(record["loss"])
    if update:
        record["update_ratio_estimated"] = True
    record["weight_norm_estimated"] = True
    if clipped:
        record["clipped_at"] = next(it)
        args.append(record["clipped_at"])
    record["sampling"] = {"detailed": False, "period": period, "overhead": overhead}
    args += [period, "null" if overhead is None else repr(overhead)]
    line = light_line_template(names, update, with_loss, clipped) % tuple(args)
    assert line == _ENCODER.encode(record)


def _spike(step: int) -> float:
    return 30.0 if step == 22 else 1.0


def _vanish(step: int) -> float:
    return 1e-12 if step >= 18 else 1.0


def _train(
    scenario: str, log_dir: Path, monkeypatch: pytest.MonkeyPatch, quiet: bool
) -> tuple[Monitor, list[tuple[Any, ...]]]:
    monkeypatch.setattr(Monitor, "_choose_period", lambda self: MAX_PERIOD)
    if not quiet:
        monkeypatch.setattr(Monitor, "_quiet", lambda self, *args: False)
    torch.manual_seed(0)
    model = he_(mlp(3, 16))
    if scenario == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=0.5)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scale = {"spike": _spike, "vanishing": _vanish}.get(scenario, lambda step: 1.0)
    X, y = data()
    found: list[tuple[Any, ...]] = []
    with Monitor(model, log_dir=log_dir) as mon:
        for step in range(1, 41):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(X[:64]), y[:64]) * scale(step)
            loss.backward()
            opt.step()
            for f in mon.step(loss):
                found.append((step, f.check, f.severity, f.layer, f.step, f.value, f.message))
    return mon, found


def _lines(log_dir: Path) -> list[dict[str, Any]]:
    out = []
    for line in (log_dir / "monitor.jsonl").read_text().splitlines():
        rec = json.loads(line)
        rec.pop("time", None)
        if rec["kind"] == "tick":
            rec["sampling"].pop("overhead")  # the monitor's own timing: differs run to run
        if rec["kind"] == "sampling":
            continue
        out.append(rec)
    return out


@pytest.mark.parametrize("scenario", ["healthy", "adam", "spike", "vanishing"])
def test_quiet_light_ticks_are_judged_and_logged_as_the_full_path_does(
    scenario: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same findings, at the same steps, and the same log, with and without the quiet path;
    the quiet path was taken, and in the faulty runs the rules did find something."""
    fast, found_fast = _train(scenario, tmp_path / "fast", monkeypatch, quiet=True)
    monkeypatch.undo()
    full, found_full = _train(scenario, tmp_path / "full", monkeypatch, quiet=False)
    assert found_fast == found_full
    assert _lines(tmp_path / "fast") == _lines(tmp_path / "full")
    assert fast.summary().to_dict()["findings"] == full.summary().to_dict()["findings"]
    quiet = sum(isinstance(r, str) for r in fast._records)
    assert quiet >= 5
    assert not any(isinstance(r, str) for r in full._records)
    checks = {f[1] for f in found_fast if f[2] != "info"}
    expected = {"adam": "update_ratio", "spike": "exploding", "vanishing": "vanishing"}
    if scenario == "healthy":
        assert not checks
    else:
        assert expected[scenario] in checks
    assert all(math.isfinite(f[5]) for f in found_fast)


def _state(engine: RuleEngine) -> dict[str, Any]:
    history = engine._history
    return {
        "reported": dict(engine.reported),
        "streaks": {k: (s.start, s.count) for k, s in engine._streaks.items()},
        "history": None if history is None else np.nan_to_num(history, nan=-1.0).tolist(),
        "n": engine._n_history,
        "median": engine._median,
        "pending": dict(engine.pending),
    }


# values around every threshold: vanishing 1e-7 of the weights, update ratios 1e-7 and 0.1,
# spikes at 10x the running median
# (most ratios in the quiet band, so that many ticks get as far as the gradient checks)
_GRADS = (1.0, 0.0, 1e-9, 1e-6, 0.5, 2.0, 9.0, 11.0, 50.0)
_RATIOS = (1e-3, 1e-6, 0.05, 0.099, 1e-3, 1e-3, 0.0, 1e-8, 0.11, 0.5)
_grad = st.sampled_from(_GRADS)
_ratio = st.sampled_from(_RATIOS)


@settings(max_examples=400)
@given(
    prefix=st.lists(st.tuples(st.lists(_grad, min_size=3, max_size=3),
                              st.lists(_ratio, min_size=3, max_size=3)), max_size=12),
    grads=st.lists(_grad, min_size=3, max_size=3),
    ratios=st.lists(_ratio, min_size=3, max_size=3),
)  # fmt: skip
def test_a_quiet_tick_is_one_on_which_evaluate_finds_and_changes_nothing_else(
    prefix: list[tuple[list[float], list[float]]], grads: list[float], ratios: list[float]
) -> None:
    """Whatever the history (streaks, spikes, reported findings): when ``quiet_tick`` says
    quiet, ``evaluate`` on the same tick emits nothing and leaves the same state; when it says
    not quiet, ``evaluate`` then finds and leaves what it would have without it."""
    _check_quiet(prefix, grads, ratios)


_NAMES = ["a", "b", "c"]
_WEIGHTS = [1.0, 2.0, 4.0]


def _tick(step: int, g: list[float], r: list[float]) -> TickQuantities:
    q = TickQuantities(step=step, order=_NAMES)
    q.grad_norm = dict(zip(_NAMES, g, strict=True))
    q.weight_norm = dict(zip(_NAMES, _WEIGHTS, strict=True))
    q.update_ratio = dict(zip(_NAMES, r, strict=True))
    q.update_estimated = q.weight_estimated = True
    return q


def _check_quiet(
    prefix: list[tuple[list[float], list[float]]], grads: list[float], ratios: list[float]
) -> bool:
    engine = RuleEngine(MonitorThresholds(spike_min_history=3))
    for step, (g, r) in enumerate(prefix):
        engine.evaluate(_tick(step, g, r))
    twin = copy.deepcopy(engine)
    q = _tick(len(prefix), grads, ratios)
    quiet = engine.quiet_tick(tuple(_NAMES), grads, _WEIGHTS, ratios)
    if quiet:
        assert twin.evaluate(q) == []
    else:
        assert engine.evaluate(q) == twin.evaluate(q)
    assert _state(engine) == _state(twin)
    return quiet


@pytest.mark.parametrize("history", [1, 3, 4, 7])
def test_each_threshold_of_a_quiet_tick_is_the_rules_threshold(history: int) -> None:
    """After ``history`` calm ticks, one layer's gradient and update ratio swept over values on
    both sides of every threshold (the others calm): both outcomes occur, and each agrees with
    :meth:`evaluate`."""
    calm = ([1.0, 1.0, 1.0], [1e-3, 1e-3, 1e-3])
    outcomes = set()
    for layer in range(3):
        for g in _GRADS:
            for r in _RATIOS:
                grads, ratios = list(calm[0]), list(calm[1])
                grads[layer], ratios[layer] = g, r
                outcomes.add(_check_quiet([calm] * history, grads, ratios))
    assert outcomes == {True, False}
