"""Worked examples behind ``kldiv demo …``: each writes its plots and an HTML page.

They need the ``demo`` extra (``pip install 'kldiv[demo]'``: matplotlib,
scikit-learn, torch); a missing one is an :class:`ImportError` naming what to
install.
"""

from kldiv.demos._vi import run_vi

__all__ = ["run_vi"]
