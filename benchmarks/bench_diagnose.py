"""How often is the diagnosis right? Seeded trials per kind of shift, with known truth.

Run:  OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_diagnose.py [--trials 300]

Data: nndoctor.shift._simulate.make_shift — 4 Gaussian classes (+2 nuisance coordinates),
2,000 labeled source rows, 1,000 target rows. Covariate: +1 sd along a within-class nuisance
direction; label: Dirichlet(1) target prior with total variation >= 0.15; concept: classes 0 and 1
swapped; mixed: covariate + concept; none: a fresh source sample. Concept and mixed get 200
target labels; "none", "covariate" and "label" run both without and with 200 labels (with
labels the concept tests run too, and may add false "concept"/"mixed" calls).
Model: the default (logistic regression on half the source).
"""

from __future__ import annotations

import argparse
import collections
import platform
import time

from nndoctor.shift import diagnose
from nndoctor.shift._simulate import make_shift

CASES = (
    ("none", 0),
    ("none", 200),
    ("covariate", 0),
    ("covariate", 200),
    ("label", 0),
    ("label", 200),
    ("concept", 200),
    ("mixed", 200),
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--offset", type=int, default=10_000, help="first seed")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, trials per case: {args.trials}")
    print("| truth | target labels | right | diagnoses | CPU s / diagnosis |")
    print("|---|---|---|---|---|")
    for kind, labels in CASES:
        counts: collections.Counter[str] = collections.Counter()
        t0 = time.process_time()
        for seed in range(args.offset, args.offset + args.trials):
            case = make_shift(kind, n_target_labels=labels, random_state=seed)
            d = diagnose(
                case.source_X, case.source_y, case.target_X, case.target_y, random_state=seed
            )
            counts[d.kind] += 1
        per = (time.process_time() - t0) / args.trials
        share = counts[kind] / args.trials
        dist = ", ".join(f"{k} {v}" for k, v in counts.most_common())
        print(f"| {kind} | {labels} | {share:.3f} | {dist} | {per:.3f} |", flush=True)


if __name__ == "__main__":
    main()
