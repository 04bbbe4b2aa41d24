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
    dist.barrier()  # no rank tears gloo down while the other still talks to it
    dist.destroy_process_group()
    """
)

# rank 1's steps are long (busy), rank 0's tiny: a budget deciding per rank would sample on
# rank 0 only, and the ranks' collectives would no longer match (a hang or a crash)
UNEVEN = textwrap.dedent(
    """
    import json, os, sys, time
    import torch, torch.distributed as dist
    from torch import nn
    from nndoctor import Monitor

    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(
        nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(8, 8), nn.ReLU())], nn.Linear(8, 3))
    )
    g = torch.Generator().manual_seed(100 + rank)
    x, y = torch.randn(16, 8, generator=g), torch.randint(0, 3, (16,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with Monitor(model, log_dir=sys.argv[1]) as mon:
        for _ in range(25):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            if rank == 1:
                end = time.thread_time() + 0.03
                while time.thread_time() < end:
                    pass
            opt.step()
            mon.step()
    detailed = [r["sampling"]["detailed"] for r in mon._tick_records()]
    with open(os.path.join(sys.argv[2], f"rank{rank}.json"), "w") as fh:
        json.dump({"detailed": detailed, "ticks": mon.overhead()["ticks"]}, fh)
    dist.barrier()
    dist.destroy_process_group()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_two(script: str, tmp_path: Path) -> list[dict[str, object]]:
    """``script`` on two gloo ranks; each rank's JSON output."""
    log_dir, out_dir = tmp_path / "log", tmp_path / "out"
    out_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": SRC, "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2"}  # fmt: skip
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(log_dir), str(out_dir)],
            env={**env, "RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    try:
        outputs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, text in zip(procs, outputs, strict=True):
        assert p.returncode == 0, text
    return [json.loads((out_dir / f"rank{r}.json").read_text()) for r in range(2)]


def test_ranks_keep_one_schedule_when_their_steps_differ(tmp_path: Path) -> None:
    """Under DDP every rank measures on the same ticks (the statistics are all-reduced), even
    when one rank's steps are long and the other's tiny."""
    results = _run_two(UNEVEN, tmp_path)
    assert results[0]["detailed"] == results[1]["detailed"]
    assert results[0]["ticks"] == results[1]["ticks"] == {"detailed": 25, "light": 0}


def test_two_gloo_processes(tmp_path: Path) -> None:
    log_dir = tmp_path / "log"
    results = _run_two(WORKER, tmp_path)
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
