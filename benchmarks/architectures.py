"""The stability tools on real architectures: build the test corpus, write docs/architectures.md.

For every model of ``tests/stability/arch_corpus.py`` (BERT, GPT-2, ViT and Llama built from
``transformers`` configs, never downloaded; post- and pre-LN ``nn.TransformerEncoder``; an LSTM
language model and a GRU classifier; a VGG-style CNN with and without BatchNorm; a ResNet; an
MLP), healthy and broken, it records:

* the probe's verdict and end-to-end gains (``probe(model, inputs)``; its dropout masks come
  from its own generator; the global RNG is seeded with 0 for an nndoctor that used it);
* the audit's reading (``audit_init(model)``): the schemes it recognizes, whether its
  end-to-end reading applies, how many layers it flags;
* the symmetry check with the batch (``find_symmetric_units(model, inputs)``);
* the findings of ``nndoctor.Monitor`` on a short training run (``--steps`` steps, default 20,
  with the architecture's usual optimizer: AdamW 3e-4 for transformers, Adam 1e-3 for
  recurrent nets and the MLP, SGD 0.01 with momentum for CNNs), as they are, false alarms
  included.

Run from the repository root (a few minutes on one CPU thread)::

    PYTHONPATH=src python benchmarks/architectures.py            # writes docs/architectures.md
    PYTHONPATH=src python benchmarks/architectures.py --out -    # prints the page instead
    PYTHONPATH=src python benchmarks/architectures.py --no-monitor --out -   # tools only

A tool that raises is recorded with its error (``--no-monitor`` also runs against an older
nndoctor, to compare).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "stability"))

from arch_corpus import CORPUS, Case, build, call  # noqa: E402

from nndoctor.stability import audit_init, find_symmetric_units, probe  # noqa: E402


def _g(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.3g}"


def _guard(fn: Callable[[], str]) -> str:
    """The cell ``fn`` renders, or the error it raised."""
    try:
        return fn()
    except Exception as err:  # a tool's failure is a result here, shown as it is
        return f"**raises** {type(err).__name__}: {str(err)[:90]}"


def _probe_cell(case: Case) -> str:
    torch.manual_seed(0)
    r = probe(case.model, case.inputs)
    return f"{r.verdict} (fwd x{_g(r.forward_gain)}, bwd x{_g(r.backward_gain)})"


def _audit_cell(case: Case) -> str:
    a = audit_init(case.model)
    schemes = sorted({la.scheme for la in a.layers})
    shown = ", ".join(schemes[:3]) + (f" +{len(schemes) - 3}" if len(schemes) > 3 else "")
    flagged = getattr(a, "flagged_layers", None)
    if flagged is None:  # (an nndoctor before the flagged_layers property)
        flagged = [la for la in a.layers if not la.recommendation.endswith("keep")]
    if getattr(a, "chain", True) is False:
        reading = f"not a chain ({a.structure}): defers to the probe"
    else:
        reading = f"chain: fwd x{_g(a.forward_gain)}, bwd x{_g(a.backward_gain)}"
    verdict = "keep" if not flagged else f"**{len(flagged)} flagged**"
    return f"{len(a.layers)} layers, {shown}; {reading}; {verdict}"


def _symmetry_cell(case: Case) -> str:
    s = find_symmetric_units(case.model, case.inputs)
    if s.verdict.startswith("No tied units"):
        return "no ties"
    return s.verdict.replace("|", "/")


def _monitor_cell(case: Case, steps: int) -> str:
    from nndoctor import Monitor

    torch.manual_seed(0)
    opt = case.optimizer(case.model.parameters())
    losses: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the findings are read from the monitor below
        with Monitor(case.model, on_nonfinite="warn") as monitor:
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                loss = case.loss(call(case.model, case.inputs), case.targets)
                loss.backward()
                opt.step()
                monitor.step(loss)
                losses.append(float(loss.detach()))
            findings = list(monitor.findings)
    seen: dict[tuple[str, str], int] = {}
    for f in findings:
        seen.setdefault((f.check, f.layer), f.step)
    parts = [f"{check} @ `{layer}` (step {step})" for (check, layer), step in seen.items()]
    shown = "; ".join(parts[:3]) + (f"; +{len(parts) - 3} more" if len(parts) > 3 else "")
    trend = f"loss {_g(losses[0])} → {_g(losses[-1])}"
    return f"{shown or 'none'} ({trend})"


def _rows(steps: int, monitor: bool) -> list[list[str]]:
    rows = []
    for family, variant, expected in CORPUS:
        t = time.perf_counter()
        case = build(family, variant)
        row = [
            f"{family}",
            f"{variant}" + ("" if expected == "healthy" else " (broken)"),
            _guard(lambda case=case: _probe_cell(case)),
            _guard(lambda case=case: _audit_cell(case)),
            _guard(lambda case=case: _symmetry_cell(case)),
        ]
        if monitor:
            fresh = build(family, variant)  # (the tools above left the model as it was)
            row.append(_guard(lambda case=fresh: _monitor_cell(case, steps)))
        rows.append(row)
        print(f"{family}/{variant}: {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return rows


_INTRO = """\
# The stability tools on real architectures

Every model of the test corpus (`tests/stability/arch_corpus.py`): tiny versions of the
architectures people train, built from `transformers` configs (never downloaded) or from
`torch.nn`, each healthy at its usual initialization and in a broken variant (marked). The
tests (`tests/stability/test_stability_architectures.py`) check that every healthy model reads
healthy by the probe, the audit and the symmetry check, and that each broken variant is flagged
by the tool that can see its fault: huge weights in a normalized network are hidden from the
probe (every LayerNorm resets the signal's scale) but not from the audit; a missing
normalization or an unscaled residual stream shows in the probe's gains.

This page is written by `benchmarks/architectures.py` (run it to refresh it); every number
comes from that run. Columns:

* **probe**: `probe(model, inputs)` — verdict and end-to-end forward and backward gains (the
  backward pass starts from a fixed-seed Gaussian cotangent, see
  [stability](stability.md)); integer inputs (token ids) measure from the
  first layer's output;
* **audit**: `audit_init(model)` — the laws the weights look drawn from, whether the
  end-to-end product of per-layer factors applies (only for a plain chain; otherwise the audit
  says so and defers to the probe), and how many layers it flags;
* **symmetry**: `find_symmetric_units(model, inputs)`;
* **monitor**: the findings of `nndoctor.Monitor` over a short training run with the
  architecture's usual optimizer, every warning and error as the monitor reports it (a
  healthy row should read "none"), with the loss's first and last values. Huge weights in a
  normalized network are not the monitor's to see (no activation module saturates where a
  LayerNorm rescales; LSTM gates and softmax are not modules): the audit flags them.
"""


def render(rows: list[list[str]], steps: int, monitor: bool) -> str:
    header = ["model", "variant", "probe", "audit", "symmetry"]
    if monitor:
        header.append(f"monitor, {steps} steps")
    lines = [_INTRO]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for row in rows:
        lines.append("| " + " | ".join(c.replace("\n", " ") for c in row) + " |")
    lines.append("")
    lines.append(
        f"Measured with torch {torch.__version__} on the CPU; models in training mode (dropout "
        "on), inputs and weights from seed 0."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "architectures.md"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--no-monitor", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    monitor = not args.no_monitor
    page = render(_rows(args.steps, monitor), args.steps, monitor)
    if args.out == "-":
        sys.stdout.write(page)
    else:
        Path(args.out).write_text(page, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
