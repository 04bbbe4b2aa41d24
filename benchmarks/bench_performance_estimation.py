"""Label-free performance estimation: nndoctor's estimators against NannyML's CBPE, side by side.

Two problems where the truth is known, both shipped with NannyML:

* **car loan** (binary): reference 50,000 rows, analysis 50,000 rows in 10 chunks of 5,000; the
  model's probabilities are rounded to 0.01 (14 % exactly 0 or 1) and it predicts "repaid" at
  ``y_pred_proba >= 0.65`` (the ``y_pred`` column), so every estimator scores those predictions.
* **credit cards** (multiclass, 3 classes): reference 60,000 rows, analysis 60,000 in 10 chunks
  of 6,000; predictions are the ``y_pred`` column.

For each chunk: the realized metric from the analysis targets, CBPE's estimate, and each nndoctor
estimator's; the table gives the mean absolute error over the chunks. Times: interleaved rounds
(CBPE, nndoctor default, CBPE, nndoctor default, ...), each the fit on the reference plus the
estimate on all 10 chunks, measured inside its own process (interpreter start and data loading
excluded); median and range, with the load average before and after.

NannyML lives in its own virtual environment (git-ignored)::

    python3 -m venv benchmarks/.venv-nannyml
    benchmarks/.venv-nannyml/bin/pip install nannyml statsmodels pyarrow

Run (from the repository root; NannyML exports its data to ``benchmarks/_work/`` first)::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src /work/main/.venv/bin/python \\
        benchmarks/bench_performance_estimation.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
NANNY_PY = HERE / ".venv-nannyml" / "bin" / "python"
CAR_CHUNK, CARD_CHUNK = 5000, 6000
CARD_CLASSES = ("prepaid_card", "highstreet_card", "upmarket_card")
MIX_CLASSES = ("a", "b", "c")
MIX_CHUNK = 5000
CLASSES = {"card": CARD_CLASSES, "mix": MIX_CLASSES}
BINARY = ("accuracy", "precision", "recall", "f1", "roc_auc")


# ------------------------------------------------------------------------------------------
# NannyML side (runs in benchmarks/.venv-nannyml)


def _export() -> None:
    """Write both data sets, features encoded as numbers, to benchmarks/_work/*.parquet."""
    import nannyml as nml
    import pandas as pd

    WORK.mkdir(exist_ok=True)
    ref, ana, tgt = nml.load_synthetic_car_loan_dataset()
    ana = ana.merge(tgt, on="id")
    for df, name in ((ref, "reference"), (ana, "analysis")):
        out = df.copy()
        out["salary_range"] = out["salary_range"].map(
            {v: i for i, v in enumerate(sorted(ref["salary_range"].unique()))}
        )
        out["size_of_downpayment"] = out["size_of_downpayment"].str.rstrip("%").astype(float)
        out["repaid_loan_on_prev_car"] = out["repaid_loan_on_prev_car"].astype(float)
        out.drop(columns=["timestamp"]).to_parquet(WORK / f"car_{name}.parquet")
    ref, ana, tgt = nml.load_synthetic_multiclass_classification_dataset()
    ana = ana.merge(tgt, on="id")
    codes = {c: i for i, c in enumerate(CARD_CLASSES)}
    for df, name in ((ref, "reference"), (ana, "analysis")):
        out = df.copy()
        for col in ("acq_channel", "app_channel"):
            out[col] = out[col].map({v: i for i, v in enumerate(sorted(ref[col].unique()))})
        out["is_customer"] = out["is_customer"].astype(float)
        out["y_pred"] = out["y_pred"].map(codes)
        out["y_true"] = out["y_true"].map(codes)
        out.drop(columns=["timestamp"]).to_parquet(WORK / f"card_{name}.parquet")
    print(json.dumps({"exported": str(WORK), "nannyml": nml.__version__, "pandas": pd.__version__}))


def _cbpe(problem: str) -> None:
    """Fit CBPE on the reference and estimate the 10 analysis chunks; print JSON."""
    import warnings

    import nannyml as nml
    import pandas as pd

    warnings.filterwarnings("ignore", category=FutureWarning, module="nannyml")
    ref = pd.read_parquet(WORK / f"{problem}_reference.parquet")
    ana = pd.read_parquet(WORK / f"{problem}_analysis.parquet")
    if problem == "car":
        target, chunk = "repaid", CAR_CHUNK
        kwargs: dict[str, Any] = {
            "y_pred_proba": "y_pred_proba",
            "problem_type": "classification_binary",
            "metrics": list(BINARY),
        }
    else:
        target, chunk = "y_true", CARD_CHUNK if problem == "card" else MIX_CHUNK
        classes = CLASSES[problem]
        kwargs = {
            "y_pred_proba": {k: f"y_pred_proba_{c}" for k, c in enumerate(classes)},
            "problem_type": "classification_multiclass",
            "metrics": ["accuracy"],
        }
    ana = ana.drop(columns=[target])
    t0 = time.perf_counter()
    est = nml.CBPE(y_pred="y_pred", y_true=target, chunk_size=chunk, **kwargs)
    est.fit(ref)
    res = est.estimate(ana)
    seconds = time.perf_counter() - t0
    df = res.filter(period="analysis").to_df()
    out = {m: df[(m, "value")].tolist() for m in kwargs["metrics"]}
    lo = {m: df[(m, "lower_confidence_boundary")].tolist() for m in kwargs["metrics"]}
    hi = {m: df[(m, "upper_confidence_boundary")].tolist() for m in kwargs["metrics"]}
    print(json.dumps({"seconds": seconds, "estimates": out, "lower": lo, "upper": hi}))


# ------------------------------------------------------------------------------------------
# nndoctor side (our venv)


def _load(problem: str) -> dict[str, Any]:
    import pandas as pd

    ref = pd.read_parquet(WORK / f"{problem}_reference.parquet")
    ana = pd.read_parquet(WORK / f"{problem}_analysis.parquet")
    if problem == "car":
        feats = [
            "car_value", "salary_range", "debt_to_income_ratio", "loan_length",
            "repaid_loan_on_prev_car", "size_of_downpayment", "driver_tenure",
        ]  # fmt: skip
        probs = ["y_pred_proba"]
        target, chunk = "repaid", CAR_CHUNK
    elif problem == "card":
        feats = [
            "acq_channel", "app_behavioral_score", "requested_credit_limit", "app_channel",
            "credit_bureau_score", "stated_income", "is_customer",
        ]  # fmt: skip
        probs = [f"y_pred_proba_{c}" for c in CARD_CLASSES]
        target, chunk = "y_true", CARD_CHUNK
    else:
        feats = ["f0", "f1"]
        probs = [f"y_pred_proba_{c}" for c in MIX_CLASSES]
        target, chunk = "y_true", MIX_CHUNK

    def arrays(df: Any) -> dict[str, np.ndarray]:
        p = df[probs].to_numpy(dtype=np.float64)
        # rows rounded to 0.01 may sum to 0.99-1.01
        p = p / p.sum(axis=1, keepdims=True) if p.shape[1] > 1 else p[:, 0]
        X = df[feats].to_numpy(dtype=np.float64)
        X = (X - ref[feats].to_numpy(dtype=np.float64).mean(0)) / ref[feats].to_numpy(
            dtype=np.float64
        ).std(0)
        return {
            "p": p,
            "y": df[target].to_numpy().astype(np.int64),
            "pred": df["y_pred"].to_numpy().astype(np.int64),
            "X": X,
        }

    a = arrays(ana)
    n_chunks = a["p"].shape[0] // chunk
    chunks = [{k: v[i * chunk : (i + 1) * chunk] for k, v in a.items()} for i in range(n_chunks)]
    return {"ref": arrays(ref), "chunks": chunks}


def _make_mix(seed: int = 0) -> None:
    """A 3-class problem with known truth and pure covariate shift (written by our venv).

    x ~ N(mu, I) in 2-D; P(y | x) = softmax(A x + 1.2 sin(2 x_0) b) is fixed; the model is a
    logistic regression fitted on 20,000 reference-distribution rows (misspecified: it misses
    the sine), its probabilities rounded to 0.01. The reference has 30,000 rows at mu = 0; the
    10 analysis chunks of 5,000 move mu linearly to (1.2, -0.8).
    """
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    A = np.array([[1.5, 0.0], [-0.8, 1.3], [-0.7, -1.3]])
    b = np.array([1.0, -1.0, 0.0])

    def draw(n: int, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, 2)) + mu
        z = x @ A.T + 1.2 * np.sin(2 * x[:, :1]) * b
        P = np.exp(z - z.max(1, keepdims=True))
        P /= P.sum(1, keepdims=True)
        return x, (P.cumsum(1) > rng.random((n, 1))).argmax(1)

    model = LogisticRegression(max_iter=2000).fit(*draw(20000, np.zeros(2)))

    def frame(x: np.ndarray, y: np.ndarray) -> Any:
        P = np.round(model.predict_proba(x), 2)
        df = pd.DataFrame({"f0": x[:, 0], "f1": x[:, 1]})
        for k, c in enumerate(MIX_CLASSES):
            df[f"y_pred_proba_{c}"] = P[:, k]
        df["y_pred"] = P.argmax(1)
        df["y_true"] = y
        return df

    WORK.mkdir(exist_ok=True)
    frame(*draw(30000, np.zeros(2))).to_parquet(WORK / "mix_reference.parquet")
    parts = [draw(MIX_CHUNK, t / 9 * np.array([1.2, -0.8])) for t in range(10)]
    x = np.vstack([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    frame(x, y).to_parquet(WORK / "mix_analysis.parquet")


def _realized(c: dict[str, np.ndarray], binary: bool) -> dict[str, float]:
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    out = {"accuracy": float(np.mean(c["pred"] == c["y"]))}
    if binary:
        out["precision"] = float(precision_score(c["y"], c["pred"]))
        out["recall"] = float(recall_score(c["y"], c["pred"]))
        out["f1"] = float(f1_score(c["y"], c["pred"]))
        out["roc_auc"] = float(roc_auc_score(c["y"], c["p"]))
    return out


def _ours(data: dict[str, Any], method: str) -> tuple[list[Any], float]:
    """Estimate every chunk with one nndoctor method; returns the estimates and the seconds."""
    from nndoctor.shift import LabelShiftEstimator, estimate_accuracy

    ref = data["ref"]
    t0 = time.perf_counter()
    out = []
    fitted = None
    if method == "label-shift (fitted once)":
        P = ref["p"] if ref["p"].ndim == 2 else np.c_[1 - ref["p"], ref["p"]]
        fitted = LabelShiftEstimator(n_bootstrap=0, random_state=0).fit(P, ref["y"])
    for c in data["chunks"]:
        extra: dict[str, Any] = {}
        if method == "importance-weighted":
            extra = {"source_X": ref["X"], "target_X": c["X"]}
        if fitted is not None:
            extra = {"label_shift": fitted}
        est = estimate_accuracy(
            ref["p"], ref["y"], c["p"], method=method.split(" (")[0], source_pred=ref["pred"],
            target_pred=c["pred"], random_state=0, **extra,
        )  # fmt: skip
        out.append(est)
    return out, time.perf_counter() - t0


def _floor(data: dict[str, Any]) -> float:
    """MAE an oracle that knew each chunk's expected accuracy would still have (approximate).

    The realized accuracy of a chunk is a sum of Bernoullis around its expectation, with
    sd = sqrt(sum c (1 - c)) / n for the rows' probabilities c of being right; the mean
    absolute deviation of a normal is sqrt(2 / pi) sd. c comes from an isotonic calibration
    on the reference (a proxy for the truth).
    """
    from sklearn.isotonic import IsotonicRegression

    ref = data["ref"]
    binary = ref["p"].ndim == 1

    def score(d: dict[str, np.ndarray]) -> np.ndarray:
        return d["p"] if binary else d["p"][np.arange(d["pred"].size), d["pred"]]

    event = ref["y"] if binary else (ref["pred"] == ref["y"]).astype(float)
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(score(ref), event)
    out = []
    for c in data["chunks"]:
        q = iso.predict(score(c))
        right = np.where(c["pred"] == 1, q, 1 - q) if binary else q
        out.append(np.sqrt(2 / np.pi * np.sum(right * (1 - right))) / right.size)
    return float(np.mean(out))


def _peer(problem: str) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.pop("PYTHONPATH", None)
    run = subprocess.run(
        [str(NANNY_PY), __file__, "cbpe", "--problem", problem],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def _spread(ts: list[float]) -> str:
    return f"{np.median(ts):.2f} s ({min(ts):.2f}-{max(ts):.2f})"


def _compare(problem: str, rounds: int, methods: list[str]) -> dict[str, Any]:
    data = _load(problem)
    binary = problem == "car"
    metrics = list(BINARY) if binary else ["accuracy"]
    truth = [_realized(c, binary) for c in data["chunks"]]
    load_before = os.getloadavg()
    t_peer: list[float] = []
    t_ours: list[float] = []
    peer: dict[str, Any] = {}
    default: list[Any] = []
    for _ in range(rounds):  # interleaved: CBPE, nndoctor, CBPE, nndoctor, ...
        peer = _peer(problem)
        t_peer.append(float(peer["seconds"]))
        default, t = _ours(data, "confidence-based")
        t_ours.append(t)
    load_after = os.getloadavg()
    rows: dict[str, dict[str, Any]] = {}
    for m in metrics:
        est = np.array(peer["estimates"][m])
        real = np.array([t[m] for t in truth])
        inside = (np.array(peer["lower"][m]) <= real) & (real <= np.array(peer["upper"][m]))
        rows.setdefault("NannyML CBPE", {})[m] = (float(np.mean(np.abs(est - real))), inside)
    others: dict[str, float] = {}
    for method in methods:
        if method == "confidence-based":
            ests, secs = default, float(np.median(t_ours))
        else:
            ests, secs = _ours(data, method)
        others[method] = secs
        for m in metrics:
            if m not in ests[0].metrics:
                continue
            val = np.array([e.metrics[m].value for e in ests])
            real = np.array([t[m] for t in truth])
            lo = np.array([e.metrics[m].ci_low for e in ests])
            hi = np.array([e.metrics[m].ci_high for e in ests])
            rows.setdefault(f"nndoctor {method}", {})[m] = (
                float(np.mean(np.abs(val - real))),
                (lo <= real) & (real <= hi),
            )
    print(f"\n## {problem}: per-chunk mean absolute error (10 chunks), interval coverage")
    print("| estimator | " + " | ".join(metrics) + " | time (fit + 10 chunks) |")
    print("|---|" + "---|" * (len(metrics) + 1))
    for name, r in rows.items():
        cells = []
        for m in metrics:
            if m not in r:
                cells.append("-")
                continue
            mae, inside = r[m]
            cov = f" ({int(inside.sum())}/10 in CI)" if np.isfinite(mae) else ""
            cells.append(f"{mae:.4f}{cov}")
        if name == "NannyML CBPE":
            tcell = _spread(t_peer)
        elif name == "nndoctor confidence-based":
            tcell = _spread(t_ours)
        else:
            tcell = f"{others[name.removeprefix('nndoctor ')]:.2f} s (one run)"
        print(f"| {name} | " + " | ".join(cells) + f" | {tcell} |")
    acc_real = [t["accuracy"] for t in truth]
    floor = _floor(data)
    print(
        f"\naccuracy MAE an oracle of each chunk's expected accuracy would have: {floor:.4f}\n"
        f"realized accuracy per chunk: {np.round(acc_real, 4).tolist()}\n"
        f"CBPE accuracy per chunk:     {np.round(peer['estimates']['accuracy'], 4).tolist()}\n"
        f"nndoctor default per chunk:  {np.round([e.accuracy for e in default], 4).tolist()}\n"
        f"time ratio nndoctor / CBPE (medians of {rounds} interleaved rounds): "
        f"{np.median(t_ours) / np.median(t_peer):.2f}\n"
        f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f}"
    )
    return {
        "problem": problem,
        "mae": {k: {m: v[0] for m, v in r.items()} for k, r in rows.items()},
        "oracle_floor": floor,
        "seconds": {"cbpe": t_peer, "nndoctor-default": t_ours, "others": others},
        "load": [load_before, load_after],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", nargs="?", default="all", choices=["all", "export", "cbpe"])
    parser.add_argument("--problem", default="car", choices=["car", "card", "mix"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--problems", default="car,card,mix")
    parser.add_argument(
        "--methods",
        default="confidence-based,atc,calibrated-confidence,importance-weighted,label-shift,"
        "label-shift (fitted once)",
    )
    args = parser.parse_args()
    if args.part == "export":
        _export()
        return
    if args.part == "cbpe":
        _cbpe(args.problem)
        return
    if not (WORK / "card_analysis.parquet").exists():
        subprocess.run([str(NANNY_PY), __file__, "export"], check=True)
    if not (WORK / "mix_analysis.parquet").exists():
        _make_mix()
    import nndoctor

    print(f"nndoctor {nndoctor.__version__}, python {sys.version.split()[0]}")
    results = [_compare(p, args.rounds, args.methods.split(",")) for p in args.problems.split(",")]
    (WORK / "performance_estimation.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
