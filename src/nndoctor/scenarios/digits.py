"""The embedded default: scikit-learn's 8x8 digits and a deep MLP built on them.

The digits (1,797 images, 64 pixels, 10 classes) ship with scikit-learn, so the checkup needs no
download. :func:`digits_mlp` builds a deliberately deep, narrow MLP left at PyTorch's default
initialization, U(±1/√fan_in), for which fan_in·Var(W) = 1/3: with ReLU the signal's second moment
shrinks about ×1/6 per layer, so the default model starts with a vanishing signal — the first
lesson of the tour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from nndoctor._validation import check_choice, check_int, check_random_state, check_unit_interval

__all__ = ["DigitsData", "digits_data", "digits_mlp"]

Activation = Literal["relu", "tanh", "sigmoid", "gelu", "identity"]
_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "identity": nn.Identity,
}


@dataclass(frozen=True, slots=True)
class DigitsData:
    """Standardized digits, split into train and test (stratified).

    Attributes
    ----------
    X_train, X_test : ndarray of shape (n, 64), float32
        Pixels scaled to zero mean and unit variance with the training statistics.
    y_train, y_test : ndarray of shape (n,), int64
        Digit labels 0-9.
    """

    X_train: npt.NDArray[np.float32]
    X_test: npt.NDArray[np.float32]
    y_train: npt.NDArray[np.int64]
    y_test: npt.NDArray[np.int64]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The four arrays as torch tensors (float32 features, int64 labels)."""
        return (
            torch.from_numpy(self.X_train),
            torch.from_numpy(self.X_test),
            torch.from_numpy(self.y_train),
            torch.from_numpy(self.y_test),
        )


def digits_data(*, test_size: float = 0.3, random_state: int | None = 0) -> DigitsData:
    """Load scikit-learn's digits, split them stratified, and standardize the pixels.

    Parameters
    ----------
    test_size : float
        Fraction of the 1,797 images held out.
    random_state : int or None
        Seed of the split.

    Examples
    --------
    >>> d = digits_data(random_state=0)
    >>> d.X_train.shape, d.X_test.shape
    ((1258, 64), (539, 64))
    >>> bool(abs(d.X_train.mean()) < 1e-5)
    True
    """
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rng = check_random_state(random_state)
    test_size = check_unit_interval(test_size, name="test_size")
    n_test_per_class = {c: round(test_size * int(np.sum(y == c))) for c in range(10)}
    test_mask = np.zeros(len(y), dtype=bool)
    for c, k in n_test_per_class.items():
        idx = np.flatnonzero(y == c)
        test_mask[rng.choice(idx, size=k, replace=False)] = True
    X_train, X_test = X[~test_mask], X[test_mask]
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[std == 0] = 1.0
    return DigitsData(
        X_train=((X_train - mean) / std).astype(np.float32),
        X_test=((X_test - mean) / std).astype(np.float32),
        y_train=y[~test_mask].astype(np.int64),
        y_test=y[test_mask].astype(np.int64),
    )


def digits_mlp(
    *,
    depth: int = 8,
    width: int = 64,
    activation: Activation = "relu",
    seed: int | None = 0,
) -> nn.Sequential:
    """The default model: ``depth`` hidden ``Linear → activation`` blocks, then a 10-way head.

    Layers keep PyTorch's default initialization (``reset_parameters``), which is exactly what
    the checkup examines.

    Parameters
    ----------
    depth : int
        Number of hidden layers.
    width : int
        Units per hidden layer.
    activation : {"relu", "tanh", "sigmoid", "gelu", "identity"}
        Nonlinearity after each hidden layer.
    seed : int or None
        Seed for the default initialization (a private generator; the global RNG is restored).

    Examples
    --------
    >>> model = digits_mlp(depth=3, width=16)
    >>> model(torch.zeros(5, 64)).shape
    torch.Size([5, 10])
    >>> len(model)
    7
    """
    depth = check_int(depth, name="depth", minimum=1)
    width = check_int(width, name="width", minimum=1)
    act = _ACTIVATIONS[check_choice(activation, _ACTIVATIONS, name="activation")]
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(check_int(seed, name="seed"))
        layers: list[nn.Module] = []
        fan_in = 64
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), act()]
            fan_in = width
        layers.append(nn.Linear(fan_in, 10))
        return nn.Sequential(*layers)
