"""Families of kldiv/distributions/_bounded.py and _discrete.py against SciPy or textbook laws.

SciPy has no Kumaraswamy, continuous Bernoulli, logit-normal or categorical
law; for those, small reference objects below give the textbook density or
mass in NumPy, the entropy and moments by ``scipy.integrate.quad`` and the CDF
in closed form.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, stats

from kldiv import distributions as D
from tests.distributions._families import FamilyCase


def _arr(value):
    return np.asarray(value, dtype=float)


class _UnitIntervalLaw:
    """A batch of laws on [0, 1] from a vectorised log-density and CDF; moments by quadrature."""

    def __init__(self, log_density, cdf, batch, *, open_ends=False):
        self._log_density = log_density
        self._cdf = cdf
        self._batch = batch
        self._open_ends = open_ends

    def logpdf(self, x):
        x = _arr(x)
        inside = (x > 0) & (x < 1) if self._open_ends else (x >= 0) & (x <= 1)
        with np.errstate(all="ignore"):
            value = self._log_density(np.where(inside, x, 0.5))
        return np.where(inside, value, -np.inf)

    def cdf(self, x):
        x = _arr(x)
        with np.errstate(all="ignore"):
            value = self._cdf(np.clip(x, 0.0, 1.0))
        return np.where(x <= 0, 0.0, np.where(x >= 1, 1.0, value))

    def _integral(self, weight):
        out = np.empty(self._batch)
        for i in range(self._batch):

            def integrand(t, i=i):
                lp = float(self.logpdf(np.full(self._batch, t))[i])
                return 0.0 if lp == -math.inf else math.exp(lp) * weight(t, lp)

            out[i] = integrate.quad(integrand, 0.0, 1.0, limit=400, epsabs=1e-14, epsrel=1e-12)[0]
        return out

    def entropy(self):
        return self._integral(lambda t, lp: -lp)

    def mean(self):
        return self._integral(lambda t, lp: t)

    def var(self):
        return self._integral(lambda t, lp: t * t) - self.mean() ** 2


def _kumaraswamy(p):
    a, b = _arr(p["concentration1"]), _arr(p["concentration0"])

    def log_density(x):
        return np.log(a * b) + (a - 1) * np.log(x) + (b - 1) * np.log1p(-(x**a))

    return _UnitIntervalLaw(log_density, lambda x: 1.0 - (1.0 - x**a) ** b, a.size)


def _continuous_bernoulli(p):
    lam = _arr(p["probs"])
    half = np.isclose(lam, 0.5, rtol=0, atol=1e-12)
    safe = np.where(half, 0.25, lam)
    # C(lambda) = 2 atanh(1 - 2 lambda) / (1 - 2 lambda), 2 at lambda = 1/2 (Loaiza-Ganem 2019).
    log_c = np.where(
        half, math.log(2.0), np.log(2.0 * np.arctanh(1.0 - 2.0 * safe) / (1 - 2 * safe))
    )

    def log_density(x):
        return log_c + x * np.log(lam) + (1.0 - x) * np.log1p(-lam)

    def cdf(x):
        ratio = (safe**x * (1.0 - safe) ** (1.0 - x) + safe - 1.0) / (2.0 * safe - 1.0)
        return np.where(half, x, ratio)

    return _UnitIntervalLaw(log_density, cdf, lam.size)


def _logit_normal(p):
    loc, scale = _arr(p["loc"]), _arr(p["scale"])

    def log_density(x):
        logit = np.log(x) - np.log1p(-x)
        return stats.norm(loc, scale).logpdf(logit) - np.log(x) - np.log1p(-x)

    def cdf(x):
        return stats.norm(loc, scale).cdf(np.log(x) - np.log1p(-x))

    return _UnitIntervalLaw(log_density, cdf, loc.size, open_ends=True)


class _CategoricalLaw:
    """Categorical on 0..K-1 along the last axis of ``probs``; entropy by SciPy."""

    def __init__(self, probs):
        self.probs = _arr(probs)

    def logpmf(self, k):
        k = _arr(k)
        size = self.probs.shape[-1]
        valid = (k == np.floor(k)) & (k >= 0) & (k < size)
        index = np.where(valid, k, 0).astype(int)
        table = np.broadcast_to(self.probs, (*index.shape, size))
        with np.errstate(divide="ignore"):
            picked = np.log(np.take_along_axis(table, index[..., None], axis=-1)[..., 0])
        return np.where(valid, picked, -np.inf)

    def entropy(self):
        return stats.entropy(self.probs, axis=-1)


class _MultinomialLaw:
    """scipy.stats.multinomial with the per-category variance n p (1 - p)."""

    def __init__(self, n, probs):
        self.n, self.probs = _arr(n), _arr(probs)
        self._frozen = stats.multinomial(self.n.astype(int), self.probs)

    def logpmf(self, x):
        return self._frozen.logpmf(_arr(x))

    def entropy(self):
        return self._frozen.entropy()

    def mean(self):
        return self.n[..., None] * self.probs

    def var(self):
        return self.n[..., None] * self.probs * (1.0 - self.probs)


ONE_HOT_POINTS = [
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]],
    [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    [[1.0, 1.0, 0.0], [0.0, 0.5, 0.5]],
]

FAMILIES = [
    FamilyCase(
        D.Bernoulli,
        {"probs": [0.2, 0.5, 0.9, 0.0, 1.0]},
        lambda p: stats.bernoulli(_arr(p["probs"])),
        [[0.0, 1.0, 1.0, 0.0, 1.0], [1.0, 0.0, 2.0, 0.5, 0.0]],
        discrete=True,
        sample_check="moments",
    ),
    FamilyCase(
        D.Binomial,
        {"total_count": [3.0, 5.0, 10.0], "probs": [0.2, 0.5, 0.9]},
        lambda p: stats.binom(_arr(p["total_count"]), _arr(p["probs"])),
        [[0.0, 5.0, 10.0], [3.0, 6.0, 9.5], [-1.0, 2.0, 7.0]],
        discrete=True,
        sample_check="moments",
    ),
    FamilyCase(
        D.Geometric,
        {"probs": [0.2, 0.5, 0.9]},
        lambda p: stats.geom(_arr(p["probs"]), loc=-1),
        [[0.0, 3.0, 0.0], [2.5, -1.0, 1.0]],
        discrete=True,
        sample_check="moments",
    ),
    FamilyCase(
        D.Poisson,
        {"rate": [0.5, 2.0, 7.0]},
        lambda p: stats.poisson(_arr(p["rate"])),
        [[0.0, 3.0, 12.0], [1.5, -2.0, 4.0]],
        discrete=True,
        has_entropy=False,
        sample_check="moments",
    ),
    FamilyCase(
        D.NegativeBinomial,
        {"total_count": [2.0, 3.5, 1.0], "probs": [0.2, 0.5, 0.7]},
        lambda p: stats.nbinom(_arr(p["total_count"]), 1.0 - _arr(p["probs"])),
        [[0.0, 4.0, 9.0], [1.5, -1.0, 2.0]],
        discrete=True,
        has_entropy=False,
        sample_check="moments",
    ),
    FamilyCase(
        D.Categorical,
        {"probs": [[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.0, 0.0]]},
        lambda p: _CategoricalLaw(p["probs"]),
        [[3.0, 1.0], [0.0, 2.0], [4.0, -1.0], [1.5, 0.0]],
        discrete=True,
        has_moments=False,
        sample_check="none",
    ),
    FamilyCase(
        D.OneHotCategorical,
        {"probs": [[0.1, 0.2, 0.7], [0.5, 0.5, 0.0]]},
        lambda p: _MultinomialLaw([1.0, 1.0], p["probs"]),
        ONE_HOT_POINTS,
        discrete=True,
        sample_check="moments",
    ),
    FamilyCase(
        D.Multinomial,
        {"total_count": [3.0, 4.0], "probs": [[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]]},
        lambda p: _MultinomialLaw(p["total_count"], p["probs"]),
        [[[1.0, 1.0, 1.0], [0.0, 0.0, 4.0]], [[3.0, 0.0, 0.0], [1.0, 2.0, 2.0]]],
        discrete=True,
        sample_check="moments",
    ),
    FamilyCase(
        D.Beta,
        {"concentration1": [0.8, 2.0, 5.0], "concentration0": [1.5, 3.0, 0.9]},
        lambda p: stats.beta(_arr(p["concentration1"]), _arr(p["concentration0"])),
        [[0.0, 0.3, 1.0], [0.5, 1.2, -0.1], [0.999, 0.001, 0.7]],
    ),
    FamilyCase(
        D.ContinuousBernoulli,
        {"probs": [0.2, 0.5, 0.8, 0.4999]},
        _continuous_bernoulli,
        [[0.0, 0.3, 1.0, 0.5], [0.7, 1.2, -0.1, 0.999]],
    ),
    FamilyCase(
        D.Kumaraswamy,
        {"concentration1": [0.7, 2.0, 4.0], "concentration0": [1.5, 0.8, 3.0]},
        _kumaraswamy,
        [[0.3, 0.5, 0.9], [1.2, -0.1, 0.2], [0.999, 0.001, 0.5]],
    ),
    FamilyCase(
        D.LogitNormal,
        {"loc": [0.0, 1.0, -0.5], "scale": [1.0, 0.5, 1.5]},
        _logit_normal,
        [[0.5, 0.7, 0.1], [0.0, 1.0, 1.5], [0.999, 0.001, 0.5]],
        has_entropy=False,
        has_moments=False,
    ),
    FamilyCase(
        D.VonMises,
        {"loc": [0.0, 1.0, -2.0], "concentration": [0.5, 2.0, 8.0]},
        lambda p: stats.vonmises(_arr(p["concentration"]), loc=_arr(p["loc"])),
        [[-3.0, 0.0, -1.0], [1.0, 3.0, -3.1], [2.0, -2.0, 0.5]],
        label="loc",
        has_moments=False,
        sample_check="none",
    ),
    FamilyCase(
        D.VonMises,
        {"loc": [0.0, 0.0, 0.0], "concentration": [0.05, 1.0, 30.0]},
        lambda p: stats.vonmises(_arr(p["concentration"]), loc=_arr(p["loc"])),
        [[-3.0, 0.0, 0.1], [1.0, 3.0, -0.2]],
        label="centred",
        has_moments=False,
    ),
]
