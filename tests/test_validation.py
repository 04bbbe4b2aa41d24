from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from nndoctor import _validation as v
from nndoctor.exceptions import DataValidationError, InvalidParameterError, NNDoctorError


def test_error_hierarchy() -> None:
    assert issubclass(DataValidationError, ValueError)
    assert issubclass(InvalidParameterError, TypeError)
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(DataValidationError, NNDoctorError)


@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
    )
)
def test_check_matrix_accepts_finite_and_rejects_nonfinite(arr: np.ndarray) -> None:
    if np.all(np.isfinite(arr)):
        out = v.check_matrix(arr)
        assert out.shape == arr.shape
        np.testing.assert_array_equal(out, arr)
    else:
        with pytest.raises(DataValidationError, match="NaN or infinite"):
            v.check_matrix(arr)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (np.zeros((0, 3)), "0 row"),
        (np.zeros((2, 2, 2)), "3 dimensions"),
        (np.array([["a", "b"]]), "non-numeric"),
        (np.zeros((3, 0)), "no columns"),
    ],
)
def test_check_matrix_errors(data: np.ndarray, match: str) -> None:
    with pytest.raises(DataValidationError, match=match):
        v.check_matrix(data)


def test_check_matrix_reads_frames_and_tensors() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": [3.0, 4.0]})
    assert v.check_matrix(frame).tolist() == [[1.0, 3.0], [2.0, 4.0]]
    assert v.check_matrix(torch.ones(2, 3)).shape == (2, 3)


def test_same_features_message() -> None:
    with pytest.raises(DataValidationError, match="target has 63 features but source has 64"):
        v.check_same_features(np.zeros((2, 64)), np.zeros((2, 63)))


def test_check_labels() -> None:
    with pytest.raises(DataValidationError, match="one label per row"):
        v.check_labels([0, 1], n_rows=3)
    with pytest.raises(DataValidationError, match="NaN"):
        v.check_labels([0.0, np.nan])


def test_check_probabilities() -> None:
    with pytest.raises(DataValidationError, match="sum to 1"):
        v.check_probabilities([[0.2, 0.2]])
    with pytest.raises(DataValidationError, match="3 classes but 2"):
        v.check_probabilities([[0.2, 0.3, 0.5]], n_classes=2)
    with pytest.raises(DataValidationError, match="one column per class"):
        v.check_probabilities([[1.0]])


def test_check_choice_lists_options() -> None:
    with pytest.raises(InvalidParameterError, match="choose one of: a, b"):
        v.check_choice("c", ["b", "a"], name="scheme")
    assert v.check_choice("a", ["a"], name="scheme") == "a"


def test_check_int_and_interval() -> None:
    with pytest.raises(InvalidParameterError):
        v.check_int(True, name="n")
    with pytest.raises(InvalidParameterError, match=">= 1"):
        v.check_int(0, name="n", minimum=1)
    with pytest.raises(InvalidParameterError, match=r"\(0, 1\)"):
        v.check_unit_interval(1.0, name="alpha")


def test_random_state_is_reproducible() -> None:
    a = v.check_random_state(3).normal(size=4)
    b = v.check_random_state(3).normal(size=4)
    np.testing.assert_array_equal(a, b)
    g = np.random.default_rng(0)
    assert v.check_random_state(g) is g
    with pytest.raises(InvalidParameterError):
        v.check_random_state("seed")


def test_check_module() -> None:
    with pytest.raises(InvalidParameterError, match=r"torch\.nn\.Module"):
        v.check_module({"weight": 1})
    with pytest.raises(DataValidationError, match="no parameters"):
        v.check_module(nn.Sequential(nn.ReLU()))
    lin = nn.Linear(2, 2)
    assert v.check_module(lin) is lin


def test_check_finite_tensor() -> None:
    with pytest.raises(DataValidationError, match="1 NaN"):
        v.check_finite_tensor(torch.tensor([0.0, float("nan")]))
    with pytest.raises(InvalidParameterError):
        v.check_finite_tensor(np.zeros(2))  # type: ignore[arg-type]
