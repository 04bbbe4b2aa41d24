"""Self-check of the training monitor on a CUDA GPU; prints PASS/FAIL lines (< 60 s).

Run on a machine with a GPU::

    PYTHONPATH=src python benchmarks/gpu_monitor.py

Checks: statistics stay on the device (no host synchronization on non-tick steps, at most a
couple per tick; the CPU-only optimizer pre-step check is not installed, the weights are copied
on the device before each tick instead); bitwise identity of a monitored run; NaN
localization on the GPU, forward and backward (autograd runs CUDA backward in its own thread),
with the weights restored to those before the failing step; GradScaler gradients reported
unscaled; step-time overhead on a large and a small MLP.
"""

from __future__ import annotations

import sys
import time
import warnings

import torch
from torch import nn

from nndoctor import Monitor
from nndoctor.exceptions import NonFiniteError

RESULTS: list[bool] = []


def report(name: str, ok: bool, detail: str = "") -> None:
    RESULTS.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} {name} {detail}".rstrip(), flush=True)


def mlp(width: int, depth: int = 4, d_in: int = 784) -> nn.Sequential:
    layers: list[nn.Module] = []
    fan_in = d_in
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), nn.ReLU()]
        fan_in = width
    layers.append(nn.Linear(fan_in, 10))
    return nn.Sequential(*layers)


def make(
    width: int, batch: int, seed: int = 0
) -> tuple[nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = mlp(width).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn(batch, 784, device="cuda", generator=g)
    y = torch.randint(0, 10, (batch,), device="cuda", generator=g)
    return model, opt, x, y


def step(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    mon: Monitor | None,
) -> None:
    opt.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    if mon is not None:
        mon.step(loss)


def check_syncs() -> None:
    model, opt, x, y = make(256, 128)
    with Monitor(model, every=4) as mon:
        step(model, opt, x, y, mon)  # warm-up (first tick, symmetry)
        for _ in range(2):
            step(model, opt, x, y, mon)
        counts = []
        for _ in range(4):  # steps 4..7: step 4 is a tick, 5-7 are not
            torch.cuda.set_sync_debug_mode("warn")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                step(model, opt, x, y, mon)
            torch.cuda.set_sync_debug_mode(0)
            counts.append(sum("synchroniz" in str(w.message) for w in caught))
        # on a GPU the CPU-only pre-step check (a host read) is not installed; instead the
        # weights are copied before every tick, on the device, for the non-finite re-run
        no_pre_hook = mon._global_handle is None and not mon._on_cpu
        copied_for_next_tick = mon._snapshot_step == 8  # steps 7 done, step 8 is a tick
    report("no host sync on non-tick steps", counts[1:] == [0, 0, 0], f"syncs per step {counts}")
    report("at most 2 host syncs per tick", counts[0] <= 2, f"tick syncs {counts[0]}")
    report(
        "GPU: no pre-step host check, weights copied on the device before each tick",
        no_pre_hook and copied_for_next_tick,
        f"pre-step hook absent={no_pre_hook} snapshot for step 8={copied_for_next_tick}",
    )


def check_identity() -> None:
    torch.backends.cudnn.deterministic = True
    a = make(256, 128)
    b = make(256, 128)
    for _ in range(10):
        step(*a, None)
    with Monitor(b[0]) as mon:
        for _ in range(10):
            step(*b, mon)
    same = all(torch.equal(p, q) for p, q in zip(a[0].parameters(), b[0].parameters(), strict=True))
    report("monitored run bitwise identical on GPU", same)


class Fault(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.kind == "log":
            return torch.log(h - 1e3)
        return torch.sqrt(h * 0.0) + h


def check_nonfinite() -> None:
    for kind, expect_op, phase in (
        ("log", "aten.log", "forward"),
        ("sqrt", "SqrtBackward0", "backward"),
    ):
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Linear(8, 8), nn.Sequential(nn.Linear(8, 8), Fault(kind)), nn.Linear(8, 2)
        ).cuda()
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        x = torch.randn(16, 8, device="cuda")
        y = torch.randint(0, 2, (16,), device="cuda")
        err = None
        with Monitor(model) as mon:
            try:
                step(model, opt, x, y, mon)
            except NonFiniteError as e:
                err = e
        ok = (
            err is not None
            and err.module == "1.1"
            and expect_op in (err.op or "")
            and mon.nonfinite[0].phase == phase
            and all(bool(torch.isfinite(p).all()) for p in model.parameters())
        )
        detail = f"module={getattr(err, 'module', None)} op={getattr(err, 'op', None)}"
        report(f"NaN localized on GPU ({kind}, {phase})", ok, detail)


def check_scaler() -> None:
    norms = []
    for use in (False, True):
        model, opt, x, y = make(256, 128)
        scaler = torch.amp.GradScaler("cuda", init_scale=2.0**12) if use else None
        with Monitor(model, scaler=scaler) as mon:
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            if scaler is None:
                loss.backward()
                opt.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            mon.step(loss)
        log = mon.summary()
        norms.append((log.series["grad_norm"]["0"][0], log.series["backward_rms"]["0"][0]))
    ok = all(abs(a - b) <= 1e-4 * abs(a) for a, b in zip(norms[0], norms[1], strict=True))
    report("GradScaler: gradients reported unscaled", ok, f"{norms}")


def timed(width: int, batch: int, monitored: bool, steps: int = 30) -> float:
    model, opt, x, y = make(width, batch)
    mon = Monitor(model).open() if monitored else None
    for _ in range(5):
        step(model, opt, x, y, mon)
    times = []
    for _ in range(steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        step(model, opt, x, y, mon)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if mon is not None:
        mon.close()
    times.sort()
    return times[len(times) // 2]


def check_overhead() -> None:
    for width, batch, limit in ((4096, 2048, 1.10), (256, 128, None)):
        pairs = [(timed(width, batch, False), timed(width, batch, True)) for _ in range(3)]
        base = sorted(p[0] for p in pairs)[1]
        mon = sorted(p[1] for p in pairs)[1]
        ratio = mon / base
        detail = (
            f"width {width} batch {batch}: {base * 1e3:.2f} ms -> {mon * 1e3:.2f} ms (x{ratio:.3f})"
        )
        if limit is None:
            print(f"INFO overhead {detail} (launch-bound; every=10 amortizes)", flush=True)
        else:
            report("overhead on a large MLP", ratio <= limit, detail)


def main() -> int:
    if not torch.cuda.is_available():
        print("FAIL no CUDA device")
        return 1
    print(f"device: {torch.cuda.get_device_name()} torch {torch.__version__}", flush=True)
    for check in (check_syncs, check_identity, check_nonfinite, check_scaler, check_overhead):
        try:
            check()
        except Exception as err:  # a crash is a failure of that check, reported, not hidden
            report(check.__name__, False, f"raised {type(err).__name__}: {err}")
    print(f"{sum(RESULTS)} passed, {len(RESULTS) - sum(RESULTS)} failed")
    return 0 if all(RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
