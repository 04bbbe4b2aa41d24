"""Small models and a training loop shared by the monitor's tests."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nndoctor import Monitor


def mlp(depth: int, width: int, act: type[nn.Module] = nn.ReLU, d_in: int = 16) -> nn.Sequential:
    layers: list[nn.Module] = []
    fan_in = d_in
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), act()]
        fan_in = width
    layers.append(nn.Linear(fan_in, 4))
    return nn.Sequential(*layers)


def he_(model: nn.Module, gain: float = 1.0) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight)
            with torch.no_grad():
                m.weight.mul_(gain)
                m.bias.zero_()
    return model


def data(n: int = 256, d_in: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d_in, generator=g)
    w = torch.randn(d_in, 4, generator=g)
    y = (X @ w).argmax(dim=1)
    return X, y


def train(
    model: nn.Module,
    steps: int,
    *,
    monitor: Monitor | None = None,
    lr: float = 0.05,
    batch: int = 32,
    seed: int = 0,
    loss_hook: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
) -> list[float]:
    X, y = data()
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    for i in range(steps):
        idx = torch.randint(0, X.shape[0], (batch,), generator=g)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
        if loss_hook is not None:
            loss = loss_hook(i + 1, loss)
        loss.backward()
        opt.step()
        if monitor is not None:
            monitor.step(loss)
        losses.append(float(loss.detach()))
    return losses
