"""Does ShiftMonitor name the kind of change right on river's drift streams? (issue 16, item 4)

Run:  OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_stream_kind.py [--seeds 5]
      [--kswin-seeds 2]   (KSWIN runs a KS test at every row, ~14 s a stream: on the first seeds)

Streams (``nndoctor.shift._simulate.make_river_stream``): 2,000 rows train the model, 2,000 more
are the monitor's reference, then 10,000 stream rows with the change at row 5,000:

* SEA (Street & Kim 2001, river's ``synth.SEA``, class noise 0.1), threshold variant 0 -> 1, 2, 3:
  P(x) fixed, P(y|x) changes (concept); logistic regression;
* Agrawal (Agrawal et al. 1993, river's ``synth.Agrawal``), classification function 0 -> 2 (P(y)
  0.68 -> 0.54) and 1 -> 3 (P(y) 0.38 -> 0.38): concept; a depth-6 decision tree;
* label: SEA rows drawn class by class (P(x|y) fixed), P(y = 1) 0.64 -> 0.30;
* covariate: SEA rows kept with probability x0 / 10 after the change (P(y|x) fixed; P(x) and P(y)
  move);
* none: SEA throughout (every alarm is false).

Methods: ``ShiftMonitor`` (defaults; features, predictions and labels in batches of 100 rows) and
each river detector alone on the model's 0/1 error stream, row by row. Reported over the seeds:
median delay (rows from the change to the first alarm at or after it; the monitor's alarm is its
first declared change) with the misses, false alarms per 10,000 rows (alarms before the change,
or anywhere on "none"), and the kind the monitor names — with today's rule and with the rule
before issue 16 (the labels' test firing meant "label"), read from the same signals.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections import Counter
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from bench_stream import raw_alarms  # the river detector alone on the error stream
from nndoctor.shift import ShiftMonitor
from nndoctor.shift._simulate import DriftStream, make_river_stream

N_TRAIN, N_REF, N_STREAM, CHANGE, BATCH = 2000, 2000, 10_000, 5000, 100
DETECTORS = ("adwin", "ddm", "eddm", "hddm_a", "hddm_w", "page_hinkley", "kswin")
STREAMS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("SEA 0→1", "sea", {"before": 0, "after": 1}),
    ("SEA 0→2", "sea", {"before": 0, "after": 2}),
    ("SEA 0→3", "sea", {"before": 0, "after": 3}),
    ("Agrawal 0→2", "agrawal", {"before": 0, "after": 2}),
    ("Agrawal 1→3", "agrawal", {"before": 1, "after": 3}),
    ("label (SEA, P(y=1) .64→.30)", "label", {}),
    ("covariate (SEA, keep x0/10)", "covariate", {}),
    ("none (SEA)", "none", {}),
)


def old_kind(signals: tuple[str, ...]) -> str:
    """The rule before issue 16, from the same signals."""
    s = set(signals)
    inputs = s & {"features", "predictions"}
    if "labels" in s:
        return "label"
    if inputs and "error_rate" in s:
        return "mixed"
    return "covariate" if inputs else "concept"


def model_for(stream: DriftStream) -> Any:
    if stream.name == "agrawal":
        return DecisionTreeClassifier(max_depth=6, random_state=0).fit(*stream.train)
    return LogisticRegression().fit(*stream.train)


def run_monitor(stream: DriftStream, pred: np.ndarray, seed: int) -> list[Any]:
    Xr, yr = stream.reference
    model_ref = model_for(stream).predict(Xr)
    mon = ShiftMonitor(random_state=seed).fit(Xr, predictions=model_ref, labels=yr)
    for a in range(0, stream.y.size, BATCH):
        b = a + BATCH
        mon.update(stream.X[a:b], predictions=pred[a:b], labels=stream.y[a:b], time=a)
    return list(mon.report().changes)


def summary(alarms: list[list[int]], change: int | None) -> tuple[str, str]:
    """'median delay (missed k)' and false alarms per 10k rows, over seeds."""
    if change is None:
        fa = np.mean([len(a) for a in alarms]) / N_STREAM * 10_000
        return "–", f"{fa:.2f}"
    delays = [next((x - change for x in a if x >= change), None) for a in alarms]
    hit = [d for d in delays if d is not None]
    missed = len(delays) - len(hit)
    fa = np.mean([sum(x < change for x in a) for a in alarms]) / change * 10_000
    med = f"{np.median(hit):.0f}" if hit else "–"
    return (med + (f" ({missed} missed)" if missed else "")), f"{fa:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--kswin-seeds", type=int, default=2)
    args = parser.parse_args()
    t0 = time.perf_counter()
    print(
        f"machine: {platform.processor() or platform.machine()}, seeds={args.seeds}, "
        f"KSWIN on the first {args.kswin_seeds}"
    )
    methods = ("ShiftMonitor", *DETECTORS)
    delay_rows, fa_rows, kind_rows = [], [], []
    for label, name, opts in STREAMS:
        alarms: dict[str, list[list[int]]] = {m: [] for m in methods}
        kinds: Counter[str] = Counter()
        olds: Counter[str] = Counter()
        pvals: list[float] = []
        for seed in range(args.seeds):
            stream = make_river_stream(
                name,
                n_train=N_TRAIN,
                n_reference=N_REF,
                n_stream=N_STREAM,
                change_at=CHANGE,
                random_state=seed,
                **opts,
            )
            pred = model_for(stream).predict(stream.X)
            errors = (pred != stream.y).astype(np.int64)
            changes = run_monitor(stream, pred, seed)
            alarms["ShiftMonitor"].append([c.sample for c in changes])
            after = [c for c in changes if c.sample >= CHANGE]
            if name != "none":
                kinds[after[0].kind if after else "missed"] += 1
                olds[old_kind(after[0].signals) if after else "missed"] += 1
                if after and after[0].consistency_rows:
                    pvals.append(after[0].consistency_pvalue)
            for det in DETECTORS:
                if det != "kswin" or seed < args.kswin_seeds:
                    alarms[det].append(raw_alarms(det, errors, seed))
        change = None if name == "none" else CHANGE
        cells = [summary(alarms[m], change) for m in methods]
        delay_rows.append(f"| {label} | " + " | ".join(c[0] for c in cells) + " |")
        fa_rows.append(f"| {label} | " + " | ".join(c[1] for c in cells) + " |")
        if name != "none":
            fmt = ", ".join(f"{k} {v}" for k, v in kinds.most_common())
            fmt_old = ", ".join(f"{k} {v}" for k, v in olds.most_common())
            p = f"{np.median(pvals):.2g} ({len(pvals)})" if pvals else "– (0)"
            kind_rows.append(f"| {label} | {fmt} | {fmt_old} | {p} |")
        print(f"  {label}: {time.perf_counter() - t0:.0f} s", flush=True)
    head = "| stream | " + " | ".join(methods) + " |"
    rule = "|---" * (len(methods) + 1) + "|"
    print("\nMedian detection delay (rows after the change; misses in brackets)\n")
    print("\n".join([head, rule, *delay_rows]))
    print("\nFalse alarms per 10,000 rows (before the change; anywhere on 'none')\n")
    print("\n".join([head, rule, *fa_rows]))
    print("\nKind named by ShiftMonitor (first change after the change row)\n")
    print("| stream | kind named | rule before issue 16 | label-shift check p (median, runs) |")
    print("|---|---|---|---|")
    print("\n".join(kind_rows))
    print(f"\ntotal time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
