"""The JSONL log survives kill -9; the reader skips a torn line; TensorBoard; summary()."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _monitor_helpers import he_, mlp, train

from nndoctor import Monitor
from nndoctor.exceptions import DataValidationError, InvalidParameterError
from nndoctor.stability.monitor import read_log

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_log_survives_kill_9(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys, torch
        from torch import nn
        from nndoctor import Monitor
        torch.set_num_threads(1)
        model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        x, y = torch.randn(16, 8), torch.randint(0, 2, (16,))
        with Monitor(model, log_dir={str(tmp_path)!r}) as mon:
            step = 0
            while True:
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                mon.step(loss)
                step += 1
                if step == 20:
                    print("ready", flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    path = tmp_path / "monitor.jsonl"
    lines = path.read_text().split("\n")
    complete = lines[:-1]  # everything before the last newline
    for ln in complete:
        json.loads(ln)  # every complete line is valid JSON
    log = read_log(tmp_path)
    n_ticks = sum(json.loads(ln)["kind"] == "tick" for ln in complete)
    assert log.n_ticks == n_ticks >= 20
    assert log.steps.tolist() == list(range(1, n_ticks + 1))
    # simulate the torn last line a kill can leave mid-write
    with open(path, "a") as fh:
        fh.write('{"kind": "tick", "step": 99999, "lay')
    torn = read_log(path)
    assert torn.torn_lines == 1
    assert torn.n_ticks == n_ticks


def test_summary_matches_the_log_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = he_(mlp(2, 8))
    with Monitor(model, log_dir=tmp_path) as mon:
        train(model, 5, monitor=mon)
    from_file, from_memory = read_log(tmp_path), mon.summary()
    assert from_file.layers == from_memory.layers == ("0", "2", "4", "1", "3")
    assert from_file.layer_types["1"] == "ReLU"
    np.testing.assert_array_equal(from_file.steps, from_memory.steps)
    for q, per_layer in from_memory.series.items():
        for name, values in per_layer.items():
            np.testing.assert_allclose(from_file.series[q][name], values)
    assert from_file.to_dict()["steps"] == [1, 2, 3, 4, 5]


def test_second_run_appends(tmp_path: Path) -> None:
    model = mlp(1, 4)
    for _ in range(2):
        with Monitor(model, log_dir=tmp_path) as mon:
            train(model, 2, monitor=mon)
    assert read_log(tmp_path).runs == 2


def test_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="does not exist"):
        read_log(tmp_path / "nope.jsonl")
    empty = tmp_path / "e.jsonl"
    empty.write_text("garbage\n")
    with pytest.raises(DataValidationError, match="no complete record"):
        read_log(empty)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InvalidParameterError, match="is a file"):
        Monitor(mlp(1, 4), log_dir=f).open()


def test_tensorboard_writer(tmp_path: Path) -> None:
    model = mlp(1, 4)
    with Monitor(model, log_dir=tmp_path, tensorboard=True) as mon:
        train(model, 2, monitor=mon)
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    assert events[0].stat().st_size > 0
