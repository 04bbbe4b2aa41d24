"""A reusable detector: fit on the reference once, test many batches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

import numpy as np
import torch

from nndoctor._validation import (
    check_choice,
    check_fitted,
    check_probabilities,
    check_random_state,
)
from nndoctor.exceptions import DataValidationError, InvalidParameterError
from nndoctor.shift._bbsd import BBSDResult, bbsd_test
from nndoctor.shift._classifier_test import ClassifierTestResult, classifier_test
from nndoctor.shift._common import (
    TwoSampleResult,
    as_float_tensors,
    as_frame,
    canonical_order,
    check_alpha,
    model_softmax,
    warn_small,
)
from nndoctor.shift._engines import dask_impl, is_dask
from nndoctor.shift._mmd import (
    DEFAULT_BLOCK_BYTES,
    LINEAR_TIME_THRESHOLD,
    _chunked_permutation_statistics,
    _kernel_from_sqdist,
    _nan_result,
    _permutation_result,
    _resolve_bandwidth,
    _sqdist,
    check_permutations,
    mmd_test,
)
from nndoctor.shift._rff import DEFAULT_FEATURES
from nndoctor.shift._univariate import FeatureTestResult, chi2_test, feature_test, ks_test

__all__ = ["ShiftDetector"]

DetectorMethod = Literal["mmd", "ks", "chi2", "features", "c2st", "bbsd"]
_METHODS = tuple(sorted(get_args(DetectorMethod)))
#: Largest reference (rows) whose kernel matrix the MMD detector keeps (about 200 MB).
CACHE_MAX_ROWS = 5_000


class ShiftDetector:
    """Fit on reference data once; test any number of batches against it.

    ``method`` picks the test: ``"mmd"`` (:func:`mmd_test`; the reference's bandwidth, column
    scales and, up to 5,000 rows, its kernel matrix are computed once in ``fit``), ``"ks"``,
    ``"chi2"``, ``"features"`` (:func:`feature_test`), ``"c2st"`` (:func:`classifier_test`) or
    ``"bbsd"`` (:func:`bbsd_test`; ``fit`` and ``test`` take class probabilities, or inputs
    when ``options={"model": m}`` keeps a network or a classifier with ``predict_proba`` whose
    outputs are tested). Reference
    data go to :meth:`fit`, never to the constructor.

    Dask collections (``dask.dataframe.DataFrame``, ``dask.array.Array``) may be the
    reference, the batches or both: a Dask reference stays lazy (``fit`` computes its row count
    only), and each test runs on the Dask engine of its function: the merged per-feature
    statistics, the classifier test on a random sample of each table, for ``"bbsd"`` the
    predicted-class counts and per-class sketches (the kept model runs on the partitions), and
    for ``"mmd"`` the random-feature test (``method="rff"``, ``options["n_features"]``) with
    the bandwidth fixed at ``fit`` (for a Dask reference, from a sample of about 1,000 rows).

    .. math:: \\text{drift} \\iff p(\\text{reference}, \\text{batch}) \\le \\alpha

    Parameters
    ----------
    method : {"mmd", "ks", "chi2", "features", "c2st", "bbsd"}
    alpha : float
        Level of each test's ``drift_detected``.
    options : dict, optional
        Keyword arguments passed to the test function (e.g. ``{"n_permutations": 500}``, or
        ``{"missing": "drop"}`` for how the per-feature tests treat missing values).
    random_state : None, int or numpy Generator
        Seeds the tests; successive calls of :meth:`test` draw from one generator.

    Attributes
    ----------
    n_reference_ : int
        Rows in the reference.
    bandwidth_ : float
        (``method="mmd"``) The kernel bandwidth fixed at ``fit`` (the median heuristic on the
        reference, as alibi-detect does).

    References
    ----------
    Rabanser, S., Günnemann, S., Lipton, Z. (2019). Failing loudly. NeurIPS.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> det = ShiftDetector("mmd", options={"n_permutations": 200}, random_state=0)
    >>> det = det.fit(rng.normal(size=(200, 5)))
    >>> det.test(rng.normal(size=(100, 5))).drift_detected
    False
    >>> det.test(rng.normal(size=(100, 5)) + 0.7).drift_detected
    True
    """

    def __init__(
        self,
        method: DetectorMethod = "mmd",
        *,
        alpha: float = 0.05,
        options: Mapping[str, Any] | None = None,
        random_state: Any = None,
    ) -> None:
        self.method = method
        self.alpha = alpha
        self.options = options
        self.random_state = random_state

    def fit(self, X_ref: Any) -> ShiftDetector:
        """Store the reference (and precompute what the test reuses); returns ``self``."""
        check_choice(self.method, _METHODS, name="method")
        check_alpha(self.alpha)
        self._rng = check_random_state(self.random_state)
        if self.options is not None and not isinstance(self.options, Mapping):
            raise InvalidParameterError(
                f"options must be a mapping of keyword arguments, got "
                f"{type(self.options).__name__}; pass e.g. options={{'n_permutations': 500}}"
            )
        self._opts = dict(self.options or {})
        for key in ("alpha", "random_state"):
            if key in self._opts:
                raise InvalidParameterError(
                    f"options must not contain {key!r}; pass it to ShiftDetector itself"
                )
        if self.method == "bbsd":
            self._model = self._opts.pop("model", None)
            self._raw_ref = X_ref  # what a Dask batch is tested against (the model runs there)
            if is_dask(X_ref):  # kept lazy: bbsd_test runs the model per partition
                return self._fit_dask(X_ref)
            self._ref: Any = check_probabilities(self._outputs(X_ref), name="X_ref")
            self.n_reference_ = int(self._ref.shape[0])
            return self
        if self.method != "mmd":
            if is_dask(X_ref):  # kept lazy: each test hands it to the Dask engine
                return self._fit_dask(X_ref)
            if isinstance(X_ref, torch.Tensor):
                X_ref = X_ref.detach().cpu().numpy()
            frame = as_frame(X_ref, "X_ref")  # a 2-D table (the test itself checks the values)
            self._ref = X_ref
            self.n_reference_ = int(frame.shape[0])
            if self.n_reference_ == 0 or frame.shape[1] == 0:
                raise DataValidationError(
                    f"X_ref has shape {frame.shape}; pass at least 1 row and 1 column"
                )
            return self
        allowed = {
            "kernel", "bandwidth", "n_permutations", "standardize", "max_block_bytes", "n_features"
        }  # fmt: skip
        unknown = sorted(set(self._opts) - allowed)
        if unknown:
            raise InvalidParameterError(
                f"option(s) {unknown} are not supported by the MMD detector; choose from "
                f"{sorted(allowed)}"
            )
        standardize = self._opts.get("standardize", False)
        self._kernel = check_choice(
            self._opts.get("kernel", "rbf"), ("laplacian", "rbf"), name="kernel"
        )
        self._raw_ref = X_ref  # what a Dask batch is tested against (the random-feature test)
        if is_dask(X_ref):
            self.bandwidth_, self._bw_rule = dask_impl("mmd_reference_bandwidth")(
                X_ref, self._opts.get("bandwidth", "median"), bool(standardize), self._rng
            )
            return self._fit_dask(X_ref)
        x, _ = as_float_tensors(X_ref, X_ref, names=("X_ref", "X_ref"))
        # the rows in an order fixed by their content: the bandwidth's subsample, the sums and
        # the permutations (drawn from random_state by position) do not depend on their order
        x = x[torch.from_numpy(canonical_order(x)).to(x.device)]
        self._center = x.mean(0, keepdim=True)
        x = x - self._center
        self._scale = torch.ones_like(self._center)
        if standardize:
            sd = x.std(0, keepdim=True)
            self._scale = torch.where(sd > 0, sd, torch.ones_like(sd))
            x = x / self._scale
        self._ref = x
        self.bandwidth_, self._bw_rule = _resolve_bandwidth(
            self._opts.get("bandwidth", "median"), x, self._rng
        )
        self.n_reference_ = int(x.shape[0])
        self._kxx: torch.Tensor | None = None
        if self.n_reference_ <= CACHE_MAX_ROWS:
            k = _kernel_from_sqdist(_sqdist(x, x), self._kernel, self.bandwidth_)
            self._kxx = k.fill_diagonal_(0.0)
        return self

    def _fit_dask(self, X_ref: Any) -> ShiftDetector:
        """Keep a Dask reference lazy; only its row count is computed."""
        self._ref = X_ref
        self.n_reference_ = int(dask_impl("count_rows")(X_ref, "X_ref"))
        if self.n_reference_ == 0:
            raise DataValidationError("X_ref has 0 rows; pass at least 1 row")
        return self

    def _outputs(self, X: Any) -> Any:
        """Class probabilities: ``X`` itself, or the kept model's outputs on ``X``."""
        model = self._model
        if model is None:
            return X
        if isinstance(model, torch.nn.Module):
            arr = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
            return model_softmax(model, np.asarray(arr, dtype=np.float64))
        if hasattr(model, "predict_proba"):
            return model.predict_proba(X)
        raise InvalidParameterError(
            f"options['model'] must be a torch.nn.Module or have predict_proba, got "
            f"{type(model).__name__}"
        )

    def _check_fitted(self) -> None:
        check_fitted(self, "n_reference_", fit_call="fit(X_ref) with the reference")

    def test(
        self, X: Any
    ) -> TwoSampleResult | FeatureTestResult | ClassifierTestResult | BBSDResult:
        """Test one batch against the reference (H0: same distribution)."""
        self._check_fitted()
        alpha = float(self.alpha)
        if self.method == "bbsd":
            if is_dask(self._raw_ref) or is_dask(X):  # counts and sketches per partition
                return bbsd_test(self._raw_ref, X, model=self._model, alpha=alpha, **self._opts)
            return bbsd_test(self._ref, self._outputs(X), alpha=alpha, **self._opts)
        if self.method == "ks":
            return ks_test(self._ref, X, alpha=alpha, random_state=self._rng, **self._opts)
        if self.method == "chi2":
            return chi2_test(self._ref, X, alpha=alpha, random_state=self._rng, **self._opts)
        if self.method == "features":
            return feature_test(self._ref, X, alpha=alpha, random_state=self._rng, **self._opts)
        if self.method == "c2st":
            return classifier_test(self._ref, X, alpha=alpha, random_state=self._rng, **self._opts)
        return self._test_mmd(X, alpha)

    def _test_mmd(self, X: Any, alpha: float) -> TwoSampleResult:
        if is_dask(self._raw_ref) or is_dask(X):  # the mergeable random-feature test
            kernel: Literal["rbf", "laplacian"] = "rbf" if self._kernel == "rbf" else "laplacian"
            return mmd_test(self._raw_ref, X, kernel=kernel,
                            bandwidth=self.bandwidth_, method="rff", alpha=alpha,
                            standardize=bool(self._opts.get("standardize", False)),
                            n_features=self._opts.get("n_features", DEFAULT_FEATURES),
                            random_state=self._rng, names=("X_ref", "X"))  # fmt: skip
        ref = self._ref
        _, y = as_float_tensors(ref, X, names=("X_ref", "X"))
        y = y[torch.from_numpy(canonical_order(y)).to(y.device)]  # as the reference (see fit)
        y = ((y.to(ref.device) - self._center) / self._scale).to(ref.device)
        m, n = ref.shape[0], y.shape[0]
        B = check_permutations(self._opts.get("n_permutations", 1000))
        if min(m, n) < 2:
            warn_small(
                f"the MMD needs at least 2 rows per sample, got {m} and {n}; the result is NaN"
            )
            return _nan_result("mmd-permutation", m, n, alpha, B)
        if m + n > LINEAR_TIME_THRESHOLD:
            return mmd_test(
                ref,
                y,
                bandwidth=self.bandwidth_,
                kernel="rbf" if self._kernel == "rbf" else "laplacian",
                method="block",
                alpha=alpha,
                random_state=self._rng,
            )
        z = torch.cat((ref, y), 0)
        values = _chunked_permutation_statistics(
            z,
            m,
            B,
            self._kernel,
            self.bandwidth_,
            int(self._opts.get("max_block_bytes", DEFAULT_BLOCK_BYTES)),
            self._rng,
            k_xx=self._kxx,
        )
        return _permutation_result(
            values.cpu().numpy(), m, n, alpha, self._kernel, self.bandwidth_, self._bw_rule
        )
