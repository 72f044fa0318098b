"""Divergences and entropies of discrete distributions, on any array library."""

from kldiv.discrete._entropy import (
    cross_entropy,
    cross_entropy_from_log_probs,
    cross_entropy_from_logits,
    entropy,
    entropy_from_log_probs,
    entropy_from_logits,
)
from kldiv.discrete._generalized import generalized_kl
from kldiv.discrete._js import js_from_log_probs, js_from_logits, js_from_probs
from kldiv.discrete._kl import kl_from_log_probs, kl_from_logits, kl_from_probs

__all__ = [
    "cross_entropy",
    "cross_entropy_from_log_probs",
    "cross_entropy_from_logits",
    "entropy",
    "entropy_from_log_probs",
    "entropy_from_logits",
    "generalized_kl",
    "js_from_log_probs",
    "js_from_logits",
    "js_from_probs",
    "kl_from_log_probs",
    "kl_from_logits",
    "kl_from_probs",
]
