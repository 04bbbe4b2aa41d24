r"""Try initialization schemes on a copy of the model, re-probe each, and keep the best."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nndoctor._results import ResultMixin
from nndoctor._validation import check_choice, check_int, check_module, check_number
from nndoctor.exceptions import InvalidParameterError
from nndoctor.stability._layers import following_activations
from nndoctor.stability.init import SCHEMES, audit_init, init_, lsuv_
from nndoctor.stability.propagation import PropagationReport, probe

__all__ = ["CandidateScore", "InitRecommendation", "recommend_init"]


@dataclass(frozen=True, slots=True)
class CandidateScore(ResultMixin):
    """One scheme tried by :func:`recommend_init` and how its probe went.

    ``score`` is :math:`|\\log_{10} G_f| + |\\log_{10} G_b|` plus ``collapse_penalty`` when the
    output correlation collapses (lower is better; ``inf`` for non-finite gains).
    """

    scheme: str
    forward_gain: float
    backward_gain: float
    verdict: str
    output_correlation: float
    score: float


@dataclass(frozen=True, slots=True)
class InitRecommendation(ResultMixin):
    """The best scheme for a model, with the evidence.

    Attributes
    ----------
    scheme : str
        The winner (``"lsuv"`` for the data-dependent one), or ``"current"`` when the model
        is already healthy and keeps its own initialization.
    before, after : PropagationReport
        Probes of the model as it was and with the winning scheme: per-layer gains before/after
        (``after`` is ``before`` when the current initialization is kept).
    candidates : tuple of CandidateScore
        Every scheme tried, best first (tried and measured also when the current
        initialization is kept).
    applied : bool
        Whether the winning weights were copied into the model.
    improvement : float
        ``before`` score minus ``after`` score (in decades of gain; 0 when kept).
    message : str
        One sentence: what to do, and why.
    """

    scheme: str
    before: PropagationReport
    after: PropagationReport
    candidates: tuple[CandidateScore, ...]
    applied: bool
    improvement: float
    message: str = ""


def _score(report: PropagationReport, collapse_penalty: float) -> tuple[float, float]:
    fg, bg = report.forward_gain, report.backward_gain
    called = report.called_layers
    corr = called[-1].correlation if called else math.nan
    if not (math.isfinite(fg) and math.isfinite(bg)) or fg <= 0 or bg <= 0:
        return math.inf, corr
    score = abs(math.log10(fg)) + abs(math.log10(bg))
    if any(f.kind == "correlation_collapse" for f in report.findings):
        score += collapse_penalty
    return score, corr


def _default_schemes(model: nn.Module) -> tuple[str, ...]:
    acts = {a.name for a in following_activations(model).values()} - {"identity"}
    base = ["kaiming_normal", "kaiming_uniform", "xavier_uniform", "orthogonal", "critical"]
    if acts <= {"tanh", "sigmoid", "selu"} and acts:
        base = ["critical", "xavier_uniform", "xavier_normal", "orthogonal", "lecun_normal"]
    if "selu" in acts:
        base.append("lecun_normal")
    return (*dict.fromkeys(base), "lsuv")


def recommend_init(
    model: nn.Module,
    inputs: torch.Tensor | Sequence[torch.Tensor] | Mapping[str, Any],
    *,
    schemes: Sequence[str] | None = None,
    loss_fn: Callable[[Any], torch.Tensor] | None = None,
    apply: bool = False,
    collapse_penalty: float = 1.0,
    random_state: int = 0,
) -> InitRecommendation:
    r"""Probe the model, try schemes that suit its activations on copies, and return the best.

    Each candidate is applied to a deep copy of the model (``generator`` seeded with
    ``random_state``) and probed on ``inputs``; the score is

    .. math::

        s = |\log_{10} G_f| + |\log_{10} G_b| + \text{collapse\_penalty}\cdot
            [\text{output correlation collapses}],

    the number of decades the signal and the gradient lose or gain end to end. The lowest
    score wins (ties: the order tried). A model the probe already reads ``"healthy"``, and in
    which :func:`~nndoctor.stability.audit_init` flags no layer, keeps its initialization
    (``scheme="current"``; ``apply`` then changes nothing): an architecture's own scheme
    (BERT's N(0, 0.02), GPT-2's scaled residual projections) is deliberate, and a healthy
    probe gives no reason to replace it; the
    alternatives are still tried and reported. Defaults: for ReLU-like activations Kaiming
    normal/uniform, Xavier uniform, orthogonal, critical and LSUV; for tanh/sigmoid critical,
    Xavier, orthogonal, LeCun and LSUV.

    Parameters
    ----------
    model : nn.Module
        Left unchanged unless ``apply`` is true.
    inputs : Tensor, sequence of Tensor or mapping of str to Tensor
        A representative batch (a mapping is passed as keyword arguments, as :func:`probe`
        does).
    schemes : sequence of str, optional
        Names from :data:`~nndoctor.stability.SCHEMES` and/or ``"lsuv"``.
    loss_fn : callable, optional
        Passed to :func:`probe`.
    apply : bool
        Copy the winning weights into ``model`` (exactly those that were probed).
    collapse_penalty : float
        Added to the score of a candidate whose output correlation collapses.
    random_state : int
        Seed of every candidate's draw.

    Returns
    -------
    InitRecommendation

    Examples
    --------
    >>> from nndoctor.scenarios import digits_mlp
    >>> x = torch.randn(128, 64, generator=torch.Generator().manual_seed(0))
    >>> rec = recommend_init(digits_mlp(), x, schemes=["xavier_uniform", "kaiming_normal"])
    >>> rec.before.verdict, rec.scheme, rec.after.verdict
    ('vanishing', 'kaiming_normal', 'healthy')
    """
    check_module(model)
    if isinstance(schemes, str):
        raise InvalidParameterError(
            f"schemes must be a list of scheme names, got the string {schemes!r}; pass "
            f"schemes=[{schemes!r}]"
        )
    names = tuple(schemes) if schemes is not None else _default_schemes(model)
    if not names:
        raise InvalidParameterError(
            "schemes is empty; pass at least one scheme (or None for the default candidates)"
        )
    for s in names:
        check_choice(s, (*SCHEMES, "lsuv"), name="scheme")
    seed = check_int(random_state, name="random_state", minimum=0)
    collapse_penalty = check_number(collapse_penalty, name="collapse_penalty", minimum=0.0)
    before = probe(model, inputs, loss_fn=loss_fn)
    tried: list[tuple[CandidateScore, PropagationReport, nn.Module]] = []
    for s in names:
        candidate = copy.deepcopy(model)
        gen = torch.Generator().manual_seed(seed)
        if s == "lsuv":
            lsuv_(candidate, inputs, generator=gen)
        else:
            init_(candidate, s, generator=gen)
        report = probe(candidate, inputs, loss_fn=loss_fn)
        score, corr = _score(report, collapse_penalty)
        tried.append(
            (
                CandidateScore(
                    scheme=s,
                    forward_gain=report.forward_gain,
                    backward_gain=report.backward_gain,
                    verdict=report.verdict,
                    output_correlation=corr,
                    score=score,
                ),
                report,
                candidate,
            )
        )
    ranked = sorted(enumerate(tried), key=lambda t: (t[1][0].score, t[0]))
    best_score, best_report, best_model = ranked[0][1]
    before_score, _ = _score(before, collapse_penalty)
    candidates = tuple(t[1][0] for t in ranked)
    flagged = audit_init(model).flagged_layers
    if before.verdict == "healthy" and not flagged:
        return InitRecommendation(
            scheme="current",
            before=before,
            after=before,
            candidates=candidates,
            applied=False,
            improvement=0.0,
            message=(
                "Keep the current initialization: the probe reads it healthy (signal "
                f"x{before.forward_gain:.3g}, gradient x{before.backward_gain:.3g} end to end; "
                f"score {before_score:.3g}) and the audit finds no layer to fix. Best "
                f"alternative tried: {best_score.scheme} (score {best_score.score:.3g}, "
                f"{best_score.verdict})."
            ),
        )
    why = (
        f"the audit finds {len(flagged)} layer(s) to fix ({flagged[0].name}: "
        f"{flagged[0].recommendation})"
        if flagged and before.verdict == "healthy"
        else f"the probe reads the current initialization {before.verdict}"
    )
    if apply:
        with torch.no_grad():
            model.load_state_dict(best_model.state_dict())
    return InitRecommendation(
        scheme=best_score.scheme,
        before=before,
        after=best_report,
        candidates=candidates,
        applied=apply,
        improvement=before_score - best_score.score,
        message=(
            f"Re-initialize with {best_score.scheme}: {why} (score {before_score:.3g}); "
            f"{best_score.scheme} reads {best_score.verdict} (score {best_score.score:.3g})."
        ),
    )
