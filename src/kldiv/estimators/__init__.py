"""Estimators of the KL divergence: the estimate chain, k-NN, histogram, RL k1/k2/k3, the ELBO.

Also the Monte Carlo mean over given log-densities at draws of P
(:func:`kl_from_sample_log_probs`).
"""

from kldiv.estimators._auto import estimate
from kldiv.estimators._elbo import ELBO, elbo
from kldiv.estimators._estimate import Estimate
from kldiv.estimators._histogram import histogram_kl
from kldiv.estimators._knn import knn_kl
from kldiv.estimators._policy import policy_kl
from kldiv.estimators._samples import kl_from_sample_log_probs

__all__ = [
    "ELBO",
    "Estimate",
    "elbo",
    "estimate",
    "histogram_kl",
    "kl_from_sample_log_probs",
    "knn_kl",
    "policy_kl",
]
