"""What nndoctor finds about the machine it runs on: versions, threads, device, float limits."""

from __future__ import annotations

import math
import platform
import sys
from dataclasses import dataclass
from importlib import metadata

import numpy as np
import torch

from nndoctor._results import ResultMixin

__all__ = ["EnvironmentReport", "FloatLimits", "environment_report"]


@dataclass(frozen=True, slots=True)
class FloatLimits(ResultMixin):
    """Limits of one floating-point type that decide when a signal vanishes or explodes.

    Attributes
    ----------
    dtype : str
        The torch dtype name.
    eps : float
        Machine epsilon: the relative gap between 1 and the next representable number.
    smallest_normal : float
        Below this, values lose precision (subnormals) and then flush to zero.
    max : float
        Above this, values overflow to infinity.
    layers_to_underflow_at_0_2 : int
        Depth at which a chain multiplying by 0.2 per layer takes a unit signal below
        ``smallest_normal``: :math:`\\lceil \\ln(\\text{tiny}) / \\ln 0.2 \\rceil`.
    layers_to_overflow_at_5 : int
        Depth at which a chain multiplying by 5 per layer overflows:
        :math:`\\lceil \\ln(\\text{max}) / \\ln 5 \\rceil`.
    """

    dtype: str
    eps: float
    smallest_normal: float
    max: float
    layers_to_underflow_at_0_2: int
    layers_to_overflow_at_5: int


@dataclass(frozen=True, slots=True)
class EnvironmentReport(ResultMixin):
    """The environment nndoctor runs in.

    Examples
    --------
    >>> report = environment_report()
    >>> report.float_limits[0].dtype
    'float16'
    """

    nndoctor: str
    python: str
    platform: str
    torch: str
    numpy: str
    threads: int
    device: str
    cuda_available: bool
    float_limits: tuple[FloatLimits, ...]


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_report() -> EnvironmentReport:
    """Describe the running environment.

    Returns
    -------
    EnvironmentReport
        Versions, thread count, default device, and for float16, bfloat16, float32 and float64 the
        machine epsilon, smallest normal number, largest number, and the depth at which a scalar
        chain with gain 0.2 underflows or with gain 5 overflows.

    Examples
    --------
    >>> r = environment_report()
    >>> [lim.layers_to_overflow_at_5 for lim in r.float_limits]
    [7, 56, 56, 442]
    """
    limits = []
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        info = torch.finfo(dtype)
        limits.append(
            FloatLimits(
                dtype=str(dtype).removeprefix("torch."),
                eps=float(info.eps),
                smallest_normal=float(info.tiny),
                max=float(info.max),
                layers_to_underflow_at_0_2=math.ceil(math.log(info.tiny) / math.log(0.2)),
                layers_to_overflow_at_5=math.ceil(math.log(info.max) / math.log(5.0)),
            )
        )
    cuda = bool(torch.cuda.is_available())
    device = torch.cuda.get_device_name(0) if cuda else f"cpu ({platform.processor() or 'unknown'})"
    return EnvironmentReport(
        nndoctor=_version("nndoctor"),
        python=sys.version.split()[0],
        platform=platform.platform(),
        torch=torch.__version__,
        numpy=np.__version__,
        threads=int(torch.get_num_threads()),
        device=device,
        cuda_available=cuda,
        float_limits=tuple(limits),
    )
