"""The monitor on the real-architecture corpus: findings of a short run per model.

For every model of ``tests/stability/arch_corpus.py`` (healthy and broken variants), trains
``STEPS`` steps with the optimizer the family is usually trained with, under
``Monitor(on_nonfinite="warn")``, and prints the loss and every warning/error finding.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/monitor_architectures.py [STEPS] [FAMILY ...]
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "stability"))

from arch_corpus import CORPUS, build, train_steps

from nndoctor import Monitor


def main(steps: int, only: list[str]) -> None:
    """Print one block per corpus case."""
    torch.set_num_threads(1)
    for family, variant, expected in CORPUS:
        if only and family not in only:
            continue
        case = build(family, variant)
        torch.manual_seed(0)  # dropout
        opt = case.optimizer(case.model.parameters())
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # on_nonfinite="warn" on the diverging variants
            with Monitor(case.model, on_nonfinite="warn") as mon:
                losses = train_steps(case, steps, optimizer=opt, step_hook=mon.step)
        serious = [f for f in mon.findings if f.severity != "info"]
        print(
            f"{family}/{variant} [{expected}] loss {losses[0]:.3f} -> {losses[-1]:.3f} "
            f"({time.perf_counter() - t0:.1f} s): {len(serious) or 'no'} finding(s)"
        )
        seen: set[tuple[str, str]] = set()
        for f in serious:
            if (f.check, f.layer) in seen:  # a non-finite value seen again at every step
                continue
            seen.add((f.check, f.layer))
            print(f"    {f.severity} {f.check} {f.layer} step {f.step} value {f.value:.3g}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30, sys.argv[2:])
