"""Detection delay of seeded faults at the monitor's default budget.

Each fault is injected at a known onset step into a small model trained on synthetic data; the
delay is the number of steps from the onset to the ``Monitor.step`` call that returned the
finding (0: reported at the onset step itself). Late onsets (step 20-30) test the sampled
quantities after the budget has started sampling.

Run: ``PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/detection_delay.py``
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nndoctor import Monitor


class _Poison(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.log(h - 1e3) if self.armed else h


def _mlp(act: type[nn.Module] = nn.ReLU, depth: int = 3, width: int = 32) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = 16
    for _ in range(depth):
        layers += [nn.Linear(d, width), act()]
        d = width
    return nn.Sequential(*layers, nn.Linear(d, 4))


Fault = tuple[str, str, int, Callable[[], tuple[nn.Module, torch.optim.Optimizer]], Callable]


def _no_op(model: nn.Module, step: int) -> None:
    return None


def faults() -> list[Fault]:
    def adam_big() -> tuple[nn.Module, torch.optim.Optimizer]:
        m = _mlp()
        return m, torch.optim.Adam(m.parameters(), lr=0.5)

    def group_1000x() -> tuple[nn.Module, torch.optim.Optimizer]:
        m = _mlp()
        hot = list(m[2].parameters())
        rest = [p for p in m.parameters() if all(p is not h for h in hot)]
        return m, torch.optim.Adam([{"params": rest, "lr": 1e-4}, {"params": hot, "lr": 0.1}])

    def sgd(m: nn.Module) -> tuple[nn.Module, torch.optim.Optimizer]:
        return m, torch.optim.SGD(m.parameters(), lr=0.01)

    def poisoned() -> tuple[nn.Module, torch.optim.Optimizer]:
        return sgd(nn.Sequential(nn.Linear(16, 16), nn.ReLU(), _Poison(), nn.Linear(16, 4)))

    def arm(step_at: int) -> Callable[[nn.Module, int], None]:
        def f(model: nn.Module, step: int) -> None:
            model[2].armed = step == step_at

        return f

    def kill(step_at: int) -> Callable[[nn.Module, int], None]:
        def f(model: nn.Module, step: int) -> None:
            if step == step_at:
                with torch.no_grad():
                    model[2].bias.fill_(-100.0)  # every unit of ReLU "3" dead from here on

        return f

    def saturate(step_at: int) -> Callable[[nn.Module, int], None]:
        def f(model: nn.Module, step: int) -> None:
            if step == step_at:
                with torch.no_grad():
                    model[2].weight.mul_(100.0)  # tanh "3" on its flat ends from here on

        return f

    def vanish(step_at: int) -> Callable[[nn.Module, int], None]:
        def f(model: nn.Module, step: int) -> None:
            if step == step_at:
                with torch.no_grad():
                    for i in (2, 4):
                        model[i].weight.mul_(1e-3)  # the backward signal vanishes with depth

        return f

    return [
        ("Adam at lr 0.5", "update_ratio", 1, adam_big, _no_op),
        ("one param group at 1000x lr", "update_ratio", 1, group_1000x, _no_op),
        ("NaN at step 30", "nonfinite", 30, poisoned, arm(30)),
        ("dead ReLU layer from step 25", "dead_units", 25, lambda: sgd(_mlp()), kill(25)),
        (
            "saturated tanh from step 25",
            "saturation",
            25,
            lambda: sgd(_mlp(nn.Tanh)),
            saturate(25),
        ),
        ("vanishing from step 25", "vanishing", 25, lambda: sgd(_mlp(depth=3)), vanish(25)),
    ]


def delay(fault: Fault, steps: int = 45, budget: float | None = 0.05) -> int | None:
    _, check, onset, build, inject = fault
    torch.manual_seed(0)
    model, opt = build()
    g = torch.Generator().manual_seed(0)
    X = torch.randn(256, 16, generator=g)
    y = torch.randint(0, 4, (256,), generator=g)
    with Monitor(model, budget=budget, on_nonfinite="skip") as mon:
        for step in range(1, steps + 1):
            inject(model, step)
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(X[:64]), y[:64])
            loss.backward()
            opt.step()
            for f in mon.step(loss):
                if f.check == check and step >= onset:
                    return step - onset
    return None


def main() -> None:
    print("| fault | check | onset step | delay (steps), default budget | budget=None |")
    print("|---|---|---|---|---|")
    for fault in faults():
        d, full = delay(fault), delay(fault, budget=None)
        print(f"| {fault[0]} | {fault[1]} | {fault[2]} | {d} | {full} |")


if __name__ == "__main__":
    main()
