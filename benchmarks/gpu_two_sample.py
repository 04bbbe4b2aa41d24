"""GPU self-check for the MMD two-sample test (prints PASS/FAIL lines; under a minute).

Run from the repository root on a machine with CUDA::

    PYTHONPATH=$PWD/src python3 benchmarks/gpu_two_sample.py

Checks: CUDA tensors are tested on the GPU (the result equals the CPU's for the same seed);
20k vs 20k with 1,000 permutations fits and runs; 1M vs 1M (d = 32) runs the linear-time test.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from nndoctor.shift.two_sample import mmd_test


def report(name: str, ok: bool, detail: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)
    return ok


def main() -> int:
    if not torch.cuda.is_available():
        print("FAIL  cuda: torch.cuda.is_available() is False")
        return 1
    dev = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
    rng = np.random.default_rng(0)
    ok = True

    # 1. same answer on GPU and CPU
    x = rng.normal(size=(2000, 32))
    y = rng.normal(size=(2000, 32)) + 0.05
    cpu = mmd_test(x, y, n_permutations=200, random_state=1)
    gx, gy = torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev)
    mmd_test(gx[:100], gy[:100], n_permutations=10, random_state=0)  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    gpu = mmd_test(gx, gy, n_permutations=200, random_state=1)
    dt = time.perf_counter() - t0
    same = abs(gpu.statistic - cpu.statistic) <= 1e-9 * max(1.0, abs(cpu.statistic)) + 1e-12
    ok &= report(
        "gpu equals cpu (2000 vs 2000, d=32, B=200)",
        bool(same and abs(gpu.pvalue - cpu.pvalue) <= 2 / 201),
        f"MMD² {gpu.statistic:.6g} vs {cpu.statistic:.6g}, p {gpu.pvalue:.4g} vs "
        f"{cpu.pvalue:.4g}, {dt * 1e3:.0f} ms on GPU",
    )

    # 2. 20k vs 20k, 1000 permutations, memory-bounded blocks
    x20 = torch.randn(20_000, 32, device=dev, dtype=torch.float64)
    y20 = torch.randn(20_000, 32, device=dev, dtype=torch.float64)
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    res = mmd_test(x20, y20, n_permutations=1000, random_state=0)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30
    ok &= report(
        "20k vs 20k, B=1000",
        bool(res.method == "mmd-permutation" and 0 < res.pvalue <= 1 and dt < 60),
        f"{dt:.2f} s, peak GPU memory {peak:.2f} GiB, p = {res.pvalue:.3g}",
    )

    # 3. 1M vs 1M, linear time
    x1m = torch.randn(1_000_000, 32, device=dev)
    y1m = torch.randn(1_000_000, 32, device=dev)
    y1m[:, 0] += 0.2
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    res = mmd_test(x1m, y1m, random_state=0)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    ok &= report(
        "1M vs 1M, d=32 (auto -> block test)",
        bool(res.method == "mmd-block" and res.drift_detected and dt < 60),
        f"{dt:.2f} s, {res.details['n_blocks']} blocks, p = {res.pvalue:.3g}",
    )
    print("ALL PASS" if ok else "SOME FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
