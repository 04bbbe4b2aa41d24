r"""Training with shift weights: scikit-learn ``sample_weight``, a weighted PyTorch loss, a sampler.

Either kind of weight becomes one weight per training row: importance weights :math:`\beta(x_i)`
are already per row; label-shift weights :math:`w(y)` are looked up by each row's label,
:math:`w(y_i)`. Minimizing the weighted empirical risk

.. math:: \hat R_w = \frac{1}{n}\sum_i \omega_i\, \ell(f(x_i), y_i)

estimates the target risk (Shimodaira, 2000; Lipton et al., 2018). Resampling rows with
probability proportional to :math:`\omega_i` (:func:`weighted_sampler`) is the stochastic
alternative, better when a few weights are very large.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.utils.data import WeightedRandomSampler

from nndoctor._validation import (
    check_callable,
    check_choice,
    check_int,
    check_labels,
    check_weights,
)
from nndoctor.exceptions import DataValidationError, InvalidParameterError
from nndoctor.shift.label import LabelShiftResult

__all__ = ["WeightedLoss", "to_sample_weight", "weighted_sampler"]

FloatArray = npt.NDArray[np.float64]


def to_sample_weight(weights: Any, labels: Any = None, *, normalize: bool = True) -> FloatArray:
    r"""Turn importance weights or label-shift weights into one weight per row.

    Parameters
    ----------
    weights : array-like of shape (n,) or (n_classes,), or LabelShiftResult
        Per-row importance weights, or per-class label-shift weights (then ``labels`` is needed).
    labels : array-like of shape (n,), optional
        Class indices of the rows, for per-class weights: row :math:`i` gets :math:`w(y_i)`.
    normalize : bool
        Rescale to mean 1 (keeps a learning rate or a regularization strength meaningful).

    Returns
    -------
    ndarray of shape (n,)
        Ready for ``estimator.fit(X, y, sample_weight=...)``.

    Examples
    --------
    >>> to_sample_weight([2.0, 0.5], labels=[0, 1, 1, 0], normalize=False)
    array([2. , 0.5, 0.5, 2. ])
    >>> from sklearn.linear_model import LogisticRegression
    >>> import numpy as np
    >>> X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    >>> sw = to_sample_weight([1.0, 3.0], labels=y)
    >>> sw
    array([0.5, 0.5, 1.5, 1.5])
    >>> LogisticRegression().fit(X, y, sample_weight=sw).predict([[1.5]])
    array([1])
    """
    if isinstance(weights, LabelShiftResult):
        weights = weights.weights
        if labels is None:
            raise InvalidParameterError(
                "a LabelShiftResult holds per-class weights; pass labels= to look them up per row"
            )
    w = check_weights(weights, name="weights")
    if labels is not None:
        y = check_labels(labels, name="labels")
        if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(y == np.round(y))):
            raise DataValidationError("labels must be class indices 0 .. n_classes - 1")
        yi = y.astype(np.int64)
        if yi.size and (yi.min() < 0 or yi.max() >= w.size):
            raise DataValidationError(
                f"labels range from {yi.min()} to {yi.max()} but there are {w.size} class "
                "weights; pass class indices 0 .. n_classes - 1"
            )
        w = w[yi]
    if normalize:
        mean = float(w.mean()) if w.size else 0.0
        if not mean > 0:
            raise DataValidationError("all weights are 0; nothing to train on")
        w = w / mean
    return np.asarray(w, dtype=np.float64)


class WeightedLoss(nn.Module):
    r"""Wrap a per-sample loss so that each sample counts with its shift weight.

    .. math:: L = \frac{\sum_i \omega_i \ell_i}{n} \ (\text{"mean"}),\quad
              \frac{\sum_i \omega_i \ell_i}{\sum_i \omega_i} \ (\text{"normalized"}),\quad
              \sum_i \omega_i \ell_i \ (\text{"sum"})

    where :math:`\omega_i` is the ``sample_weight`` passed to :meth:`forward` or, for per-class
    weights, ``class_weights[target_i]``. ``"mean"`` is unbiased for the target risk when the
    weights average 1 over the training set; ``"normalized"`` (self-normalized per batch) has
    lower variance.

    Parameters
    ----------
    loss : callable, optional
        A loss returning one value per sample (``reduction="none"``); default
        ``nn.CrossEntropyLoss(reduction="none")``.
    class_weights : array-like or tensor of shape (n_classes,), or LabelShiftResult, optional
        Label-shift weights looked up by target class. Stored as a buffer, so ``.to(device)``
        moves it with the model.
    reduction : {"mean", "normalized", "sum"}

    Examples
    --------
    >>> import torch
    >>> crit = WeightedLoss(class_weights=[2.0, 0.0])
    >>> logits, target = torch.zeros(2, 2), torch.tensor([0, 1])
    >>> round(float(crit(logits, target)), 4)  # only class 0 counts, with weight 2
    0.6931
    >>> crit = WeightedLoss(reduction="normalized")
    >>> round(float(crit(logits, target, sample_weight=torch.tensor([1.0, 3.0]))), 4)
    0.6931
    """

    class_weights: torch.Tensor | None

    def __init__(
        self,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        *,
        class_weights: Any = None,
        reduction: Literal["mean", "normalized", "sum"] = "mean",
    ) -> None:
        super().__init__()
        check_choice(reduction, ("mean", "normalized", "sum"), name="reduction")
        if loss is None:
            loss = nn.CrossEntropyLoss(reduction="none")
        check_callable(loss, name="loss", expected="(input, target) -> per-sample losses")
        if getattr(loss, "reduction", "none") != "none":
            raise InvalidParameterError(
                f"loss has reduction={getattr(loss, 'reduction', None)!r}; WeightedLoss needs "
                "per-sample losses: construct it with reduction='none'"
            )
        self.loss = loss
        self.reduction = reduction
        if isinstance(class_weights, LabelShiftResult):
            class_weights = class_weights.weights
        if class_weights is None:
            self.register_buffer("class_weights", None)
        else:
            cw = check_weights(class_weights, name="class_weights", per="class")
            self.register_buffer("class_weights", torch.as_tensor(cw, dtype=torch.float32))

    def forward(
        self, input: torch.Tensor, target: torch.Tensor, sample_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The weighted loss of a batch (stays on the input's device; no host sync)."""
        for name, t in (("input", input), ("target", target)):
            if not isinstance(t, torch.Tensor):
                raise InvalidParameterError(
                    f"{name} must be a torch.Tensor, got {type(t).__name__}; pass the batch's "
                    "tensors"
                )
        try:  # the checks of torch's own loss, reported as nndoctor's (no extra host sync)
            losses = self.loss(input, target)
            class_w = None if self.class_weights is None else self.class_weights[target]
        except (IndexError, RuntimeError, ValueError) as err:
            raise DataValidationError(
                f"the loss failed on input of shape {tuple(input.shape)} ({input.dtype}) and "
                f"target of shape {tuple(target.shape)} ({target.dtype}): {err}; pass logits "
                "(batch, classes) and class indices 0..classes-1 (batch,)"
                + (
                    f", one of the {self.class_weights.shape[0]} classes of class_weights"
                    if self.class_weights is not None
                    else ""
                )
            ) from err
        if losses.ndim == 0:
            raise InvalidParameterError(
                "the wrapped loss returned a scalar; it must return one value per sample"
            )
        if sample_weight is not None:
            w = sample_weight.to(device=losses.device, dtype=losses.dtype, non_blocking=True)
        elif class_w is not None:
            w = class_w.to(dtype=losses.dtype)
        else:
            w = torch.ones_like(losses)
        if w.shape != losses.shape[:1]:
            raise DataValidationError(
                f"sample_weight has shape {tuple(w.shape)} but the batch has "
                f"{losses.shape[0]} samples; pass one weight per sample"
            )
        per = losses.reshape(losses.shape[0], -1).mean(dim=1) * w
        if self.reduction == "sum":
            return per.sum()
        if self.reduction == "normalized":
            return per.sum() / w.sum().clamp_min(torch.finfo(w.dtype).tiny)
        return per.mean()


def weighted_sampler(
    weights: Any,
    labels: Any = None,
    *,
    num_samples: int | None = None,
    replacement: bool = True,
    generator: torch.Generator | None = None,
) -> WeightedRandomSampler:
    r"""A ``WeightedRandomSampler`` drawing rows with probability :math:`\omega_i / \sum_j\omega_j`.

    Training on the resampled rows without weights has the same expected loss as the weighted
    loss, with bounded per-batch weights.

    Parameters
    ----------
    weights, labels
        As in :func:`to_sample_weight`.
    num_samples : int, optional
        Rows per epoch (default: the number of rows).
    replacement : bool
        Draw with replacement (needed for weights to act as probabilities).
    generator : torch.Generator, optional
        For reproducible draws.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> sampler = weighted_sampler([0.0, 1.0], labels=[0, 1, 0, 1], generator=g)
    >>> sorted(set(sampler))  # class 0 has weight 0 and is never drawn
    [1, 3]
    """
    w = to_sample_weight(weights, labels, normalize=True)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise InvalidParameterError(
            f"generator must be a torch.Generator, got {type(generator).__name__}; pass "
            "torch.Generator().manual_seed(0)"
        )
    n = check_int(num_samples, name="num_samples", minimum=1) if num_samples is not None else w.size
    return WeightedRandomSampler(
        w.tolist(),
        num_samples=n,
        replacement=replacement,
        generator=generator,
    )
