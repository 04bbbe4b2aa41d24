"""GPU self-check for the shift-correction training helpers (prints PASS/FAIL lines, < 60 s).

Run on a machine with CUDA::

    PYTHONPATH=src python benchmarks/gpu_shift_correction.py

Checks: WeightedLoss's class-weight buffer follows ``.to(device)``; the loss on the GPU equals
the CPU loss; the forward and backward passes make no host synchronization (CUDA sync debug mode
set to "error"); a weighted sampler plus weighted loss trains a small model on the GPU.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from torch import nn

from nndoctor.shift import LabelShiftEstimator, WeightedLoss, to_sample_weight, weighted_sampler

FAILED = []


def check(name: str, ok: bool, detail: str = "") -> None:
    print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")
    if not ok:
        FAILED.append(name)


def gpu_dev(dev: torch.device) -> torch.device:
    """The device a tensor created on ``dev`` reports (``cuda`` becomes ``cuda:0``)."""
    return torch.empty(0, device=dev).device


def main() -> int:
    dry_run = "--cpu" in sys.argv  # exercise the logic without a GPU (sync checks skipped)
    if not dry_run and not torch.cuda.is_available():
        print("FAIL cuda not available")
        return 1
    dev = torch.device("cpu" if dry_run else "cuda")
    torch.manual_seed(0)
    logits, target = torch.randn(256, 10), torch.randint(0, 10, (256,))
    cw = torch.rand(10) * 3
    cpu = WeightedLoss(class_weights=cw)(logits, target)
    crit = WeightedLoss(class_weights=cw).to(dev)
    check(
        "buffer on device",
        crit.class_weights is not None and crit.class_weights.device == gpu_dev(dev),
    )
    gpu = crit(logits.to(dev), target.to(dev))
    check("loss on device", gpu.device == gpu_dev(dev))
    check("gpu equals cpu", torch.allclose(gpu.cpu(), cpu, atol=1e-5), f"{gpu.item():.6f}")

    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 10)).to(dev)
    x = torch.randn(512, 20, device=dev)
    y = torch.randint(0, 10, (512,), device=dev)
    sw = torch.rand(512, device=dev)
    for reduction in () if dry_run else ("mean", "normalized", "sum"):
        loss_fn = WeightedLoss(reduction=reduction).to(dev)  # type: ignore[arg-type]
        torch.cuda.synchronize()
        try:
            torch.cuda.set_sync_debug_mode("error")
            loss = loss_fn(model(x), y, sw)
            loss.backward()
            loss_cw = crit(model(x), y)
            loss_cw.backward()
            ok = True
        except RuntimeError as err:
            ok = False
            print(err)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        check(f"no host sync ({reduction})", ok)

    # label-shift weights -> sampler + weighted loss, training on the GPU
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(10, 20)) * 2
    yl = rng.integers(0, 10, size=4000)
    X = (centers[yl] + rng.normal(size=(4000, 20))).astype(np.float32)
    probs = np.full((4000, 10), 0.01)
    probs[np.arange(4000), yl] = 0.91
    est = LabelShiftEstimator("bbse-hard", n_bootstrap=0).fit(probs, yl)
    target_rows = np.flatnonzero(yl < 3)
    res = est.estimate(probs[target_rows])
    check("label weights favour classes 0-2", bool(np.all(res.weights[:3] > 2.5)))
    sampler = weighted_sampler(
        res, yl, num_samples=2048, generator=torch.Generator().manual_seed(0)
    )
    idx = torch.tensor(list(sampler))
    share = float((torch.as_tensor(yl)[idx] < 3).float().mean())
    check("sampler draws target classes", share > 0.95, f"share {share:.3f}")
    net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 10)).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    loss_fn = WeightedLoss(class_weights=res).to(dev)
    Xd, yd = torch.from_numpy(X).to(dev), torch.from_numpy(yl).to(dev)
    sw_rows = torch.as_tensor(to_sample_weight(res, yl), device=dev)
    first = last = None
    for step in range(200):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(Xd), yd)
        loss.backward()
        opt.step()
        if step == 0:
            first = loss.detach()
        last = loss.detach()
    if first is None or last is None:
        return 1
    check("weighted training converges", bool(last < 0.2 * first),
          f"{first.item():.3f} -> {last.item():.3f}")  # fmt: skip
    check(
        "per-row weights on device",
        sw_rows.device == gpu_dev(dev) and bool(sw_rows[yd >= 3].sum() < 0.01 * sw_rows.sum()),
    )
    print("ALL PASS" if not FAILED else f"FAILED: {FAILED}")
    return 0 if not FAILED else 1


if __name__ == "__main__":
    sys.exit(main())
