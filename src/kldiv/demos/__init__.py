"""Worked examples behind ``kldiv demo …``: each writes its plots and an HTML page.

- :func:`run_vae` (``kldiv demo``, ``kldiv demo vae``): a VAE on scikit-learn's
  digits with :class:`kldiv.torch.GaussianKLLoss`, free bits and a KL schedule.
- :func:`run_vi` (``kldiv demo vi``): variational inference for a Bayesian
  logistic regression with :func:`kldiv.torch.elbo`.

They need the ``demo`` extra (``pip install 'kldiv[demo]'``: matplotlib,
scikit-learn, torch); a missing one is an :class:`ImportError` naming what to
install.
"""

from kldiv.demos._vae import run_vae
from kldiv.demos._vi import run_vi

__all__ = ["run_vae", "run_vi"]
