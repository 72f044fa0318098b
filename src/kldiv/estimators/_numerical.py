r"""Deterministic numerical estimates: adaptive quadrature (1-D) and enumeration (discrete).

Quadrature integrates :math:`p(x)\,[\log p(x) - \log q(x)]` over P's support
with ``scipy.integrate.quad``, split at P's 0.1%, 50% and 99.9% quantiles (read
off a seeded sample) so that the bulk is integrated on finite pieces and the
tails by quad's transformation of infinite ranges. Its error is quad's own
absolute-error estimate, summed over the pieces.

Enumeration sums :math:`P(k) \log(P(k)/Q(k))` over a discrete univariate P's
support, to its end when finite, else until P's remaining mass is below
``tail_mass``; the dropped mass and an estimate of the dropped terms are
reported.

Both run on NumPy copies (they are not differentiable) and loop over batch
elements.
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any

import numpy as np

from kldiv._array_api import to_numpy
from kldiv.distributions._convert import as_numpy_distribution

__all__ = ["enumeration_kl", "quadrature_kl"]


def _batch_shape(p: Any, q: Any) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(p.batch_shape, q.batch_shape))


def _at(values: Any, index: tuple[int, ...], shape: tuple[int, ...]) -> float:
    return float(np.broadcast_to(np.asarray(to_numpy(values)), shape)[index])


def _support_outside(p: Any, q: Any, shape: tuple[int, ...]) -> np.ndarray:
    p_lo, p_hi = (np.broadcast_to(to_numpy(b), shape) for b in p.support_bounds())
    q_lo, q_hi = (np.broadcast_to(to_numpy(b), shape) for b in q.support_bounds())
    return (p_lo < q_lo) | (p_hi > q_hi)


def quadrature_kl(
    p: Any, q: Any, *, rtol: float, atol: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, int]:
    """D(P ‖ Q) for 1-D continuous P and Q by adaptive quadrature.

    Returns:
        ``(value, error, evaluations)``: float64 arrays of the broadcast batch
        shape (``+inf`` where P's support is not inside Q's) and the number of
        integrand evaluations.
    """
    p, q = as_numpy_distribution(p), as_numpy_distribution(q)
    shape = _batch_shape(p, q)
    outside = _support_outside(p, q, shape)
    lower, upper = (np.broadcast_to(to_numpy(b), shape) for b in p.support_bounds())
    draws = np.asarray(p.sample((2001,), rng=np.random.default_rng(seed)), dtype=float)
    draws = np.broadcast_to(draws, (2001, *shape))
    value = np.empty(shape)
    error = np.empty(shape)
    evaluations = 0
    for index in np.ndindex(*shape):
        if outside[index]:
            value[index], error[index] = math.inf, 0.0
            continue

        def integrand(x: float, index: tuple[int, ...] = index) -> float:
            point = np.full(shape, x)
            lp = _at(p.log_prob(point), index, shape)
            if lp == -math.inf:
                return 0.0
            lq = _at(q.log_prob(point), index, shape)
            return math.exp(lp) * (lp - lq)

        cuts = np.quantile(draws[(slice(None), *index)], [0.001, 0.5, 0.999])
        edges = [float(lower[index]), *sorted(set(cuts.tolist())), float(upper[index])]
        total, err = 0.0, 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for a, b in itertools.pairwise(edges):
                if b <= a:
                    continue
                piece, piece_err, info = _quad(integrand, a, b, rtol, atol)
                total += piece
                err += piece_err
                evaluations += info
        value[index] = total if math.isfinite(total) else math.inf
        error[index] = err if math.isfinite(total) else 0.0
    return value, error, evaluations


def _quad(f: Any, a: float, b: float, rtol: float, atol: float) -> tuple[float, float, int]:
    from scipy import integrate

    result, err, info = integrate.quad(
        f, a, b, epsabs=atol * 1e-2, epsrel=rtol * 1e-3, limit=500, full_output=True
    )[:3]
    return result, err, int(info["neval"])


def enumeration_kl(
    p: Any, q: Any, *, tail_mass: float = 1e-13, max_support: int = 10_000_000
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """D(P ‖ Q) for discrete univariate P and Q by summing over P's support.

    Returns:
        ``(value, tail_estimate, evaluations, dropped_mass)``: float64 arrays
        of the broadcast batch shape (``+inf`` where Q misses a point of P's
        support), the number of support points summed, and P's mass left out.
    """
    p, q = as_numpy_distribution(p), as_numpy_distribution(q)
    shape = _batch_shape(p, q)
    lower, upper = (np.broadcast_to(to_numpy(b), shape) for b in p.support_bounds())
    start = int(np.min(np.where(np.isfinite(lower), lower, 0.0)))
    stop_at = float(np.max(upper))
    total = np.zeros(shape)
    mass = np.zeros(shape)
    last_block = np.zeros(shape)
    k0, step = start, 1024
    evaluations = 0
    while k0 < start + max_support:
        hi = min(k0 + step, int(stop_at) + 1) if math.isfinite(stop_at) else k0 + step
        ks = np.arange(k0, hi, dtype=float).reshape((-1,) + (1,) * len(shape))
        values = np.broadcast_to(ks, (ks.shape[0], *shape))
        with np.errstate(all="ignore"):
            lp = np.asarray(p.log_prob(values), dtype=float)
            lq = np.asarray(q.log_prob(values), dtype=float)
            prob = np.exp(lp)
            terms = np.where(prob > 0, prob * (lp - lq), 0.0)
        last_block = terms.sum(axis=0)
        total = total + last_block
        mass = mass + prob.sum(axis=0)
        evaluations += ks.shape[0]
        k0 = hi
        if (math.isfinite(stop_at) and k0 > stop_at) or np.all(1.0 - mass < tail_mass):
            break
        step *= 2
    dropped = np.clip(1.0 - mass, 0.0, None)
    tail = np.where(np.isfinite(total), np.abs(last_block) * (dropped > tail_mass), 0.0)
    return total, tail, evaluations, dropped
