"""Cross-area closed forms: pairs whose two families live in different modules.

Bounded-support families (Beta, ContinuousBernoulli, Kumaraswamy, Uniform) as P
against the real-line and half-line families as Q, through
``H(P, Q) - H(P)`` (every pair verified by quadrature); and the support
mismatches the other way round (+inf), as registered by torch.distributions for
Beta and ContinuousBernoulli and extended here to Kumaraswamy and LogitNormal.
"""

from __future__ import annotations

from kldiv.distributions._bounded import (
    Beta,
    ContinuousBernoulli,
    Kumaraswamy,
    LogitNormal,
    Uniform,
)
from kldiv.distributions._kl_helpers import infinite_kl, kl_by_cross_entropy
from kldiv.distributions._positive import (
    Chi,
    Exponential,
    Gamma,
    HalfNormal,
    InverseGamma,
    LogNormal,
    Pareto,
    Weibull,
)
from kldiv.distributions._real import Gumbel, Laplace, Moyal, Normal
from kldiv.distributions._registry import register_kl

# Finite: P on an interval inside Q's support, Q's cross-entropy from P's moments.
_FINITE = [
    # torch.distributions has these five
    (Beta, Exponential),
    (Beta, Gamma),
    (Beta, Normal),
    (ContinuousBernoulli, Exponential),
    (ContinuousBernoulli, Normal),
    # and these follow from the same expectations
    (Beta, Chi),
    (Beta, HalfNormal),
    (Beta, InverseGamma),
    (Beta, LogNormal),
    (Beta, Weibull),
    (ContinuousBernoulli, Gumbel),
    (ContinuousBernoulli, HalfNormal),
    (ContinuousBernoulli, Moyal),
    (Kumaraswamy, Exponential),
    (Kumaraswamy, Gamma),
    (Kumaraswamy, HalfNormal),
    (Kumaraswamy, InverseGamma),
    (Kumaraswamy, Normal),
    (Kumaraswamy, Weibull),
    (Uniform, InverseGamma),
    (Uniform, LogNormal),
]

# +inf: P charges sets outside Q's interval (torch's support-mismatch pairs for
# Beta and ContinuousBernoulli, the same for Kumaraswamy and LogitNormal).
_INFINITE = [
    (p, q)
    for q in (Beta, ContinuousBernoulli, Kumaraswamy, LogitNormal)
    for p in (Exponential, Gamma, Gumbel, Laplace, Normal, Pareto)
] + [
    (Beta, Pareto),
    (ContinuousBernoulli, Pareto),
    (Kumaraswamy, Pareto),
]

for _p, _q in _FINITE:
    register_kl(_p, _q)(kl_by_cross_entropy)
for _p, _q in _INFINITE:
    register_kl(_p, _q)(infinite_kl)
