"""Bad input to the public Python API gets a typed error that names what was wrong.

One table of cases: each calls a public function with one bad argument and names the exception
type and the words the message must contain (the offending argument, column or file). Every case
that was a bare NumPy/torch/pandas/sklearn error (or a silent wrong answer) before the input audit
is marked ``# was: ...``. Regression tests that need more than one call follow the table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from nndoctor import _io
from nndoctor._validation import check_random_state
from nndoctor.exceptions import (
    DataValidationError,
    InvalidParameterError,
    NNDoctorError,
    NotFittedError,
)
from nndoctor.report import Section, figure_to_png_base64, new_figure, print_sections, render_html
from nndoctor.scenarios import (
    deep_chain,
    digits_data,
    digits_mlp,
    flu_season,
    symmetric_mlp,
    symmetry_demo,
)
from nndoctor.shift import (
    ImportanceWeighter,
    LabelShiftEstimator,
    ShiftDetector,
    ShiftMonitor,
    WeightedLoss,
    accuracy_gap_test,
    adapt_on_drift,
    adjust_pvalues,
    compare_samples,
    diagnose,
    effective_sample_size,
    estimate_accuracy,
    feature_test,
    mmd_test,
    to_sample_weight,
    weighted_sampler,
)
from nndoctor.stability import (
    Monitor,
    audit_init,
    find_symmetric_units,
    init_,
    lsuv_,
    probe,
    recommend_init,
)
from nndoctor.stability import theory as th

_rng = np.random.default_rng(0)
X = _rng.normal(size=(40, 3))
Y = _rng.normal(size=(40, 3)) + 0.3
DFX = pd.DataFrame(X, columns=["a", "b", "c"])
DFY = pd.DataFrame(Y, columns=["a", "b", "c"])
_z = _rng.normal(size=(60, 3))
P = np.exp(_z) / np.exp(_z).sum(1, keepdims=True)
LABELS = _rng.integers(0, 3, 60)
XIN = torch.randn(16, 4)


def _Clf() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression()


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


class _ForwardFails(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom in forward")


class _TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * mask


def _raise_zero_division(out: Any) -> torch.Tensor:
    raise ZeroDivisionError("in the loss")


Case = tuple[str, Callable[[], object], type[Exception], tuple[str, ...]]

CASES: list[Case] = [
    # --- shared validation -------------------------------------------------------------------
    # was: numpy's "expected non-negative integer" ValueError, in every function taking a seed
    ("random_state<0", lambda: check_random_state(-1), InvalidParameterError, ("random_state",)),
    ("random_state=str", lambda: check_random_state("x"), InvalidParameterError, ("random_state",)),
    ("mmd random_state<0", lambda: mmd_test(X, Y, random_state=-1), InvalidParameterError,
     ("random_state", "-1")),
    # --- shift: two-sample tests --------------------------------------------------------------
    ("mmd Y=3-D", lambda: mmd_test(X, np.zeros((5, 3, 2))), DataValidationError, ("Y", "3 dim")),
    ("mmd columns differ", lambda: mmd_test(DFX, DFY.rename(columns={"c": "d"})),
     DataValidationError, ("different columns", "'c'", "'d'")),  # was: silently accepted
    ("mmd n_permutations=0", lambda: mmd_test(X, Y, n_permutations=0), InvalidParameterError,
     ("n_permutations",)),
    ("mmd block_size=0 (auto)", lambda: mmd_test(X, Y, block_size=0), InvalidParameterError,
     ("block_size",)),  # was: silently ignored when "auto" picked the permutation test
    ("mmd alpha=1.5", lambda: mmd_test(X, Y, alpha=1.5), InvalidParameterError, ("alpha",)),
    # was: pandas "Must pass 2-d input" ValueError
    ("compare source=str", lambda: compare_samples("abc", DFY), DataValidationError, ("source",)),
    ("compare target=3-D", lambda: compare_samples(DFX, np.zeros((5, 3, 2))),
     DataValidationError, ("target", "3 dim")),
    # was: AttributeError 'str' object has no attribute 'eval'
    ("compare model=str", lambda: compare_samples(DFX, DFY, method="bbsd", model="x"),
     InvalidParameterError, ("model", "torch.nn.Module")),
    ("compare label missing", lambda: compare_samples(DFX, DFY, label="zz"),
     InvalidParameterError, ("'zz'",)),
    # --- shift: weights -----------------------------------------------------------------------
    # was: ValueError from float("x"), or a garbage ESS of 0.2 for negative weights
    ("ess text", lambda: effective_sample_size("x"), DataValidationError, ("weights",)),
    ("ess negative", lambda: effective_sample_size([-1.0, 2.0]), DataValidationError,
     ("weights", "negative")),
    ("ess 2-D", lambda: effective_sample_size(np.ones((2, 2))), DataValidationError,
     ("weights", "shape")),
    ("ess NaN", lambda: effective_sample_size([np.nan, 1.0]), DataValidationError,
     ("weights", "NaN")),
    ("kliep sigmas=str", lambda: ImportanceWeighter("kliep", sigmas="x").fit(X, Y),
     InvalidParameterError, ("sigmas",)),
    ("ulsif lambdas=str", lambda: ImportanceWeighter("ulsif", lambdas="x").fit(X, Y),
     InvalidParameterError, ("lambdas",)),
    ("kmm kmm_eps=str", lambda: ImportanceWeighter("kmm", kmm_eps="x").fit(X, Y),
     InvalidParameterError, ("kmm_eps",)),
    ("weighter X_target cols", lambda: ImportanceWeighter().fit(X, Y[:, :2]),
     DataValidationError, ("X_target", "2 features")),
    ("gap source_weights=str",
     lambda: accuracy_gap_test(P, LABELS, P, LABELS, source_weights="x"),
     DataValidationError, ("source_weights",)),
    ("gap source_weights short",
     lambda: accuracy_gap_test(P, LABELS, P, LABELS, source_weights=np.ones(5)),
     DataValidationError, ("source_weights", "5 entries")),
    ("gap source_weights zeros",
     lambda: accuracy_gap_test(P, LABELS, P, LABELS, source_weights=np.zeros(60)),
     DataValidationError, ("source_weights", "zero")),
    ("sample weights text", lambda: to_sample_weight("x"), DataValidationError, ("weights",)),
    ("sampler generator=str", lambda: weighted_sampler(np.ones(3), generator="x"),
     InvalidParameterError, ("generator",)),  # was: accepted, failed later inside torch
    ("loss class_weights text", lambda: WeightedLoss(class_weights="x"), DataValidationError,
     ("class_weights", "per class")),
    ("loss loss=str", lambda: WeightedLoss(loss="x"), InvalidParameterError,  # type: ignore[arg-type]
     ("loss", "callable")),
    # was: torch's IndexError / RuntimeError / ValueError from cross_entropy
    ("loss target out of range",
     lambda: WeightedLoss()(torch.randn(5, 3), torch.tensor([0, 1, 7, 0, 1])),
     DataValidationError, ("target", "out of bounds")),
    ("loss target float", lambda: WeightedLoss()(torch.randn(5, 3), torch.rand(5)),
     DataValidationError, ("target", "torch.float32")),
    ("loss class_weights too short",
     lambda: WeightedLoss(class_weights=[1.0, 2.0])(torch.randn(3, 3), torch.tensor([0, 1, 2])),
     DataValidationError, ("index 2 is out of bounds", "2 classes of class_weights")),
    ("loss input=ndarray", lambda: WeightedLoss()(np.zeros((5, 3)), torch.zeros(5).long()),
     InvalidParameterError, ("input", "torch.Tensor")),
    # --- shift: labels, accuracy --------------------------------------------------------------
    ("label probs negative", lambda: LabelShiftEstimator().fit(-P, LABELS), DataValidationError,
     ("source_probs", "[0, 1]")),
    ("label labels out of range", lambda: LabelShiftEstimator().fit(P, np.full(60, 7)),
     DataValidationError, ("source_labels",)),
    ("accuracy method=[]", lambda: estimate_accuracy(P, LABELS, P, method=[]),
     InvalidParameterError, ("method", "empty")),  # was: an empty result
    ("accuracy label_shift=str", lambda: estimate_accuracy(P, LABELS, P, label_shift="x"),
     InvalidParameterError, ("label_shift",)),  # was: AttributeError
    # --- shift: used before fit (was AttributeError or a bare NNDoctorError) ------------------
    ("weighter before fit", lambda: ImportanceWeighter().weights(X), NotFittedError,
     ("ImportanceWeighter", "fit(")),
    ("label estimator before fit", lambda: LabelShiftEstimator().estimate(P), NotFittedError,
     ("LabelShiftEstimator", "fit(")),
    ("detector before fit", lambda: ShiftDetector().test(X), NotFittedError,
     ("ShiftDetector", "fit(")),
    ("monitor report before fit", lambda: ShiftMonitor().report(), NotFittedError,
     ("ShiftMonitor", "fit(")),
    ("monitor drift_detected before fit", lambda: ShiftMonitor().drift_detected, NotFittedError,
     ("ShiftMonitor",)),
    # --- shift: detectors, monitors, adaptation, diagnosis ------------------------------------
    ("detector ks fit None", lambda: ShiftDetector("ks").fit(None), DataValidationError,
     ("X_ref",)),  # was: TypeError object of type 'NoneType' has no len()
    ("detector options=str", lambda: ShiftDetector(options="x").fit(X), InvalidParameterError,
     ("options",)),
    ("monitor detectors='adwin'", lambda: ShiftMonitor(detectors="adwin").fit(X),
     InvalidParameterError, ("detectors", "'adwin'")),  # was: "detector 'a' is unknown"
    ("adapt estimator=str", lambda: adapt_on_drift("x", (X, LABELS[:40]), []),
     InvalidParameterError, ("estimator",)),  # was: sklearn clone TypeError
    ("adapt reference=(X,)", lambda: adapt_on_drift(_Clf(), (X,), []), InvalidParameterError,
     ("reference", "pair")),  # was: IndexError
    ("adapt batches=None", lambda: adapt_on_drift(_Clf(), (X, LABELS[:40]), None),
     InvalidParameterError, ("batches",)),
    ("adapt batch of 3", lambda: adapt_on_drift(_Clf(), (X, LABELS[:40]), [(1, 2, 3)]),
     InvalidParameterError, ("batch 0", "pair")),  # was: ValueError too many values to unpack
    ("adapt monitor=str", lambda: adapt_on_drift(_Clf(), (X, LABELS[:40]), [], monitor="x"),
     InvalidParameterError, ("monitor",)),
    ("adapt tolerance<0", lambda: adapt_on_drift(_Clf(), (X, LABELS[:40]), [], tolerance=-1.0),
     InvalidParameterError, ("tolerance",)),
    ("diagnose progress=str", lambda: diagnose(X, LABELS[:40], Y, progress="x"),
     InvalidParameterError, ("progress",)),  # was: TypeError 'str' object is not callable
    ("diagnose target_X cols", lambda: diagnose(X, LABELS[:40], Y[:, :2]), DataValidationError,
     ("target", "features")),
    # --- stability ----------------------------------------------------------------------------
    # lsuv_ and find_symmetric_units fed their inputs straight to the model (torch's TypeError /
    # RuntimeError) and let a failing forward pass through; they now check like probe does
    ("lsuv inputs=str", lambda: lsuv_(mlp(), "x"), InvalidParameterError, ("inputs",)),
    ("lsuv inputs=ndarray", lambda: lsuv_(mlp(), np.zeros((16, 4))), InvalidParameterError,
     ("inputs", "torch.Tensor")),
    ("lsuv wrong width", lambda: lsuv_(mlp(), torch.randn(16, 5)), DataValidationError,
     ("forward pass", "4 features", "have 5")),
    ("lsuv forward fails", lambda: lsuv_(_ForwardFails(), XIN), DataValidationError,
     ("forward pass", "boom in forward")),
    ("symmetry empty", lambda: find_symmetric_units(mlp(), torch.zeros(0, 4)),
     DataValidationError, ("inputs", "at least one sample")),  # was: numpy zero-size ValueError
    ("symmetry NaN", lambda: find_symmetric_units(mlp(), torch.full((4, 4), float("nan"))),
     DataValidationError, ("inputs", "NaN")),  # was: LinAlgError SVD did not converge
    ("symmetry int inputs", lambda: find_symmetric_units(mlp(), torch.ones(4, 4, dtype=torch.long)),
     DataValidationError, ("torch.int64", "floating")),
    ("symmetry atol=str", lambda: find_symmetric_units(mlp(), atol="x"), InvalidParameterError,
     ("atol",)),
    ("probe loss_fn=str", lambda: probe(mlp(), XIN, loss_fn="x"), InvalidParameterError,
     ("loss_fn", "callable")),
    ("probe loss_fn raises", lambda: probe(mlp(), XIN, loss_fn=_raise_zero_division),
     InvalidParameterError, ("loss_fn", "ZeroDivisionError")),
    # was: "missing 1 required positional argument: 'mask' ...; pass a batch of the shape ..."
    ("probe forward needs two inputs", lambda: probe(_TwoInputs(), XIN), DataValidationError,
     ("forward needs 2 inputs (x, mask) but is given 1", "wrap it in a module")),
    ("probe no parameters", lambda: probe(nn.Sequential(nn.ReLU()), XIN), DataValidationError,
     ("no parameters",)),
    ("probe model=str", lambda: probe("x", XIN), InvalidParameterError, ("torch.nn.Module",)),
    ("recommend schemes=[]", lambda: recommend_init(mlp(), XIN, schemes=[]),
     InvalidParameterError, ("schemes", "empty")),  # was: IndexError
    ("recommend schemes=str", lambda: recommend_init(mlp(), XIN, schemes="xavier_normal"),
     InvalidParameterError, ("schemes", "['xavier_normal']")),
    ("recommend random_state=str", lambda: recommend_init(mlp(), XIN, random_state="x"),
     InvalidParameterError, ("random_state",)),  # was: torch RuntimeError from manual_seed
    ("init_ constant value=str", lambda: init_(mlp(), "constant", value="x"),
     InvalidParameterError, ("value",)),
    ("init_ scheme unknown", lambda: init_(mlp(), "xavier"), InvalidParameterError,
     ("scheme", "kaiming_normal")),
    ("audit alpha=str", lambda: audit_init(mlp(), alpha="x"), InvalidParameterError, ("alpha",)),
    ("audit random_state<0", lambda: audit_init(mlp(), random_state=-1), InvalidParameterError,
     ("random_state",)),
    ("monitor log_dir=int", lambda: Monitor(mlp(), log_dir=3), InvalidParameterError,
     ("log_dir",)),
    ("monitor quantities=str", lambda: Monitor(mlp(), quantities="grad_norm"),  # type: ignore[arg-type]
     InvalidParameterError, ("quantities", "['grad_norm']")),  # was: "['g', 'r', 'a', ...] unknown"
    ("monitor every=0", lambda: Monitor(mlp(), every=0), InvalidParameterError, ("every",)),
    # --- stability.theory (negative variances returned negative or NaN "moments") -------------
    ("variance_map q=str", lambda: th.variance_map("tanh", "x"), InvalidParameterError, ("q",)),
    ("variance_map q<0", lambda: th.variance_map("tanh", -1.0), InvalidParameterError, ("q",)),
    ("variance_map sigma_w2<0", lambda: th.variance_map("tanh", 1.0, sigma_w2=-1.0),
     InvalidParameterError, ("sigma_w2",)),
    ("chi1 sigma_b2<0", lambda: th.chi1("tanh", 1.0, -1.0), InvalidParameterError,
     ("sigma_b2",)),
    ("chi1 sigma_w2=NaN", lambda: th.chi1("tanh", float("nan")), InvalidParameterError,
     ("sigma_w2", "finite")),
    ("chain depth=2.5", lambda: th.linear_chain_gain(1.0, 2.5), InvalidParameterError,
     ("depth",)),
    ("chain sigma_b2<0", lambda: th.linear_chain_gain(1.0, 3, sigma_b2=-1.0),
     InvalidParameterError, ("sigma_b2",)),  # was: ValueError math domain error
    ("correlation_map c=2", lambda: th.correlation_map("tanh", 2.0, 1.0), InvalidParameterError,
     ("c",)),
    ("fixed_point tol<0", lambda: th.fixed_point("tanh", 1.5, tol=-1.0), InvalidParameterError,
     ("tol",)),
    ("critical sigma_b2=str", lambda: th.critical_sigma_w2("tanh", "x"), InvalidParameterError,
     ("sigma_b2",)),
    ("Activation param=str", lambda: th.Activation("tanh", param="x"), InvalidParameterError,
     ("param",)),
    ("activation unknown", lambda: th.as_activation("foo"), InvalidParameterError,
     ("activation", "tanh")),
    # --- scenarios ----------------------------------------------------------------------------
    ("deep_chain weight=NaN", lambda: deep_chain(3, float("nan")), InvalidParameterError,
     ("weight", "finite")),  # was: a chain of NaN
    ("digits test_size<0", lambda: digits_data(test_size=-0.1), InvalidParameterError,
     ("test_size",)),
    ("digits_mlp seed=str", lambda: digits_mlp(seed="x"), InvalidParameterError, ("seed",)),
    ("symmetric_mlp value=str", lambda: symmetric_mlp(value="x"), InvalidParameterError,
     ("value",)),
    ("symmetry_demo lr<0", lambda: symmetry_demo(lr=-1.0), InvalidParameterError, ("lr",)),
    ("flu prior=str", lambda: flu_season(source_prior="x"), InvalidParameterError,
     ("source_prior",)),
    # --- report -------------------------------------------------------------------------------
    ("render sections=str", lambda: render_html("t", "x"), InvalidParameterError,
     ("sections",)),
    ("render sections=dicts", lambda: render_html("t", [{"a": 1}]), InvalidParameterError,
     ("Section", "dict")),
    ("print sections=None", lambda: print_sections(None), InvalidParameterError,  # type: ignore[arg-type]
     ("sections",)),
    ("Section status unknown", lambda: Section("a", "x", ""), InvalidParameterError,  # type: ignore[arg-type]
     ("status", "warning")),
    ("figure_to_png None", lambda: figure_to_png_base64(None), InvalidParameterError, ("fig",)),
    ("new_figure width<0", lambda: new_figure(width=-1.0), InvalidParameterError, ("width",)),
    ("write_text_atomic None", lambda: _io.write_text_atomic(None, "x"), InvalidParameterError,  # type: ignore[arg-type]
     ("path",)),
    # --- per-feature tests --------------------------------------------------------------------
    ("adjust_pvalues text", lambda: adjust_pvalues("x"), InvalidParameterError,  # was: ValueError
     ("pvalues",)),
    ("adjust_pvalues None", lambda: adjust_pvalues(None), InvalidParameterError,  # was: [nan]
     ("pvalues", "1-D")),
    ("adjust_pvalues 2-D", lambda: adjust_pvalues([[0.1, 0.2]]), InvalidParameterError,
     ("pvalues", "1-D")),  # was: accepted
    ("adjust_pvalues > 1", lambda: adjust_pvalues([0.1, 3.0]), InvalidParameterError,
     ("[0, 1]", "position 1")),  # was: accepted, adjusted values above 1
    ("adjust_pvalues < 0", lambda: adjust_pvalues([-2.3]), InvalidParameterError,
     ("[0, 1]", "log p-values")),  # was: accepted
    ("feature_test categorical=str",
     lambda: feature_test(pd.DataFrame({"city": ["a", "b"] * 5}),
                          pd.DataFrame({"city": ["a", "b"] * 5}), categorical="city"),
     InvalidParameterError, ("categorical", "['city']")),  # was: split into letters
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "error", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_raises_typed_error_naming_it(
    call: Callable[[], object], error: type[Exception], words: tuple[str, ...]
) -> None:
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, NNDoctorError)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert ";" in message, f"no fix given in {message!r}"  # what was wrong; how to fix it


def test_not_fitted_error_is_a_usage_error_and_an_attribute_error() -> None:
    err = NotFittedError("x")
    assert isinstance(err, InvalidParameterError)
    assert isinstance(err, AttributeError)
    assert not hasattr(ShiftMonitor(), "drift_detected")  # hasattr() keeps working


# ------------------------------------------------------------------ regressions beyond one call


def test_mmd_matches_frames_by_column_name() -> None:
    """Reordered columns were compared position by position: a different, wrong statistic."""
    aligned = mmd_test(DFX, DFY, n_permutations=20, random_state=0)
    shuffled = mmd_test(DFX, DFY[["c", "a", "b"]], n_permutations=20, random_state=0)
    assert shuffled.statistic == pytest.approx(aligned.statistic)


def test_compare_samples_leaves_the_callers_columns_alone() -> None:
    src, tgt = pd.DataFrame(X), pd.DataFrame(Y)  # integer column names
    compare_samples(src, tgt, method="mmd", n_permutations=20, random_state=0)
    assert list(src.columns) == [0, 1, 2]
    assert list(tgt.columns) == [0, 1, 2]


def test_adapt_on_drift_rejects_an_empty_stream_and_foreign_columns() -> None:
    with pytest.raises(DataValidationError, match="batches is empty"):
        adapt_on_drift(_Clf(), (X, LABELS[:40]), [])
    with pytest.raises(DataValidationError, match="batch 0 X has 2 features"):
        adapt_on_drift(_Clf(), (X, LABELS[:40]), [(Y[:, :2], LABELS[:40])])


def test_monitor_record_loss_wants_a_scalar() -> None:
    model = mlp()
    with Monitor(model) as monitor:
        with pytest.raises(InvalidParameterError, match="loss"):
            monitor.record_loss("x")  # type: ignore[arg-type]
        with pytest.raises(InvalidParameterError, match=re.escape("shape (3,)")):
            monitor.record_loss(torch.ones(3))


# ------------------------------------------------------------------ files: io


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad_inputs")
    (d / "m.py").write_text(
        "import torch.nn as nn\n"
        "def good():\n    return nn.Linear(3, 2)\n"
        "def raises():\n    raise RuntimeError('factory boom')\n"
    )
    (d / "syntax.py").write_text("def good(:\n")
    (d / "t.csv").write_text("a,b,y\n1,2,0\n3,4,1\n")
    (d / "text.csv").write_text("a,b,y\nhello,2,0\nworld,4,1\n")
    (d / "header.csv").write_text("a,b,y\n")
    (d / "adir").mkdir()
    import torch as _torch

    _torch.save(nn.Linear(5, 2).state_dict(), d / "other.pt")
    return d


IO_CASES: list[tuple[str, Callable[[Path], object], type[Exception], tuple[str, ...]]] = [
    # was: the factory's own RuntimeError / SyntaxError
    ("factory raises", lambda d: _io.load_model(f"{d}/m.py:raises"), InvalidParameterError,
     ("raises", "factory boom")),
    ("file does not import", lambda d: _io.load_model(f"{d}/syntax.py:good"),
     InvalidParameterError, ("syntax.py", "SyntaxError")),
    # was: "is not of the form 'file.py:factory'", for a file that exists and for one that does not
    ("file without its factory", lambda d: _io.load_model(f"{d}/m.py"), InvalidParameterError,
     ("m.py", "defines 'good', 'raises'", "m.py:good'")),
    ("missing file without factory", lambda d: _io.load_model(f"{d}/nope.py"),
     InvalidParameterError, ("nope.py", "does not exist")),
    # was: FileNotFoundError / IndexError (pop from empty list) / RuntimeError (size mismatch)
    ("weights missing", lambda d: _io.load_model(f"{d}/m.py:good", weights=d / "nope.pt"),
     InvalidParameterError, ("nope.pt", "does not exist")),
    ("weights not a checkpoint", lambda d: _io.load_model(f"{d}/m.py:good", weights=d / "t.csv"),
     DataValidationError, ("t.csv", "torch.load")),
    ("weights of another model", lambda d: _io.load_model(f"{d}/m.py:good", weights=d / "other.pt"),
     DataValidationError, ("other.pt", "does not fit")),
    ("table is a directory", lambda d: _io.load_table(d / "adir"), InvalidParameterError,
     ("adir", "directory")),
    ("table header only", lambda d: _io.load_table(d / "header.csv"), DataValidationError,
     ("header.csv", "no rows")),
    ("table pair: text vs numbers", lambda d: _io.load_table_pair(d / "t.csv", d / "text.csv"),
     DataValidationError, ("'a'", "numbers", "text", "'hello'")),
    ("table pair: label missing",
     lambda d: _io.load_table_pair(d / "t.csv", d / "t.csv", label="z"),
     InvalidParameterError, ("'z'", "source")),
    ("write into a directory", lambda d: _io.write_text_atomic(d / "adir", "x"),
     InvalidParameterError, ("adir", "directory")),  # was: IsADirectoryError, a .tmp left over
    ("write under a file", lambda d: _io.write_text_atomic(d / "t.csv" / "r.html", "x"),
     InvalidParameterError, ("cannot write",)),  # was: FileExistsError / NotADirectoryError
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "error", "words"), [c[1:] for c in IO_CASES], ids=[c[0] for c in IO_CASES]
)
def test_bad_files_raise_typed_errors_naming_them(
    files: Path, call: Callable[[Path], object], error: type[Exception], words: tuple[str, ...]
) -> None:
    with pytest.raises(error) as info:
        call(files)
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"
    assert not list(files.glob(".*.tmp")), "a failed write left its temporary file"
