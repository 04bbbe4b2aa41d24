"""Training-time monitor: measure per-layer quantities on the device, judge them, log them.

The parts, one purpose each: :mod:`._quantities` measures (on the device), :mod:`._rules`
judges (named thresholds), :mod:`._hooks` attaches to the model, :mod:`._nonfinite` localizes
the first non-finite value, :mod:`._log` writes and reads the JSONL log (and TensorBoard), and
:class:`Monitor` ties them together. A Lightning callback lives in
:mod:`nndoctor.stability.monitor.lightning` (optional extra ``lightning``).

>>> from nndoctor.stability.monitor import MonitorThresholds
>>> MonitorThresholds().dead_fraction
0.5
"""

from __future__ import annotations

from nndoctor.stability.monitor._log import MonitorLog, read_log
from nndoctor.stability.monitor._monitor import Monitor
from nndoctor.stability.monitor._nonfinite import NonFiniteLocation, locate_nonfinite
from nndoctor.stability.monitor._rules import CHECKS, Finding, MonitorThresholds

__all__ = [
    "CHECKS",
    "Finding",
    "Monitor",
    "MonitorLog",
    "MonitorThresholds",
    "NonFiniteLocation",
    "locate_nonfinite",
    "read_log",
]
