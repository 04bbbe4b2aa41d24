"""The unit every renderer consumes: a titled section with a verdict, a table, figures, payload."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import singledispatch
from typing import Any, Literal, get_args

from nndoctor._results import ResultMixin, to_jsonable
from nndoctor._validation import check_choice
from nndoctor.exceptions import InvalidParameterError

__all__ = ["Figure", "Section", "Status", "to_sections"]

Status = Literal["ok", "info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class Figure(ResultMixin):
    """A rendered plot: a PNG as base64 text plus its caption."""

    title: str
    png_base64: str
    alt: str = ""


@dataclass(frozen=True, slots=True)
class Section(ResultMixin):
    """One part of a report.

    Attributes
    ----------
    title : str
        Heading.
    status : {"ok", "info", "warning", "error"}
        How the verdict should be coloured.
    verdict : str
        One or two sentences: what was found and what to do.
    table : tuple of dict
        Rows of a table (same keys in each row); may be empty.
    figures : tuple of Figure
        Plots, only filled when figures were asked for.
    payload : Any
        The full result as plain JSON types (embedded in the HTML page).
    """

    title: str
    status: Status
    verdict: str
    table: tuple[dict[str, Any], ...] = ()
    figures: tuple[Figure, ...] = ()
    payload: Any = field(default=None)

    def __post_init__(self) -> None:
        check_choice(self.status, get_args(Status), name="status")


def check_sections(sections: Any) -> Sequence[Section]:
    """Return ``sections`` when it is a sequence of :class:`Section` (what renderers take)."""
    if isinstance(sections, str) or not isinstance(sections, Sequence):
        raise InvalidParameterError(
            f"sections must be a list of Section, got {type(sections).__name__}; build them "
            "with to_sections(result)"
        )
    bad = [type(s).__name__ for s in sections if not isinstance(s, Section)]
    if bad:
        raise InvalidParameterError(
            f"sections must all be Section objects, got {', '.join(sorted(set(bad)))}; build "
            "them with to_sections(result)"
        )
    return sections


@singledispatch
def to_sections(result: Any, *, figures: bool = False) -> list[Section]:
    """Turn a result object into report sections.

    Capabilities register their result types with ``@to_sections.register``. The fallback shows
    the result's ``to_dict()`` as a two-column table.

    Examples
    --------
    >>> from nndoctor._environment import environment_report
    >>> [s.title for s in to_sections(environment_report())]
    ['Environment', 'Floating-point limits']
    """
    payload = to_jsonable(result)
    rows: tuple[dict[str, Any], ...] = ()
    if isinstance(payload, dict):
        rows = tuple({"field": k, "value": _short(v)} for k, v in payload.items())
    return [
        Section(title=type(result).__name__, status="info", verdict="", table=rows, payload=payload)
    ]


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."
