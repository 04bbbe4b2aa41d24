"""Under torch.distributed (gloo, 2 CPU processes): all-reduced statistics; only rank 0 writes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")

WORKER = textwrap.dedent(
    """
    import json, os, sys
    import torch, torch.distributed as dist
    from torch import nn
    from nndoctor import Monitor

    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    plain = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    plain.load_state_dict(net.state_dict())
    model = nn.parallel.DistributedDataParallel(net)
    g = torch.Generator().manual_seed(100 + rank)  # each rank sees different data
    x, y = torch.randn(16, 8, generator=g), torch.randint(0, 3, (16,), generator=g)
    # the expected statistics: local gradients and activations, all-reduced by hand
    nn.functional.cross_entropy(plain(x), y).backward()
    grad0 = torch.cat([p.grad.reshape(-1) for p in plain[0].parameters()])
    dist.all_reduce(grad0)
    grad0 /= 2
    with torch.no_grad():
        act_sum = plain[1](plain[0](x)).sum().reshape(1)
    dist.all_reduce(act_sum)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Monitor(model, log_dir=sys.argv[1]) as mon:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        mon.step(loss)
    log = mon.summary()
    out = {
        "grad_norm": float(log.series["grad_norm"]["0"][0]),
        "expected_grad_norm": float(grad0.norm()),
        "act_mean": float(log.series["act_mean"]["1"][0]),
        "expected_act_mean": float(act_sum) / (2 * 16 * 16),
        "layers": list(log.layers),
    }
    with open(os.path.join(sys.argv[2], f"rank{rank}.json"), "w") as fh:
        json.dump(out, fh)
    dist.destroy_process_group()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_gloo_processes(tmp_path: Path) -> None:
    log_dir, out_dir = tmp_path / "log", tmp_path / "out"
    out_dir.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": SRC,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "WORLD_SIZE": "2",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(log_dir), str(out_dir)],
            env={**env, "RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    for p, text in zip(procs, outputs, strict=True):
        assert p.returncode == 0, text
    results = [json.loads((out_dir / f"rank{r}.json").read_text()) for r in range(2)]
    for res in results:
        # gradient statistics are those of the all-reduced (averaged) gradients
        assert res["grad_norm"] == pytest.approx(res["expected_grad_norm"], rel=1e-5)
        # activation statistics cover both ranks' batches
        assert res["act_mean"] == pytest.approx(res["expected_act_mean"], rel=1e-5)
        assert res["layers"] == ["0", "2", "1"]  # DDP's "module." prefix is dropped
    assert results[0]["grad_norm"] == results[1]["grad_norm"]
    lines = (log_dir / "monitor.jsonl").read_text().splitlines()
    kinds = [json.loads(line)["kind"] for line in lines]
    assert kinds.count("header") == 1  # only rank 0 wrote
    assert kinds.count("tick") == 1
