"""Training helpers: sample_weight, the weighted loss, the weighted sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nndoctor.exceptions import DataValidationError, InvalidParameterError
from nndoctor.shift import LabelShiftResult, WeightedLoss, to_sample_weight, weighted_sampler


def _result(w: list[float]) -> LabelShiftResult:
    k = len(w)
    nan = np.full(k, np.nan)
    return LabelShiftResult(
        np.array(w), np.array(w) / k, np.full(k, 1 / k), nan, nan, "bbse-hard", 1.0, nan, nan
    )


def test_to_sample_weight_per_row_and_per_class() -> None:
    np.testing.assert_allclose(to_sample_weight([1.0, 3.0]), [0.5, 1.5])
    np.testing.assert_allclose(to_sample_weight(_result([2.0, 0.0]), [0, 1, 0], normalize=False),
                               [2.0, 0.0, 2.0])  # fmt: skip
    with pytest.raises(InvalidParameterError, match="labels"):
        to_sample_weight(_result([1.0, 1.0]))
    with pytest.raises(DataValidationError, match="class indices"):
        to_sample_weight([1.0, 1.0], labels=[0, 2])
    with pytest.raises(DataValidationError, match="non-negative"):
        to_sample_weight([1.0, -1.0])
    with pytest.raises(DataValidationError, match="all weights are 0"):
        to_sample_weight([0.0, 0.0])


def test_weighted_loss_matches_manual_computation() -> None:
    torch.manual_seed(0)
    logits, target = torch.randn(8, 3), torch.randint(0, 3, (8,))
    per = nn.functional.cross_entropy(logits, target, reduction="none")
    w = torch.rand(8)
    assert torch.allclose(WeightedLoss()(logits, target, w), (w * per).mean())
    assert torch.allclose(WeightedLoss(reduction="sum")(logits, target, w), (w * per).sum())
    norm = WeightedLoss(reduction="normalized")(logits, target, w)
    assert torch.allclose(norm, (w * per).sum() / w.sum())
    cw = torch.tensor([0.5, 2.0, 1.0])
    assert torch.allclose(WeightedLoss(class_weights=cw)(logits, target), (cw[target] * per).mean())
    assert torch.allclose(WeightedLoss()(logits, target), per.mean())


def test_weighted_loss_buffer_moves_and_gradients_flow() -> None:
    crit = WeightedLoss(class_weights=_result([1.0, 2.0, 0.5])).to(torch.float64)
    assert "class_weights" in dict(crit.named_buffers())
    logits = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    crit(logits, torch.tensor([0, 1, 2, 1])).backward()
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all()


def test_weighted_loss_rejects_reduced_losses_and_bad_weights() -> None:
    with pytest.raises(InvalidParameterError, match="reduction='none'"):
        WeightedLoss(nn.CrossEntropyLoss())
    with pytest.raises(InvalidParameterError, match="choose one of"):
        WeightedLoss(reduction="avg")  # type: ignore[arg-type]
    with pytest.raises(DataValidationError, match="non-negative"):
        WeightedLoss(class_weights=[1.0, -1.0])
    with pytest.raises(DataValidationError, match="one weight per sample"):
        WeightedLoss()(torch.zeros(3, 2), torch.tensor([0, 1, 0]), torch.ones(2))


def test_weighted_sampler_draws_in_proportion() -> None:
    g = torch.Generator().manual_seed(0)
    sampler = weighted_sampler([1.0, 3.0], labels=np.r_[np.zeros(50), np.ones(50)].astype(int),
                               num_samples=20000, generator=g)  # fmt: skip
    drawn = np.fromiter(iter(sampler), dtype=np.int64)
    share_class1 = np.mean(drawn >= 50)
    assert abs(share_class1 - 0.75) < 0.02  # 3x the weight -> 3/4 of the draws
    assert len(weighted_sampler(np.ones(7))) == 7
