r"""Two worked examples of numerical trouble inside a network, with a known truth.

* :func:`deep_chain` — with identity activations an :math:`L`-layer stack computes
  :math:`H = X W_1 W_2\cdots W_L`, so scalar weights 0.2 or 5 give a 30th-layer output of
  :math:`0.2^{30}\approx 10^{-21}` (vanishing) or :math:`5^{30}\approx 9\cdot 10^{20}` (exploding).
* :func:`symmetric_mlp` — hidden units that start with equal weights compute equal values and
  receive equal gradients forever: a wide layer acts as a single unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from nndoctor._results import ResultMixin
from nndoctor._validation import check_choice, check_int, check_number

__all__ = ["SymmetryDemo", "deep_chain", "symmetric_mlp", "symmetry_demo"]

ChainActivation = Literal["identity", "relu", "tanh", "sigmoid", "gelu"]
_ACT: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}


def deep_chain(
    depth: int,
    weight: float,
    activation: ChainActivation = "identity",
    width: int = 1,
) -> nn.Sequential:
    r"""A stack of ``depth`` bias-free linear layers whose weight matrices are ``weight`` · I.

    With ``width=1`` each layer multiplies by the scalar ``weight``; with a larger width every
    unit is its own scalar chain. The end-to-end gain is :math:`|w|^L` for the identity
    activation.

    Parameters
    ----------
    depth : int
        Number of linear layers (>= 1).
    weight : float
        The scalar on each layer's diagonal.
    activation : {"identity", "relu", "tanh", "sigmoid", "gelu"}
        Inserted after every linear layer except the last (none for identity).
    width : int
        Units per layer.

    Examples
    --------
    >>> chain = deep_chain(30, 0.2)
    >>> x = torch.ones(1, 1, dtype=torch.float64)
    >>> float(chain.double()(x).detach())
    1.0737...e-21
    >>> len(deep_chain(3, 1.0, "relu"))
    5
    """
    depth = check_int(depth, name="depth", minimum=1)
    width = check_int(width, name="width", minimum=1)
    weight = check_number(weight, name="weight")  # NaN or inf would make every layer NaN
    check_choice(activation, ("identity", *_ACT), name="activation")
    layers: list[nn.Module] = []
    for i in range(depth):
        lin = nn.Linear(width, width, bias=False)
        with torch.no_grad():
            lin.weight.copy_(float(weight) * torch.eye(width))
        layers.append(lin)
        if activation != "identity" and i < depth - 1:
            layers.append(_ACT[activation]())
    return nn.Sequential(*layers)


def symmetric_mlp(
    in_features: int = 8,
    width: int = 16,
    depth: int = 2,
    out_features: int = 3,
    *,
    value: float = 0.1,
    activation: ChainActivation = "tanh",
) -> nn.Sequential:
    """An MLP whose every weight is ``value`` and every bias 0: all hidden units are tied.

    Every hidden unit of a layer computes the same value and, because its outgoing weights are
    equal too, receives the same gradient, so gradient descent never separates them: each hidden
    layer has one effective unit, whatever its width.

    Parameters
    ----------
    in_features, width, depth, out_features : int
        Input size, hidden width, number of hidden layers, output size.
    value : float
        The constant every weight starts at.
    activation : {"identity", "relu", "tanh", "sigmoid", "gelu"}
        Nonlinearity after each hidden layer.

    Examples
    --------
    >>> model = symmetric_mlp(width=4)
    >>> h = model[1](model[0](torch.randn(2, 8)))
    >>> bool((h == h[:, :1]).all())
    True
    """
    in_features = check_int(in_features, name="in_features", minimum=1)
    width = check_int(width, name="width", minimum=1)
    depth = check_int(depth, name="depth", minimum=1)
    out_features = check_int(out_features, name="out_features", minimum=1)
    value = check_number(value, name="value")
    check_choice(activation, ("identity", *_ACT), name="activation")
    layers: list[nn.Module] = []
    fan_in = in_features
    for _ in range(depth):
        layers.append(nn.Linear(fan_in, width))
        if activation != "identity":
            layers.append(_ACT[activation]())
        fan_in = width
    layers.append(nn.Linear(fan_in, out_features))
    with torch.no_grad():
        for m in layers:
            if isinstance(m, nn.Linear):
                m.weight.fill_(float(value))
                m.bias.zero_()
    return nn.Sequential(*layers)


@dataclass(frozen=True, slots=True)
class SymmetryDemo(ResultMixin):
    """The symmetric-MLP lesson, measured: effective width before and after training.

    Attributes
    ----------
    width : int
        Hidden units per layer.
    steps : int
        SGD steps trained.
    effective_units_constant : tuple of int
        Effective units per hidden layer of the constant-initialized MLP after training.
    effective_units_xavier : tuple of int
        The same after re-initializing with ``xavier_uniform`` and training the same steps.
    loss_constant, loss_xavier : float
        Final training losses.
    reports : tuple
        The two :class:`~nndoctor.stability.SymmetryReport` objects.
    """

    width: int
    steps: int
    effective_units_constant: tuple[int, ...]
    effective_units_xavier: tuple[int, ...]
    loss_constant: float
    loss_xavier: float
    reports: tuple[object, ...]


def symmetry_demo(
    *, width: int = 16, depth: int = 2, steps: int = 100, lr: float = 0.1, random_state: int = 0
) -> SymmetryDemo:
    """Train :func:`symmetric_mlp` and its Xavier-initialized twin; count effective units.

    Both train ``steps`` full-batch SGD steps on the same random 3-class problem.

    Examples
    --------
    >>> demo = symmetry_demo(width=4, steps=10)
    >>> demo.effective_units_constant, demo.effective_units_xavier
    ((1, 1), (4, 4))
    """
    from nndoctor.stability import find_symmetric_units, init_

    steps = check_int(steps, name="steps", minimum=0)
    lr = check_number(lr, name="lr", minimum=0.0, exclusive_minimum=True)
    random_state = check_int(random_state, name="random_state", minimum=0)
    gen = torch.Generator().manual_seed(random_state)
    X = torch.randn(128, 8, generator=gen)
    y = torch.randint(0, 3, (128,), generator=gen)
    results = []
    for scheme in ("constant", "xavier_uniform"):
        model = symmetric_mlp(width=width, depth=depth)
        if scheme != "constant":
            init_(model, scheme, generator=torch.Generator().manual_seed(random_state))
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        loss = torch.zeros(())
        for _ in range(steps):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(X), y)
            loss.backward()  # type: ignore[no-untyped-call]  # untyped in torch
            opt.step()
        report = find_symmetric_units(model)
        hidden = tuple(layer.effective_units for layer in report.layers[:-1])
        results.append((hidden, float(loss.detach()), report))
    return SymmetryDemo(
        width=width,
        steps=steps,
        effective_units_constant=results[0][0],
        effective_units_xavier=results[1][0],
        loss_constant=results[0][1],
        loss_xavier=results[1][1],
        reports=(results[0][2], results[1][2]),
    )
