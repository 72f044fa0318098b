"""Estimators of the KL divergence from samples: the RL policy penalty k1, k2, k3."""

from kldiv.estimators._policy import policy_kl

__all__ = ["policy_kl"]
