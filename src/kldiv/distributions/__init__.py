"""Probability distributions with parameters of any array library, and their closed-form KLs.

Class and parameter names follow ``torch.distributions``. Every distribution
has ``log_prob``, ``sample(shape, rng)``, ``batch_shape`` and ``event_shape``;
most have ``entropy``, ``mean`` and ``variance``. ``kldiv.kl_divergence(P, Q)``
looks the pair up in the registry (``kldiv.registered_pairs()``).
"""

# The _kl_* modules register the closed forms when imported.
from kldiv.distributions import (  # noqa: F401
    _bounded,
    _discrete,
    _kl_bounded_discrete,
    _kl_continuous,
    _kl_cross,
    _kl_multivariate,
    _kl_real_positive,
    _multivariate,
    _positive,
    _real,
    _structural,
)
from kldiv.distributions._base import Distribution
from kldiv.distributions._bounded import *  # noqa: F403
from kldiv.distributions._convert import from_scipy, from_torch
from kldiv.distributions._discrete import *  # noqa: F403
from kldiv.distributions._multivariate import *  # noqa: F403
from kldiv.distributions._positive import *  # noqa: F403
from kldiv.distributions._real import *  # noqa: F403
from kldiv.distributions._registry import kl_divergence, register_kl, registered_pairs
from kldiv.distributions._structural import *  # noqa: F403

__all__ = [
    "Distribution",
    "from_scipy",
    "from_torch",
    "kl_divergence",
    "register_kl",
    "registered_pairs",
    *_bounded.__all__,
    *_discrete.__all__,
    *_multivariate.__all__,
    *_positive.__all__,
    *_real.__all__,
    *_structural.__all__,
]
