"""Overhead-bound proxy for the probe's GPU cost, measurable on a CPU.

With tiny tensors every op costs only its dispatch, as on a launch-bound GPU, so what remains of
the probe's cost is Python (hooks, building the records) and the number of ops. A 50-layer
width-8 ReLU MLP (default init) at batch 4, one thread; minimum over ``--repeats`` calls of
``probe`` and of one plain ``zero_grad(); model(x).sum().backward()``, alternated. The probe
stacks same-shape tensors as it does on a GPU.

Run (from the repository root; compare two checkouts by pointing PYTHONPATH at their src/):
    PYTHONPATH=src python benchmarks/probe_overhead_proxy.py [--repeats 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn

from nndoctor.stability import probe, propagation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--depth", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)
    propagation._STACK_ON_CPU = True  # the GPU path
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(args.depth):
        layers += [nn.Linear(8, 8), nn.ReLU()]
    model = nn.Sequential(*layers)
    x = torch.randn(4, 8)

    def plain() -> None:
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()

    def probed() -> None:
        probe(model, x)

    def best(fn: Callable[[], None]) -> float:
        fn()
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    for r in range(args.rounds):
        a, b = best(plain), best(probed)
        print(f"round {r}: plain {a * 1e3:.2f} ms, probe {b * 1e3:.2f} ms, ratio {b / a:.2f}x")


if __name__ == "__main__":
    main()
