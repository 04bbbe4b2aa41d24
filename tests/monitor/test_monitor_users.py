"""The training Monitor on set-ups users bring (issue 15): sparse gradients."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nndoctor import Monitor
from nndoctor.exceptions import NonFiniteError


class _SparseBag(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 8, sparse=True)
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.emb(x).mean(1))
        return out


def _train(tmp: Path | None, steps: int, nan_at: int | None = None) -> nn.Module:
    torch.manual_seed(0)
    model = _SparseBag()
    opt = torch.optim.SparseAdam(list(model.emb.parameters()), lr=1e-3)
    opt_head = torch.optim.SGD(model.head.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(1)
    monitor = Monitor(model, log_dir=tmp) if tmp is not None else None
    if monitor is not None:
        monitor.open()
    try:
        for step in range(steps):
            if step == nan_at:
                with torch.no_grad():
                    model.emb.weight[3, 0] = float("nan")
            x = torch.randint(0, 50, (8, 5), generator=gen)
            y = torch.randint(0, 4, (8,), generator=gen)
            opt.zero_grad()
            opt_head.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            opt_head.step()
            if monitor is not None:
                monitor.step(loss)
    finally:
        if monitor is not None:
            monitor.close()
    return model


def test_sparse_embedding_gradients_are_monitored_bitwise_identically(tmp_path: Path) -> None:
    # before: torch._foreach_norm on the sparse COO gradient raised NotImplementedError
    monitored = _train(tmp_path, 12)
    plain = _train(None, 12)
    for a, b in zip(monitored.state_dict().values(), plain.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert (tmp_path / "monitor.jsonl").stat().st_size > 0


def test_sparse_embedding_nan_is_caught_at_its_step(tmp_path: Path) -> None:
    with pytest.raises(NonFiniteError, match="step 9"):
        # row 3 of the embedding turns NaN before step 9 (1-based); the NaN reaches the
        # loss as soon as a batch looks row 3 up, which this seeded batch does
        _train(tmp_path, 12, nan_at=8)


def test_two_watched_optimizers_make_one_monitor_step_per_training_step(tmp_path: Path) -> None:
    # before: each watched optimizer's post-step hook called step(): 2 monitor steps per
    # training step, so step numbers (and a NonFiniteError's step) were doubled
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    body = torch.optim.Adam(model[0].parameters(), lr=1e-3)
    head = torch.optim.SGD(model[2].parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(1)
    with Monitor(model, log_dir=tmp_path) as monitor:
        monitor.watch(body)
        monitor.watch(head)
        for step in range(10):
            if step == 7:
                with torch.no_grad():
                    model[2].weight[0, 0] = float("nan")
            x = torch.randn(8, 16, generator=gen)
            y = torch.randint(0, 4, (8,), generator=gen)
            body.zero_grad()
            head.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            body.step()
            if step == 7:
                assert monitor.step_count == 7  # the round waits for the head's step
                with pytest.raises(NonFiniteError, match="step 8"):
                    head.step()
                break
            head.step()
            monitor.record_loss(loss)
            assert monitor.step_count == step + 1


def test_clip_works_with_sparse_gradients(tmp_path: Path) -> None:
    # before: torch's foreach clip_grad_norm_ raised NotImplementedError on the sparse gradient
    torch.manual_seed(0)
    model = _SparseBag()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    gen = torch.Generator().manual_seed(1)
    with Monitor(model, log_dir=tmp_path, clip=1e-3).watch(opt):
        for _ in range(3):
            before = [p.detach().clone() for p in model.parameters()]
            x = torch.randint(0, 50, (8, 5), generator=gen)
            y = torch.randint(0, 4, (8,), generator=gen)
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            moved = torch.stack(
                [
                    torch.linalg.vector_norm(p.detach() - b)
                    for p, b in zip(model.parameters(), before, strict=True)
                ]
            )
            # SGD with lr 1: the whole update is the clipped gradient, of total norm 1e-3
            assert float(torch.linalg.vector_norm(moved)) == pytest.approx(1e-3, rel=1e-3)


def _lbfgs_with_a_nan_written_at(nan_at: int, every: int) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    opt = torch.optim.LBFGS(model.parameters(), lr=0.1, max_iter=3)
    gen = torch.Generator().manual_seed(1)
    with Monitor(model, every=every) as monitor:
        for step in range(1, nan_at + 4):
            if step == nan_at:
                with torch.no_grad():
                    model[2].weight.view(-1)[0] = float("nan")
            x, y = torch.randn(8, 16, generator=gen), torch.randint(0, 4, (8,), generator=gen)

            def closure(x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
                opt.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                return loss

            monitor.step(opt.step(closure))


@pytest.mark.parametrize("every", [1, 3])
def test_lbfgs_a_nan_written_into_a_weight_between_steps_is_localized_to_its_module(
    every: int,
) -> None:
    """step(closure): the forward passes run inside step(), so the re-run starts from the
    weights copied in the optimizer's pre-step hook, not from a copy taken at the end of the
    step before (which the NaN written in between is not in: the loss function was blamed)."""
    with pytest.raises(NonFiniteError) as err:
        _lbfgs_with_a_nan_written_at(6, every)
    assert err.value.step == 6
    assert err.value.module == "2"
