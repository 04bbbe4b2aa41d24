"""The exceptions and warnings of nndoctor, in one place.

Every error raised on purpose by nndoctor derives from :class:`NNDoctorError`, and also from the
built-in class a caller would naturally catch (``ValueError`` for bad data, ``ImportError`` for a
missing optional dependency, ``FloatingPointError`` for a non-finite value). A message names what
was wrong, what was expected, and how to fix it.

Examples
--------
>>> from nndoctor.exceptions import DataValidationError
>>> try:
...     raise DataValidationError("source has 3 rows; pass at least 2 rows per sample")
... except ValueError as err:
...     print(type(err).__name__, "-", err)
DataValidationError - source has 3 rows; pass at least 2 rows per sample
"""

from __future__ import annotations

__all__ = [
    "DataValidationError",
    "IllConditionedWarning",
    "InvalidParameterError",
    "LowOverlapWarning",
    "MissingDependencyError",
    "NNDoctorError",
    "NNDoctorWarning",
    "NonFiniteError",
    "NotFittedError",
    "SmallSampleWarning",
]


class NNDoctorError(Exception):
    """Root of every error nndoctor raises on purpose."""


class DataValidationError(NNDoctorError, ValueError):
    """The data passed in are invalid: wrong shape, NaN, text where numbers are expected, ..."""


class InvalidParameterError(NNDoctorError, ValueError, TypeError):
    """A parameter has a wrong value or type (an unknown scheme, a negative count, ...)."""


class NotFittedError(InvalidParameterError, AttributeError):
    """An estimator was used before ``fit`` (scikit-learn's ``NotFittedError`` in spirit).

    It is an :class:`InvalidParameterError` (a usage error: exit code 2 on the command line) and an
    ``AttributeError``, so ``hasattr``-style code and ``except AttributeError`` keep working.
    """


class MissingDependencyError(NNDoctorError, ImportError):
    """An optional dependency is needed for this feature but is not installed."""


class NonFiniteError(NNDoctorError, FloatingPointError):
    """A value became NaN or infinite.

    Parameters
    ----------
    message : str
        What happened and what to do.
    module : str or None
        Dotted path of the module whose computation produced the first non-finite value.
    op : str or None
        Name of the operator that produced it (e.g. ``"aten.log.default"``).
    step : int or None
        Training step at which it happened.
    """

    def __init__(
        self,
        message: str,
        *,
        module: str | None = None,
        op: str | None = None,
        step: int | None = None,
    ) -> None:
        super().__init__(message)
        self.module = module
        self.op = op
        self.step = step


class NNDoctorWarning(UserWarning):
    """Root of the warnings nndoctor emits."""


class SmallSampleWarning(NNDoctorWarning):
    """A sample is too small for the requested statistic; the result is NaN."""


class LowOverlapWarning(NNDoctorWarning):
    """Source and target barely overlap: importance weighting cannot correct this shift."""


class IllConditionedWarning(NNDoctorWarning):
    """A linear system behind an estimate is (nearly) singular: the estimate is unreliable."""
