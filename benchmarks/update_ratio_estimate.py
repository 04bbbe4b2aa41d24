"""How well the monitor's estimated update ratio tracks the exact one.

The same run twice (monitoring never changes the computation, so both runs are bitwise
identical): once with ``update_every=1`` (exact ratio on every tick), once with the estimate
on every tick (``update_every`` large). Prints, per setting, the quantiles of the relative error
|estimate / exact - 1| over every layer and step.

Run: ``PYTHONPATH=src python benchmarks/update_ratio_estimate.py``
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nndoctor import Monitor


def mlp() -> nn.Sequential:
    layers: list[nn.Module] = []
    d = 64
    for _ in range(4):
        layers += [nn.Linear(d, 256), nn.ReLU()]
        d = 256
    return nn.Sequential(*layers, nn.Linear(d, 10))


def cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(512, 10),
    )


def ratios(kind: str, opt_name: str, lr: float, update_every: int, steps: int) -> np.ndarray:
    torch.manual_seed(0)
    model = mlp() if kind == "mlp" else cnn()
    g = torch.Generator().manual_seed(1)
    shape = (128, 64) if kind == "mlp" else (32, 3, 16, 16)
    X = torch.randn(200, *shape[1:], generator=g)
    y = torch.randint(0, 10, (200,), generator=g)
    opt: torch.optim.Optimizer
    if opt_name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    with Monitor(model, update_every=update_every) as mon:
        for _ in range(steps):
            idx = torch.randint(0, 200, (shape[0],), generator=g)
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
            loss.backward()
            opt.step()
            mon.step(loss)
    series = mon.summary().series["update_ratio"]
    return np.array([series[n][1:] for n in sorted(series)])


def main() -> None:
    print("| model | optimizer | lr | median | 90 % | 99 % | max |")
    print("|---|---|---|---|---|---|---|")
    for kind in ("mlp", "cnn"):
        for opt_name, lr in (("adam", 1e-3), ("adam", 0.5), ("sgd", 0.05)):
            exact = ratios(kind, opt_name, lr, 1, 40)
            est = ratios(kind, opt_name, lr, 10_000, 40)
            keep = np.isfinite(exact) & (exact > 0)
            err = np.abs(est[keep] / exact[keep] - 1)
            q = np.quantile(err, [0.5, 0.9, 0.99, 1.0])
            print(f"| {kind} | {opt_name} | {lr:g} | " + " | ".join(f"{v:.3f}" for v in q) + " |")


if __name__ == "__main__":
    main()
