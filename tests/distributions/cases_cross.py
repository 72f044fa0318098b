"""Cases for the cross-area pairs (kldiv/distributions/_kl_cross.py)."""

from __future__ import annotations

import math

from kldiv import distributions as D
from kldiv.distributions._kl_cross import _FINITE, _INFINITE
from tests.distributions._cases import PairCase

PARAMS = {
    D.Beta: {"concentration1": [2.0, 0.7, 5.0], "concentration0": [3.0, 1.5, 1.2]},
    D.ContinuousBernoulli: {"probs": [0.2, 0.45, 0.9]},
    D.Kumaraswamy: {"concentration1": [2.0, 0.8, 4.0], "concentration0": [3.0, 1.5, 1.2]},
    D.Uniform: {"low": [0.2, 1.0, 0.1], "high": [0.9, 4.0, 2.5]},
    D.LogitNormal: {"loc": [0.0, -1.0, 0.5], "scale": [1.0, 0.5, 2.0]},
    D.Exponential: {"rate": [2.0, 0.3, 3.5]},
    D.Gamma: {"concentration": [1.5, 0.6, 4.0], "rate": [0.7, 2.0, 1.0]},
    D.Normal: {"loc": [0.3, -1.0, 1.0], "scale": [2.0, 1.0, 0.7]},
    D.Laplace: {"loc": [0.3, -1.0, 1.0], "scale": [2.0, 1.0, 0.7]},
    D.Gumbel: {"loc": [0.3, -1.0, 1.0], "scale": [1.0, 0.5, 2.0]},
    D.Moyal: {"loc": [0.3, -1.0, 1.0], "scale": [1.0, 0.5, 2.0]},
    D.Pareto: {"scale": [0.5, 1.0, 2.0], "alpha": [3.0, 1.5, 2.5]},
    D.Chi: {"df": [1.5, 3.0, 2.0]},
    D.HalfNormal: {"scale": [0.5, 1.0, 2.0]},
    D.InverseGamma: {"concentration": [2.0, 3.0, 1.5], "rate": [0.5, 1.0, 2.0]},
    D.LogNormal: {"loc": [-0.5, 0.0, 0.3], "scale": [0.8, 1.0, 0.5]},
    D.Weibull: {"scale": [0.5, 1.0, 2.0], "concentration": [1.8, 0.9, 3.0]},
}

# E 1/X is finite only for a Beta/Kumaraswamy with concentration1 > 1.
_POLE_FREE = {
    D.Beta: {"concentration1": [2.0, 1.3, 5.0], "concentration0": [3.0, 1.5, 1.2]},
    D.Kumaraswamy: {"concentration1": [2.0, 1.3, 4.0], "concentration0": [3.0, 1.5, 1.2]},
}

CASES = []
for _p, _q in _FINITE:
    p_params = _POLE_FREE.get(_p, PARAMS[_p]) if _q is D.InverseGamma else PARAMS[_p]
    CASES.append(PairCase(_p, _q, p_params, PARAMS[_q]))
CASES += [
    PairCase(
        D.Beta,
        D.InverseGamma,
        {"concentration1": [0.7, 1.0], "concentration0": [1.5, 2.0]},
        {"concentration": [2.0, 3.0], "rate": [0.5, 1.0]},
        reference="inf",
        label="pole-at-zero",
    ),
    PairCase(
        D.Kumaraswamy,
        D.InverseGamma,
        {"concentration1": [0.8, 1.0], "concentration0": [1.5, 2.0]},
        {"concentration": [2.0, 3.0], "rate": [0.5, 1.0]},
        reference="inf",
        label="pole-at-zero",
    ),
    PairCase(
        D.Uniform,
        D.LogNormal,
        {"low": [-0.5, -0.1], "high": [1.0, 2.0]},
        {"loc": [0.0, 0.0], "scale": [1.0, 1.0]},
        reference="inf",
        label="reaches-zero-or-below",
    ),
]
CASES += [PairCase(_p, _q, PARAMS[_p], PARAMS[_q], reference="inf") for _p, _q in _INFINITE]


class _Doubling:
    """y = 2x, as a torch-style transform (only equality matters to the KL)."""

    def __eq__(self, other):
        return isinstance(other, _Doubling)

    __hash__ = object.__hash__


def _doubled_normals(pa, qa):
    from kldiv.distributions import Normal, TransformedDistribution

    return (
        TransformedDistribution(Normal(**pa), [_Doubling()]),
        TransformedDistribution(Normal(**qa), [_Doubling()]),
    )


# KL is invariant under one bijection applied to both sides: the Normal–Normal value
# log(2/0.5) + (0.25 + 1.5^2)/8 - 1/2 for N(0, 0.5^2) against N(1.5, 2^2).
CASES += [
    PairCase(
        D.TransformedDistribution,
        D.TransformedDistribution,
        {"loc": 0.0, "scale": 0.5},
        {"loc": 1.5, "scale": 2.0},
        reference="exact",
        expected=math.log(4.0) + (0.25 + 2.25) / 8.0 - 0.5,
        build=_doubled_normals,
        label="equal-transforms",
    )
]
