"""Probe overhead: nndoctor.stability.probe vs one plain forward + backward pass.

Models: a 50-layer width-1024 ReLU MLP and a ResNet-18-shaped CNN (BasicBlock [2, 2, 2, 2],
widths 64-512, 11.7 M parameters; written here because torchvision is not a dependency), both at
batch 64. The peer is the plain pass the probe has to do anyway: ``model(x).sum().backward()``.
The ratio is the median over repeats of probe time / plain time.

Run:
    PYTHONPATH=src python benchmarks/bench_probe.py [--device cuda] [--image 224] [--repeats 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from nndoctor.stability import probe


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.ReLU(inplace=True)
        self.down: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.down(x))


def resnet18_like(num_classes: int = 1000) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    c = 64
    for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(c, width, stride), BasicBlock(width, width, 1)]
        c = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)]
    return nn.Sequential(*layers)


def deep_mlp(depth: int = 50, width: int = 1024) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(model: nn.Module, x: torch.Tensor, repeats: int) -> tuple[float, float]:
    device = x.device

    def plain() -> None:
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()

    def probed() -> None:
        probe(model, x)

    # interleave the two so that load from other processes hits both alike
    plain()
    probed()
    _sync(device)
    t_plain, t_probe = [], []
    for _ in range(repeats):
        t_plain.append(_time(plain, device, 1))
        t_probe.append(_time(probed, device, 1))
    return statistics.median(t_plain), statistics.median(t_probe)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--image", type=int, default=64, help="CNN input side (224 on a GPU)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    cases = [
        ("MLP 50x1024, batch 64", deep_mlp().to(device), torch.randn(64, 1024, device=device)),
        (
            f"ResNet-18-shaped CNN, batch 64, {args.image}x{args.image}",
            resnet18_like().to(device),
            torch.randn(64, 3, args.image, args.image, device=device),
        ),
    ]
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"device {device}, threads {torch.get_num_threads()}"
    )
    print("| model | plain fwd+bwd (s) | probe (s) | ratio |")
    print("|---|---:|---:|---:|")
    for name, model, x in cases:
        t_plain, t_probe = measure(model, x, args.repeats)
        print(f"| {name} | {t_plain:.4f} | {t_probe:.4f} | {t_probe / t_plain:.2f}x |")


if __name__ == "__main__":
    main()
