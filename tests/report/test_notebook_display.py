"""Results shown in a notebook: ``_repr_html_`` from the report's sections, ``plot()``."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from nndoctor import Monitor
from nndoctor.checkup import ENVIRONMENT_STAGE, run_checkup
from nndoctor.exceptions import InvalidParameterError, NNDoctorError, NNDoctorWarning
from nndoctor.report import to_sections
from nndoctor.scenarios import flu_season
from nndoctor.shift import (
    ImportanceWeighter,
    LabelShiftEstimator,
    ShiftMonitor,
    compare_samples,
    diagnose,
    estimate_accuracy,
    feature_test,
    ks_test,
    mmd_test,
)
from nndoctor.stability import audit_init, find_symmetric_units, probe, recommend_init

EVIL = "<img src=x onerror=alert(1)>"


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    src = pd.DataFrame(rng.normal(size=(120, 2)), columns=[EVIL, "b"])
    shifted = rng.normal(size=(120, 2)) + np.array([1.0, 0.0])
    tgt = pd.DataFrame(shifted, columns=[EVIL, "b"])
    return src, tgt


def _probs(rng: np.random.Generator, n: int, sharp: float) -> np.ndarray:
    e = np.exp(rng.normal(size=(n, 2)) * sharp)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _stream_report() -> Any:
    rng = np.random.default_rng(0)
    mon = ShiftMonitor(random_state=0).fit(
        rng.normal(size=(200, 2)),
        predictions=rng.integers(0, 2, 200),
        labels=rng.integers(0, 2, 200),
    )
    for t in range(4):
        y = rng.integers(0, 2, 50)
        _ = mon.update(rng.normal(size=(50, 2)), predictions=y, labels=y, time=str(t))
    return mon.report()


def _label_shift() -> Any:
    rng = np.random.default_rng(0)
    ps = _probs(rng, 200, 3.0)
    ys = np.array([rng.choice(2, p=p) for p in ps])
    return LabelShiftEstimator(n_bootstrap=0).fit(ps, ys).estimate(_probs(rng, 200, 3.0))


def _accuracy() -> Any:
    rng = np.random.default_rng(0)
    ps = _probs(rng, 200, 3.0)
    ys = np.array([rng.choice(2, p=p) for p in ps])
    return estimate_accuracy(ps, ys, _probs(rng, 200, 1.0), method="atc")


def _diagnosis() -> Any:
    xs, ys, xt, _ = flu_season(n_source=300, n_target=300, random_state=0).arrays()
    return diagnose(xs, ys, xt, random_state=0)


RESULTS: dict[str, Callable[[], Any]] = {
    "probe": lambda: probe(_mlp(), torch.randn(16, 4, generator=torch.Generator().manual_seed(0))),
    "init audit": lambda: audit_init(_mlp()),
    "symmetry": lambda: find_symmetric_units(_mlp()),
    "recommendation": lambda: recommend_init(
        _mlp(), torch.randn(16, 4), schemes=["kaiming_normal"]
    ),
    "two-sample": lambda: mmd_test(*_tables(), n_permutations=50, random_state=0),
    "ks": lambda: ks_test(_tables()[0][EVIL], _tables()[1][EVIL]),
    "features": lambda: feature_test(*_tables(), random_state=0),
    "shift report": lambda: compare_samples(*_tables(), n_permutations=50, random_state=0),
    "importance": lambda: ImportanceWeighter(random_state=0).fit(*_tables()).summary(),
    "label shift": _label_shift,
    "accuracy": _accuracy,
    "diagnosis": _diagnosis,
    "stream": _stream_report,
    "checkup": lambda: run_checkup(stages=[ENVIRONMENT_STAGE]),
}


@pytest.mark.parametrize("name", list(RESULTS))
def test_every_result_renders_inert_html(name: str) -> None:
    result = RESULTS[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NNDoctorWarning)  # a fallback would warn
        out = result._repr_html_()
    assert "<script" not in out.lower()
    assert not re.search(r"\son[a-z]+\s*=", out.replace("onerror=alert", ""))  # no handlers
    assert "http://" not in out  # nothing fetched
    assert "https://" not in out
    sections = to_sections(result, figures=True)
    for s in sections:  # the same sections as the report: titles and verdicts
        assert _esc(s.title) in out
        if s.verdict:
            assert _esc(s.verdict) in out
    n_figures = sum(len(s.figures) for s in sections)
    assert out.count('src="data:image/png;base64,') == n_figures
    text = repr(result)  # the terminal's repr: one short line
    assert "\n" not in text
    assert len(text) <= 300
    assert text.startswith((f"<{type(result).__name__} ", f"{type(result).__name__}("))


def test_short_repr_leads_with_the_headline() -> None:
    text = repr(RESULTS["diagnosis"]())
    assert text.startswith("<ShiftDiagnosis kind='label' ")
    assert "fields)>" in text  # says that more is there


def _esc(text: str) -> str:
    import html

    return html.escape(text, quote=True).replace("&#x27;", "&#39;")


def test_hostile_column_name_is_escaped() -> None:
    out = feature_test(*_tables(), random_state=0)._repr_html_()
    assert EVIL not in out
    assert "&lt;img src=x onerror=alert(1)&gt;" in out


def test_render_error_falls_back_to_the_plain_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    result = RESULTS["two-sample"]()

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("renderer broke")

    monkeypatch.setattr("nndoctor.report._notebook.to_sections", boom)
    with pytest.warns(NNDoctorWarning, match="renderer broke"):
        out = result._repr_html_()
    assert out.startswith("<pre>")
    assert "TwoSampleResult" in out


def test_plot_returns_the_reports_main_figure() -> None:
    from matplotlib.figure import Figure

    result = RESULTS["probe"]()
    fig = result.plot()
    assert isinstance(fig, Figure)
    assert fig.axes  # something was drawn
    with pytest.raises(InvalidParameterError, match="no plot"):
        RESULTS["checkup"]().plot()


def test_monitor_shows_its_findings_so_far() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    nn.init.constant_(model[0].bias, -5.0)  # every ReLU unit dead
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.rand(32, 4), torch.randn(32, 1)
    with Monitor(model) as monitor:
        for _ in range(3):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            monitor.step(loss)
    out = monitor._repr_html_()
    assert "Monitor (step 3)" in out
    assert "dead_units" in out
    assert "<script" not in out


def test_a_fresh_interpreter_renders_without_importing_the_report() -> None:
    # the result finds the report's renderer through nndoctor._display (registered by the root
    # package), which imports it on the first display and not before
    import subprocess
    import sys

    code = (
        "import sys; import numpy as np; from nndoctor.shift import ks_test; "
        "r = ks_test(np.arange(40.0), np.arange(40.0) + 9); "
        "print('nndoctor.report' in sys.modules, 'jinja2' in sys.modules); "
        "out = r._repr_html_(); "
        "print('nndoctor-result' in out, 'nndoctor.report._notebook' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True", "True"]


def test_results_draw_through_the_registered_renderer(monkeypatch: pytest.MonkeyPatch) -> None:
    from nndoctor import _display

    class Fake:
        def display_html(self, result: Any) -> str:
            return f"<p>{type(result).__name__}</p>"

        def monitor_html(self, monitor: Any) -> str:
            return "<p>monitor</p>"

        def result_figure(self, result: Any) -> Any:
            return "figure"

    monkeypatch.setattr(_display, "_loader", [Fake])
    result = RESULTS["two-sample"]()
    assert result._repr_html_() == "<p>TwoSampleResult</p>"
    assert result.plot() == "figure"
    assert Monitor(nn.Linear(2, 2))._repr_html_() == "<p>monitor</p>"
    monkeypatch.setattr(_display, "_loader", [])
    with pytest.raises(NNDoctorError, match="no notebook renderer is registered"):
        result._repr_html_()
