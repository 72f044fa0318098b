"""Model-vs-model comparison reports: llama.cpp's ``--kl-divergence`` statistics as a library call.

Examples:
    >>> import numpy as np
    >>> from kldiv.reports import compare_logits
    >>> logits = np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    >>> compare_logits(logits, logits).kl_max
    0.0
"""

from kldiv.reports._compare import compare_logits
from kldiv.reports._report import ComparisonReport

__all__ = ["ComparisonReport", "compare_logits"]
