"""Kernel-launch proxy for the probe's GPU cost, measurable on a CPU: aten ops per call.

On a GPU a small op costs about its launch, so the probe's time relative to one plain
forward+backward follows the number of ops it issues. This counts, with ``torch.profiler``, the
top-level aten ops (those not called from inside another aten op) and the leaf aten ops (about
one kernel each; ``_foreach_*`` ops count once per tensor here but are fused on a GPU) of one
``probe`` and of one plain ``model.zero_grad(); model(x).sum().backward()``. ``--gpu-path``
makes the probe stack same-shape tensors as it does on a GPU (by default it reduces them one
by one on the CPU, where launches are cheap and the copy is not).

Run:
    PYTHONPATH=src python benchmarks/probe_opcount.py [--gpu-path]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_probe import deep_mlp, resnet18_like
from nndoctor.stability import probe, propagation


def count(fn: Callable[[], object]) -> tuple[int, int]:
    fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    ops = [e for e in prof.events() if e.name.startswith("aten::")]
    leaf = [e for e in ops if not any(c.name.startswith("aten::") for c in e.cpu_children)]
    top = [e for e in ops if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")]
    return len(top), len(leaf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gpu-path", action="store_true")
    args = parser.parse_args()
    if args.gpu_path:
        propagation._STACK_ON_CPU = True
    torch.manual_seed(0)
    cases: list[tuple[str, nn.Module, torch.Tensor]] = [
        ("MLP 50x1024, batch 64", deep_mlp(), torch.randn(64, 1024)),
        ("ResNet-18-shaped CNN, batch 64, 64x64", resnet18_like(), torch.randn(64, 3, 64, 64)),
    ]
    print("| model | plain top / leaf ops | probe top / leaf ops | ratio top / leaf |")
    print("|---|---:|---:|---:|")
    for name, model, x in cases:

        def plain(model: nn.Module = model, x: torch.Tensor = x) -> None:
            model.zero_grad(set_to_none=True)
            model(x).sum().backward()

        p = count(plain)
        q = count(lambda model=model, x=x: probe(model, x))
        print(
            f"| {name} | {p[0]} / {p[1]} | {q[0]} / {q[1]} | "
            f"{q[0] / p[0]:.2f}x / {q[1] / p[1]:.2f}x |"
        )


if __name__ == "__main__":
    main()
