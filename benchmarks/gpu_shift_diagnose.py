"""GPU self-check for the shift diagnosis: a CUDA model gives the same diagnosis as on the CPU.

Run (on a machine with a GPU):  PYTHONPATH=src python benchmarks/gpu_shift_diagnose.py
Prints PASS/FAIL lines; exits 1 on any FAIL; runs in well under a minute.

What it checks: `diagnose(..., model=net)` with `net` on CUDA keeps the inputs on the model's
device (one transfer of the probabilities back at the end), leaves the model's train/eval mode
as it found it, and reaches the same kind, accuracies and evidence as the same network on the CPU.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from nndoctor.shift import diagnose
from nndoctor.shift._simulate import make_shift


def main() -> int:
    if not torch.cuda.is_available():
        print("SKIP no CUDA device")
        return 0
    failures = 0

    def check(name: str, ok: bool, detail: str = "") -> None:
        nonlocal failures
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'} {name} {detail}")

    torch.manual_seed(0)
    case = make_shift("label", n_source=4000, n_target=2000, n_target_labels=300, random_state=0)
    # a small MLP trained on a separate source sample
    train = make_shift("none", n_source=4000, n_target=10, random_state=1)
    net = torch.nn.Sequential(torch.nn.Linear(6, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))
    X = torch.as_tensor(train.source_X, dtype=torch.float32)
    y = torch.as_tensor(train.source_y)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(X), y).backward()
        opt.step()
    net.train()
    cpu = diagnose(case.source_X, case.source_y, case.target_X, case.target_y, model=net,
                   random_state=0)  # fmt: skip
    gpu_net = net.to("cuda")
    t0 = time.perf_counter()
    gpu = diagnose(case.source_X, case.source_y, case.target_X, case.target_y, model=gpu_net,
                   random_state=0)  # fmt: skip
    elapsed = time.perf_counter() - t0
    check("kind", gpu.kind == cpu.kind == "label", f"cpu={cpu.kind} gpu={gpu.kind}")
    check(
        "source accuracy",
        abs(gpu.source_accuracy - cpu.source_accuracy) < 1e-3,
        f"cpu={cpu.source_accuracy:.4f} gpu={gpu.source_accuracy:.4f}",
    )
    check(
        "label weights",
        bool(np.allclose(gpu.label_weights.weights, cpu.label_weights.weights, atol=1e-3)),
    )
    check("model left on its device", next(gpu_net.parameters()).is_cuda)
    check("train mode restored", gpu_net.training)
    check("time", elapsed < 30.0, f"{elapsed:.2f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
