"""Families of kldiv/distributions/_real.py and _positive.py (beyond Normal, Gamma, Exponential)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from kldiv import distributions as D
from tests.distributions._families import FamilyCase


def _a(params, name):
    return np.asarray(params[name], dtype=float)


LOC = [0.0, 1.5, -2.0]
SCALE = [1.0, 0.5, 3.0]
REAL_POINTS = [[-1.0, 0.3, 7.0], [2.0, 1.5, -2.0]]
POSITIVE_POINTS = [[-1.0, 0.0, 0.5], [0.3, 2.0, 7.0]]

FAMILIES = [
    FamilyCase(
        D.Laplace,
        {"loc": LOC, "scale": SCALE},
        lambda p: stats.laplace(_a(p, "loc"), _a(p, "scale")),
        REAL_POINTS,
    ),
    FamilyCase(
        D.Cauchy,
        {"loc": LOC, "scale": SCALE},
        lambda p: stats.cauchy(_a(p, "loc"), _a(p, "scale")),
        REAL_POINTS,
    ),
    FamilyCase(
        D.Gumbel,
        {"loc": LOC, "scale": SCALE},
        lambda p: stats.gumbel_r(_a(p, "loc"), _a(p, "scale")),
        REAL_POINTS,
    ),
    FamilyCase(
        D.Moyal,
        {"loc": LOC, "scale": SCALE},
        lambda p: stats.moyal(_a(p, "loc"), _a(p, "scale")),
        REAL_POINTS,
    ),
    FamilyCase(
        D.Logistic,
        {"loc": LOC, "scale": SCALE},
        lambda p: stats.logistic(_a(p, "loc"), _a(p, "scale")),
        [[-1.0, 0.3, 7.0], [2.0, 1.5, -40.0]],
    ),
    FamilyCase(
        D.StudentT,
        {"df": [3.0, 1.5, 7.5], "loc": LOC, "scale": SCALE},
        lambda p: stats.t(_a(p, "df"), _a(p, "loc"), _a(p, "scale")),
        REAL_POINTS,
    ),
    FamilyCase(
        D.HalfNormal,
        {"scale": SCALE},
        lambda p: stats.halfnorm(scale=_a(p, "scale")),
        POSITIVE_POINTS,
    ),
    FamilyCase(
        D.LogNormal,
        {"loc": LOC, "scale": SCALE},
        lambda p: stats.lognorm(_a(p, "scale"), scale=np.exp(_a(p, "loc"))),
        POSITIVE_POINTS,
    ),
    FamilyCase(
        D.Chi2,
        {"df": [1.0, 2.5, 7.0]},
        lambda p: stats.chi2(_a(p, "df")),
        POSITIVE_POINTS,
    ),
    FamilyCase(
        D.Chi,
        {"df": [1.0, 2.5, 0.7]},
        lambda p: stats.chi(_a(p, "df")),
        [[-1.0, 0.0, 0.5], [0.3, 2.0, 0.0]],
    ),
    FamilyCase(
        D.Weibull,
        {"scale": [1.0, 2.5, 0.7], "concentration": [1.0, 2.0, 0.6]},
        lambda p: stats.weibull_min(_a(p, "concentration"), scale=_a(p, "scale")),
        [[0.0, 0.0, 0.5], [0.3, -2.0, 7.0]],
    ),
    FamilyCase(
        D.InverseGamma,
        {"concentration": [3.0, 1.5, 0.8], "rate": [1.0, 2.5, 0.7]},
        lambda p: stats.invgamma(_a(p, "concentration"), scale=_a(p, "rate")),
        POSITIVE_POINTS,
    ),
    FamilyCase(
        D.Pareto,
        {"scale": [1.0, 2.5, 0.7], "alpha": [3.0, 1.5, 0.8]},
        lambda p: stats.pareto(_a(p, "alpha"), scale=_a(p, "scale")),
        [[0.5, 2.5, 0.6], [1.0, 3.0, 7.0]],
    ),
    FamilyCase(
        D.HalfCauchy,
        {"scale": SCALE},
        lambda p: stats.halfcauchy(scale=_a(p, "scale")),
        POSITIVE_POINTS,
    ),
]
