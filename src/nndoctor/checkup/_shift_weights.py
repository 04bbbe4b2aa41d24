"""Checkup stage "shift correction": estimate correction weights, apply them, measure the effect.

On the embedded default, a linear model on the digits meets a deployment where digits 0-2 are
ten times as common (a label shift with a known truth): the stage estimates the new class
proportions from the model's outputs alone, corrects the predictions, and reports the accuracy
before and after. With the user's ``--source`` and ``--target`` tables it estimates importance
weights and says whether weighting can correct the shift (effective sample size, overlap).
"""

from __future__ import annotations

import numpy as np

from nndoctor.checkup._types import CheckupContext, Stage, StageOutcome, SummaryRow

__all__ = ["SHIFT_CORRECTION_STAGE"]

_BOOST = 10.0  # digits 0-2 are this many times as common in the embedded deployment
_N_BOOTSTRAP = 50
NEAR_ONE_ESS = 0.95
"""ESS / n_source above this: the weights stay near 1, little covariate shift to correct."""


def _user_tables(ctx: CheckupContext) -> StageOutcome:
    from nndoctor.checkup._shift import user_feature_frames, user_tables
    from nndoctor.shift import ImportanceWeighter

    data = user_tables(ctx, "shift-correction", "Shift correction", "shift correction")
    if isinstance(data, StageOutcome):
        return data
    ctx.progress(0.1, "reading tables")
    Xs, Xt = user_feature_frames(data)
    ctx.progress(0.3, "fitting importance weights")
    iw = ImportanceWeighter(random_state=ctx.random_state, warn=False).fit(Xs, Xt)
    summary = iw.summary()
    ctx.progress(1.0, "done")
    row = SummaryRow(
        stage="shift-correction",
        finding=(
            "source and target barely overlap: weighting cannot correct this shift"
            if summary.low_overlap
            else "importance weights stay near 1: little covariate shift to correct"
            if summary.ess_ratio >= NEAR_ONE_ESS
            else "importance weights can correct the covariate shift"
        ),
        evidence=(
            f"ESS {summary.effective_sample_size:.0f} of {summary.n_source} rows, "
            f"domain AUC {summary.domain_auc:.3f}"
        ),
        treatment=(
            "collect labeled target data"
            if summary.low_overlap
            else "none needed"
            if summary.ess_ratio >= NEAR_ONE_ESS
            else "nndoctor shift weights --source … --target … --out weighted.csv; train with it"
        ),
        effect="-",
        severity="warning" if summary.low_overlap else "info",
    )
    return StageOutcome("shift-correction", "Shift correction", (row,), (summary,))


def _embedded(ctx: CheckupContext) -> StageOutcome:
    from sklearn.linear_model import LogisticRegression

    from nndoctor.scenarios import digits_data
    from nndoctor.shift import LabelShiftEstimator, estimate_accuracy

    ctx.progress(0.05, "training a linear model on the digits")
    data = digits_data(random_state=ctx.random_state)
    rng = np.random.default_rng(ctx.random_state)
    n_fit = int(0.6 * data.y_train.size)
    model = LogisticRegression(max_iter=2000).fit(data.X_train[:n_fit], data.y_train[:n_fit])
    P_held = model.predict_proba(data.X_train[n_fit:])
    y_held = data.y_train[n_fit:]
    # the deployment: digits 0-2 ten times as common, drawn from the test images
    boost = np.where(data.y_test < 3, _BOOST, 1.0)
    idx = rng.choice(data.y_test.size, size=600, p=boost / boost.sum())
    P_target, y_target = model.predict_proba(data.X_test[idx]), data.y_test[idx]
    ctx.progress(0.3, f"estimating label shift ({_N_BOOTSTRAP} bootstrap replicates)")
    est = LabelShiftEstimator(n_bootstrap=_N_BOOTSTRAP, random_state=ctx.random_state)
    result = est.fit(P_held, y_held).estimate(P_target)
    ctx.progress(0.8, "correcting predictions")
    before = float(np.mean(P_target.argmax(1) == y_target))
    after = float(np.mean(est.adjust(P_target).argmax(1) == y_target))
    accuracy = estimate_accuracy(
        P_held, y_held, P_target, label_shift=result, random_state=ctx.random_state
    )
    true_q = np.bincount(y_target, minlength=10) / y_target.size
    moved = [c for c in range(10) if not result.ci_low[c] <= 1.0 <= result.ci_high[c]]
    ctx.progress(1.0, "done")
    row = SummaryRow(
        stage="shift-correction",
        finding=(
            f"label shift: classes {moved} changed share (estimated from outputs alone)"
            if moved
            else "no label shift detected"
        ),
        evidence=(
            f"estimated q(0..2) = {np.round(result.target_prior[:3], 3).tolist()}, true "
            f"{np.round(true_q[:3], 3).tolist()}; label-shift accuracy estimate "
            f"{accuracy['label-shift'].accuracy:.3f}"
        ),
        treatment="prior-corrected predictions (LabelShiftEstimator.adjust, em-bcts)",
        effect=f"accuracy {before:.3f} -> {after:.3f}",
        severity="warning" if moved else "ok",
    )
    return StageOutcome("shift-correction", "Shift correction", (row,), (result, accuracy))


def _stage(ctx: CheckupContext) -> StageOutcome:
    if ctx.user_mode:
        from nndoctor.checkup._inputs import with_user_data

        return _user_tables(with_user_data(ctx))
    return _embedded(ctx)


SHIFT_CORRECTION_STAGE = Stage("shift-correction", "Shift correction", _stage)
