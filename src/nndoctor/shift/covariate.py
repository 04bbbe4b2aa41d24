r"""Importance weights for covariate shift, :math:`\beta(x) = p_t(x) / p_s(x)`.

Under covariate shift (:math:`P(x)` changes, :math:`P(y \mid x)` does not) any expectation over the
target is a weighted expectation over the source,
:math:`\mathbb{E}_\text{target}[\ell] = \mathbb{E}_\text{source}[\beta(x)\,\ell]`, so training or
evaluating with per-row weights :math:`\beta(x_i)` on the labeled source corrects for the shift.
:class:`ImportanceWeighter` estimates :math:`\beta` four ways and says how much the weights cost
(the effective sample size) and whether they can work at all (the overlap flag).

Weighting cannot correct a shift into regions the source never covered: there the ratio is
unbounded, a handful of source rows carry all the weight, and the effective sample size collapses.
The fitted ``low_overlap_`` flag and :class:`~nndoctor.exceptions.LowOverlapWarning` say so.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from nndoctor._results import ResultMixin
from nndoctor._validation import (
    check_choice,
    check_fitted,
    check_int,
    check_matrix,
    check_number,
    check_random_state,
    check_same_features,
    check_unit_interval,
    check_weights,
)
from nndoctor.exceptions import (
    DataValidationError,
    InvalidParameterError,
    LowOverlapWarning,
)
from nndoctor.shift._common import canonical_order, display_names, inverse_order
from nndoctor.shift._kernels import gaussian_kernel, median_bandwidth

__all__ = ["ImportanceWeighter", "ImportanceWeightsResult", "effective_sample_size"]

FloatArray = npt.NDArray[np.float64]
Method = Literal["classifier", "ulsif", "kliep", "kmm"]
_METHODS = tuple(sorted(get_args(Method)))
_CLASSIFIERS = ("logistic", "quadratic")
_QUANTILES = {"min": 0.0, "q01": 0.01, "q05": 0.05, "q25": 0.25, "median": 0.5,
              "q75": 0.75, "q95": 0.95, "q99": 0.99, "max": 1.0}  # fmt: skip
_KMM_MAX_ROWS = 10_000  # KMM's dense n_source x n_source kernel: 0.75 GiB at this size
_PROB_FLOOR = 1e-7  # classifier probabilities are kept in [floor, 1 - floor] so odds stay finite


def effective_sample_size(weights: Any) -> float:
    r"""Kish's effective sample size of a weighted sample.

    .. math:: \mathrm{ESS} = \frac{(\sum_i \beta_i)^2}{\sum_i \beta_i^2}

    It equals ``n`` for uniform weights and 1 when one row carries all the weight; the variance of
    a weighted mean is roughly that of an unweighted mean over ESS rows (Kish, 1965).

    Examples
    --------
    >>> effective_sample_size([1.0, 1.0, 1.0, 1.0])
    4.0
    >>> effective_sample_size([1.0, 0.0, 0.0, 0.0])
    1.0
    """
    w = check_weights(weights, name="weights")
    denom = float(np.sum(w * w))
    if denom <= 0.0:
        return 0.0
    return float(np.sum(w) ** 2 / denom)


def _positive_grid(values: Any, *, name: str) -> FloatArray:
    """A grid of candidate bandwidths or penalties: positive finite numbers."""
    try:
        grid = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(
            f"{name} must be a list of positive numbers, got {values!r}; pass e.g. [0.1, 1.0]"
        ) from err
    if grid.size == 0 or np.any(~np.isfinite(grid)) or np.any(grid <= 0):
        raise InvalidParameterError(
            f"{name} must be positive finite numbers, got {values!r}; pass e.g. [0.1, 1.0]"
        )
    return grid


@dataclass(frozen=True, slots=True)
class ImportanceWeightsResult(ResultMixin):
    """Summary of fitted importance weights (what reports and the command line show).

    Attributes
    ----------
    method : str
        Estimator used.
    n_source, n_target : int
        Rows in the two samples.
    effective_sample_size : float
        :math:`(\\sum\\beta)^2 / \\sum\\beta^2` of the source weights.
    ess_ratio : float
        ``effective_sample_size / n_source``.
    domain_auc : float
        How well source and target rows are told apart (0.5: identical; 1: disjoint).
    weight_quantiles : dict
        Quantiles of the source weights (``min``, ``q01`` ... ``max``).
    low_overlap : bool
        The supports barely overlap: weighting cannot correct this shift.
    clip : float or None
        Upper clip applied to the weights.
    normalized : bool
        Whether the weights were rescaled to mean 1 over the source rows.
    weights : ndarray
        The weights of the fitted source rows.
    """

    method: str
    n_source: int
    n_target: int
    effective_sample_size: float
    ess_ratio: float
    domain_auc: float
    weight_quantiles: dict[str, float]
    low_overlap: bool
    clip: float | None
    normalized: bool
    weights: FloatArray = field(repr=False)


def _auc(source_scores: FloatArray, target_scores: FloatArray) -> float:
    """Probability that a target row scores above a source row (ties count half)."""
    from scipy.stats import rankdata

    scores = np.concatenate([source_scores, target_scores])
    ranks = rankdata(scores)
    n_s, n_t = source_scores.size, target_scores.size
    r_t = float(np.sum(ranks[n_s:]))
    return (r_t - n_t * (n_t + 1) / 2.0) / (n_s * n_t)


class ImportanceWeighter:
    r"""Estimate importance weights :math:`\beta(x) = p_\text{target}(x) / p_\text{source}(x)`.

    Parameters
    ----------
    method : {"classifier", "ulsif", "kliep", "kmm"}
        ``"classifier"`` (default): a probabilistic classifier tells source (0) from target (1);
        with cross-fitting and Platt-calibrated probabilities,

        .. math:: \hat\beta(x) = \frac{n_s}{n_t}\,\frac{P(\text{target}\mid x)}
                                 {P(\text{source}\mid x)} .

        ``"ulsif"``: unconstrained least-squares importance fitting, a Gaussian-kernel model
        :math:`\beta(x) = \sum_l \alpha_l k(x, c_l)` fitted in closed form,
        :math:`\alpha = \max(0, (\hat H + \lambda I)^{-1} \hat h)`, with bandwidth and
        :math:`\lambda` chosen by the analytic leave-one-out score (Kanamori et al., 2009).
        ``"kliep"``: the same kernel model maximising :math:`\sum_j \log\beta(x^t_j)` subject to
        :math:`\frac{1}{n_s}\sum_i \beta(x^s_i) = 1`, :math:`\alpha \ge 0`, with bandwidth by
        likelihood cross-validation on the target (Sugiyama et al., 2008).
        ``"kmm"``: kernel mean matching (Huang et al., 2007) solves
        :math:`\min_\beta \lVert \frac{1}{n_s}\sum_i \beta_i \phi(x^s_i) -
        \frac{1}{n_t}\sum_j \phi(x^t_j) \rVert^2` over :math:`0 \le \beta_i \le B`,
        :math:`|\sum_i\beta_i - n_s| \le n_s\epsilon`. KMM is *moment matching*: its weights
        make the weighted source look like the target in the kernel's feature space, but the
        individual weights are not density ratios, and they exist only for the fitted source
        rows (``weights(X)`` accepts only those).
    clip : float, optional
        Upper bound applied to the weights (before normalization). Clipping trades bias for
        variance; the overlap diagnosis always uses the unclipped weights.
    normalize : bool
        Rescale the weights so that they average 1 over the fitted source rows (the
        self-normalized estimator). The same factor is applied in :meth:`weights`.
    random_state : int, Generator or None
        Seed for fold assignment, kernel centers and subsampling.
    classifier : {"logistic", "quadratic"} or estimator
        For ``method="classifier"``: logistic regression on standardized features, the same on
        features and their squares (enough to model a change of variance), or any scikit-learn
        classifier with ``predict_proba`` (cloned for every fold).
    n_splits : int
        Folds for cross-fitting (classifier) and likelihood cross-validation (KLIEP).
    calibrate : bool
        Platt-calibrate the cross-fitted domain probabilities (classifier method).
    n_centers : int
        Kernel centers drawn from the target (uLSIF, KLIEP).
    sigmas : sequence of float, optional
        Candidate kernel bandwidths (in standardized units). Default: the median pairwise
        distance times (0.25, 0.5, 1, 2); KMM uses the median distance.
    lambdas : sequence of float, optional
        Candidate uLSIF regularization strengths. Default ``(1e-3, 1e-2, 1e-1, 1)``.
    kmm_bound : float
        KMM's upper bound :math:`B` on each weight.
    kmm_eps : float, optional
        KMM's slack on :math:`\sum\beta`; default :math:`(\sqrt{n_s}-1)/\sqrt{n_s}`
        (Huang et al., 2007).
    max_iter : int
        Iterations for KLIEP's and KMM's solvers.
    min_ess_ratio : float
        ``low_overlap_`` is set when ESS / n_source of the unclipped weights falls below this.
    max_domain_auc : float
        ``low_overlap_`` is also set when the domain AUC exceeds this.
    warn : bool
        Emit :class:`~nndoctor.exceptions.LowOverlapWarning` when ``low_overlap_`` is set.

    Attributes
    ----------
    weights_ : ndarray of shape (n_source,)
        Weights of the fitted source rows (cross-fitted for the classifier method).
    effective_sample_size_ : float
        :math:`(\sum\beta)^2 / \sum\beta^2` of ``weights_``.
    ess_ratio_ : float
        ``effective_sample_size_ / n_source``.
    raw_ess_ratio_ : float
        The same for the unclipped weights (what the overlap flag uses).
    domain_auc_ : float
        AUC of telling target from source by the estimated ratio (out-of-fold for the
        classifier; NaN for KMM, which has no ratio for target rows).
    weight_quantiles_ : dict
        Quantiles of ``weights_``.
    low_overlap_ : bool
        Whether the supports barely overlap.
    sigma_, lambda_ : float
        Selected bandwidth and regularization (kernel methods).
    n_source_, n_target_ : int
        Sample sizes.

    References
    ----------
    Shimodaira (2000), "Improving predictive inference under covariate shift by weighting the
    log-likelihood function". Bickel, Brückner & Scheffer (2009), "Discriminative learning under
    covariate shift". Kanamori, Hido & Sugiyama (2009), "A least-squares approach to direct
    importance estimation", JMLR 10. Sugiyama et al. (2008), "Direct importance estimation for
    covariate shift adaptation", AISM 60. Huang et al. (2007), "Correcting sample selection bias
    by unlabeled data", NeurIPS. Kish (1965), *Survey Sampling*.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Xs, Xt = rng.normal(0, 1, (600, 1)), rng.normal(0.5, 1, (300, 1))
    >>> iw = ImportanceWeighter(random_state=0).fit(Xs, Xt)
    >>> true = np.exp(0.5 * Xs[:, 0] - 0.125)
    >>> bool(np.corrcoef(iw.weights_, true)[0, 1] > 0.95), iw.low_overlap_
    (True, False)
    >>> round(iw.ess_ratio_, 1)
    0.8
    """

    def __init__(
        self,
        method: Method = "classifier",
        *,
        clip: float | None = None,
        normalize: bool = True,
        random_state: Any = None,
        classifier: Any = "logistic",
        n_splits: int = 5,
        calibrate: bool = True,
        n_centers: int = 100,
        sigmas: Any = None,
        lambdas: Any = None,
        kmm_bound: float = 1000.0,
        kmm_eps: float | None = None,
        max_iter: int = 500,
        min_ess_ratio: float = 0.1,
        max_domain_auc: float = 0.95,
        warn: bool = True,
    ) -> None:
        self.method = method
        self.clip = clip
        self.normalize = normalize
        self.random_state = random_state
        self.classifier = classifier
        self.n_splits = n_splits
        self.calibrate = calibrate
        self.n_centers = n_centers
        self.sigmas = sigmas
        self.lambdas = lambdas
        self.kmm_bound = kmm_bound
        self.kmm_eps = kmm_eps
        self.max_iter = max_iter
        self.min_ess_ratio = min_ess_ratio
        self.max_domain_auc = max_domain_auc
        self.warn = warn

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        check_choice(self.method, _METHODS, name="method")
        if self.clip is not None and (
            isinstance(self.clip, bool)
            or not isinstance(self.clip, int | float | np.floating)
            or not self.clip > 0
        ):
            raise InvalidParameterError(
                f"clip must be None or a positive number, got {self.clip!r}"
            )
        check_int(self.n_splits, name="n_splits", minimum=2)
        check_int(self.n_centers, name="n_centers", minimum=1)
        check_int(self.max_iter, name="max_iter", minimum=1)
        check_unit_interval(self.min_ess_ratio, name="min_ess_ratio")
        check_unit_interval(self.max_domain_auc, name="max_domain_auc", open_=False)
        if isinstance(self.classifier, str):
            check_choice(self.classifier, _CLASSIFIERS, name="classifier")
        elif not hasattr(self.classifier, "fit") or not hasattr(self.classifier, "predict_proba"):
            raise InvalidParameterError(
                f"classifier must be 'logistic', 'quadratic' or an estimator with fit and "
                f"predict_proba, got {type(self.classifier).__name__}"
            )
        if not self.kmm_bound > 1:
            raise InvalidParameterError(f"kmm_bound must be > 1, got {self.kmm_bound!r}")

    def fit(
        self, X_source: Any, X_target: Any, *, names: tuple[str, str] | None = None
    ) -> ImportanceWeighter:
        """Estimate the ratio from an unlabeled source sample and an unlabeled target sample.

        Parameters
        ----------
        X_source : array-like of shape (n_source, n_features)
            Source (training-distribution) rows; these get the weights ``weights_``.
        X_target : array-like of shape (n_target, n_features)
            Target (deployment) rows.
        names : (str, str), optional
            What error messages call the two samples (default ``"X_source"`` and
            ``"X_target"``); the command line passes ``("the source table (src.csv)",
            "the target table (tgt.csv)")``.

        Returns
        -------
        self
        """
        self._check_params()
        a, b = display_names(names, ("X_source", "X_target"))
        Xs = check_matrix(X_source, name=a, min_rows=2 * self.n_splits)
        Xt = check_matrix(X_target, name=b, min_rows=2 * self.n_splits)
        check_same_features(Xs, Xt, names=(a, b))
        rng = check_random_state(self.random_state)
        # the rows in an order fixed by their content: the folds, centers and subsamples drawn
        # from random_state hold the same rows however the tables were ordered
        order_s = canonical_order(Xs)
        Xs, Xt = Xs[order_s], Xt[canonical_order(Xt)]
        self.n_source_, self.n_target_ = Xs.shape[0], Xt.shape[0]
        self.n_features_in_ = Xs.shape[1]
        # standardize with the pooled statistics: kernels and logistic penalties see unit scale
        pooled = np.vstack([Xs, Xt])
        self._mean = pooled.mean(axis=0)
        std = pooled.std(axis=0)
        self._scale = np.where(std > 0, std, 1.0)
        Zs, Zt = self._standardize(Xs), self._standardize(Xt)
        self._Zs_fit = Zs
        self.sigma_ = float("nan")
        self.lambda_ = float("nan")
        if self.method == "classifier":
            raw, target_raw = self._fit_classifier(Zs, Zt, rng)
        elif self.method == "ulsif":
            raw, target_raw = self._fit_ulsif(Zs, Zt, rng)
        elif self.method == "kliep":
            raw, target_raw = self._fit_kliep(Zs, Zt, rng)
        else:
            raw, target_raw = self._fit_kmm(Zs, Zt, rng), None
        back = inverse_order(order_s)  # weights_ row i is X_source's row i
        self._finish(raw, target_raw, back)
        self._Zs_fit = Zs[back]
        return self

    def _standardize(self, X: npt.NDArray[np.floating[Any]]) -> FloatArray:
        return np.asarray((X - self._mean) / self._scale, dtype=np.float64)

    def _finish(
        self, raw: FloatArray, target_raw: FloatArray | None, back: npt.NDArray[np.intp]
    ) -> None:
        """The weights and their diagnostics (computed in the rows' canonical order, so that
        they do not depend on the input's; ``back`` puts ``weights_`` in the input's order)."""
        raw = np.maximum(raw, 0.0)
        self.raw_ess_ratio_ = effective_sample_size(raw) / raw.size
        if self.method == "classifier":
            pass  # domain_auc_ set from the out-of-fold probabilities
        elif target_raw is not None:
            self.domain_auc_ = _auc(raw, target_raw)
        else:
            self.domain_auc_ = float("nan")
        w = raw if self.clip is None else np.minimum(raw, float(self.clip))
        mean = float(np.mean(w))
        self._norm = 1.0 / mean if (self.normalize and mean > 0) else 1.0
        weights = w * self._norm
        self.weights_ = weights[back]
        self.effective_sample_size_ = effective_sample_size(weights)
        self.ess_ratio_ = self.effective_sample_size_ / weights.size
        self.weight_quantiles_ = {k: float(np.quantile(weights, q)) for k, q in _QUANTILES.items()}
        auc_bad = bool(np.isfinite(self.domain_auc_) and self.domain_auc_ > self.max_domain_auc)
        self.low_overlap_ = bool(self.raw_ess_ratio_ < self.min_ess_ratio or auc_bad)
        if self.low_overlap_ and self.warn:
            warnings.warn(
                f"source and target barely overlap (ESS/n = {self.raw_ess_ratio_:.3g}, "
                f"domain AUC = {self.domain_auc_:.3g}): a few source rows carry most of the "
                "weight, and no weighting can correct a shift into regions the source never "
                "covered; collect labeled data from the target or narrow the target population",
                LowOverlapWarning,
                stacklevel=3,
            )

    # classifier ---------------------------------------------------------------
    def _make_classifier(self) -> Any:
        from sklearn.base import clone
        from sklearn.linear_model import LogisticRegression

        if isinstance(self.classifier, str):
            return LogisticRegression(C=1.0, max_iter=2000)
        return clone(self.classifier)

    def _features(self, Z: FloatArray) -> FloatArray:
        if isinstance(self.classifier, str) and self.classifier == "quadratic":
            return np.hstack([Z, Z * Z - 1.0])
        return Z

    def _fit_classifier(
        self, Zs: FloatArray, Zt: FloatArray, rng: np.random.Generator
    ) -> tuple[FloatArray, FloatArray]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold

        F = self._features(np.vstack([Zs, Zt]))
        d = np.r_[np.zeros(Zs.shape[0], dtype=np.int64), np.ones(Zt.shape[0], dtype=np.int64)]
        seed = int(rng.integers(2**31 - 1))
        folds = StratifiedKFold(n_splits=self.n_splits, shuffle=True, random_state=seed)
        oof = np.empty(d.size)
        self._models: list[Any] = []
        for train, test in folds.split(F, d):
            model = self._make_classifier()
            model.fit(F[train], d[train])
            oof[test] = self._target_proba(model, F[test])
            self._models.append(model)
        p = np.clip(oof, _PROB_FLOOR, 1 - _PROB_FLOOR)
        logit = np.log(p / (1 - p))
        self._platt: Any = None
        if self.calibrate:
            self._platt = LogisticRegression(C=1e4, max_iter=1000).fit(logit[:, None], d)
            p = self._platt.predict_proba(logit[:, None])[:, 1]
            p = np.clip(p, _PROB_FLOOR, 1 - _PROB_FLOOR)
        self.domain_auc_ = _auc(p[: Zs.shape[0]], p[Zs.shape[0] :])
        ratio = Zs.shape[0] / Zt.shape[0]
        odds = p / (1 - p)
        return ratio * odds[: Zs.shape[0]], ratio * odds[Zs.shape[0] :]

    @staticmethod
    def _target_proba(model: Any, F: FloatArray) -> FloatArray:
        classes = list(model.classes_)
        return np.asarray(model.predict_proba(F)[:, classes.index(1)], dtype=np.float64)

    def _classifier_raw(self, Z: FloatArray) -> FloatArray:
        F = self._features(Z)
        # average the fold models on the logit scale, then calibrate as in fit
        logits = []
        for model in self._models:
            p = np.clip(self._target_proba(model, F), _PROB_FLOOR, 1 - _PROB_FLOOR)
            logits.append(np.log(p / (1 - p)))
        logit = np.mean(logits, axis=0)
        if self._platt is not None:
            p = self._platt.predict_proba(logit[:, None])[:, 1]
        else:
            p = 1.0 / (1.0 + np.exp(-logit))
        p = np.clip(p, _PROB_FLOOR, 1 - _PROB_FLOOR)
        return np.asarray((self.n_source_ / self.n_target_) * p / (1 - p), dtype=np.float64)

    # kernel models ------------------------------------------------------------
    def _sigma_grid(self, Zs: FloatArray, Zt: FloatArray, rng: np.random.Generator) -> FloatArray:
        if self.sigmas is not None:
            return _positive_grid(self.sigmas, name="sigmas")
        med = median_bandwidth(np.vstack([Zs, Zt]), rng)
        return med * np.array([0.25, 0.5, 1.0, 2.0])

    def _centers(self, Zt: FloatArray, rng: np.random.Generator) -> npt.NDArray[np.int64]:
        b = min(self.n_centers, Zt.shape[0])
        return np.sort(rng.choice(Zt.shape[0], size=b, replace=False)).astype(np.int64)

    def _fit_ulsif(
        self, Zs: FloatArray, Zt: FloatArray, rng: np.random.Generator
    ) -> tuple[FloatArray, FloatArray]:
        lambdas = _positive_grid(
            self.lambdas if self.lambdas is not None else (1e-3, 1e-2, 1e-1, 1.0), name="lambdas"
        )
        centers = Zt[self._centers(Zt, rng)]
        b = centers.shape[0]
        n_de, n_nu = Zs.shape[0], Zt.shape[0]
        n_min = min(n_de, n_nu)
        # leave-one-out pairs row i of the source with row i of the target: shuffle both
        perm_de, perm_nu = rng.permutation(n_de), rng.permutation(n_nu)
        best = (np.inf, 0.0, 0.0)
        for sigma in self._sigma_grid(Zs, Zt, rng):
            K_de = gaussian_kernel(centers, Zs[perm_de], sigma)  # b x n_de
            K_nu = gaussian_kernel(centers, Zt[perm_nu], sigma)  # b x n_nu
            H = K_de @ K_de.T / n_de
            h = K_nu.mean(axis=1)
            Kd, Kn = K_de[:, :n_min], K_nu[:, :n_min]
            for lam in lambdas:
                B = H + np.eye(b) * lam * (n_de - 1) / n_de
                Binv_Kd = np.linalg.solve(B, Kd)
                Binv_Kn = np.linalg.solve(B, Kn)
                Binv_h = np.linalg.solve(B, h)
                tmp = n_de - np.sum(Kd * Binv_Kd, axis=0)
                B0 = Binv_h[:, None] + Binv_Kd * ((h @ Binv_Kd) / tmp)[None, :]
                B1 = Binv_Kn + Binv_Kd * (np.sum(Kn * Binv_Kd, axis=0) / tmp)[None, :]
                B2 = np.maximum(0.0, (n_de - 1) * (n_nu * B0 - B1) / (n_de * (n_nu - 1)))
                r_de = np.sum(Kd * B2, axis=0)
                r_nu = np.sum(Kn * B2, axis=0)
                score = float(np.mean(r_de**2) / 2 - np.mean(r_nu))
                if score < best[0]:
                    best = (score, float(sigma), float(lam))
        _, self.sigma_, self.lambda_ = best
        K_de = gaussian_kernel(centers, Zs, self.sigma_)
        K_nu = gaussian_kernel(centers, Zt, self.sigma_)
        H = K_de @ K_de.T / n_de
        h = K_nu.mean(axis=1)
        self._alpha = np.maximum(0.0, np.linalg.solve(H + self.lambda_ * np.eye(b), h))
        self._centers_z = centers
        return K_de.T @ self._alpha, K_nu.T @ self._alpha

    @staticmethod
    def _kliep_em(A: FloatArray, bvec: FloatArray, n_iter: int) -> FloatArray:
        """Maximize mean log(A @ alpha) s.t. bvec @ alpha = 1, alpha >= 0.

        With pi = alpha * bvec on the simplex this is a mixture-weight likelihood, which EM
        increases monotonically: pi <- pi * mean_j(M_j / (M_j @ pi)) with M = A / bvec.
        """
        M = A / bvec[None, :]
        pi = np.full(M.shape[1], 1.0 / M.shape[1])
        for _ in range(n_iter):
            mix = M @ pi
            new = pi * (M.T @ (1.0 / np.maximum(mix, 1e-300))) / M.shape[0]
            if np.max(np.abs(new - pi)) < 1e-7:
                pi = new
                break
            pi = new
        return np.asarray(pi / bvec, dtype=np.float64)

    def _fit_kliep(
        self, Zs: FloatArray, Zt: FloatArray, rng: np.random.Generator
    ) -> tuple[FloatArray, FloatArray]:
        idx = self._centers(Zt, rng)
        centers = Zt[idx]
        n_t = Zt.shape[0]
        fold = rng.permutation(n_t) % self.n_splits
        best = (-np.inf, 0.0)
        for sigma in self._sigma_grid(Zs, Zt, rng):
            A = gaussian_kernel(Zt, centers, sigma)  # n_t x b
            bvec = gaussian_kernel(Zs, centers, sigma).mean(axis=0)
            scores = []
            for k in range(self.n_splits):
                keep = fold[idx] != k  # centers drawn from the held-out fold are not used
                train = fold != k
                if not np.any(keep):
                    continue
                alpha = self._kliep_em(A[np.ix_(train, keep)], bvec[keep], self.max_iter)
                held = A[np.ix_(~train, keep)] @ alpha
                scores.append(float(np.mean(np.log(np.maximum(held, 1e-300)))))
            score = float(np.mean(scores))
            if score > best[0]:
                best = (score, float(sigma))
        self.sigma_ = best[1]
        A = gaussian_kernel(Zt, centers, self.sigma_)
        Bs = gaussian_kernel(Zs, centers, self.sigma_)
        self._alpha = self._kliep_em(A, Bs.mean(axis=0), self.max_iter)
        self._centers_z = centers
        return Bs @ self._alpha, A @ self._alpha

    def _fit_kmm(self, Zs: FloatArray, Zt: FloatArray, rng: np.random.Generator) -> FloatArray:
        n_s, n_t = Zs.shape[0], Zt.shape[0]
        if n_s > _KMM_MAX_ROWS:
            raise DataValidationError(
                f"KMM needs an n_source x n_source kernel matrix ({n_s} rows: "
                f"{8 * n_s * n_s / 2**30:.1f} GiB); subsample the source to at most "
                f"{_KMM_MAX_ROWS} rows or use method='classifier'"
            )
        sigma = (
            float(self._sigma_grid(Zs, Zt, rng)[0])
            if self.sigmas is not None
            else median_bandwidth(np.vstack([Zs, Zt]), rng)
        )
        self.sigma_ = sigma
        K = gaussian_kernel(Zs, Zs, sigma)
        kappa = (n_s / n_t) * gaussian_kernel(Zs, Zt, sigma).sum(axis=1)
        root = float(np.sqrt(n_s))
        eps = (
            check_number(self.kmm_eps, name="kmm_eps", minimum=0.0, maximum=1.0)
            if self.kmm_eps is not None
            else (root - 1.0) / root
        )
        lo, hi = n_s * (1.0 - eps), n_s * (1.0 + eps)
        bound = float(self.kmm_bound)
        # Lipschitz constant of the gradient K @ beta - kappa: the top eigenvalue of K
        v = np.asarray(rng.normal(size=n_s), dtype=np.float64)
        for _ in range(30):
            v = np.asarray(K @ v, dtype=np.float64)
            v = v / float(np.linalg.norm(v))
        step = 1.0 / (float(v @ K @ v) * 1.01)
        beta = _project_box_slab(np.ones(n_s), bound, lo, hi)
        y, t = beta.copy(), 1.0
        for _ in range(self.max_iter):  # FISTA (accelerated projected gradient)
            new = _project_box_slab(y - step * (K @ y - kappa), bound, lo, hi)
            t_new = (1.0 + float(np.sqrt(1.0 + 4.0 * t * t))) / 2.0
            y = new + ((t - 1.0) / t_new) * (new - beta)
            if np.max(np.abs(new - beta)) < 1e-7 * max(1.0, float(np.max(new))):
                beta = new
                break
            beta, t = new, t_new
        return beta

    # ------------------------------------------------------------------ using
    def _check_fitted(self) -> None:
        check_fitted(self, "weights_", fit_call="fit(X_source, X_target)")

    def weights(self, X: Any) -> FloatArray:
        r"""The estimated :math:`\beta(x)` for rows ``X`` (same clipping and scale as ``weights_``).

        For the classifier method the fold models are averaged on the logit scale (so rows
        that were in the fit get a slightly different value from their cross-fitted
        ``weights_``). KMM has no ratio function: only the fitted source rows are accepted.

        Parameters
        ----------
        X : array-like of shape (n, n_features)

        Returns
        -------
        ndarray of shape (n,)
        """
        self._check_fitted()
        Xa = check_matrix(X, name="X")
        if Xa.shape[1] != self.n_features_in_:
            raise InvalidParameterError(
                f"X has {Xa.shape[1]} features but the weighter was fitted on "
                f"{self.n_features_in_}; pass the same columns"
            )
        Z = self._standardize(Xa)
        if self.method == "kmm":
            if Z.shape == self._Zs_fit.shape and np.allclose(Z, self._Zs_fit):
                return np.asarray(self.weights_.copy(), dtype=np.float64)
            raise InvalidParameterError(
                "KMM gives weights only for the fitted source rows (it matches moments, it does "
                "not estimate a ratio function); use weights_ or another method"
            )
        if self.method == "classifier":
            raw = self._classifier_raw(Z)
        else:
            raw = gaussian_kernel(Z, self._centers_z, self.sigma_) @ self._alpha
        raw = np.maximum(raw, 0.0)
        if self.clip is not None:
            raw = np.minimum(raw, float(self.clip))
        return np.asarray(raw * self._norm, dtype=np.float64)

    def summary(self) -> ImportanceWeightsResult:
        """The fitted diagnostics as a result object (for reports, JSON and the CLI)."""
        self._check_fitted()
        return ImportanceWeightsResult(
            method=str(self.method),
            n_source=int(self.n_source_),
            n_target=int(self.n_target_),
            effective_sample_size=float(self.effective_sample_size_),
            ess_ratio=float(self.ess_ratio_),
            domain_auc=float(self.domain_auc_),
            weight_quantiles=dict(self.weight_quantiles_),
            low_overlap=bool(self.low_overlap_),
            clip=None if self.clip is None else float(self.clip),
            normalized=bool(self.normalize),
            weights=self.weights_.copy(),
        )

    def __repr__(self) -> str:
        return f"ImportanceWeighter(method={self.method!r})"


def _project_box_slab(v: FloatArray, upper: float, lo: float, hi: float) -> FloatArray:
    """Euclidean projection onto {0 <= x <= upper, lo <= sum(x) <= hi} (shift-and-clip)."""
    x = np.clip(v, 0.0, upper)
    s = float(x.sum())
    if lo <= s <= hi:
        return x
    target = lo if s < lo else hi
    # sum(clip(v - tau)) is non-increasing in tau: bisect for the tau that hits the target
    a, b = float(np.min(v) - upper), float(np.max(v))
    for _ in range(100):
        mid = (a + b) / 2
        if np.clip(v - mid, 0.0, upper).sum() > target:
            a = mid
        else:
            b = mid
    return np.clip(v - (a + b) / 2, 0.0, upper)
