"""Sections for :class:`nndoctor._environment.EnvironmentReport`."""

from __future__ import annotations

from nndoctor._environment import EnvironmentReport
from nndoctor._results import to_jsonable
from nndoctor.report._section import Section, to_sections

__all__: list[str] = []


@to_sections.register
def _environment_sections(result: EnvironmentReport, *, figures: bool = False) -> list[Section]:
    info = (
        {"item": "nndoctor", "value": result.nndoctor},
        {"item": "python", "value": result.python},
        {"item": "torch", "value": result.torch},
        {"item": "numpy", "value": result.numpy},
        {"item": "threads", "value": str(result.threads)},
        {"item": "device", "value": result.device},
        {"item": "platform", "value": result.platform},
    )
    limits = tuple(
        {
            "dtype": lim.dtype,
            "eps": f"{lim.eps:.3g}",
            "smallest normal": f"{lim.smallest_normal:.3g}",
            "max": f"{lim.max:.3g}",
            "gain 0.2 underflows at layer": lim.layers_to_underflow_at_0_2,
            "gain 5 overflows at layer": lim.layers_to_overflow_at_5,
        }
        for lim in result.float_limits
    )
    f32 = next(lim for lim in result.float_limits if lim.dtype == "float32")
    return [
        Section("Environment", "info", "", info, payload=to_jsonable(result)),
        Section(
            "Floating-point limits",
            "info",
            f"In float32 a signal shrinking ×0.2 per layer underflows after "
            f"{f32.layers_to_underflow_at_0_2} layers and one growing ×5 overflows after "
            f"{f32.layers_to_overflow_at_5}; use float64 to measure deeper chains exactly.",
            limits,
        ),
    ]
