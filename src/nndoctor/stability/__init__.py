"""Everything about signals inside a network: initialization, propagation, symmetry, monitoring.

>>> from nndoctor.stability import Monitor
>>> Monitor.__name__
'Monitor'
"""

from __future__ import annotations

from nndoctor.stability.monitor import Monitor

__all__ = ["Monitor"]
