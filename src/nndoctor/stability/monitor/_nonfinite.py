"""Localize the first non-finite value: re-run a batch under a dispatch-level checker.

Two interposers run together while the batch is re-run:

* a ``TorchFunctionMode`` sees each call at the Python level (``torch.log``, ``F.linear``,
  ``x / y``), where outputs already carry their autograd node; it tags each node with the
  call's name, the module being run and the source line, through a node pre-hook;
* a ``TorchDispatchMode`` sees every ATen operator (``aten.log.default``), forward and backward,
  and checks its outputs. The first operator whose output holds a NaN or an infinity is reported
  with the module path (a stack kept by forward hooks) and the source line; in the backward
  pass, with the autograd node running and the forward call and module it belongs to.

This is a diagnostic path: it synchronizes once per operator and is used only after a
non-finite value was seen (or when a user calls :func:`locate_nonfinite`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from nndoctor._results import ResultMixin
from nndoctor.stability._layers import tensors_in

__all__ = ["NonFiniteLocation", "locate_nonfinite"]

Phase = Literal["input", "forward", "backward", "loss"]

_TORCH_DIR = os.path.dirname(torch.__file__)
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SKIP_TORCH = tuple(
    os.path.join(_TORCH_DIR, p)
    for p in (
        "utils",
        "overrides.py",
        "_tensor.py",
        "nn/modules/module.py",
        "nn/functional.py",
        "autograd",
        "_ops.py",
        "_jit_internal.py",
        "functional.py",
        "_compile.py",
        "_dynamo",
    )
)


@dataclass(frozen=True, slots=True)
class NonFiniteLocation(ResultMixin):
    """Where the first non-finite value appeared.

    Attributes
    ----------
    phase : {"input", "forward", "backward", "loss"}
        ``"input"``: the batch itself holds NaN/Inf; ``"loss"``: the model's outputs were finite
        but the gradient coming back from the loss was not.
    op : str or None
        The ATen operator whose output was first non-finite (e.g. ``"aten.log.default"``).
    module : str
        Dotted module path (``""`` is the root model; ``"(loss)"`` outside the model).
    module_type : str
        Class name of that module.
    source : str
        ``file:line`` of the Python code that called the operator (for a backward fault, the
        forward call that the backward node belongs to), with the line's text.
    backward_node : str or None
        The autograd node running when a backward op produced it (e.g. ``"SqrtBackward0"``).
    forward_op : str or None
        The Python-level call that created that node (e.g. ``"torch.sqrt"``).
    step : int or None
        Training step, when found by a :class:`Monitor`.
    reproduced : bool
        False when the re-run produced only finite values (the fault depends on state that was
        not captured, e.g. an earlier micro-batch).

    Examples
    --------
    >>> loc = locate_nonfinite(lambda: torch.log(torch.tensor([-1.0])))
    >>> loc.op, loc.phase
    ('aten.log.default', 'forward')
    """

    phase: Phase
    op: str | None
    module: str
    module_type: str
    source: str
    backward_node: str | None = None
    forward_op: str | None = None
    step: int | None = None
    reproduced: bool = True

    def describe(self) -> str:
        """One sentence naming the op, module and source line."""
        if not self.reproduced:
            return (
                "a non-finite value was seen, but re-running the last batch gave only finite "
                "values (the fault may come from an earlier micro-batch or from state outside "
                "the model)"
            )
        where = f"module {self.module!r} ({self.module_type})" if self.module else "the model"
        if self.phase == "input":
            return f"the batch fed to {where} already holds NaN or infinity"
        if self.phase == "loss":
            return (
                "the model's outputs are finite but the gradient of the loss with respect to "
                "them is not: the loss function produced it"
            )
        if self.phase == "backward":
            return (
                f"backward op {self.op} in {self.backward_node} (the gradient of "
                f"{self.forward_op}) in {where}, at {self.source}"
            )
        return f"forward op {self.op} in {where}, at {self.source}"


def _frame_source(skip_extra: tuple[str, ...] = ()) -> str:
    frame: Any = sys._getframe(1)
    while frame is not None:
        fname = frame.f_code.co_filename
        if not (fname.startswith(_OWN_DIR) or fname.startswith(_SKIP_TORCH) or "<frozen" in fname):
            import linecache

            line = linecache.getline(fname, frame.f_lineno).strip()
            return f"{fname}:{frame.f_lineno}: {line}"
        frame = frame.f_back
    return "<unknown>"


def _nonfinite(t: torch.Tensor) -> bool:
    if not (t.is_floating_point() or t.is_complex()) or t.numel() == 0:
        return False
    if t.is_meta:
        return False
    return not bool(torch.isfinite(t).all())


@dataclass(slots=True)
class _Tag:
    module: str
    module_type: str
    forward_op: str
    source: str


@dataclass(slots=True)
class _Tracker:
    modules: list[tuple[str, str]] = field(default_factory=lambda: [("", "(outside)")])
    phase: Phase = "forward"
    node: str | None = None
    tag: _Tag | None = None
    found: NonFiniteLocation | None = None
    tagged: set[int] = field(default_factory=set)
    handles: list[Any] = field(default_factory=list)

    def current(self) -> tuple[str, str]:
        return self.modules[-1]

    def report(self, op: str) -> None:
        if self.found is not None:
            return
        if self.phase == "backward":
            tag = self.tag
            self.found = NonFiniteLocation(
                phase="backward",
                op=op,
                module=tag.module if tag else "",
                module_type=tag.module_type if tag else "",
                source=tag.source if tag else "<unknown>",
                backward_node=self.node,
                forward_op=tag.forward_op if tag else None,
            )
        else:
            module, module_type = self.current()
            self.found = NonFiniteLocation(
                phase="forward",
                op=op,
                module=module,
                module_type=module_type,
                source=_frame_source(),
            )


class _DispatchChecker(TorchDispatchMode):  # type: ignore[no-untyped-call]  # untyped base
    def __init__(self, tracker: _Tracker) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # torch leaves it untyped
        self.tracker = tracker

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        if self.tracker.found is None and any(_nonfinite(t) for t in tensors_in(out)):
            self.tracker.report(str(func))
        return out


def _func_name(func: Any) -> str:
    name = getattr(func, "__name__", None) or repr(func)
    qual = getattr(func, "__qualname__", name)
    module = getattr(func, "__module__", None)
    if module and module.startswith("torch"):
        return f"{module.replace('torch._C._nn', 'torch.nn.functional')}.{name}"
    if "Tensor" in str(qual) or hasattr(torch.Tensor, name):
        return f"Tensor.{name}"
    return str(qual)


class _FunctionTagger(TorchFunctionMode):
    def __init__(self, tracker: _Tracker) -> None:
        super().__init__()
        self.tracker = tracker

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        tracker = self.tracker
        if tracker.phase != "forward":
            return out
        tag: _Tag | None = None
        for t in tensors_in(out):
            node = t.grad_fn
            if node is None or id(node) in tracker.tagged:
                continue
            if tag is None:
                module, module_type = tracker.current()
                tag = _Tag(module, module_type, _func_name(func), _frame_source())
            tracker.tagged.add(id(node))
            tracker.handles.append(node.register_prehook(_prehook(tracker, tag, node.name())))
        return out


def _prehook(tracker: _Tracker, tag: _Tag, node_name: str) -> Callable[[Any], None]:
    def hook(grad_outputs: Any) -> None:
        tracker.tag = tag
        tracker.node = node_name

    return hook


@contextmanager
def _module_stack(model: nn.Module | None, tracker: _Tracker, prefix: str = "") -> Iterator[None]:
    if model is None:
        yield
        return
    handles = []
    for name, module in model.named_modules():
        path = _strip(name, prefix)

        def pre(mod: nn.Module, args: Any, path: str = path) -> None:
            tracker.modules.append((path, type(mod).__name__))

        def post(mod: nn.Module, args: Any, out: Any) -> None:
            if len(tracker.modules) > 1:
                tracker.modules.pop()

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post, always_call=True))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _strip(name: str, prefix: str) -> str:
    if prefix and name.startswith(prefix):
        return name[len(prefix) :]
    if prefix and name + "." == prefix:
        return ""
    return name


@contextmanager
def checking(model: nn.Module | None = None, *, prefix: str = "") -> Iterator[_Tracker]:
    """Context in which every operator's output is checked; yields the tracker.

    Set ``tracker.phase = "backward"`` before running the backward pass.
    """
    tracker = _Tracker()
    with ExitStack() as stack:
        stack.enter_context(_module_stack(model, tracker, prefix))
        stack.enter_context(_FunctionTagger(tracker))
        stack.enter_context(_DispatchChecker(tracker))
        try:
            yield tracker
        finally:
            for h in tracker.handles:
                h.remove()
            tracker.handles.clear()


def locate_nonfinite(
    fn: Callable[[], Any],
    *,
    model: nn.Module | None = None,
    backward: bool = True,
) -> NonFiniteLocation | None:
    """Run ``fn`` (a forward pass and loss) and its backward pass; find the first non-finite value.

    Every ATen operator's output is checked (one synchronization per operator: a diagnostic,
    not something to leave on). With ``model``, module paths are named; without it, the module
    is ``""``.

    Parameters
    ----------
    fn : callable
        Takes no argument and returns the loss (or any tensor). If it requires grad and
        ``backward`` is true, ``loss.sum().backward()`` runs under the checker too (gradients
        accumulate into ``.grad`` as usual; zero them afterwards if needed).
    model : nn.Module, optional
        The model ``fn`` runs, to name the module where the fault happened.
    backward : bool
        Whether to check the backward pass as well.

    Returns
    -------
    NonFiniteLocation or None
        ``None`` when every value stayed finite.

    Examples
    --------
    >>> x = torch.zeros(3, requires_grad=True)
    >>> loc = locate_nonfinite(lambda: torch.sqrt(x).sum())
    >>> loc.phase, loc.backward_node, loc.forward_op
    ('backward', 'SqrtBackward0', 'torch.sqrt')
    """
    with checking(model) as tracker:
        out = fn()
        if (
            tracker.found is None
            and backward
            and isinstance(out, torch.Tensor)
            and out.requires_grad
        ):
            tracker.phase = "backward"
            out.sum().backward()  # type: ignore[no-untyped-call]  # torch leaves it untyped
    return tracker.found


def rerun_batch(
    model: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    grad_output: list[torch.Tensor | None] | None,
    *,
    prefix: str = "",
) -> NonFiniteLocation:
    """Re-run one recorded forward (and the backward from its recorded output gradient).

    The caller saves and restores parameters, gradients, buffers and random state.
    """
    if any(_nonfinite(t) for t in tensors_in((args, kwargs))):
        return NonFiniteLocation("input", None, "", type(model).__name__, "<batch>")
    with checking(model, prefix=prefix) as tracker:
        out = model(*args, **kwargs)
        if tracker.found is None and grad_output is not None:
            outs = tensors_in(out)
            grads = [g for g in grad_output if g is not None]
            if any(_nonfinite(g) for g in grads):
                tracker.found = NonFiniteLocation("loss", None, "(loss)", "loss", "<loss function>")
            pairs = [
                (o, g)
                for o, g in zip(outs, grad_output, strict=False)
                if g is not None and o.requires_grad
            ]
            params = [p for p in model.parameters() if p.requires_grad]
            if tracker.found is None and pairs and params:
                tracker.phase = "backward"
                # autograd.grad leaves .grad alone and runs no AccumulateGrad hook (DDP's)
                torch.autograd.grad(
                    [o for o, _ in pairs], params, [g for _, g in pairs], allow_unused=True
                )
    if tracker.found is None:
        return NonFiniteLocation("forward", None, "", "", "<not reproduced>", reproduced=False)
    return tracker.found
