"""Results shown in a notebook: an HTML fragment from the report's sections, and ``plot()``.

:func:`result_html` renders the same :class:`Section` objects as the HTML report (through
:func:`to_sections`): per section the title, the verdict line, the table and the plots as
embedded PNG ``data:`` images. The fragment has no ``<script>``, fetches nothing, and every user
string is escaped (jinja2 autoescape). :func:`result_figure` returns the matplotlib figure of a
result's main picture. :class:`nndoctor._results.ResultMixin` and the Monitor reach this module
through the registry of :mod:`nndoctor._display` (the root package registers it), so the layers
below the report never import it.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Sequence
from typing import Any

import jinja2

from nndoctor.exceptions import InvalidParameterError, NNDoctorWarning
from nndoctor.report._figures import capture_figures
from nndoctor.report._html import check_embeddable
from nndoctor.report._section import Section, to_sections

__all__ = ["display_html", "monitor_html", "render_fragment", "result_figure", "result_html"]

_MAX_ROWS = 25  # a longer table shows its first rows and says how many it left out

_FRAGMENT = """<div class="nndoctor-result" style="font-family: system-ui, sans-serif; \
line-height: 1.4; max-width: 60rem;">
<div style="font-size: .8rem; color: #59636e;">{{ kind }}</div>
{% for s in sections %}
<div class="nndoctor-section" data-status="{{ s.status }}" style="margin: .25rem 0 .75rem;">
<div style="font-weight: 600; font-size: 1.05rem; margin: .25rem 0;">{{ s.title }}</div>
{% if s.verdict %}<div class="nndoctor-verdict" style="padding: .4rem .6rem; border-radius: 6px; \
margin: 0 0 .4rem; background: {{ colours[s.status] }}; color: #1f2328;">
<span style="font-weight: 600; text-transform: uppercase; font-size: .75rem; \
margin-right: .5rem;">{{ s.status }}</span>{{ s.verdict }}</div>{% endif %}
{% set cols = columns[loop.index0] %}
{% if s.table %}<div style="overflow-x: auto;"><table style="border-collapse: collapse; \
font-size: .85rem;">
<thead><tr>{% for k in cols %}<th style="border: 1px solid #d1d9e0; padding: .2rem .45rem; \
text-align: left;">{{ k }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in s.table[:max_rows] %}<tr>{% for k in cols %}<td style="border: 1px solid \
#d1d9e0; padding: .2rem .45rem; text-align: left;">{{ row.get(k, "") }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>
{% if s.table|length > max_rows %}<div style="font-size: .8rem; color: #59636e;">\
{{ max_rows }} of {{ s.table|length }} rows shown (to_dict() has them all)</div>{% endif %}
{% endif %}
{% for f in s.figures %}<figure style="margin: .4rem 0;">
<img src="data:image/png;base64,{{ f.png_base64 }}" alt="{{ f.alt or f.title }}" \
style="max-width: 100%; height: auto;">
<figcaption style="font-size: .8rem; color: #59636e;">{{ f.title }}</figcaption></figure>
{% endfor %}
</div>
{% endfor %}
</div>"""

_COLOURS = {"ok": "#dafbe1", "info": "#ddf4ff", "warning": "#fff8c5", "error": "#ffebe9"}


def render_fragment(kind: str, sections: Sequence[Section]) -> str:
    """Render sections as an HTML fragment for a notebook cell (escaped, no script, no fetch).

    Examples
    --------
    >>> from nndoctor.report import Section
    >>> out = render_fragment("R", [Section("<b>x</b>", "ok", "fine")])
    >>> "&lt;b&gt;x&lt;/b&gt;" in out and "<script" not in out
    True
    """
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    sections = check_embeddable(sections)
    return env.from_string(_FRAGMENT).render(
        kind=kind,
        sections=list(sections),
        colours=_COLOURS,
        max_rows=_MAX_ROWS,
        columns=[list(dict.fromkeys(k for row in s.table for k in row)) for s in sections],
    )


def result_html(result: Any) -> str:
    """The notebook view of ``result``: its report sections, with their plots, as HTML."""
    return render_fragment(type(result).__name__, to_sections(result, figures=True))


def display_html(result: Any) -> str:
    """:func:`result_html`, or on any error the escaped plain ``repr`` and a warning.

    A result shown in a notebook never raises: IPython would otherwise print a traceback in
    place of the result.
    """
    return _safely(result, lambda: result_html(result))


def monitor_html(monitor: Any) -> str:
    """The notebook view of a training :class:`~nndoctor.stability.monitor.Monitor`.

    Its findings so far, as the report renders :meth:`Monitor.summary`; never raises.
    """
    return _safely(
        monitor,
        lambda: render_fragment(
            f"Monitor (step {monitor.step_count})", to_sections(monitor.summary(), figures=True)
        ),
    )


def _safely(result: Any, render: Any) -> str:
    try:
        return str(render())
    except Exception as err:  # display must not raise: the error is reported as a warning
        warnings.warn(
            f"nndoctor could not render {type(result).__name__} as HTML "
            f"({type(err).__name__}: {err}); showing its plain repr instead",
            NNDoctorWarning,
            stacklevel=3,
        )
        return f"<pre>{html.escape(repr(result))}</pre>"


def result_figure(result: Any) -> Any:
    """The matplotlib figure of ``result``'s main picture (the first plot its report draws).

    Raises
    ------
    InvalidParameterError
        When the report of this kind of result has no plot.
    """
    with capture_figures() as figures:
        to_sections(result, figures=True)
    if not figures:
        raise InvalidParameterError(
            f"{type(result).__name__} has no plot in its report; show its table with "
            "to_dict() or display it in a notebook"
        )
    return figures[0]
