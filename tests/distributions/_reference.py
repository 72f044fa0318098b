"""Independent references for the pair table: quadrature, enumeration, Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate


def _element(array, index):
    return float(np.asarray(array)[index]) if np.ndim(array) else float(array)


def quad_kl(p, q) -> np.ndarray:
    """∫ p log(p/q) over P's support, per batch element, by adaptive quadrature."""
    batch = p.batch_shape or q.batch_shape
    shape = np.broadcast_shapes(p.batch_shape, q.batch_shape)
    lower, upper = p.support_bounds()
    lower = np.broadcast_to(lower, shape)
    upper = np.broadcast_to(upper, shape)
    out = np.empty(shape)
    del batch
    for index in np.ndindex(*shape):
        lo, hi = float(lower[index]), float(upper[index])

        def integrand(x, index=index, lo=lo, hi=hi):
            if not lo < x < hi:  # an end point reached by rounding (measure zero)
                return 0.0
            value = np.full(shape, x)
            lp = _element(p.log_prob(value), index)
            density = math.exp(lp)
            if density == 0.0:  # also where the density underflows
                return 0.0
            lq = _element(q.log_prob(value), index)
            return density * (lp - lq)

        total, _ = integrate.quad(integrand, lo, hi, limit=500, epsabs=1e-13, epsrel=1e-11)
        out[index] = total
    return out


def sum_kl(p, q, *, max_support: int = 200_000) -> np.ndarray:
    """Σ P(k) log(P(k)/Q(k)) over k = 0, 1, ... until P's remaining mass is below 1e-15."""
    shape = np.broadcast_shapes(p.batch_shape, q.batch_shape)
    total = np.zeros(shape)
    mass = np.zeros(shape)
    start, step = 0, 256
    while start < max_support:
        k = np.arange(start, start + step, dtype=float).reshape((-1,) + (1,) * len(shape))
        values = np.broadcast_to(k, (step, *shape))
        lp = np.asarray(p.log_prob(values))
        lq = np.asarray(q.log_prob(values))
        prob = np.exp(lp)
        with np.errstate(invalid="ignore"):
            terms = np.where(prob > 0, prob * (lp - lq), 0.0)
        total = total + terms.sum(axis=0)
        mass = mass + prob.sum(axis=0)
        if np.all(1.0 - mass < 1e-15):
            break
        start += step
        step *= 2
    return total


def mc_kl(p, q, *, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded Monte Carlo: the mean of log p(X) − log q(X), X ~ P, and its standard error."""
    rng = np.random.default_rng(seed)
    x = p.sample((n,), rng=rng)
    ratio = np.asarray(p.log_prob(x)) - np.asarray(q.log_prob(x))
    return ratio.mean(axis=0), ratio.std(axis=0, ddof=1) / math.sqrt(n)
