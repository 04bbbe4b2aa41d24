"""Streaming detection: nndoctor's ShiftMonitor (a vote of river detectors) vs each detector alone.

Run:  PYTHONPATH=src python benchmarks/bench_stream.py [--reps 100]

Two streams of 0/1 errors, one row at a time:
* stationary: error rate 0.10 for 10,000 rows — every alarm is false;
* step: error rate 0.10 for 5,000 rows, then 0.30 (a concept change) for 5,000 more — the delay
  is the number of rows from the change to the first alarm after it; an alarm before it is false.

Reported per method: false alarms per 10,000 stationary rows (mean), the share of stationary
streams with at least one alarm, the median and 90th-percentile delay, and missed changes.
The monitor is fed batches of 100 rows (predictions and labels), the raw detectors single rows.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from nndoctor.shift import ShiftMonitor
from nndoctor.shift.stream import DEFAULT_DETECTORS, _make_detector

N = 10_000
CHANGE = 5_000
BATCH = 100


def error_stream(rng: np.random.Generator, step: bool) -> np.ndarray:
    p = np.full(N, 0.10)
    if step:
        p[CHANGE:] = 0.30
    return (rng.random(N) < p).astype(np.int64)


def raw_alarms(name: str, errors: np.ndarray, seed: int) -> list[int]:
    det = _make_detector(name, seed)
    out = []
    for i, e in enumerate(errors.tolist()):
        det.update(e)
        if det.drift_detected:
            out.append(i)
    return out


def monitor_alarms(errors: np.ndarray, seed: int, min_votes: int) -> list[int]:
    mon = ShiftMonitor(min_votes=min_votes, prediction_rates=False, random_state=seed).fit()
    for start in range(0, N, BATCH):
        e = errors[start : start + BATCH]
        labels = np.zeros(e.size, dtype=np.int64)
        mon.update(predictions=e, labels=labels)
    rep = mon.report()
    wanted = "vote" if min_votes > 1 else None
    return [
        ev.sample
        for ev in rep.events
        if ev.signal == "error_rate" and (wanted is None or ev.detector == wanted)
    ]


def summarise(name: str, stationary: list[list[int]], step: list[list[int]]) -> str:
    fa = np.array([len(a) for a in stationary], dtype=float)
    delays, missed, early = [], 0, 0
    for alarms in step:
        early += sum(a < CHANGE for a in alarms)
        after = [a for a in alarms if a >= CHANGE]
        if after:
            delays.append(after[0] - CHANGE)
        else:
            missed += 1
    d = np.array(delays, dtype=float) if delays else np.array([np.nan])
    return (
        f"| {name} | {fa.mean():.2f} | {np.mean(fa > 0):.2f} | {np.median(d):.0f} | "
        f"{np.percentile(d, 90):.0f} | {missed}/{len(step)} | {early / len(step):.2f} |"
    )


def full_monitor(reps: int) -> str:
    """The whole monitor on Gaussian-class streams (features, predictions, labels).

    60 batches of 100 rows after a 1,000-row reference; the change (if any) at batch 30.
    """
    from sklearn.linear_model import LogisticRegression

    from nndoctor.shift._simulate import make_stream

    lines = [
        "| stream | P(any alarm before the change) | median delay (rows) | p90 delay | "
        "missed | kind right |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ("none", "concept", "covariate", "label"):
        early = 0
        delays: list[int] = []
        missed = right = 0
        for seed in range(reps):
            (Xr, yr), batches = make_stream(kind, random_state=seed)
            model = LogisticRegression().fit(Xr, yr)
            mon = ShiftMonitor(random_state=seed).fit(Xr, predictions=model.predict(Xr), labels=yr)
            for t, (X, y) in enumerate(batches):
                mon.update(X, predictions=model.predict(X), labels=y, time=t)
            changes = mon.report().changes
            early += any(c.batch < 30 for c in changes)
            after = [c for c in changes if c.batch >= 30]
            if kind == "none":
                continue
            if after:
                delays.append(after[0].sample - 30 * 100)
                right += after[0].kind == kind
            else:
                missed += 1
        d = np.array(delays, dtype=float) if delays else np.array([np.nan])
        lines.append(
            f"| {kind} | {early / reps:.2f} | {np.median(d):.0f} | {np.percentile(d, 90):.0f} | "
            f"{missed}/{reps} | {right}/{reps} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(20261127)
    streams_stat = [error_stream(rng, False) for _ in range(args.reps)]
    streams_step = [error_stream(rng, True) for _ in range(args.reps)]
    t0 = time.perf_counter()
    print(f"machine: {platform.processor() or platform.machine()}, reps={args.reps}")
    print(
        "| method | false alarms / 10k rows | P(any false alarm) | median delay | "
        "p90 delay | missed | false alarms before change |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in (*DEFAULT_DETECTORS, "eddm", "kswin"):
        # KSWIN runs a KS test at every row (~0.3 ms): a fifth of the streams keep it short
        reps = max(1, args.reps // 5) if name == "kswin" else args.reps
        stat = [raw_alarms(name, s, i) for i, s in enumerate(streams_stat[:reps])]
        step = [raw_alarms(name, s, i) for i, s in enumerate(streams_step[:reps])]
        print(summarise(f"river {name} alone", stat, step), flush=True)
    for votes in (1, 2, 3):
        stat = [monitor_alarms(s, i, votes) for i, s in enumerate(streams_stat)]
        step = [monitor_alarms(s, i, votes) for i, s in enumerate(streams_step)]
        label = f"ShiftMonitor, vote {votes} of {len(DEFAULT_DETECTORS)}"
        print(summarise(label, stat, step), flush=True)
    print()
    print(full_monitor(args.reps))
    print(f"total time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
