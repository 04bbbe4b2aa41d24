"""diagnose(): right kind in seeded trials with known truth, false alarms, evidence, inputs."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import torch
from threadpoolctl import threadpool_limits

from nndoctor.exceptions import DataValidationError, InvalidParameterError, SmallSampleWarning
from nndoctor.shift import ShiftDiagnosis, diagnose
from nndoctor.shift._simulate import make_shift

TRIALS = 30


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Many small fits: BLAS threads only add overhead (and CPU time) here."""
    with threadpool_limits(1):
        yield


def _kinds(kind: str, labels: int, seeds: range) -> list[str]:
    out = []
    for seed in seeds:
        case = make_shift(kind, n_target_labels=labels, random_state=seed)
        out.append(
            diagnose(
                case.source_X, case.source_y, case.target_X, case.target_y, random_state=seed
            ).kind
        )
    return out


@pytest.mark.parametrize(("kind", "labels"), [("covariate", 0), ("label", 0), ("concept", 200)])
def test_diagnosis_is_right_in_90_percent_of_trials(kind: str, labels: int) -> None:
    """1,000 target rows (200 labeled for concept); bench (300 trials): >= 0.97 right per kind."""
    kinds = _kinds(kind, labels, range(TRIALS))
    assert kinds.count(kind) >= 0.9 * TRIALS, kinds


def test_no_shift_false_alarms_at_most_5_percent() -> None:
    """No shift, 40 trials without and 40 with 200 target labels: false-alarm rate <= 5 %.

    The benchmark (300 trials each) measures 2.0 % without and 3.0 % with labels. Here the claim
    "rate <= 5 %" is tested at the 2-standard-error margin of 80 trials (at most 7 alarms), which a
    procedure at 5 % passes in ~98 % of seed sets and one at 12 % fails in ~75 %.
    """
    kinds = _kinds("none", 0, range(40)) + _kinds("none", 200, range(100, 140))
    alarms = sum(k != "none" for k in kinds)
    n = len(kinds)
    assert alarms <= 0.05 * n + 2 * (n * 0.05 * 0.95) ** 0.5, (alarms, kinds)


def test_mixed_covariate_and_concept() -> None:
    kinds = _kinds("mixed", 200, range(10))
    assert kinds.count("mixed") >= 8, kinds


def test_without_labels_concept_shift_is_not_ruled_out() -> None:
    case = make_shift("concept", random_state=0)  # labels swapped, but none given
    d = diagnose(case.source_X, case.source_y, case.target_X, random_state=0)
    assert d.kind == "none"
    assert not d.concept_ruled_out
    assert "cannot be ruled out" in d.explanation
    assert d.accuracy_gap is None
    assert np.isnan(d.observed_target_accuracy)
    assert "label" in d.recommendation.how


def test_evidence_weights_accuracies_and_recommendation() -> None:
    case = make_shift("label", n_target_labels=200, random_state=4)
    d = diagnose(case.source_X, case.source_y, case.target_X, case.target_y, random_state=4)
    assert isinstance(d, ShiftDiagnosis)
    assert d.kind == "label"
    assert d.concept_ruled_out
    names = [e.name for e in d.evidence]
    assert names == ["features", "outputs", "label_consistency", "accuracy_gap", "conditional"]
    assert all(0.0 < e.pvalue <= 1.0 for e in d.evidence)
    # the estimated target prior is close to the truth
    q = np.asarray(d.label_weights.target_prior)
    assert np.abs(q - case.target_prior).max() < 0.06
    assert d.importance_weights is not None
    assert abs(d.estimated_target_accuracy - d.observed_target_accuracy) < 0.08
    rec = d.recommendation
    assert rec.accuracy_after >= rec.accuracy_before
    assert "w(y)" in rec.treatment
    payload = d.to_dict()
    assert payload["kind"] == "label"
    assert payload["evidence"][0]["name"] == "features"


def test_covariate_recommendation_estimates_the_effect() -> None:
    case = make_shift("covariate", random_state=5)
    d = diagnose(case.source_X, case.source_y, case.target_X, random_state=5)
    assert d.kind == "covariate"
    # no label shift: the target accuracy is the confidence-based (CBPE) estimate
    assert d.estimation_method == "confidence-based"
    assert 0.0 < d.estimated_target_accuracy < 1.0
    assert "β(x)" in d.recommendation.treatment
    assert np.isfinite(d.recommendation.accuracy_after)
    assert d.importance_weights.ess_ratio > 0.1


def test_same_seed_same_diagnosis() -> None:
    case = make_shift("covariate", n_target_labels=100, random_state=1)
    a = diagnose(case.source_X, case.source_y, case.target_X, case.target_y, random_state=4)
    b = diagnose(case.source_X, case.source_y, case.target_X, case.target_y, random_state=4)
    assert a.to_json() == b.to_json()


def test_models_sklearn_fitted_unfitted_torch_and_string_labels() -> None:
    from sklearn.linear_model import LogisticRegression

    case = make_shift("label", random_state=2)
    names = np.array(["cat", "dog", "eel", "fox"])
    ys = names[case.source_y]
    # unfitted estimator: fitted here on half the source
    d1 = diagnose(case.source_X, ys, case.target_X, model=LogisticRegression(), random_state=0)
    assert d1.kind == "label"
    assert d1.model == "LogisticRegression"
    # a fitted model and held-out source rows
    extra = make_shift("none", n_source=1000, random_state=9)
    fitted = LogisticRegression().fit(extra.source_X, extra.source_y)
    d2 = diagnose(case.source_X, case.source_y, case.target_X, model=fitted, random_state=0)
    assert d2.kind == "label"
    # a torch module returning logits (a linear layer copying the fitted model)
    net = torch.nn.Linear(case.source_X.shape[1], 4).double()
    with torch.no_grad():
        net.weight.copy_(torch.from_numpy(fitted.coef_))
        net.bias.copy_(torch.from_numpy(fitted.intercept_))
    d3 = diagnose(case.source_X, case.source_y, case.target_X, model=net, random_state=0)
    assert d3.kind == "label"
    assert d3.source_accuracy == pytest.approx(d2.source_accuracy)
    # pandas in, labels with None for unknown
    yt = pd.Series([None] * case.target_X.shape[0], dtype=object)
    d4 = diagnose(
        pd.DataFrame(case.source_X), pd.Series(ys), pd.DataFrame(case.target_X), yt,
        random_state=0,
    )  # fmt: skip
    assert d4.n_target_labels == 0


def test_bad_input() -> None:
    case = make_shift("none", n_source=400, n_target=100, random_state=0)
    Xs, ys, Xt = case.source_X, case.source_y, case.target_X
    with pytest.raises(DataValidationError, match="features"):
        diagnose(Xs, ys, Xt[:, :3])
    with pytest.raises(DataValidationError, match="one label per source row"):
        diagnose(Xs, ys[:10], Xt)
    with pytest.raises(DataValidationError, match="never occur in source_y"):
        diagnose(Xs, ys, Xt, np.full(Xt.shape[0], 7.0))
    labels = np.char.add("cat", ys.astype(str))  # the target's in capitals: spelled, not new
    with pytest.raises(
        DataValidationError, match=r"'Cat0' is written 'cat0', .* in the source: write"
    ):
        diagnose(Xs, labels, Xt, np.char.capitalize(labels[: len(Xt)]))
    with pytest.raises(DataValidationError, match="NaN"):
        diagnose(np.where(Xs > 3, np.nan, Xs), ys, Xt)
    with pytest.raises(DataValidationError, match="at least two classes"):
        diagnose(Xs, np.zeros_like(ys), Xt)
    with pytest.raises(InvalidParameterError, match="model"):
        diagnose(Xs, ys, Xt, model=42)
    with pytest.raises(InvalidParameterError, match="alpha"):
        diagnose(Xs, ys, Xt, alpha=1.5)
    # too few source rows is not bad input but no evidence: kind "insufficient", with a warning
    with pytest.warns(SmallSampleWarning, match="20 row"):
        assert diagnose(Xs[:20], ys[:20], Xt).kind == "insufficient"
