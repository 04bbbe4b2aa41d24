"""Step-time overhead of the training monitor against its peers, measured side by side.

Configurations, on the same model, data and optimizer, interleaved round by round (every round
runs each configuration for ``--steps`` steps, default 1, in a shuffled order, so that machine
load drifts hit all of them alike); the statistic is the median per-step time over all rounds:

* ``baseline``: the plain training step;
* ``nndoctor``: ``nndoctor.Monitor(model, log_dir=...)`` at its default budget (5 %: the
  activation and backward statistics sampled as the monitor's own timing says; run with
  ``--steps 20`` or more, so that the monitor times its own model's steps and not the other
  configurations' steps between them) with the default quantities (gradient, weight and
  update norms, backward signal, activation statistics) and a JSONL line written per step;
* ``nndoctor-full``: the same with ``budget=None`` (everything on every tick; before the
  budget, this was the default);
* ``nndoctor-every10``: the same, measured every 10th step;
* ``wandb-hist``: a wandb.watch-style hook: per parameter and per gradient, ``min().item()``,
  ``max().item()`` and a 64-bin ``torch.histc`` copied to the host, every step (the worst
  case: ``wandb.watch(model, log="all", log_freq=1)``);
* ``wandb-default``: ``wandb.watch``'s documented default, ``log="gradients"``,
  ``log_freq=1000``: a hook per parameter that counts its calls and histograms the gradient
  (as above) on every 1,000th (on the other steps only the counting hook runs);
* ``anomaly``: ``torch.autograd.set_detect_anomaly(True)``;
* ``cockpit-economy``: Cockpit's "economy" configuration tracked every step (run with
  ``--configs baseline,cockpit-economy`` by the Python of a separate virtual environment
  that has ``cockpit-for-pytorch`` and ``backpack-for-pytorch``; see ``results_monitor.md``).

Run (1 intra-op thread, so that the result does not depend on thread scheduling)::

    PYTHONPATH=src python benchmarks/bench_monitor.py --rounds 80 --steps 1

Prints a Markdown table of median step times and ratios to the baseline (``--json``: one JSON
line instead; ``--notes`` adds a second JSON line with what each configuration concluded:
the monitor's findings, the histograms a wandb-style hook sent, the quantities Cockpit
tracked). ``--seed`` sets the shuffled order of the configurations within the rounds.
``--split`` instead times each phase (forward, backward, optimizer, monitor) of a plain and a
monitored model that alternate step by step (``f_*``: the bare device work of the gradient,
weight and update norms
every step, for the floor; ``g_*``: the same without the update; ``--extra-kwargs`` adds a
second monitored configuration ``x_*`` to the same paired run). ``--block N`` runs each
configuration for N steps in a row within a round (the first configuration alternating from
round to round), so that a monitor with a budget times its own model's steps and not the other
configurations' steps between its ticks; the paired difference is then taken between the
medians of the blocks of one round. ``--tags`` chooses the configurations of the split (``b``
always). A budget run::

    PYTHONPATH=src python benchmarks/bench_monitor.py --split --block 20 --rounds 8 --tags b,m,h
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def mlp() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256),
        nn.ReLU(),
        nn.Linear(256, 256),
        nn.ReLU(),
        nn.Linear(256, 256),
        nn.ReLU(),
        nn.Linear(256, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
    )


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


MODELS: dict[str, Callable[[], nn.Module]] = {"mlp": mlp, "cnn": cnn}


class Runner:
    """One configuration: its own model copy, optimizer and instrumentation."""

    def __init__(self, name: str, factory: Callable[[], nn.Module], batch: int) -> None:
        torch.manual_seed(0)
        self.name = name
        self.model = factory()
        self.loss_fn = nn.CrossEntropyLoss()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(batch, 1, 28, 28, generator=g)
        self.y = torch.randint(0, 10, (batch,), generator=g)
        self.times: list[float] = []
        self.monitor: Any = None
        self.handles: list[Any] = []
        if name.startswith("nndoctor"):
            from nndoctor import Monitor

            every = int(name.split("-every")[1]) if "-every" in name else 1
            budget = None if name == "nndoctor-full" else 0.05
            self.tmp = tempfile.TemporaryDirectory()
            self.monitor = Monitor(
                self.model, log_dir=self.tmp.name, every=every, budget=budget
            ).open()
        if name == "wandb-hist":
            self.handles = [p.register_hook(self._hist_hook) for p in self.model.parameters()]
        self.log_freq = 1000  # wandb.watch's default (log="gradients")
        self.calls: list[int] = []
        self.n_hist = 0
        if name == "wandb-default":
            params = list(self.model.parameters())
            self.calls = [0] * len(params)
            self.handles = [
                p.register_hook(functools.partial(self._counted_hook, i))
                for i, p in enumerate(params)
            ]
        self.sink: list[Any] = []
        self.global_step = 0
        if name == "cockpit-economy":
            from backpack import extend
            from cockpit import Cockpit
            from cockpit.utils.configuration import configuration

            self.model = extend(self.model)
            self.loss_fn = extend(nn.CrossEntropyLoss())
            self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
            self.individual = nn.CrossEntropyLoss(reduction="none")
            self.cockpit = Cockpit(self.model.parameters(), quantities=configuration("economy"))

    def _hist(self, t: torch.Tensor) -> None:
        # what wandb.watch does per tensor: range with .item(), then a histogram to the host
        t = t.detach().float().reshape(-1)
        lo, hi = t.min().item(), t.max().item()
        if lo == hi:
            hi = lo + 1e-6
        self.sink.append(torch.histc(t, bins=64, min=lo, max=hi).tolist())
        self.n_hist += 1

    def _hist_hook(self, grad: torch.Tensor) -> None:
        self._hist(grad)

    def _counted_hook(self, i: int, grad: torch.Tensor) -> None:
        # wandb's log_track_update: count the calls, log on every log_freq-th
        self.calls[i] += 1
        if self.calls[i] >= self.log_freq:
            self.calls[i] = 0
            self._hist(grad)

    def conclusion(self) -> dict[str, Any]:
        """What this configuration told its user about the run (for ``--notes``)."""
        steps = len(self.times)
        if self.monitor is not None:
            counts: dict[str, int] = {}
            for f in self.monitor.findings:
                key = f"{f.check} ({f.severity})"
                counts[key] = counts.get(key, 0) + 1
            return {"findings": counts, "steps": steps}
        if self.name.startswith("wandb"):
            return {"histograms_sent": self.n_hist, "steps": steps, "findings": "none (plots only)"}
        if self.name == "anomaly":
            return {"findings": "no anomaly raised", "steps": steps}
        if self.name == "cockpit-economy":
            names = sorted({type(q).__name__ for q in self.cockpit.quantities})
            return {"quantities": names, "steps": steps, "findings": "none (plots only)"}
        return {"steps": steps}

    def step(self) -> None:
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        if self.name == "cockpit-economy":
            out = self.model(self.x)
            loss = self.loss_fn(out, self.y)
            info = {
                "batch_size": self.x.shape[0],
                "individual_losses": self.individual(out, self.y),
                "loss": loss,
                "optimizer": self.opt,
            }
            with self.cockpit(self.global_step, info=info):
                loss.backward(create_graph=self.cockpit.create_graph(self.global_step))
            self.global_step += 1
        elif self.name == "anomaly":
            with torch.autograd.detect_anomaly(check_nan=True):
                loss = self.loss_fn(self.model(self.x), self.y)
                loss.backward()
        else:
            loss = self.loss_fn(self.model(self.x), self.y)
            loss.backward()
        self.opt.step()
        if self.monitor is not None:
            self.monitor.step(loss)
        if self.name == "wandb-hist":
            for p in self.model.parameters():
                self._hist(p)
        if self.name.startswith("wandb"):
            self.sink.clear()
        self.times.append(time.perf_counter() - t0)


NOTES: dict[str, dict[str, Any]] = {}  # model -> configuration -> conclusion (``--notes``)


def run(
    model: str, names: list[str], rounds: int, steps: int, batch: int, seed: int = 0
) -> dict[str, float]:
    import warnings

    warnings.filterwarnings("ignore", message="Anomaly Detection has been enabled")
    runners = [Runner(n, MODELS[model], batch) for n in names]
    for r in runners:  # warm-up
        for _ in range(3):
            r.step()
        r.times.clear()
    rng = random.Random(seed)
    for _ in range(rounds):
        order = runners[:]
        rng.shuffle(order)
        for r in order:
            for _ in range(steps):
                r.step()
    medians = {r.name: statistics.median(r.times) for r in runners}
    NOTES[model] = {r.name: r.conclusion() for r in runners}
    for r in runners:
        if r.monitor is not None:
            acct = r.monitor.overhead()
            print(
                f"{model} {r.name}: the monitor's own accounting: overhead "
                f"{acct['overhead']:.3f}, period {acct['period'].get('activations')}, "
                f"ticks {acct['ticks']}",
                file=sys.stderr,
            )
            r.monitor.close()
    return medians


class _Floor:
    """The memory traffic of the per-layer norms alone, with no hooks and no host work.

    Per step: the norms of every gradient and weight, one transfer, and (``update=True``) the
    norm of the update (parameters minus a snapshot, into a preallocated buffer) and the
    snapshot copy for the next step: what any implementation of per-layer gradient/weight
    (/update) norms every step must read and write.
    """

    def __init__(self, net: nn.Module, update: bool = True) -> None:
        self.params = list(net.parameters())
        self.update = update
        self.snapshot = [p.detach().clone() for p in self.params]
        self.scratch = [torch.empty_like(p) for p in self.params]

    def step(self, loss: torch.Tensor) -> None:
        with torch.no_grad():
            grads = [p.grad for p in self.params if p.grad is not None]
            if not self.update:
                norms = torch._foreach_norm(grads + self.params)
                torch.stack([*norms, loss.detach()]).tolist()
                return
            for d, w, w0 in zip(self.scratch, self.params, self.snapshot, strict=True):
                torch.sub(w, w0, out=d)
            norms = torch._foreach_norm(grads + self.params + self.scratch)
            torch.stack([*norms, loss.detach()]).tolist()
            torch._foreach_copy_(self.snapshot, self.params)


class _Ideal(_Floor):
    """A lower bound for any monitor of the issue's every-step quantities (tag ``h``).

    The gradient and weight norms of :class:`_Floor` (``update=False``), plus what the issue
    asks for on top of them at every step and that no implementation can skip: a forward hook
    per ReLU that reduces its output to per-unit sums (dead units, mean) and a norm (std), and
    one JSON line per step handed to the operating system. No backward-signal hooks, no rules,
    no non-finite check, no Python bookkeeping: strictly less work than a real monitor.
    """

    def __init__(self, net: nn.Module, path: str) -> None:
        super().__init__(net, update=False)
        self.records: list[torch.Tensor] = []
        self.units: list[torch.Tensor] = []
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.names = [n for n, _ in net.named_modules() if n]
        for module in net.modules():
            if isinstance(module, nn.ReLU):
                module.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:
        d = output.detach()  # per-unit (per-channel) sums over the batch, and the norm
        self.units.append(d.sum(0) if d.dim() == 2 else d.sum((2, 3)).sum(0))
        self.records.append(torch.linalg.vector_norm(d))

    def step(self, loss: torch.Tensor) -> None:
        with torch.no_grad():
            grads = [p.grad for p in self.params if p.grad is not None]
            norms = torch._foreach_norm(grads + self.params)
            sums = torch.cat(self.units)
            dead = (sums <= 0).sum().float()
            scalars = [*norms, *self.records, sums.sum(), dead, loss.detach()]
            host = torch.stack(scalars).tolist()
        self.records.clear()
        self.units.clear()
        line = json.dumps({"kind": "tick", "time": time.time(), "values": host}) + "\n"
        os.write(self.fd, line.encode())


class _NonfiniteFloor:
    """The floor of the never-sampled guarantee: a NaN caught and localizable at its very step.

    Per step (tag ``n``): what the monitor must do on every step whatever its budget — the
    gradients' norms (one ``foreach_norm``) read on the host and their sum tested for
    finiteness, and the root hooks that keep the batch and the gradient at the model's output
    for a re-run (a forward pre-hook, a forward hook that registers a tensor hook). No update
    ratio, no rules, no log line: strictly less than any monitor that keeps the guarantee.
    """

    def __init__(self, net: nn.Module) -> None:
        self.params = list(net.parameters())
        self.inputs: Any = None
        self.grad_out: list[Any] = [None]
        net.register_forward_pre_hook(self._pre, with_kwargs=True)
        net.register_forward_hook(self._post)

    def _pre(self, module: nn.Module, args: Any, kwargs: Any) -> None:
        self.inputs = (tuple(args), dict(kwargs))

    def _post(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:
        box = self.grad_out = [None]

        def hook(g: torch.Tensor) -> None:
            box[0] = g

        output.register_hook(hook)

    def step(self, loss: torch.Tensor) -> None:
        with torch.no_grad():
            grads = [p.grad for p in self.params if p.grad is not None]
            host = torch.stack(torch._foreach_norm(grads)).tolist()
        if not math.isfinite(sum(host)):
            raise FloatingPointError("non-finite gradient")


def split(
    model: str,
    steps: int,
    batch: int,
    kwargs: dict[str, Any],
    extra: dict[str, Any] | None = None,
    block: int = 1,
    only: list[str] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Paired per-phase timing: a plain and monitored models alternate step by step.

    Tags: ``b`` plain, ``m`` monitored with ``kwargs``, ``x`` monitored with ``extra`` (when
    given), ``f`` the floor with the update every step, ``g`` the floor without the update,
    ``h`` the ideal minimal monitor (:class:`_Ideal`), ``n`` the non-finite floor
    (:class:`_NonfiniteFloor`, only when ``only`` names it).
    Keys ``<tag>_<phase>`` are medians in ms; ``<tag>_mean`` is the mean step time in ms
    (work done on a schedule, e.g. the sampled update ratio, shows in the mean only).
    With ``block`` > 1 each round runs ``block`` steps of each configuration in a row (the
    first configuration alternating by round), and ``<tag>_pdiff`` is the median over rounds
    of the difference of the blocks' median step times. ``only`` restricts the tags.
    """
    import tempfile

    from nndoctor import Monitor

    x = torch.randn(batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (batch,), generator=torch.Generator().manual_seed(1))
    pairs = []
    tags = ["b", "m", "f", "g", "h"] + (["x"] if extra is not None else [])
    if only:
        tags = ["b"] + [t for t in [*tags, "n"] if t in only and t != "b"]
    for tag in tags:
        torch.manual_seed(0)
        net = MODELS[model]()
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        mon: Any = None
        if tag in ("m", "x"):
            kw = kwargs if tag == "m" else extra
            mon = Monitor(net, log_dir=tempfile.mkdtemp(), **(kw or {})).open()
        elif tag in ("f", "g"):
            mon = _Floor(net, update=tag == "f")
        elif tag == "h":
            mon = _Ideal(net, os.path.join(tempfile.mkdtemp(), "ideal.jsonl"))
        elif tag == "n":
            mon = _NonfiniteFloor(net)
        pairs.append((net, opt, mon, tag))
    times: dict[str, list[float]] = {}
    if block > 1:
        return _split_blocks(pairs, tags, steps, block, x, y, clock)
    for i in range(steps + 5):
        for net, opt, mon, tag in pairs:
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(net(x), y)
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            opt.step()
            t3 = time.perf_counter()
            if mon is not None:
                mon.step(loss)
            t4 = time.perf_counter()
            if i >= 5:
                for key, value in (("fwd", t1 - t0), ("bwd", t2 - t1), ("opt", t3 - t2)):
                    times.setdefault(f"{tag}_{key}", []).append(value)
                times.setdefault(f"{tag}_total", []).append(t4 - t0)
                if mon is not None:
                    times.setdefault(f"{tag}_monitor", []).append(t4 - t3)
    out = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    base = times["b_total"]
    for tag in tags:
        out[f"{tag}_mean"] = statistics.mean(times[f"{tag}_total"]) * 1e3
        # median of the per-round differences to the plain step of the same round: robust to
        # load that drifts during the run (both members of a pair see it)
        diffs = [m - b for m, b in zip(times[f"{tag}_total"], base, strict=True)]
        out[f"{tag}_pdiff"] = statistics.median(diffs) * 1e3
    return out


def _split_blocks(
    pairs: list[tuple[nn.Module, Any, Any, str]],
    tags: list[str],
    rounds: int,
    block: int,
    x: torch.Tensor,
    y: torch.Tensor,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """The split with ``block`` steps per configuration in a row (see :func:`split`)."""
    per_round: dict[str, list[list[float]]] = {}
    phases: dict[str, list[float]] = {}
    for r in range(rounds + 1):  # round 0 warms up
        order = pairs if r % 2 == 0 else pairs[::-1]
        for net, opt, mon, tag in order:
            totals: list[float] = []
            for _ in range(block):
                t0 = clock()
                opt.zero_grad(set_to_none=True)
                loss = nn.functional.cross_entropy(net(x), y)
                t1 = clock()
                loss.backward()
                t2 = clock()
                opt.step()
                t3 = clock()
                if mon is not None:
                    mon.step(loss)
                t4 = clock()
                totals.append(t4 - t0)
                if r:
                    for key, value in (("fwd", t1 - t0), ("bwd", t2 - t1), ("opt", t3 - t2)):
                        phases.setdefault(f"{tag}_{key}", []).append(value)
                    if mon is not None:
                        phases.setdefault(f"{tag}_monitor", []).append(t4 - t3)
            if r:
                per_round.setdefault(tag, []).append(totals)
    out = {k: statistics.median(v) * 1e3 for k, v in phases.items()}
    base = [statistics.median(t) for t in per_round["b"]]
    for tag in tags:
        flat = [v for t in per_round[tag] for v in t]
        out[f"{tag}_total"] = statistics.median(flat) * 1e3
        out[f"{tag}_mean"] = statistics.mean(flat) * 1e3
        meds = [statistics.median(t) for t in per_round[tag]]
        diffs = [m - b for m, b in zip(meds, base, strict=True)]
        out[f"{tag}_pdiff"] = statistics.median(diffs) * 1e3
        out[f"{tag}_pdiff_min"] = min(diffs) * 1e3
        out[f"{tag}_pdiff_max"] = max(diffs) * 1e3
    for _net, _opt, mon, tag in pairs:
        if tag in ("m", "x"):
            acct = mon.overhead()
            cost = acct.get("overhead", math.nan)
            print(
                f"{tag}: the monitor's own accounting: overhead {cost:.3f},"
                f" period {acct['period'].get('activations')}, ticks {acct['ticks']}",
                file=sys.stderr,
            )
            mon.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=80)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument(
        "--configs", default="baseline,nndoctor,nndoctor-every10,wandb-hist,anomaly"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--notes", action="store_true", help="print what each one concluded")
    parser.add_argument("--seed", type=int, default=0, help="order of the configurations")
    parser.add_argument(
        "--block",
        type=int,
        default=1,
        help="--split: steps of each configuration in a row per round (20 for a budget run)",
    )
    parser.add_argument(
        "--tags", default=None, help="--split: configurations, e.g. 'b,m,h' (default all)"
    )
    parser.add_argument(
        "--clock",
        choices=("perf", "thread"),
        default="perf",
        help="--split --block: wall clock (perf_counter) or this thread's CPU time "
        "(thread_time: leaves out the time the thread waits for a core on a loaded machine)",
    )
    parser.add_argument(
        "--split", action="store_true", help="paired per-phase timing of plain vs monitored"
    )
    parser.add_argument(
        "--monitor-kwargs",
        default="{}",
        help="JSON keyword arguments for --split, e.g. '{\"every\": 10}'",
    )
    parser.add_argument(
        "--extra-kwargs",
        default=None,
        help="JSON keyword arguments of a second monitored model in --split (tag x), e.g. "
        "'{\"update_every\": 1}'",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.split:
        extra = json.loads(args.extra_kwargs) if args.extra_kwargs else None
        for model in args.models.split(","):
            only = args.tags.split(",") if args.tags else None
            load0 = _loadavg()
            phases = split(
                model,
                args.rounds,
                args.batch,
                json.loads(args.monitor_kwargs),
                extra,
                block=args.block,
                only=only,
                clock=time.thread_time if args.clock == "thread" else time.perf_counter,
            )
            print(model, " ".join(f"{k}={v:.2f}ms" for k, v in sorted(phases.items())))
            tags = ["m", "f", "g", "h", "n"] + (["x"] if extra is not None else [])
            tags = [t for t in tags if f"{t}_total" in phases]
            if args.block > 1:
                print(
                    f"{model} paired ratios ({args.clock} clock), block {args.block} x "
                    f"{args.rounds} rounds (1 + median "
                    "over rounds of the block-median difference / plain median step, [min, max] "
                    f"over rounds), load average {load0} -> {_loadavg()}: "
                    + " ".join(
                        f"{t}={1 + phases[f'{t}_pdiff'] / phases['b_total']:.3f}"
                        f"[{1 + phases[f'{t}_pdiff_min'] / phases['b_total']:.3f},"
                        f"{1 + phases[f'{t}_pdiff_max'] / phases['b_total']:.3f}]"
                        for t in tags
                    )
                )
            print(
                f"{model} ratios (median step / plain median step; mean / plain mean; 1 + "
                "median paired difference / plain median step): "
                + " ".join(
                    f"{t}={phases[f'{t}_total'] / phases['b_total']:.3f}"
                    f"/{phases[f'{t}_mean'] / phases['b_mean']:.3f}"
                    f"/{1 + phases[f'{t}_pdiff'] / phases['b_total']:.3f}"
                    for t in tags
                )
            )
        return
    names = args.configs.split(",")
    results = {}
    for model in args.models.split(","):
        results[model] = run(model, names, args.rounds, args.steps, args.batch, args.seed)
    if args.json:
        print(json.dumps(results))
        if args.notes:
            print(json.dumps({"notes": NOTES}))
        return
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, "
        f"{args.rounds} rounds x {args.steps} steps, interleaved; median step time\n"
    )
    print("| model | configuration | median step (ms) | ratio to baseline |")
    print("|---|---|---|---|")
    for model, medians in results.items():
        base = medians["baseline"]
        for name, value in medians.items():
            print(f"| {model} | {name} | {value * 1e3:.2f} | {value / base:.3f} |")
    sys.stdout.flush()


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


if __name__ == "__main__":
    main()
