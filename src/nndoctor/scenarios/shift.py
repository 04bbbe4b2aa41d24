"""Four worked examples of distribution shift, each with the truth written down.

Every generator returns a :class:`ScenarioData`: a source table (what the model was trained on), a
target table (what it meets in deployment), the label column, and ``truth``: the kind of shift and
its parameters, so that a diagnosis can be checked against what really happened.

=================== ========= =================================================================
scenario            kind      the lesson
=================== ========= =================================================================
``cartoon_digits``  covariate P(x) moves to where the source has no data; importance weighting
                              cannot reach it: label some cartoons.
``flu_season``      label     disease causes symptoms, so P(symptoms | disease) stays and only
                              the prevalence moves: re-weight the classes (BBSE / EM), no new
                              labels needed.
``soda_regions``    concept   the same drink gets another name: P(y | x) moves while P(x) does
                              not; no re-weighting helps: relabel and retrain for the region.
``drifting_stream`` concept   P(y | x) turns slowly over time: watch the error stream, retrain on
                              a recent window.
=================== ========= =================================================================

Shift in the sense of Quiñonero-Candela et al. (2009), *Dataset Shift in Machine Learning*, MIT
Press; the label-shift setting of Lipton, Wang & Smola (2018), "Detecting and correcting for label
shift with black box predictors", ICML; concept drift as in Gama et al. (2014), "A survey on
concept drift adaptation", ACM Computing Surveys 46(4).

Examples
--------
>>> data = flu_season(n_source=500, n_target=500, random_state=0)
>>> data.kind, data.label
('label', 'diagnosis')
>>> data.truth["target_prior"]["flu"]
0.35
"""

from __future__ import annotations

import os
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from nndoctor._results import ResultMixin, dumps, to_jsonable
from nndoctor._validation import (
    check_choice,
    check_int,
    check_number,
    check_random_state,
    check_unit_interval,
)
from nndoctor.exceptions import InvalidParameterError

__all__ = [
    "SHIFT_SCENARIOS",
    "ScenarioData",
    "ScenarioFiles",
    "cartoon_digits",
    "drifting_stream",
    "flu_season",
    "soda_regions",
]

ShiftKind = Literal["covariate", "label", "concept"]


@dataclass(frozen=True, slots=True)
class ScenarioData(ResultMixin):
    """A source table, a target table and the truth about how they differ.

    Attributes
    ----------
    name : str
        The scenario's name (``"flu_season"``, ...).
    kind : {"covariate", "label", "concept"}
        The kind of shift built into the data.
    lesson : str
        What the scenario teaches, in a few sentences.
    treatment : str
        The right response to this shift.
    label : str
        Name of the label column in both tables.
    features : tuple of str
        Names of the feature columns (the label and the time column excluded).
    classes : tuple
        The label values, in the order :meth:`arrays` encodes them (0, 1, ...).
    source, target : pandas.DataFrame
        The tables. ``target`` carries labels so that the truth can be checked; a deployed model
        would not have them.
    source_name, target_name : str
        What the two tables stand for ("photos" and "cartoons", ...).
    truth : mapping
        The parameters of the shift (priors, regions, drift times, ...), as plain JSON types.
    time : str or None
        Name of the time column (``drifting_stream`` only).
    """

    name: str
    kind: ShiftKind
    lesson: str
    treatment: str
    label: str
    features: tuple[str, ...]
    classes: tuple[Any, ...]
    source: pd.DataFrame = field(repr=False)
    target: pd.DataFrame = field(repr=False)
    source_name: str = "source"
    target_name: str = "target"
    truth: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))
    time: str | None = None

    def arrays(
        self,
    ) -> tuple[
        npt.NDArray[np.float64],
        npt.NDArray[np.int64],
        npt.NDArray[np.float64],
        npt.NDArray[np.int64],
    ]:
        """``(X_source, y_source, X_target, y_target)``: float features, labels coded 0..K-1.

        Labels are coded by their position in :attr:`classes`.

        Examples
        --------
        >>> Xs, ys, Xt, yt = soda_regions(n_source=50, n_target=40, random_state=0).arrays()
        >>> Xs.shape, yt.shape, sorted(set(ys.tolist()) | set(yt.tolist())) == [0, 1, 2]
        ((50, 5), (40,), True)
        """
        codes = {c: i for i, c in enumerate(self.classes)}
        cols = list(self.features)

        def code(frame: pd.DataFrame) -> npt.NDArray[np.int64]:
            return np.array([codes[v] for v in frame[self.label].tolist()], dtype=np.int64)

        return (
            self.source[cols].to_numpy(dtype=np.float64),
            code(self.source),
            self.target[cols].to_numpy(dtype=np.float64),
            code(self.target),
        )

    def to_dict(self) -> dict[str, Any]:
        """A summary as plain JSON types: everything but the tables, plus their sizes."""
        return {
            "name": self.name,
            "kind": self.kind,
            "lesson": self.lesson,
            "treatment": self.treatment,
            "label": self.label,
            "time": self.time,
            "features": list(self.features),
            "classes": to_jsonable(list(self.classes)),
            "source_name": self.source_name,
            "target_name": self.target_name,
            "n_source": len(self.source),
            "n_target": len(self.target),
            "truth": to_jsonable(self.truth),
        }

    def describe(self) -> str:
        """A README in Markdown: the lesson, the tables, the truth and the treatment.

        Examples
        --------
        >>> text = flu_season(n_source=100, n_target=100).describe()
        >>> text.splitlines()[0]
        '# Scenario `flu_season`: label shift'
        """
        lines = [
            f"# Scenario `{self.name}`: {self.kind} shift",
            "",
            self.lesson,
            "",
            "## The tables",
            "",
            f"- source ({self.source_name}): {len(self.source)} rows",
            f"- target ({self.target_name}): {len(self.target)} rows",
            f"- label column: `{self.label}` with classes "
            + ", ".join(f"`{c}`" for c in self.classes),
            "- feature columns: " + ", ".join(f"`{c}`" for c in self.features),
        ]
        if self.time is not None:
            lines.append(f"- time column: `{self.time}` (not a feature)")
        lines += ["", "## The truth", "", f"- kind of shift: **{self.kind}**"]
        for key, text in _truth_items(self.truth):
            lines.append(f"- {key}: `{text}`")
        lines += ["", "## What to do", "", self.treatment, ""]
        return "\n".join(lines)

    def write(self, directory: str | Path) -> ScenarioFiles:
        """Write the tables, a README stating the truth, and ``truth.json`` into ``directory``.

        The source goes to ``source.csv``; the target to ``target.csv``, or to ``stream.csv``
        when the scenario is a stream (it has a time column). Each file is written atomically.

        Examples
        --------
        >>> import tempfile
        >>> out = flu_season(n_source=20, n_target=20).write(tempfile.mkdtemp())
        >>> sorted(out.files)
        ['readme', 'source', 'target', 'truth']
        """
        from nndoctor._io import write_text_atomic

        if not isinstance(directory, str | os.PathLike):
            raise InvalidParameterError(
                f"directory must be a path, got {type(directory).__name__}; pass the folder "
                "for the tables"
            )
        root = Path(directory)
        if root.exists() and not root.is_dir():
            raise InvalidParameterError(
                f"{str(root)!r} exists and is not a directory; pass a directory for the tables"
            )
        target_key = "stream" if self.time is not None else "target"
        files = {
            "source": write_text_atomic(root / "source.csv", self.source.to_csv(index=False)),
            target_key: write_text_atomic(
                root / f"{target_key}.csv", self.target.to_csv(index=False)
            ),
            "readme": write_text_atomic(root / "README.md", self.describe()),
            "truth": write_text_atomic(root / "truth.json", dumps(self.to_dict()) + "\n"),
        }
        return ScenarioFiles(scenario=self, directory=str(root), files=types.MappingProxyType(
            {k: str(v) for k, v in files.items()}))  # fmt: skip


@dataclass(frozen=True, slots=True)
class ScenarioFiles(ResultMixin):
    """Where :meth:`ScenarioData.write` put a scenario.

    Attributes
    ----------
    scenario : ScenarioData
        What was written.
    directory : str
        The output directory.
    files : mapping of str to str
        ``source``, ``target`` (or ``stream``), ``readme`` and ``truth`` to their paths.
    """

    scenario: ScenarioData
    directory: str
    files: Mapping[str, str]

    def to_dict(self) -> dict[str, Any]:
        """The scenario's summary (no tables), the directory and the paths written."""
        return {
            "scenario": self.scenario.to_dict(),
            "directory": self.directory,
            "files": dict(self.files),
        }


def _compact(value: Any) -> str:
    import json

    if isinstance(value, str):
        return value
    return json.dumps(to_jsonable(value), separators=(", ", ": "))


def _truth_items(truth: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``truth`` as ``(key, text)`` pairs; a mapping of mappings is split one level down.

    Examples
    --------
    >>> _truth_items({"a": 1, "b": {"x": {"p": 0.5}, "y": {"p": 0.1}}, "c": {"u": 2}})
    [('a', '1'), ('b: x', '{"p": 0.5}'), ('b: y', '{"p": 0.1}'), ('c', '{"u": 2}')]
    """
    items: list[tuple[str, str]] = []
    for key, value in truth.items():
        if (
            isinstance(value, Mapping)
            and value
            and all(isinstance(v, Mapping) for v in value.values())
        ):
            items.extend((f"{key}: {k}", _compact(v)) for k, v in value.items())
        else:
            items.append((key, _compact(value)))
    return items


def _freeze(truth: dict[str, Any]) -> Mapping[str, Any]:
    return types.MappingProxyType(to_jsonable(truth))


def _check_size(value: Any, name: str, minimum: int = 2) -> int:
    return check_int(value, name=name, minimum=minimum)


# --------------------------------------------------------------------------------------------
# cartoon_digits: covariate shift with little overlapping support
# --------------------------------------------------------------------------------------------

_N_DIGITS = 1797
_EDGE_SIGMA = 1.0  # pixels: the blur the unsharp mask subtracts
_EDGE_AMOUNT = 1.0  # how much of the detail is added back


def _cartoonise(images: npt.NDArray[np.float64], levels: int) -> npt.NDArray[np.float64]:
    """Thicken (2x2 grey dilation), sharpen the edges (unsharp mask), posterise."""
    from scipy import ndimage

    thick = ndimage.grey_dilation(images, size=(1, 2, 2))
    blurred = ndimage.gaussian_filter(thick, sigma=(0.0, _EDGE_SIGMA, _EDGE_SIGMA))
    edged = np.clip(thick + _EDGE_AMOUNT * (thick - blurred), 0.0, 16.0)
    step = 16.0 / (levels - 1)
    return np.asarray(np.round(edged / step) * step, dtype=np.float64)


def cartoon_digits(
    *, n_source: int = 900, n_target: int = 897, levels: int = 3, random_state: Any = 0
) -> ScenarioData:
    """Digits as "photos" (source) and as "cartoons" (target): covariate shift, little overlap.

    The 1,797 8x8 images of scikit-learn's digits are split at random, stratified by digit. The
    source keeps its pixels (0-16, as scanned); each target image is stylised: strokes thickened
    by a 2x2 grey dilation :math:`D`, edges emphasised by an unsharp mask (add back the detail
    lost by a Gaussian blur :math:`G_1` of one pixel), and the result posterised to ``levels``
    grey levels,

    .. math::

        x_{\\text{cartoon}} = q\\Big(\\operatorname{clip}_{[0, 16]}
            \\big(2 D(x) - G_1 * D(x)\\big)\\Big),
        \\qquad q(v) = s \\cdot \\operatorname{round}(v / s),\\; s = 16/(\\text{levels}-1).

    The digit is what it was, and its frequency is the same in both tables, so the labelling
    rule is unchanged: this is covariate shift. But photos and cartoons occupy almost disjoint
    regions of pixel space (a domain classifier tells them apart nearly perfectly), so importance
    weights :math:`w(x) = p_T(x)/p_S(x)` are huge on a handful of photos and the effective sample
    size collapses: weighting cannot fix it. The treatment is to label some cartoons.

    Parameters
    ----------
    n_source, n_target : int
        Table sizes; together at most 1,797 (each image is used once).
    levels : int
        Grey levels of the posterised cartoons (at least 2).
    random_state : int, Generator or None
        Seed of the split.

    Returns
    -------
    ScenarioData
        Columns ``pixel_0`` ... ``pixel_63`` and the label ``digit``; ``kind="covariate"``.

    References
    ----------
    Shimodaira (2000), "Improving predictive inference under covariate shift by weighting the
    log-likelihood function", J. Statist. Plann. Inference 90(2). Kong (1992) and Owen (2013,
    ch. 9) for the effective sample size of importance weights.

    Examples
    --------
    >>> data = cartoon_digits(n_source=300, n_target=200, random_state=0)
    >>> data.source.shape, data.target.shape
    ((300, 65), (200, 65))
    >>> sorted(set(data.target["pixel_20"]))
    [0.0, 8.0, 16.0]
    """
    from sklearn.datasets import load_digits

    n_source = _check_size(n_source, "n_source", 10)
    n_target = _check_size(n_target, "n_target", 10)
    levels = check_int(levels, name="levels", minimum=2)
    if n_source + n_target > _N_DIGITS:
        raise InvalidParameterError(
            f"n_source + n_target is {n_source + n_target} but the digits hold {_N_DIGITS} "
            "images; ask for at most 1797 together"
        )
    rng = check_random_state(random_state)
    X, y = load_digits(return_X_y=True)
    order = rng.permutation(_N_DIGITS)
    # stratify: interleave the classes so that any prefix is (nearly) balanced
    by_class = [order[y[order] == c] for c in range(10)]
    ranked = np.concatenate([np.arange(len(idx)) / len(idx) for idx in by_class])
    pool = np.concatenate(by_class)[np.argsort(ranked, kind="stable")]
    picked = pool[: n_source + n_target]
    is_target = np.zeros(len(picked), dtype=bool)
    is_target[rng.permutation(len(picked))[:n_target]] = True
    src_idx, tgt_idx = picked[~is_target], picked[is_target]
    photos = X[src_idx].astype(np.float64)
    cartoons = _cartoonise(X[tgt_idx].reshape(-1, 8, 8).astype(np.float64), levels).reshape(-1, 64)
    cols = [f"pixel_{i}" for i in range(64)]
    source = pd.DataFrame(photos, columns=cols)
    source["digit"] = y[src_idx].astype(np.int64)
    target = pd.DataFrame(cartoons, columns=cols)
    target["digit"] = y[tgt_idx].astype(np.int64)
    truth = {
        "shift": "covariate: P(x) changes, P(digit | x) is the digit drawn, in both tables",
        "support_overlap": "little: a domain classifier separates photos from cartoons",
        "prior": "the same in both tables (stratified split, 10% per digit)",
        "stylisation": {
            "dilation": "2x2 grey dilation",
            "unsharp_mask": {"sigma": _EDGE_SIGMA, "amount": _EDGE_AMOUNT},
            "posterise_levels": levels,
        },
        "importance_weighting_helps": False,
    }
    return ScenarioData(
        name="cartoon_digits",
        kind="covariate",
        lesson=(
            "Covariate shift with little overlapping support. The same ten digits, drawn as "
            "photos in the source and as cartoons (thick, outlined, posterised strokes) in the "
            "target: the labelling rule has not changed, but the cartoons live where the source "
            "has almost no data. A domain classifier separates the two nearly perfectly, the "
            "importance weights p_T(x)/p_S(x) pile onto a handful of photos, and their effective "
            "sample size collapses: re-weighting the photos cannot teach the model cartoons."
        ),
        treatment=(
            "Do not trust importance weighting here. Label a sample of cartoons and fine-tune on "
            "them (or train on both styles); augment the photos with the stylisation if it is "
            "known."
        ),
        label="digit",
        features=tuple(cols),
        classes=tuple(range(10)),
        source=source,
        target=target,
        source_name="photos",
        target_name="cartoons",
        truth=_freeze(truth),
    )


# --------------------------------------------------------------------------------------------
# flu_season: label shift
# --------------------------------------------------------------------------------------------

_FLU_CLASSES = ("healthy", "cold", "flu")
_FLU_SUMMER = {"healthy": 0.80, "cold": 0.15, "flu": 0.05}
_FLU_WINTER = {"healthy": 0.45, "cold": 0.20, "flu": 0.35}
# P(symptoms | disease): the same in every season.
_FLU_SYMPTOMS: dict[str, dict[str, float]] = {
    # temperature_c ~ N(mean, sd), heart_rate ~ N(mean, sd), cough_days ~ Poisson(rate),
    # muscle_aches ~ Bernoulli(p), runny_nose ~ Bernoulli(p)
    "healthy": {"temp": 36.8, "temp_sd": 0.3, "hr": 70, "hr_sd": 8, "cough": 0.3, "aches": 0.05,
                "nose": 0.05},
    "cold": {"temp": 37.2, "temp_sd": 0.4, "hr": 76, "hr_sd": 9, "cough": 3.0, "aches": 0.20,
             "nose": 0.85},
    "flu": {"temp": 38.5, "temp_sd": 0.6, "hr": 92, "hr_sd": 11, "cough": 4.0, "aches": 0.80,
            "nose": 0.40},
}  # fmt: skip


def _prior(value: Mapping[str, float] | Sequence[float] | None, default: Mapping[str, float],
           name: str) -> dict[str, float]:  # fmt: skip
    if value is None:
        return dict(default)
    if isinstance(value, Mapping):
        if set(value) != set(_FLU_CLASSES):
            raise InvalidParameterError(
                f"{name} has classes {sorted(value)}; give one probability for each of "
                f"{', '.join(_FLU_CLASSES)}"
            )
        probs = [check_number(value[c], name=f"{name}[{c!r}]") for c in _FLU_CLASSES]
    else:
        given: Any = value  # checked at run time: callers pass anything
        if isinstance(given, str) or not isinstance(given, Iterable):
            raise InvalidParameterError(
                f"{name} must be 3 probabilities ({', '.join(_FLU_CLASSES)}) or a mapping "
                f"class -> probability, got {type(value).__name__} {value!r}; pass e.g. "
                "[0.6, 0.3, 0.1]"
            )
        probs = [check_number(v, name=name) for v in value]
        if len(probs) != len(_FLU_CLASSES):
            raise InvalidParameterError(
                f"{name} has {len(probs)} entries; give 3 probabilities ({', '.join(_FLU_CLASSES)})"
            )
    if any(not np.isfinite(p) or p <= 0 for p in probs) or abs(sum(probs) - 1.0) > 1e-6:
        raise InvalidParameterError(
            f"{name} must be positive probabilities summing to 1, got {probs}; every class "
            "needs some prevalence for the shift to be correctable"
        )
    return dict(zip(_FLU_CLASSES, probs, strict=True))


def _flu_table(n: int, prior: dict[str, float], rng: np.random.Generator) -> pd.DataFrame:
    idx = rng.choice(len(_FLU_CLASSES), size=n, p=[prior[c] for c in _FLU_CLASSES])
    params = {k: np.array([_FLU_SYMPTOMS[c][k] for c in _FLU_CLASSES])[idx]
              for k in _FLU_SYMPTOMS["flu"]}  # fmt: skip
    return pd.DataFrame(
        {
            "temperature_c": np.round(rng.normal(params["temp"], params["temp_sd"]), 2),
            "heart_rate": np.round(rng.normal(params["hr"], params["hr_sd"]), 1),
            "cough_days": rng.poisson(params["cough"]).astype(np.int64),
            "muscle_aches": (rng.random(n) < params["aches"]).astype(np.int64),
            "runny_nose": (rng.random(n) < params["nose"]).astype(np.int64),
            "diagnosis": np.array(_FLU_CLASSES, dtype=object)[idx],
        }
    )


def flu_season(
    *,
    n_source: int = 2000,
    n_target: int = 2000,
    source_prior: Mapping[str, float] | Sequence[float] | None = None,
    target_prior: Mapping[str, float] | Sequence[float] | None = None,
    random_state: Any = 0,
) -> ScenarioData:
    """Patients in summer (source) and in winter (target): label shift.

    The disease causes the symptoms. Each patient's diagnosis is drawn from the season's
    prevalence :math:`\\pi_s(y)`, then the symptoms from a fixed law :math:`p(x \\mid y)`
    (temperature and heart rate normal, days of cough Poisson, aches and runny nose Bernoulli,
    independently given the diagnosis):

    .. math::

        p_S(x, y) = \\pi_S(y)\\, p(x \\mid y), \\qquad p_T(x, y) = \\pi_T(y)\\, p(x \\mid y),
        \\qquad w(y) = \\pi_T(y) / \\pi_S(y).

    Only the prevalence moves, so the shift is corrected by the class weights :math:`w(y)`,
    which black-box shift estimation (BBSE) or EM can recover from the model's predictions on
    unlabeled winter patients — no winter labels needed.

    Parameters
    ----------
    n_source, n_target : int
        Number of patients in each season.
    source_prior, target_prior : mapping or sequence of 3 floats, optional
        Prevalence of ``healthy``, ``cold``, ``flu``. Defaults: summer 0.80/0.15/0.05, winter
        0.45/0.20/0.35.
    random_state : int, Generator or None
        Seed.

    Returns
    -------
    ScenarioData
        Columns ``temperature_c``, ``heart_rate``, ``cough_days``, ``muscle_aches``,
        ``runny_nose`` and the label ``diagnosis``; ``truth`` holds both priors and ``weights``.

    References
    ----------
    Saerens, Latinne & Decaestecker (2002), "Adjusting the outputs of a classifier to new a priori
    probabilities", Neural Computation 14(1); Lipton, Wang & Smola (2018), ICML.

    Examples
    --------
    >>> data = flu_season(n_source=300, n_target=300, random_state=1)
    >>> data.truth["weights"]["flu"]
    7.0
    >>> list(data.source.columns)[-1]
    'diagnosis'
    """
    n_source = _check_size(n_source, "n_source")
    n_target = _check_size(n_target, "n_target")
    src = _prior(source_prior, _FLU_SUMMER, "source_prior")
    tgt = _prior(target_prior, _FLU_WINTER, "target_prior")
    rng = check_random_state(random_state)
    source = _flu_table(n_source, src, rng)
    target = _flu_table(n_target, tgt, rng)
    truth = {
        "shift": "label: P(diagnosis) changes, P(symptoms | diagnosis) is fixed",
        "source_prior": src,
        "target_prior": tgt,
        "weights": {c: round(tgt[c] / src[c], 10) for c in _FLU_CLASSES},
        "symptoms_given_diagnosis": {
            c: {
                "temperature_c": f"Normal({v['temp']}, sd {v['temp_sd']})",
                "heart_rate": f"Normal({v['hr']}, sd {v['hr_sd']})",
                "cough_days": f"Poisson({v['cough']})",
                "muscle_aches": f"Bernoulli({v['aches']})",
                "runny_nose": f"Bernoulli({v['nose']})",
            }
            for c, v in _FLU_SYMPTOMS.items()
        },
    }
    return ScenarioData(
        name="flu_season",
        kind="label",
        lesson=(
            "Label shift. The disease causes the symptoms, so P(symptoms | diagnosis) is the "
            "same in every season; only the prevalence moves, from a summer where 5% of "
            "patients have flu to a winter where 35% do. A model trained in summer is too "
            "reluctant to say flu in winter, but the fix needs no winter labels: estimate the "
            "class weights pi_T(y)/pi_S(y) from the model's predictions on unlabeled winter "
            "patients (BBSE, EM) and adjust the predicted probabilities."
        ),
        treatment=(
            "Estimate the winter prevalence from the model's outputs on unlabeled winter "
            "patients (BBSE or EM with calibrated probabilities), then re-weight the training "
            "loss by w(y) or adjust the predicted probabilities by the prior ratio."
        ),
        label="diagnosis",
        features=("temperature_c", "heart_rate", "cough_days", "muscle_aches", "runny_nose"),
        classes=_FLU_CLASSES,
        source=source,
        target=target,
        source_name="summer",
        target_name="winter",
        truth=_freeze(truth),
    )


# --------------------------------------------------------------------------------------------
# soda_regions: concept shift
# --------------------------------------------------------------------------------------------

Region = Literal["midwest", "northeast", "south"]
_REGION_WORD: dict[str, str] = {"midwest": "pop", "northeast": "soda", "south": "coke"}
_SODA_CLASSES = ("pop", "soda", "coke")
# drink types: the same mix of drinks in every region (same P(x))
_DRINKS: dict[str, dict[str, float]] = {
    #            share  sugar g/100ml  caffeine mg/l  colour 0-1   CO2 g/l  citrus 0-1
    "cola":      {"p": 0.35, "sugar": 10.6, "caf": 95.0, "color": 0.85, "co2": 6.5, "citrus": 0.1},
    "lemon-lime": {"p": 0.20, "sugar": 10.2, "caf": 2.0, "color": 0.05, "co2": 6.8, "citrus": 0.9},
    "orange":    {"p": 0.15, "sugar": 12.0, "caf": 2.0, "color": 0.45, "co2": 5.8, "citrus": 0.8},
    "root beer": {"p": 0.10, "sugar": 11.0, "caf": 2.0, "color": 0.75, "co2": 5.5, "citrus": 0.1},
    "seltzer":   {"p": 0.20, "sugar": 0.3, "caf": 1.0, "color": 0.03, "co2": 7.5, "citrus": 0.3},
}  # fmt: skip
_SWEET_G = 4.0  # g/100 ml: below this a drink is unsweetened (club soda, seltzer)
_COLA_CAFFEINE = 40.0  # mg/l
_COLA_COLOR = 0.6


def _soda_names(frame: pd.DataFrame, region: str) -> npt.NDArray[np.object_]:
    """The name a person from ``region`` gives each drink (the concept, P(y | x))."""
    sweet = frame["sugar_g"].to_numpy() >= _SWEET_G
    cola = (
        sweet
        & (frame["caffeine_mg"].to_numpy() >= _COLA_CAFFEINE)
        & (frame["color"].to_numpy() >= _COLA_COLOR)
    )
    names = np.full(len(frame), _REGION_WORD[region], dtype=object)
    names[cola] = "coke"
    names[~sweet] = "soda"
    return names


def _soda_table(n: int, rng: np.random.Generator) -> pd.DataFrame:
    kinds = list(_DRINKS)
    idx = rng.choice(len(kinds), size=n, p=[_DRINKS[k]["p"] for k in kinds])

    def col(key: str) -> npt.NDArray[np.float64]:
        return np.array([_DRINKS[k][key] for k in kinds])[idx]

    return pd.DataFrame(
        {
            "sugar_g": np.round(np.clip(rng.normal(col("sugar"), 1.2), 0.0, None), 2),
            "caffeine_mg": np.round(np.clip(rng.normal(col("caf"), 12.0), 0.0, None), 1),
            "color": np.round(np.clip(rng.normal(col("color"), 0.08), 0.0, 1.0), 3),
            "co2_g": np.round(rng.normal(col("co2"), 0.5), 2),
            "citrus": np.round(np.clip(rng.normal(col("citrus"), 0.1), 0.0, 1.0), 3),
        }
    )


def _noisy(names: npt.NDArray[np.object_], noise: float, rng: np.random.Generator) -> Any:
    flip = rng.random(len(names)) < noise
    other = rng.integers(1, len(_SODA_CLASSES), size=len(names))
    code = np.array([_SODA_CLASSES.index(v) for v in names])
    code = np.where(flip, (code + other) % len(_SODA_CLASSES), code)
    return np.array(_SODA_CLASSES, dtype=object)[code]


def soda_regions(
    *,
    n_source: int = 2000,
    n_target: int = 2000,
    source_region: Region = "midwest",
    target_region: Region = "south",
    label_noise: float = 0.02,
    random_state: Any = 0,
) -> ScenarioData:
    """The same drinks named in two regions: concept shift.

    Both regions drink the same mix of colas, lemon-lime, orange, root beer and seltzer,
    described by the same five measurements, so :math:`p_S(x) = p_T(x)`. What changes is the
    word: everywhere a cola is a "coke" and unsweetened fizzy water is "soda", but any other
    sweet soft drink is "pop" in the Midwest, "soda" in the Northeast and "coke" in the South:

    .. math::

        p_S(x) = p_T(x), \\qquad p_S(y \\mid x) \\ne p_T(y \\mid x)
        \\text{ on } \\{x : \\text{sweet, not a cola}\\}.

    Since :math:`p(x)` is unchanged while :math:`p(y)` moves, this cannot be label shift (which
    would move :math:`p(x)` along with :math:`p(y)`), and no weighting of inputs or classes
    makes a Midwest model right in the South. ``label_noise`` of the names are replaced by
    another name at random, in both regions alike.

    Parameters
    ----------
    n_source, n_target : int
        Number of drinks named in each region.
    source_region, target_region : {"midwest", "northeast", "south"}
        Where the training labels and the deployment labels come from; must differ.
    label_noise : float
        Fraction of names replaced by a wrong one (in ``[0, 1)``).
    random_state : int, Generator or None
        Seed.

    Returns
    -------
    ScenarioData
        Columns ``sugar_g``, ``caffeine_mg``, ``color``, ``co2_g``, ``citrus`` and the label
        ``name``; ``truth["relabelled_fraction"]`` is the share of target drinks whose name
        differs from what the source region would call them.

    References
    ----------
    Moreno-Torres et al. (2012), "A unifying view on dataset shift in classification", Pattern
    Recognition 45(1) (concept shift: :math:`p(y \\mid x)` changes, :math:`p(x)` does not).

    Examples
    --------
    >>> data = soda_regions(n_source=400, n_target=400, random_state=0)
    >>> data.truth["names"]["south"]["sweet, not a cola"]
    'coke'
    >>> 0.3 < data.truth["relabelled_fraction"] < 0.6
    True
    """
    n_source = _check_size(n_source, "n_source")
    n_target = _check_size(n_target, "n_target")
    src_region = check_choice(source_region, _REGION_WORD, name="source_region")
    tgt_region = check_choice(target_region, _REGION_WORD, name="target_region")
    if src_region == tgt_region:
        raise InvalidParameterError(
            f"source_region and target_region are both {src_region!r}; pick two different "
            f"regions from {', '.join(sorted(_REGION_WORD))}"
        )
    noise = check_unit_interval(label_noise, name="label_noise", open_=False)
    if noise >= 1.0:
        raise InvalidParameterError(f"label_noise must be below 1, got {noise}")
    rng = check_random_state(random_state)
    source = _soda_table(n_source, rng)
    target = _soda_table(n_target, rng)
    clean_target = _soda_names(target, tgt_region)
    relabelled = float(np.mean(clean_target != _soda_names(target, src_region)))
    source["name"] = _noisy(_soda_names(source, src_region), noise, rng)
    target["name"] = _noisy(clean_target, noise, rng)
    truth = {
        "shift": "concept: P(x) is the same, P(name | x) differs on sweet drinks that are no cola",
        "source_region": src_region,
        "target_region": tgt_region,
        "names": {
            r: {"cola": "coke", "unsweetened": "soda", "sweet, not a cola": w}
            for r, w in _REGION_WORD.items()
        },
        "rule": {
            "unsweetened": f"sugar_g < {_SWEET_G}",
            "cola": f"sweet and caffeine_mg >= {_COLA_CAFFEINE} and color >= {_COLA_COLOR}",
        },
        "drink_mix": {k: v["p"] for k, v in _DRINKS.items()},
        "label_noise": noise,
        "relabelled_fraction": round(relabelled, 6),
    }
    return ScenarioData(
        name="soda_regions",
        kind="concept",
        lesson=(
            "Concept shift. The same drinks, measured the same way, are named differently: a "
            "sweet soft drink that is not a cola is 'pop' in the Midwest, 'soda' in the "
            "Northeast and 'coke' in the South. P(x) is identical, so no test on the inputs "
            "sees anything and no importance weight differs from 1; P(y) moves, but not as "
            "label shift would have it. Only labeled target data reveal the change, and only "
            "new labels fix it."
        ),
        treatment=(
            "Collect labels in the new region and retrain (or fine-tune) there; if one model "
            "must serve both, make the region an input feature."
        ),
        label="name",
        features=("sugar_g", "caffeine_mg", "color", "co2_g", "citrus"),
        classes=_SODA_CLASSES,
        source=source,
        target=target,
        source_name=src_region,
        target_name=tgt_region,
        truth=_freeze(truth),
    )


# --------------------------------------------------------------------------------------------
# drifting_stream: gradual concept drift over time
# --------------------------------------------------------------------------------------------


def _stream_angle(
    t: npt.NDArray[np.float64], start: float, end: float, rotation: float
) -> npt.NDArray[np.float64]:
    return np.asarray(rotation * np.clip((t - start) / (end - start), 0.0, 1.0), dtype=np.float64)


def drifting_stream(
    *,
    n_source: int = 1000,
    n_stream: int = 4000,
    drift_start: float = 0.25,
    drift_end: float = 0.75,
    rotation_deg: float = 90.0,
    label_noise: float = 0.05,
    random_state: Any = 0,
) -> ScenarioData:
    """A labeled stream whose decision boundary turns slowly: gradual concept drift.

    Each row has a time ``t`` (0, 1, 2, ...), two informative features and one of noise, all
    standard normal at every time (P(x) never moves). The label is which side of a line through
    the origin the point lies on, and the line turns by ``rotation_deg`` between two times:

    .. math::

        y_t = \\mathbb{1}\\big[x_1 \\cos\\theta(t) + x_2 \\sin\\theta(t) > 0\\big], \\qquad
        \\theta(t) = \\theta_{\\max}\\,
            \\operatorname{clip}\\!\\left(\\frac{t - t_0}{t_1 - t_0}, 0, 1\\right),

    then flipped with probability ``label_noise``. The source is the first ``n_source`` rows
    (before any drift: the training window); the target is the stream that follows. A model
    fitted on the source errs on a fraction :math:`\\theta(t)/\\pi` of points (plus the noise),
    so its error stream rises gradually from ``label_noise`` towards
    :math:`\\theta_{\\max}/180°`.

    Parameters
    ----------
    n_source : int
        Rows of the training window (time ``0 .. n_source-1``, no drift).
    n_stream : int
        Rows of the stream (time ``n_source .. n_source+n_stream-1``).
    drift_start, drift_end : float
        Where in the stream the boundary starts and stops turning, as fractions of ``n_stream``
        (``0 <= drift_start < drift_end <= 1``).
    rotation_deg : float
        Total turn of the boundary, in degrees (0-180).
    label_noise : float
        Probability that a label is flipped, at every time.
    random_state : int, Generator or None
        Seed.

    Returns
    -------
    ScenarioData
        Columns ``t``, ``x1``, ``x2``, ``x3`` and the label ``y``; ``time="t"``,
        ``kind="concept"``; ``truth`` gives the drift's start and end times and the angle.

    References
    ----------
    Gama, Žliobaitė, Bifet, Pechenizkiy & Bouchachia (2014), "A survey on concept drift
    adaptation", ACM Computing Surveys 46(4) (gradual drift); Bifet & Gavaldà (2007), "Learning
    from time-changing data with adaptive windowing", SDM (ADWIN).

    Examples
    --------
    >>> data = drifting_stream(n_source=200, n_stream=800, random_state=0)
    >>> data.time, data.truth["drift_start_t"], data.truth["drift_end_t"]
    ('t', 400, 800)
    >>> int(data.target["t"].iloc[0])
    200
    """
    n_source = _check_size(n_source, "n_source")
    n_stream = _check_size(n_stream, "n_stream")
    start = check_unit_interval(drift_start, name="drift_start", open_=False)
    end = check_unit_interval(drift_end, name="drift_end", open_=False)
    if not start < end:
        raise InvalidParameterError(
            f"drift_start ({start}) must come before drift_end ({end}); both are fractions of "
            "the stream"
        )
    if isinstance(rotation_deg, bool) or not isinstance(rotation_deg, int | float):
        raise InvalidParameterError(f"rotation_deg must be a number, got {rotation_deg!r}")
    rotation = float(rotation_deg)
    if not 0.0 <= rotation <= 180.0:
        raise InvalidParameterError(f"rotation_deg must lie in [0, 180], got {rotation}")
    noise = check_unit_interval(label_noise, name="label_noise", open_=False)
    if noise >= 0.5:
        raise InvalidParameterError(
            f"label_noise must be below 0.5 (at 0.5 labels are coin flips), got {noise}"
        )
    rng = check_random_state(random_state)
    n = n_source + n_stream
    t = np.arange(n, dtype=np.float64)
    t0 = n_source + round(start * n_stream)
    t1 = n_source + round(end * n_stream)
    theta = np.deg2rad(_stream_angle(t, float(t0), float(t1), rotation))
    x = rng.standard_normal((n, 3))
    y = (x[:, 0] * np.cos(theta) + x[:, 1] * np.sin(theta) > 0).astype(np.int64)
    y = np.where(rng.random(n) < noise, 1 - y, y)
    table = pd.DataFrame(
        {"t": t.astype(np.int64), "x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "y": y}
    )
    truth = {
        "shift": "concept, gradual: P(y | x) turns over time, P(x) is fixed",
        "drift_start_t": t0,
        "drift_end_t": t1,
        "rotation_deg": rotation,
        "boundary": "y = 1[x1 cos(theta) + x2 sin(theta) > 0], theta linear in t between the "
        "drift's start and end",
        "label_noise": noise,
        "source_model_error_after_drift": round(rotation / 180.0 * (1 - 2 * noise) + noise, 6),
    }
    return ScenarioData(
        name="drifting_stream",
        kind="concept",
        lesson=(
            "Gradual concept drift. The inputs never change, but the rule that labels them turns "
            "slowly: a model trained on the first window is right at first and then wrong more "
            "and more often. No single snapshot shows it and no test on the inputs can; a "
            "monitor on the stream of the model's errors (ADWIN, Page-Hinkley, DDM) raises the "
            "alarm once the error rate has moved by more than chance allows."
        ),
        treatment=(
            "Monitor the error stream (labels arriving late are fine) and, when the detector "
            "fires, retrain on a recent window; keep monitoring, since a gradual drift goes on."
        ),
        label="y",
        features=("x1", "x2", "x3"),
        classes=(0, 1),
        source=table.iloc[:n_source].reset_index(drop=True),
        target=table.iloc[n_source:].reset_index(drop=True),
        source_name="training window",
        target_name="stream",
        truth=_freeze(truth),
        time="t",
    )


SHIFT_SCENARIOS: Mapping[str, Any] = types.MappingProxyType(
    {
        "cartoon_digits": cartoon_digits,
        "flu_season": flu_season,
        "soda_regions": soda_regions,
        "drifting_stream": drifting_stream,
    }
)
"""The four shift scenarios by name (each called with keyword arguments only)."""
