"""Estimators of the KL divergence: the estimate chain, k-NN, histogram, RL k1/k2/k3, the ELBO."""

from kldiv.estimators._auto import estimate
from kldiv.estimators._elbo import ELBO, elbo
from kldiv.estimators._estimate import Estimate
from kldiv.estimators._histogram import histogram_kl
from kldiv.estimators._knn import knn_kl
from kldiv.estimators._policy import policy_kl

__all__ = ["ELBO", "Estimate", "elbo", "estimate", "histogram_kl", "knn_kl", "policy_kl"]
