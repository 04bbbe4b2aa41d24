"""Localize the first non-finite value: re-run a batch under a dispatch-level checker.

Two interposers run together while the batch is re-run:

* a ``TorchFunctionMode`` sees each call at the Python level (``torch.log``, ``F.linear``,
  ``x / y``), where outputs already carry their autograd node; it tags each node with the
  call's name, the module being run and the source line, through a node pre-hook;
* a ``TorchDispatchMode`` sees every ATen operator (``aten.log.default``), forward and backward,
  and checks its inputs and outputs.

Not every non-finite value is a fault. Real code makes some on purpose: a causal mask filled
with ``-inf`` (``masked_fill``, ``torch.full``, the math path of scaled-dot-product attention)
that a later softmax turns into exact zeros; and some ops allocate uninitialized memory
(``empty_like`` under dropout) that may hold stale NaN until it is overwritten. So the checker
follows where non-finite values come from instead of naming the first op that shows one:

* outputs of allocation ops (``empty``, ``empty_like``, ...) are not values: never checked;
* an op whose inputs (tensors it reads and scalar arguments) are all finite but whose output is
  not *creates* a non-finite value: an arithmetic origin (``log(0)``, ``0/0``, an overflow);
* an op that brings in a non-finite constant (a ``-inf`` fill value, a scalar ``inf``, a buffer
  or literal tensor that already holds one) creates a constant origin;
* an op whose non-finite inputs give a non-finite output passes their origins on; one whose
  output is finite absorbs them (softmax over a masked row with some finite entries).

When the forward pass ends, the non-finite values that reached the model's outputs (or, in the
backward pass, the parameters' gradients) are traced to their origins, and the one reported is,
in this order, one never absorbed anywhere, an arithmetic one, the earliest. It is reported with
the module path (a stack kept by forward hooks) and the source line where it was created; in the
backward pass, with the autograd node running and the forward call and module it belongs to.

This is a diagnostic path: it synchronizes once per operator and is used only after a
non-finite value was seen (or when a user calls :func:`locate_nonfinite`).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakTensorKeyDictionary

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


# ops whose output is allocated, not computed: its content is whatever the memory held
_UNINITIALIZED = frozenset(
    {"empty", "empty_like", "empty_strided", "empty_permuted", "new_empty", "new_empty_strided"}
)
# ops that do not read the values of their first argument (only its shape, dtype, device), or
# overwrite it without reading it
_SHAPE_ONLY = frozenset(
    {
        "zeros_like",
        "ones_like",
        "full_like",
        "rand_like",
        "randn_like",
        "randint_like",
        "new_zeros",
        "new_ones",
        "new_full",
        "fill_",
        "zero_",
        "copy_",
        "bernoulli_",
        "uniform_",
        "normal_",
        "random_",
        "exponential_",
        "geometric_",
        "cauchy_",
        "log_normal_",
    }
)


@dataclass(slots=True)
class _Origin:
    """An op that created non-finite values, and what became of them."""

    index: int
    location: NonFiniteLocation
    arithmetic: bool  # from finite inputs (a fault) rather than from a non-finite constant
    absorbed: bool = False  # some op turned values from here into finite ones

    def rank(self) -> tuple[bool, bool, int]:
        return (self.absorbed, not self.arithmetic, self.index)


@dataclass(slots=True)
class _Tracker:
    modules: list[tuple[str, str]] = field(default_factory=lambda: [("", "(outside)")])
    phase: Phase = "forward"
    node: str | None = None
    tag: _Tag | None = None
    found: NonFiniteLocation | None = None
    tagged: set[int] = field(default_factory=set)
    handles: list[Any] = field(default_factory=list)
    origins: list[_Origin] = field(default_factory=list)
    # non-finite tensors: id -> (the tensor, kept alive so that the id stays its own, and the
    # origins of its non-finite values); every change made during the run passes through
    # `outputs`, which updates both maps
    tainted: dict[int, tuple[torch.Tensor, frozenset[int]]] = field(default_factory=dict)
    finite: Any = field(default_factory=WeakTensorKeyDictionary)  # tensor -> True

    def current(self) -> tuple[str, str]:
        return self.modules[-1]

    def locate(self, op: str) -> NonFiniteLocation:
        """Where op ``op`` runs now: module and source line (forward) or node (backward)."""
        if self.phase == "backward":
            tag = self.tag
            return NonFiniteLocation(
                phase="backward",
                op=op,
                module=tag.module if tag else "",
                module_type=tag.module_type if tag else "",
                source=tag.source if tag else "<unknown>",
                backward_node=self.node,
                forward_op=tag.forward_op if tag else None,
            )
        module, module_type = self.current()
        return NonFiniteLocation(
            phase="forward",
            op=op,
            module=module,
            module_type=module_type,
            source=_frame_source(),
        )

    # ------------------------------------------------------------------ taint
    def state(self, t: torch.Tensor) -> frozenset[int] | None:
        """``None`` when ``t`` is finite; else the origins of its non-finite values (an empty
        set for a tensor that came from outside the run: a buffer, a literal)."""
        if not (t.is_floating_point() or t.is_complex()):
            return None
        entry = self.tainted.get(id(t))
        if entry is not None and entry[0] is t:
            return entry[1]
        if t in self.finite:
            return None
        if _nonfinite(t):
            self.tainted[id(t)] = (t, frozenset())
            return frozenset()
        self.finite[t] = True
        return None

    def set_state(self, t: torch.Tensor, origins: frozenset[int] | None) -> None:
        if origins is None:
            self.tainted.pop(id(t), None)
            self.finite[t] = True
        else:
            self.finite.pop(t, None)
            self.tainted[id(t)] = (t, origins)

    def new_origin(self, op: str, *, arithmetic: bool) -> int:
        index = len(self.origins)
        self.origins.append(_Origin(index, self.locate(op), arithmetic))
        return index

    def inputs(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Inputs:
        """Before an op runs: the origins of its non-finite inputs (what it reads)."""
        base = getattr(getattr(func, "overloadpacket", None), "__name__", "")
        pre = _Inputs(base)
        schema = getattr(func, "_schema", None)
        if schema is not None and schema.is_mutable:  # arguments written in place
            for arg, value in zip(schema.arguments, args, strict=False):
                info = arg.alias_info
                if info is not None and info.is_write:
                    pre.written += tensors_in(value)
            pre.written += tensors_in(kwargs.get("out"))
        if base in _UNINITIALIZED:
            return pre
        read = args[1:] if base in _SHAPE_ONLY else args
        flat, _ = tree_flatten((read, {k: v for k, v in kwargs.items() if k != "out"}))
        for a in flat:
            if isinstance(a, torch.Tensor):
                st = self.state(a)
                if st is None:
                    continue
                if st:
                    pre.inherited |= st
                else:
                    pre.outside.append(a)
            elif isinstance(a, float | complex) and not _finite_number(a):
                pre.constant = True
        return pre

    def outputs(self, func: Any, pre: _Inputs, out: Any) -> None:
        """After the op: check its output, and where it is non-finite, where that came from."""
        outs = [
            t for t in [*tensors_in(out), *pre.written] if t.is_floating_point() or t.is_complex()
        ]
        if not outs:
            return
        if pre.base in _UNINITIALIZED:  # memory, not values: whatever it holds is no result
            for t in outs:
                self.set_state(t, None)
            return
        # an in-place op returns the tensor it wrote: check it once
        outs = list({id(t): t for t in outs}.values())
        bad = [t for t in outs if _nonfinite(t)]
        if not bad:
            for t in outs:
                self.set_state(t, None)
            for i in pre.inherited:  # values from these origins were consumed safely here
                self.origins[i].absorbed = True
            return
        origins = set(pre.inherited)
        if pre.constant or pre.outside:
            # a non-finite constant enters here: a fill value, a scalar, a buffer
            created = self.new_origin(str(func), arithmetic=False)
            origins.add(created)
            for t in pre.outside:
                if all(t is not b for b in bad):
                    self.set_state(t, frozenset({created}))
        elif not pre.inherited:  # finite inputs, non-finite output: this op created it
            origins.add(self.new_origin(str(func), arithmetic=True))
        taint = frozenset(origins)
        for t in outs:
            self.set_state(t, taint if any(t is b for b in bad) else None)

    def resolve(self, sinks: Iterable[torch.Tensor]) -> bool:
        """Name the origin of the non-finite values among ``sinks``; whether there were any."""
        if self.found is not None:
            return True
        reached: set[int] = set()
        nonfinite = False
        for t in sinks:
            st = self.state(t)
            if st is not None:
                nonfinite = True
                reached |= st
        if not nonfinite:
            return False
        if reached:
            best = min((self.origins[i] for i in reached), key=_Origin.rank)
            self.found = best.location
        else:
            self.finish()
        return True

    def finish(self) -> None:
        """Without a non-finite output: the first op that made non-finite values from finite
        inputs and whose values were never consumed safely, if any."""
        if self.found is not None:
            return
        made = [o for o in self.origins if o.arithmetic and not o.absorbed]
        if made:
            self.found = made[0].location


@dataclass(slots=True)
class _Inputs:
    """What an op read, seen before it ran."""

    base: str
    written: list[torch.Tensor] = field(default_factory=list)
    inherited: set[int] = field(default_factory=set)
    outside: list[torch.Tensor] = field(default_factory=list)
    constant: bool = False


def _finite_number(value: float | complex) -> bool:
    if isinstance(value, complex):
        return math.isfinite(value.real) and math.isfinite(value.imag)
    return math.isfinite(value)


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
        kwargs = kwargs or {}
        tracker = self.tracker
        if tracker.found is not None:
            return func(*args, **kwargs)
        pre = tracker.inputs(func, args, kwargs)  # before: an in-place op changes its input
        out = func(*args, **kwargs)
        tracker.outputs(func, pre, out)
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

    Every ATen operator's inputs and output are checked (a synchronization per operator: a
    diagnostic, not something to leave on), and the non-finite values that reach the result
    (or, in the backward pass, the gradients) are traced back to the op that made them from
    finite inputs; ``-inf`` masks that a later op consumes safely and uninitialized buffers
    are not faults (see the module's docstring for the rule). With ``model``, module paths are
    named; without it, the module is ``""``.

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
        ``None`` when no non-finite value reached the result or the gradients and every
        non-finite value made along the way was consumed safely (``torch.where(p > 0,
        torch.log(p), 0)``, a causal mask under a softmax).

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
            not tracker.resolve(tensors_in(out))
            and backward
            and isinstance(out, torch.Tensor)
            and out.requires_grad
        ):
            leaves = _leaves(out)
            if model is not None:
                leaves += [p for p in model.parameters() if p.requires_grad]
            tracker.phase = "backward"
            out.sum().backward()  # type: ignore[no-untyped-call]  # torch leaves it untyped
            tracker.resolve(t.grad for t in leaves if t.grad is not None)
        tracker.finish()
    return tracker.found


def _leaves(out: torch.Tensor) -> list[torch.Tensor]:
    """The leaf tensors whose ``.grad`` a backward pass from ``out`` fills."""
    found: list[torch.Tensor] = []
    seen: set[int] = set()
    stack = [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)
        if isinstance(variable, torch.Tensor):
            found.append(variable)
        stack.extend(fn for fn, _ in node.next_functions)
    return found


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
        if not tracker.resolve(tensors_in(out)) and grad_output is not None:
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
                param_grads = torch.autograd.grad(
                    [o for o, _ in pairs], params, [g for _, g in pairs], allow_unused=True
                )
                tracker.resolve(g for g in param_grads if g is not None)
        tracker.finish()
    if tracker.found is None:
        return NonFiniteLocation("forward", None, "", "", "<not reproduced>", reproduced=False)
    return tracker.found
