"""Quality of nndoctor's shift correction: label-shift weights and importance weights.

Run (from the repository root; about 15 minutes on 2 cores; label and nb parts about 7)::

    PYTHONPATH=src python benchmarks/bench_shift_correction.py            # full tables
    PYTHONPATH=src python benchmarks/bench_shift_correction.py --quick    # 10 trials per cell

Part 1, label shift (Alexandari et al., 2020 protocol on scikit-learn's digits): a model is
trained on 600 images, a held-out source set of 500 labeled images fits the calibration /
confusion matrix, and target sets of ``n`` images are drawn from the remaining ~700 with class
proportions q ~ Dirichlet(alpha). The truth is w = q_emp / p with q_emp the target set's actual
class frequencies and p the held-out frequencies. 100 splits x 1 target draw = 100 independent
trials per cell (each trial its own training set, held-out set and target draw); medians, with
a bootstrap interval of each median. (The first revisions drew 20 targets from each of 5 splits;
those 100 trials share five held-out confusion matrices, whose noise dominates BBSE's error, so
their median rests on about five independent measurements: ``--splits 5 --draws 20``.) The
target draws depend on the split only, so every model sees the same target sets. Models:
multinomial logistic regression, GaussianNB (default: probabilities saturated at 0/1) and
GaussianNB(var_smoothing=0.1) (miscalibrated but not saturated) given predict_proba, and the
default GaussianNB given predict_log_proba (LabelShiftEstimator(inputs="log_probs")).

    --parts label --models logistic --splits 25 --draws 20   # one model, 25 splits x 20 draws

The bbse-hard interval is given twice: resampling trials, and resampling whole splits first
(the 20 trials of a split share one held-out confusion matrix, whose noise dominates BBSE's
error, so trials are not independent).

Part 1b (``--parts nb``), what calibration can do for GaussianNB: for var_smoothing in
{1e-9 (the default), 1e-4, 1e-2, 0.1, 0.3, 1} on the same splits and target draws (alpha = 0.1,
n = 1000): EM without calibration, em-bcts (probabilities and log-probabilities), vector
scaling (a per-class temperature, floor chosen by held-out NLL like em-bcts'), and two oracles
that fit the calibration (BCTS, or vector scaling) on the *labels of the pool the target sets
are drawn from* -- more, and more favourable, calibration data than any user has.

Part 2, density ratio: source N(0, I_d), target N(mu, I_d) with mu = 1 sd along the first axis,
n_s = 1000, n_t = 500, 50 seeded trials; the true ratio is exp(mu.x - |mu|^2 / 2). Normalized
MSE: both weight vectors rescaled to mean 1 over the source rows, divided by the same for
uniform weights (so uniform = 1). Mean gap: |weighted source mean - target mean| /
|source mean - target mean| (0: closed, 1: uniform). Part 3: how often the low-overlap flag
fires.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.preprocessing import StandardScaler

from nndoctor.exceptions import IllConditionedWarning, LowOverlapWarning
from nndoctor.shift import ImportanceWeighter, LabelShiftEstimator

LABEL_METHODS = ("em-bcts", "em", "bbse-hard", "bbse-soft", "rlls")
# name -> (model factory, what the estimators get: predict_proba or predict_log_proba)
MODELS: dict[str, tuple[Callable[[], Any], str]] = {
    "logistic": (lambda: LogisticRegression(max_iter=3000), "probs"),
    "gaussian-nb": (lambda: GaussianNB(), "probs"),
    "gaussian-nb(vs=0.1)": (lambda: GaussianNB(var_smoothing=0.1), "probs"),
    "gaussian-nb log-probs": (lambda: GaussianNB(), "log_probs"),
}


def _scores(model: Any, X: Any, inputs: str) -> Any:
    return model.predict_log_proba(X) if inputs == "log_probs" else model.predict_proba(X)


def label_shift_tables(n_splits: int, n_draws: int, models: list[str] | None = None) -> str:
    X, y = load_digits(return_X_y=True)
    lines = []
    cells: dict[tuple[str, float, int], dict[str, list[float]]] = {}
    times: dict[str, list[float]] = {m: [] for m in LABEL_METHODS}
    for split in range(n_splits):
        perm = np.random.default_rng(1000 + split).permutation(y.size)
        tr, ho, te = perm[:600], perm[600:1100], perm[1100:]
        scaler = StandardScaler().fit(X[tr])
        for model_name, (make, inputs) in MODELS.items():
            if models is not None and model_name not in models:
                continue
            # the target draws depend on the split only: every model sees the same target sets
            rng = np.random.default_rng([1000 + split, 1])
            model = make().fit(scaler.transform(X[tr]), y[tr])
            Ph, yh = _scores(model, scaler.transform(X[ho]), inputs), y[ho]
            Pte, yte = _scores(model, scaler.transform(X[te]), inputs), y[te]
            p = np.bincount(yh, minlength=10) / yh.size
            by_class = [np.flatnonzero(yte == c) for c in range(10)]
            ests = {
                m: LabelShiftEstimator(m, n_bootstrap=0, inputs=inputs).fit(Ph, yh)  # type: ignore[arg-type]
                for m in LABEL_METHODS
            }
            for alpha in (0.1, 1.0, 10.0):
                for n in (200, 1000):
                    cell = cells.setdefault((model_name, alpha, n), {})
                    for _ in range(n_draws):
                        q = rng.dirichlet(np.full(10, alpha))
                        counts = rng.multinomial(n, q)
                        idx = np.concatenate(
                            [rng.choice(by_class[c], size=k) for c, k in enumerate(counts) if k]
                        )
                        Pt, yt = Pte[idx], yte[idx]
                        w_true = counts / n / p
                        cell.setdefault("no correction (w=1)", []).append(
                            float(np.mean((1 - w_true) ** 2))
                        )
                        acc_raw = float(np.mean(Pt.argmax(1) == yt))
                        for m, est in ests.items():
                            t0 = time.perf_counter()
                            with warnings.catch_warnings():
                                warnings.simplefilter("ignore", IllConditionedWarning)
                                res = est.estimate(Pt)
                            times[m].append(time.perf_counter() - t0)
                            mse = float(np.mean((res.weights - w_true) ** 2))
                            cell.setdefault(m, []).append(mse)
                            if m in ("em-bcts", "bbse-hard"):
                                acc = float(np.mean(est.adjust(Pt).argmax(1) == yt))
                                cell.setdefault(f"gain {m}", []).append(acc - acc_raw)
                        cell.setdefault("accuracy", []).append(acc_raw)
                        cell.setdefault("split", []).append(float(split))
    cols = ["no correction (w=1)", *LABEL_METHODS]
    lines.append("### Weight MSE (median over trials; lower is better)\n")
    lines.append("| model | alpha | n target | " + " | ".join(cols) + " |")
    lines.append("|---|---|---|" + "---|" * len(cols))
    for (model_name, alpha, n), cell in cells.items():
        vals = " | ".join(f"{np.median(cell[c]):.4f}" for c in cols)
        lines.append(f"| {model_name} | {alpha} | {n} | {vals} |")
    lines.append("\n### 95% bootstrap interval of the median weight MSE (trials resampled)\n")
    lines.append("| model | alpha | n target | trials | em-bcts | em | bbse-hard |"
                 " bbse-hard, splits resampled |")  # fmt: skip
    lines.append("|---|---|---|---|---|---|---|---|")
    boot = np.random.default_rng(0)
    for (model_name, alpha, n), cell in cells.items():
        cis = []
        for m in ("em-bcts", "em", "bbse-hard"):
            v = np.asarray(cell[m])
            meds = np.median(v[boot.integers(0, v.size, size=(2000, v.size))], axis=1)
            cis.append(f"{np.percentile(meds, 2.5):.4f}-{np.percentile(meds, 97.5):.4f}")
        # cluster bootstrap: trials of one split share its held-out confusion matrix, so
        # resample whole splits (then trials within them) for an honest interval
        v, sid = np.asarray(cell["bbse-hard"]), np.asarray(cell["split"])
        groups = [v[sid == s] for s in np.unique(sid)]
        meds = []
        for _ in range(2000):
            pick = [groups[i] for i in boot.integers(0, len(groups), size=len(groups))]
            draw = np.concatenate([g[boot.integers(0, g.size, size=g.size)] for g in pick])
            meds.append(np.median(draw))
        cis.append(f"{np.percentile(meds, 2.5):.4f}-{np.percentile(meds, 97.5):.4f}")
        lines.append(
            f"| {model_name} | {alpha} | {n} | {len(cell['em'])} | " + " | ".join(cis) + " |"
        )
    lines.append("\n### Prior-corrected predictions (accuracy gain, median over trials)\n")
    lines.append("| model | alpha | n target | accuracy before | gain em-bcts | gain bbse-hard |"
                 " share of trials em-bcts gains ≥ 0 |")  # fmt: skip
    lines.append("|---|---|---|---|---|---|---|")
    for (model_name, alpha, n), cell in cells.items():
        g = np.asarray(cell["gain em-bcts"])
        lines.append(
            f"| {model_name} | {alpha} | {n} | {np.median(cell['accuracy']):.3f} | "
            f"{np.median(g):+.4f} | {np.median(cell['gain bbse-hard']):+.4f} | "
            f"{np.mean(g >= 0):.2f} |"
        )
    lines.append("\n### Time per estimate (median, no bootstrap)\n")
    lines.append("| " + " | ".join(LABEL_METHODS) + " |")
    lines.append("|" + "---|" * len(LABEL_METHODS))
    lines.append(
        "| " + " | ".join(f"{1e3 * np.median(times[m]):.2f} ms" for m in LABEL_METHODS) + " |"
    )
    return "\n".join(lines)


def _vector_scaling(Z: Any, y: Any) -> Callable[[Any], Any]:
    """Vector scaling (Guo et al., 2017): softmax(a_k z_k + b_k), fitted by minimum NLL, with the
    logit floor (row max - c) chosen like em-bcts' by NLL on the fitting rows."""
    from scipy.optimize import minimize

    from nndoctor.shift.label import _LOGIT_FLOORS, _floor_logits, _softmax

    k = Z.shape[1]
    onehot = np.eye(k)[y]
    best: tuple[float, float, Any, float] | None = None
    for c in _LOGIT_FLOORS:
        z = _floor_logits(Z, c)
        spread = float(np.std(z - z.mean(axis=1, keepdims=True))) or 1.0
        z = z / spread

        def nll(t: Any, z: Any = z) -> tuple[float, Any]:
            a, b = np.exp(t[:k]), t[k:]
            s = a * z + b
            m = s.max(axis=1, keepdims=True)
            e = np.exp(s - m)
            se = e.sum(axis=1, keepdims=True)
            value = float(np.mean(np.log(se[:, 0]) + m[:, 0] - s[np.arange(y.size), y]))
            g = (e / se - onehot) / y.size
            return value, np.r_[(g * z).sum(axis=0) * a, g.sum(axis=0)]

        res = minimize(nll, np.zeros(2 * k), jac=True, method="L-BFGS-B",
                       bounds=[(-8.0, 8.0)] * k + [(None, None)] * k)  # fmt: skip
        if best is None or res.fun < best[0]:
            best = (float(res.fun), c, res.x, spread)
    assert best is not None
    _, c, t, spread = best
    return lambda Z2: _softmax(np.exp(t[:k]) * _floor_logits(Z2, c) / spread + t[k:])


def naive_bayes_bound_table(n_splits: int, n_draws: int) -> str:
    """em-bcts on GaussianNB against EM without calibration, vector scaling, and oracles.

    Oracles: the calibration (BCTS, or vector scaling) fitted on the labels of the pool the
    target sets are drawn from (the most favourable calibration data there is: the target
    images themselves), source prior the pool's mean calibrated posterior; weights q / p with
    p the held-out frequencies, like the truth. alpha = 0.1, n = 1000; log-probability inputs
    except the column marked probs.
    """
    from nndoctor.shift.label import _em

    X, y = load_digits(return_X_y=True)
    settings = (1e-9, 1e-4, 1e-2, 0.1, 0.3, 1.0)
    cols = ("em", "em-bcts (probs)", "em-bcts", "vector scaling", "oracle em-bcts",
            "oracle vector scaling")  # fmt: skip
    lines = [
        "| var_smoothing | accuracy | " + " | ".join(cols) + " | em / em-bcts |",
        "|---|---|" + "---|" * (len(cols) + 1),
    ]
    for vs in settings:
        cell: dict[str, list[float]] = {c: [] for c in cols}
        accs = []
        for split in range(n_splits):
            perm = np.random.default_rng(1000 + split).permutation(y.size)
            tr, ho, te = perm[:600], perm[600:1100], perm[1100:]
            scaler = StandardScaler().fit(X[tr])
            model = GaussianNB(var_smoothing=vs).fit(scaler.transform(X[tr]), y[tr])
            Xh, Xte, yh, yte = scaler.transform(X[ho]), scaler.transform(X[te]), y[ho], y[te]
            Lh, Lte = model.predict_log_proba(Xh), model.predict_log_proba(Xte)
            Ph, Pte = model.predict_proba(Xh), model.predict_proba(Xte)
            accs.append(float(np.mean(Lte.argmax(1) == yte)))
            p = np.bincount(yh, minlength=10) / yh.size
            kw: dict[str, Any] = {"n_bootstrap": 0}
            ests = {
                "em": (LabelShiftEstimator("em", **kw).fit(Ph, yh), Pte),
                "em-bcts (probs)": (LabelShiftEstimator(**kw).fit(Ph, yh), Pte),
                "em-bcts": (LabelShiftEstimator(inputs="log_probs", **kw).fit(Lh, yh), Lte),
            }
            oracle = LabelShiftEstimator(inputs="log_probs", **kw).fit(Lte, yte)
            vec_post = _vector_scaling(Lh, yh)(Lte)
            vec_prior = _vector_scaling(Lh, yh)(Lh).mean(axis=0)
            vec_oracle = _vector_scaling(Lte, yte)(Lte)
            rng = np.random.default_rng([1000 + split, 1])  # the label part's target draws
            by_class = [np.flatnonzero(yte == c) for c in range(10)]
            for alpha in (0.1, 1.0, 10.0):
                for n in (200, 1000):
                    for _ in range(n_draws):
                        q = rng.dirichlet(np.full(10, alpha))
                        counts = rng.multinomial(n, q)
                        idx = np.concatenate(
                            [rng.choice(by_class[c], size=k) for c, k in enumerate(counts) if k]
                        )
                        if (alpha, n) != (0.1, 1000):
                            continue
                        w_true = counts / n / p
                        for name, (est, S) in ests.items():
                            w = est.estimate(S[idx]).weights
                            cell[name].append(float(np.mean((w - w_true) ** 2)))
                        w = oracle.estimate(Lte[idx]).target_prior / p
                        cell["oracle em-bcts"].append(float(np.mean((w - w_true) ** 2)))
                        q_vec = _em(vec_post[idx], vec_prior, tol=1e-8, max_iter=1000)[0]
                        cell["vector scaling"].append(
                            float(np.mean((q_vec / vec_prior - w_true) ** 2))
                        )
                        q_or = _em(vec_oracle[idx], vec_oracle.mean(0), tol=1e-8, max_iter=1000)
                        cell["oracle vector scaling"].append(
                            float(np.mean((q_or[0] / p - w_true) ** 2))
                        )
        med = {c: float(np.median(v)) for c, v in cell.items()}
        boot = np.random.default_rng(0)
        text = {}
        for c, v in cell.items():  # the median, and a 95% bootstrap interval for two columns
            text[c] = f"{med[c]:.4f}"
            if c in ("em-bcts", "oracle em-bcts"):
                a = np.asarray(v)
                meds = np.median(a[boot.integers(0, a.size, size=(2000, a.size))], axis=1)
                text[c] += f" ({np.percentile(meds, 2.5):.4f}-{np.percentile(meds, 97.5):.4f})"
        lines.append(
            f"| {vs:g} | {np.mean(accs):.3f} | " + " | ".join(text[c] for c in cols)
            + f" | {med['em'] / med['em-bcts']:.1f}× |"
        )  # fmt: skip
    return "\n".join(lines)


def _gaussian(d: int, seed: int, shift: float, n_s: int = 1000, n_t: int = 500) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    mu = np.zeros(d)
    mu[0] = shift
    Xs = rng.normal(size=(n_s, d))
    Xt = rng.normal(size=(n_t, d)) + mu
    true = np.exp(Xs @ mu - mu @ mu / 2)
    return Xs, Xt, true


def density_ratio_tables(n_trials: int) -> str:
    methods = ("classifier", "ulsif", "kliep", "kmm")
    dims = (1, 2, 3, 5, 10, 20)
    lines = [
        "### Normalized weight MSE relative to uniform weights (median over trials; uniform = 1)\n",
        "| d | " + " | ".join(methods) + " | classifier mean raw weight (truth 1) |"
        " classifier without n_s/n_t factor |",
        "|---|" + "---|" * (len(methods) + 2),
    ]
    gap_lines = [
        "\n### Mean gap left after weighting (median; 0 = closed, 1 = uniform weights)\n",
        "| d | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    times: dict[str, list[float]] = {m: [] for m in methods}
    for d in dims:
        rel: dict[str, list[float]] = {m: [] for m in methods}
        gaps: dict[str, list[float]] = {m: [] for m in methods}
        means = []
        for seed in range(n_trials):
            Xs, Xt, true = _gaussian(d, seed, 1.0)
            tn = true / true.mean()
            uniform = float(np.mean((1 - tn) ** 2))
            for m in methods:
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", LowOverlapWarning)
                    iw = ImportanceWeighter(m, normalize=False, random_state=seed).fit(Xs, Xt)
                times[m].append(time.perf_counter() - t0)
                w = iw.weights_
                wn = w / w.mean()
                rel[m].append(float(np.mean((wn - tn) ** 2)) / uniform)
                wmean = (wn[:, None] * Xs).mean(axis=0)
                gap0 = np.linalg.norm(Xs.mean(0) - Xt.mean(0))
                gaps[m].append(float(np.linalg.norm(wmean - Xt.mean(0)) / gap0))
                if m == "classifier":
                    means.append(float(w.mean()))
        mean_raw = float(np.median(means))
        without = mean_raw * 500 / 1000
        lines.append(
            f"| {d} | " + " | ".join(f"{np.median(rel[m]):.3f}" for m in methods)
            + f" | {mean_raw:.3f} | {without:.3f} |"
        )  # fmt: skip
        cells = " | ".join(f"{np.median(gaps[m]):.3f}" for m in methods)
        gap_lines.append(f"| {d} | {cells} |")
    lines.extend(gap_lines)
    lines.append("\n### Time per fit (median; n_s = 1000, n_t = 500)\n")
    lines.append("| " + " | ".join(methods) + " |")
    lines.append("|" + "---|" * len(methods))
    lines.append("| " + " | ".join(f"{np.median(times[m]):.3f} s" for m in methods) + " |")
    return "\n".join(lines)


def overlap_table(n_trials: int) -> str:
    scenarios: list[tuple[str, int, Callable[[int], tuple[Any, Any]], str]] = []

    def mean_shift(d: int, s: float) -> Callable[[int], tuple[Any, Any]]:
        return lambda seed: _gaussian(d, seed, s)[:2]

    def var_shift(d: int, sd: float) -> Callable[[int], tuple[Any, Any]]:
        def draw(seed: int) -> tuple[Any, Any]:
            rng = np.random.default_rng(seed)
            return rng.normal(size=(1000, d)), sd * rng.normal(size=(500, d))

        return draw

    for s in (0.0, 0.5, 1.0, 2.0, 4.0):
        scenarios.append((f"mean shift {s:g} sd", 1, mean_shift(1, s), "logistic"))
    scenarios.append(("mean shift 4 sd", 20, mean_shift(20, 4.0), "logistic"))
    scenarios.append(("no shift", 20, var_shift(20, 1.0), "quadratic"))
    scenarios.append(("variance x4 (sd 2)", 20, var_shift(20, 2.0), "logistic"))
    scenarios.append(("variance x4 (sd 2)", 20, var_shift(20, 2.0), "quadratic"))
    lines = [
        "| scenario | d | classifier | flag fires | median ESS/n | median domain AUC |",
        "|---|---|---|---|---|---|",
    ]
    for name, d, draw, clf in scenarios:
        flags, ess, auc = [], [], []
        for seed in range(n_trials):
            Xs, Xt = draw(seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LowOverlapWarning)
                iw = ImportanceWeighter(classifier=clf, random_state=seed).fit(Xs, Xt)
            flags.append(iw.low_overlap_)
            ess.append(iw.raw_ess_ratio_)
            auc.append(iw.domain_auc_)
        lines.append(
            f"| {name} | {d} | {clf} | {np.mean(flags):.2f} | {np.median(ess):.3f} | "
            f"{np.median(auc):.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 trials per cell")
    parser.add_argument(
        "--draws", type=int, default=None, help="target draws per split (default 1)"
    )
    parser.add_argument(
        "--splits", type=int, default=None, help="train/held-out/pool splits (default 100)"
    )
    parser.add_argument(
        "--models", default=None, help=f"comma-separated subset of {', '.join(MODELS)}"
    )
    parser.add_argument(
        "--parts",
        default="label,nb,density,overlap",
        help="comma-separated: label,nb,density,overlap",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    n_splits, n_draws, n_trials = (10, 1, 10) if args.quick else (100, 1, 50)
    n_splits = args.splits or n_splits
    t0 = time.time()
    print(f"machine: {platform.machine()} {platform.processor() or ''} python "
          f"{platform.python_version()} numpy {np.__version__}")  # fmt: skip
    if "label" in parts:
        print("\n## Label shift (digits)\n")
        models = args.models.split(",") if args.models else None
        print(label_shift_tables(n_splits, args.draws or n_draws, models))
    if "nb" in parts:
        print("\n## GaussianNB: em-bcts against oracle calibrations (alpha 0.1, n 1000)\n")
        print(naive_bayes_bound_table(n_splits, args.draws or n_draws))
    if "density" in parts:
        print("\n## Density ratio (Gaussian mean shift of 1 sd)\n")
        print(density_ratio_tables(n_trials))
    if "overlap" in parts:
        print("\n## Low-overlap flag (share of trials; classifier method)\n")
        print(overlap_table(n_trials))
    print(f"\ntotal time {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
