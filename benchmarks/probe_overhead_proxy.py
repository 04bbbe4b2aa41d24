"""Overhead-bound proxy for the probe's GPU cost, measurable on a CPU.

With tiny tensors every op costs only its dispatch, as on a launch-bound GPU, so what remains of
the probe's cost is Python (recording the modules, building the records) and the number of ops.
A 50-layer width-8 ReLU MLP (default init) at batch 4, one thread; minimum over ``--repeats``
calls of ``probe`` and of one plain ``zero_grad(); model(x).sum().backward()``, alternated. The
probe stacks same-shape tensors as it does on a GPU.

``--against OLD/src`` also times the ``propagation.py`` and ``_layers.py`` of another checkout
(loaded beside this one; every other module comes from this one), interleaved call by call
with this one's probe and the plain pass, which keeps a shared machine's load out of the
comparison. It prints the ratios and the cut in the probe's own cost (probe minus plain).

Run (from the repository root; compare two checkouts by pointing PYTHONPATH at their src/):
    PYTHONPATH=src python benchmarks/probe_overhead_proxy.py [--repeats 60] [--rounds 3]
    PYTHONPATH=src python benchmarks/probe_overhead_proxy.py --against /tmp/old/src --repeats 300
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from nndoctor.stability import probe, propagation


def _load_aside(src: Path) -> ModuleType:
    """``propagation`` of the checkout at ``src``, with that checkout's ``_layers``."""

    def load(name: str, path: Path) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise SystemExit(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    here = src / "nndoctor" / "stability"
    saved = sys.modules["nndoctor.stability._layers"]
    sys.modules["nndoctor.stability._layers"] = load(
        "nndoctor.stability._layers_against", here / "_layers.py"
    )
    try:
        return load("nndoctor.stability.propagation_against", here / "propagation.py")
    finally:
        sys.modules["nndoctor.stability._layers"] = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--against", type=Path, default=None, help="another checkout's src/")
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

    if args.against is None:
        for r in range(args.rounds):
            a, b = best(plain), best(probed)
            print(f"round {r}: plain {a * 1e3:.2f} ms, probe {b * 1e3:.2f} ms, ratio {b / a:.2f}x")
        return
    other = _load_aside(args.against)
    other._STACK_ON_CPU = True

    def probed_other() -> None:
        other.probe(model, x)

    fns = {"plain": plain, "against": probed_other, "this": probed}
    for fn in fns.values():
        fn()
    for r in range(args.rounds):
        times: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(args.repeats):
            for k, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
        m = {k: min(v) * 1e3 for k, v in times.items()}
        cost_a, cost_t = m["against"] - m["plain"], m["this"] - m["plain"]
        print(
            f"round {r}: plain {m['plain']:.2f} ms, against {m['against']:.2f} ms "
            f"({m['against'] / m['plain']:.2f}x), this {m['this']:.2f} ms "
            f"({m['this'] / m['plain']:.2f}x); probe's own cost {cost_a:.2f} -> {cost_t:.2f} ms "
            f"({1 - cost_t / cost_a:.0%} less)"
        )


if __name__ == "__main__":
    main()
