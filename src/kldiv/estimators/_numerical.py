r"""Deterministic numerical estimates that check themselves: quadrature (1-D) and enumeration.

Both run on float64 NumPy copies of P and Q (they are not differentiable),
loop over batch elements, and return, besides the value, an error that
includes everything the method could not rule out, and whether it met its
target ``max(atol, rtol·|value|)`` (``converged``), with the reason when not.

**Quadrature.** :math:`D = \int p(x)\,[\log p(x) - \log q(x)]\,dx` over P's
support ``[lo, hi]`` is split at a centre ``c`` into two *sides*, each
integrated in a logarithmic variable ``t``:

* towards a finite end ``e``: :math:`x = e \pm e^t`, ``dx = e^t dt``. An
  integrable endpoint singularity (Beta(0.02, ·): :math:`p \sim x^{-0.98}`,
  half of the mass below 1e-16) becomes a smooth function of ``t`` that
  decays like :math:`e^{s t}`; the part beyond the last representable point
  (1e-300 from 0, or 8 ulps from a non-zero end) is the closed-form integral
  of the fitted tail model :math:`e^{-s\tau}(h_0 + b\tau)` (a power times a
  linear function of the log-distance), with the disagreement of two fits as
  its error;
* towards an infinite end: :math:`x = c \pm w\,(e^t - 1)`, ``dx = w e^t dt``.

On each side the log of the integrand, :math:`L(t) = \log p + \log|\log p -
\log q| + \log\frac{dx}{dt}`, is probed on a grid of ``t`` out to the last
representable point. The integral **diverges** when, at the far end, the
density part decays (rate ``s``) no faster than the log-ratio grows (rate
``γ``, 0 for a log-ratio linear in ``t``): :math:`s - γ \le 0`; a finite value
is never reported then, and +inf never when :math:`s - γ > 0`. Otherwise the
side is integrated up to where ``L`` stays 60 below its peak (the rest is
bounded by the tail model) on pieces cut at P's quantiles and the location
parameters (kinks), by ``scipy.integrate.quad`` and, independently, by a
tanh-sinh (double-exponential) rule; the error of a piece is the larger of
quad's estimate and the two rules' disagreement.

**Enumeration.** :math:`D = \sum_k P(k) \log(P(k)/Q(k))` over the integers of
a window centred on P's bulk (mean ± 10 standard deviations, clipped to the
support), widened on either side until the tail beyond it is bounded: where
the log of the envelope :math:`P(k)(|\log P(k)| + |\log Q(k)|) \ge |P(k)
\log(P(k)/Q(k))|` is concave and decreasing at the window's edge (checked on
its last 32 points), the tail is at most a geometric series,
:math:`e_K\, r/(1 - r)` with :math:`r` the last ratio. Where the tail cannot be
bounded within ``max_support`` points, or the window holds less than all
of P's mass (a P off the integers), the estimate is not converged and its
error is infinite.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kldiv._array_api import to_numpy
from kldiv.distributions._convert import _with_arrays_converted, as_numpy_distribution

__all__ = ["NumericalResult", "enumeration_kl", "quadrature_kl"]

_EPS = float(np.finfo(np.float64).eps)
_NEGLIGIBLE = 60.0  # a part of the integrand e^-60 below its peak is left to the tail bound
_DIVERGENT_RATE = 1e-6  # s - γ at or below this: the integral diverges


@dataclass
class NumericalResult:
    """Per-element value, error, convergence and reason of a numerical estimate."""

    value: np.ndarray
    error: np.ndarray
    converged: np.ndarray
    evaluations: int
    reasons: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _float64(d: Any) -> Any:
    """A NumPy float64 copy of ``d``: float32 torch parameters lose digits in lgamma(1e8)."""
    d = as_numpy_distribution(d)

    def convert(value: Any) -> Any:
        if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
            return value.astype(np.float64)
        if isinstance(value, np.floating):
            return np.float64(value)
        return value

    return _with_arrays_converted(d, convert, d.xp)


def _batch_shape(p: Any, q: Any) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(p.batch_shape, q.batch_shape))


def _at(values: Any, index: tuple[int, ...], shape: tuple[int, ...]) -> float:
    return float(np.broadcast_to(np.asarray(to_numpy(values)), shape)[index])


def _support_outside(p: Any, q: Any, shape: tuple[int, ...]) -> np.ndarray:
    p_lo, p_hi = (np.broadcast_to(to_numpy(b), shape) for b in p.support_bounds())
    q_lo, q_hi = (np.broadcast_to(to_numpy(b), shape) for b in q.support_bounds())
    return (p_lo < q_lo) | (p_hi > q_hi)


def _log_probs(
    p: Any, q: Any, index: tuple[int, ...], shape: tuple[int, ...]
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``x -> (log p(x), log q(x))`` for batch element ``index``, vectorised over 1-D ``x``."""

    def evaluate(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        points = np.broadcast_to(x.reshape(-1, *(1,) * len(shape)), (x.size, *shape))
        with np.errstate(all="ignore"):
            lp = np.broadcast_to(np.asarray(p.log_prob(points), dtype=np.float64), points.shape)
            lq = np.broadcast_to(np.asarray(q.log_prob(points), dtype=np.float64), points.shape)
        where = (slice(None), *index)
        return np.array(lp[where]), np.array(lq[where])

    return evaluate


def _terms(lp: np.ndarray, lq: np.ndarray) -> np.ndarray:
    r""":math:`p(\log p - \log q)`, 0 where p is 0 (also by underflow), +inf where only q is."""
    with np.errstate(all="ignore"):
        density = np.exp(lp)
        return np.where(density > 0.0, density * (lp - lq), 0.0)


# ---------------------------------------------------------------------------------------
# quadrature


@dataclass
class _Side:
    """One side of the centre: ``x(t)``, ``log dx/dt``, and the ``t`` range, near end first."""

    x_of: Callable[[np.ndarray], np.ndarray]
    log_jacobian: Callable[[np.ndarray], np.ndarray]
    t_of: Callable[[float], float]
    t_near: float
    t_limit: float  # the farthest representable t

    @property
    def direction(self) -> float:
        return 1.0 if self.t_limit > self.t_near else -1.0


def _endpoint_side(end: float, sign: float, centre: float) -> _Side:
    """``x = end + sign·e^t``: from the centre (near) towards the finite ``end`` (far)."""
    tiny = max(1e-300, 8.0 * _EPS * abs(end))
    near = math.log(abs(centre - end))
    return _Side(
        x_of=lambda t: end + sign * np.exp(t),
        log_jacobian=lambda t: np.asarray(t, dtype=np.float64),
        t_of=lambda x: math.log(sign * (x - end)) if sign * (x - end) > 0 else -math.inf,
        t_near=near,
        t_limit=min(math.log(tiny), near - 1.0),
    )


def _infinite_side(centre: float, sign: float, width: float) -> _Side:
    """``x = centre + sign·w·(e^t - 1)``: from the centre (t = 0) towards ±infinity."""
    log_width = math.log(width)
    reach = min(max(abs(centre), width) * 1e100, 1e150)  # x² stays finite in log densities
    return _Side(
        x_of=lambda t: centre + sign * width * np.expm1(t),
        log_jacobian=lambda t: log_width + np.asarray(t, dtype=np.float64),
        t_of=lambda x: (
            math.log1p(sign * (x - centre) / width) if sign * (x - centre) > -width else -math.inf
        ),
        t_near=0.0,
        t_limit=math.log1p(reach / width),
    )


def _sides(lo: float, hi: float, quantiles: np.ndarray) -> list[_Side]:
    """The two sides of the support and the centre between them."""
    q001, median, q999 = (float(v) for v in quantiles[[0, 3, 6]])
    finite_lo, finite_hi = math.isfinite(lo), math.isfinite(hi)
    if finite_lo and finite_hi:
        centre = 0.5 * (lo + hi)
        return [_endpoint_side(lo, 1.0, centre), _endpoint_side(hi, -1.0, centre)]
    if finite_lo:
        reach = q999 - lo if q999 - lo > 0 else 1.0
        centre = lo + 0.5 * reach
        return [_endpoint_side(lo, 1.0, centre), _infinite_side(centre, 1.0, 0.5 * reach)]
    if finite_hi:
        reach = hi - q001 if hi - q001 > 0 else 1.0
        centre = hi - 0.5 * reach
        return [_infinite_side(centre, -1.0, 0.5 * reach), _endpoint_side(hi, -1.0, centre)]
    spread = q999 - q001 if q999 > q001 else 1.0
    left = median - q001 if median > q001 else 0.5 * spread
    right = q999 - median if q999 > median else 0.5 * spread
    return [_infinite_side(median, -1.0, left), _infinite_side(median, 1.0, right)]


@dataclass
class _Tail:
    """What the probes of one side found."""

    divergent: bool
    t_end: float
    remainder: float
    remainder_error: float
    rate: float


def _fit_slope(t: np.ndarray, y: np.ndarray) -> float:
    return float(np.polyfit(t, y, 1)[0]) if t.size >= 2 else math.nan


def _probe(side: _Side, evaluate: Callable) -> _Tail:
    """Probes ``L(t)`` out to the far end; decides divergence and bounds the rest of the side."""
    count = int(min(4000, max(8, math.ceil(abs(side.t_limit - side.t_near) / 0.5))))
    t = np.linspace(side.t_near, side.t_limit, count + 1)
    x = side.x_of(t)
    lp, lq = evaluate(x)
    with np.errstate(all="ignore"):
        log_mass = np.where(np.exp(lp) > 0.0, lp + side.log_jacobian(t), -np.inf)
        log_ratio = np.log(np.abs(lp - lq))
        magnitude = log_mass + np.where(np.isnan(log_ratio), -np.inf, log_ratio)
    alive = np.isfinite(log_mass)
    overflow = np.nonzero(alive & (lq == -np.inf))[0]
    if overflow.size:
        # P has density where log q is -inf: inside Q's support that is log q
        # overflowing (Gumbel's -e^{x/s}), not q = 0. The value may be finite but
        # beyond float64's reach: integrate up to there and leave the rest unbounded.
        stop = max(int(overflow[0]) - 1, 0)
        return _Tail(False, float(t[stop]), 0.0, math.inf, -math.inf)
    finite = np.isfinite(magnitude)
    if not np.any(finite):
        return _Tail(False, side.t_near, 0.0, 0.0, math.inf)
    peak = float(np.max(magnitude[finite]))
    above = np.nonzero(finite & (magnitude > peak - _NEGLIGIBLE))[0]
    last = int(above[-1])
    end = min(last + 1, count)
    alive_idx = np.nonzero(alive & finite)[0]
    tail_idx = alive_idx[-12:]
    tau = np.abs(t[tail_idx] - t[tail_idx[0]]) if tail_idx.size else np.zeros(0)
    if tail_idx.size < 4 or alive_idx[-1] < count - 1:
        # P's density underflowed before the probes ended: nothing is left beyond
        bound = math.exp(min(float(magnitude[end]) if finite[end] else -math.inf, 700.0))
        return _Tail(False, float(t[end]), 0.0, bound * 10.0, math.inf)
    # P still has density at the last representable point: the tail's rates decide
    s = -_fit_slope(tau, log_mass[tail_idx])  # the density part decays like e^{-s τ}
    h = (lp - lq)[tail_idx]
    b = _fit_slope(tau, h)
    curvature = np.max(np.abs(np.diff(h, 2))) if h.size > 2 else 0.0
    step = float(tau[1] - tau[0]) if tau.size > 1 else 1.0
    linear = curvature <= 1e-3 * max(abs(b) * step, 1e-300) + 1e-9 * np.max(np.abs(h))
    gamma = 0.0 if linear else max(_fit_slope(tau, np.log(np.abs(h))), 0.0)
    rate = s - gamma
    if not rate > _DIVERGENT_RATE:
        return _Tail(True, side.t_limit, math.inf, math.nan, rate)
    if end < count:  # the integrand fell 60 below its peak and decays at the end
        bound = math.exp(float(magnitude[end])) / rate
        return _Tail(False, float(t[end]), 0.0, bound, rate)
    # the integrand is not negligible at the last point: the closed-form tail beyond it
    k = int(tail_idx[-1])
    m0 = math.exp(float(log_mass[k]))
    h0 = float(lp[k] - lq[k])
    if linear:
        remainder = m0 * (h0 / s + b / s**2)
        half = tail_idx[: tail_idx.size // 2 + 1]
        tau_h = np.abs(t[half] - t[half[0]])
        s2 = -_fit_slope(tau_h, log_mass[half])
        b2 = _fit_slope(tau_h, (lp - lq)[half])
        other = m0 * (h0 / s2 + b2 / s2**2) if s2 > _DIVERGENT_RATE else math.inf
        error = abs(remainder - other) + 0.01 * abs(remainder)
    else:
        remainder = math.copysign(math.exp(float(magnitude[k])) / rate, h0)
        error = abs(remainder)
    return _Tail(False, side.t_limit, remainder, error, rate)


def _tanh_sinh(g: Callable[[np.ndarray], np.ndarray], a: float, b: float, tol: float) -> float:
    """∫_a^b g by the tanh-sinh rule, halving the step until two levels agree (≤ 8 levels)."""
    centre, half = 0.5 * (a + b), 0.5 * (b - a)
    previous = math.nan
    for level in range(1, 9):
        h = 2.0**-level
        k = np.arange(-int(3.2 / h), int(3.2 / h) + 1) * h
        u = 0.5 * math.pi * np.sinh(k)
        nodes = np.tanh(u)
        weights = 0.5 * math.pi * np.cosh(k) / np.cosh(u) ** 2
        inside = np.abs(nodes) < 1.0
        values = g(centre + half * nodes[inside])
        total = float(half * h * np.sum(weights[inside] * values))
        if level > 3 and abs(total - previous) <= tol:
            return total
        previous = total
    return previous


def _integrate_side(
    side: _Side,
    t_end: float,
    cuts: list[float],
    evaluate: Callable,
    rtol: float,
    atol: float,
) -> tuple[float, float, int]:
    """Value, error (≥ the disagreement of quad and tanh-sinh) and evaluations on one side."""
    from scipy import integrate

    lo_t, hi_t = sorted((side.t_near, t_end))
    inner = sorted({c for c in (side.t_of(x) for x in cuts) if lo_t < c < hi_t})
    edges = [lo_t, *inner, hi_t]

    def g(t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        lp, lq = evaluate(side.x_of(t))
        with np.errstate(all="ignore"):
            return _terms(lp, lq) * np.exp(side.log_jacobian(t))

    total, error, evaluations = 0.0, 0.0, 0
    for a, b in itertools.pairwise(edges):
        if not b > a:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = integrate.quad(
                lambda u: float(g(np.array([u]))[0]),
                a,
                b,
                epsabs=atol * 1e-2,
                epsrel=rtol * 1e-3,
                limit=200,
                full_output=True,
            )
        value, estimate = float(out[0]), float(out[1])
        evaluations += int(out[2]["neval"])
        if len(out) > 3:  # QUADPACK flagged a problem: its error estimate is not trusted
            estimate = math.inf
        check = _tanh_sinh(g, a, b, tol=max(atol * 1e-2, rtol * 1e-3 * abs(value)))
        evaluations += 2 * int(3.2 * 2**8) + 1
        if not math.isfinite(value):
            value, estimate = check, math.inf
        disagreement = abs(value - check) if math.isfinite(check) else math.inf
        if math.isinf(estimate):
            value = check if math.isfinite(check) else value
            estimate = max(disagreement, 0.0) if math.isfinite(check) else math.inf
        total += value
        error += max(estimate, disagreement)
    return total, error, evaluations


def _has_scalar_loc(d: Any) -> bool:
    """Whether ``d`` has a location parameter with one value per batch element."""
    loc = getattr(d, "loc", None)
    return loc is not None and not d.event_shape and tuple(np.shape(loc)) == d.batch_shape


def quadrature_kl(p: Any, q: Any, *, rtol: float, atol: float, seed: int = 0) -> NumericalResult:
    """D(P ‖ Q) for 1-D continuous P and Q by quadrature that checks itself (module docstring).

    Returns:
        A :class:`NumericalResult` of the broadcast batch shape: ``+inf`` (error
        NaN) where the tails show a divergent integral, ``+inf`` (error 0)
        where P's support is not inside Q's; ``converged`` False where the
        error is above ``max(atol, rtol·|value|)``.
    """
    p, q = _float64(p), _float64(q)
    shape = _batch_shape(p, q)
    outside = _support_outside(p, q, shape)
    lower, upper = (np.broadcast_to(to_numpy(b), shape) for b in p.support_bounds())
    n_draws = 4001
    draws = np.asarray(p.sample((n_draws,), rng=np.random.default_rng(seed)), dtype=float)
    extra_axes = (1,) * (len(shape) - len(p.batch_shape))
    draws = np.broadcast_to(draws.reshape(n_draws, *extra_axes, *p.batch_shape), (n_draws, *shape))
    value, error = np.empty(shape), np.empty(shape)
    converged = np.ones(shape, dtype=bool)
    reasons: list[str] = []
    evaluations = 0
    levels = [0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999]
    for index in np.ndindex(*shape):
        if outside[index]:
            value[index], error[index] = math.inf, 0.0
            continue
        lo, hi = float(lower[index]), float(upper[index])
        sample = draws[(slice(None), *index)]
        sample = sample[np.isfinite(sample)]
        quantiles = np.quantile(sample, levels) if sample.size else np.zeros(len(levels))
        quantiles = np.clip(quantiles, lo, hi)
        kinks = [_at(d.loc, index, shape) for d in (p, q) if _has_scalar_loc(d)]
        cuts = [float(c) for c in [*quantiles, *kinks] if lo < c < hi]
        evaluate = _log_probs(p, q, index, shape)
        total, err, divergent, why = 0.0, 0.0, False, ""
        for side in _sides(lo, hi, quantiles):
            tail = _probe(side, evaluate)
            evaluations += 4000
            if tail.divergent:
                divergent = True
                why = f"the integrand's tail does not decay (rate {tail.rate:.3g} ≤ 0)"
                break
            piece, piece_err, count = _integrate_side(side, tail.t_end, cuts, evaluate, rtol, atol)
            evaluations += count
            total += piece + tail.remainder
            err += piece_err + tail.remainder_error
        if divergent:
            value[index], error[index] = math.inf, math.nan
            continue
        if math.isnan(total) or math.isnan(err):
            value[index], error[index] = total, math.inf
            converged[index] = False
            reasons.append(f"element {index}: the integrand is not finite")
            continue
        err += 16.0 * _EPS * abs(total)
        value[index], error[index] = total, err
        if math.isinf(total):
            error[index] = 0.0
        elif not err <= max(atol, rtol * abs(total)):
            converged[index] = False
            reasons.append(
                f"element {index}: the quadrature error {err:.3g} is above the target "
                f"{max(atol, rtol * abs(total)):.3g}" + (f" ({why})" if why else "")
            )
    return NumericalResult(value, error, converged, evaluations, reasons)


# ---------------------------------------------------------------------------------------
# enumeration

_EDGE = 32  # points at each edge on which the tail's log-concavity is checked


def _tail_bound(
    log_envelope: np.ndarray, log_p: np.ndarray, distance: float
) -> tuple[float, float] | None:
    """Bounds of the terms and of the mass beyond an edge (the arrays run towards it).

    The log-envelope's steps at the edge give the ratio of successive terms. If
    the steps do not increase (a log-concave tail) the last ratio bounds all the
    ratios beyond; if they increase by Δ per point (a ratio rising to its limit
    like 1 - c/k, as for a negative binomial of count below 1), the limit is
    taken as the last step plus 2·Δ·``distance`` (the distance of the edge
    from the support's start). None where the ratio is not below 1 then.
    """
    tail = log_envelope[-_EDGE:]
    if tail.size and np.all(tail == -np.inf):
        return 0.0, 0.0
    if tail.size < 4 or not np.all(np.isfinite(tail)):
        return None

    def geometric(log_values: np.ndarray) -> float | None:
        steps = np.diff(log_values)
        rise = float(np.max(np.diff(steps)))
        slack = 1e-9 * (1.0 + abs(float(log_values[-1])))
        limit = float(steps[-1]) + (0.0 if rise <= slack else 2.0 * rise * (distance + 1.0))
        if not limit < 0.0:
            return None
        r = math.exp(limit)
        return math.exp(min(float(log_values[-1]), 700.0)) * r / -math.expm1(limit)

    bound = geometric(tail)
    if bound is None:
        return None
    mass_tail = log_p[-_EDGE:]
    mass = geometric(mass_tail) if np.all(np.isfinite(mass_tail)) else 0.0
    return bound, (math.inf if mass is None else mass)


def _moments(p: Any, index: tuple[int, ...], shape: tuple[int, ...], seed: int) -> tuple:
    """P's mean and standard deviation, or a robust centre and spread from seeded draws."""
    try:
        mean = _at(p.mean, index, shape)
        std = math.sqrt(_at(p.variance, index, shape))
        if math.isfinite(mean) and math.isfinite(std):
            return mean, std
    except (NotImplementedError, AttributeError, TypeError, ValueError):
        pass
    draws = np.asarray(to_numpy(p.sample((2001,), rng=np.random.default_rng(seed))), dtype=float)
    column = np.broadcast_to(draws.reshape(2001, -1), (2001, max(1, int(np.prod(shape)))))
    flat = np.ravel_multi_index(index, shape) if shape else 0
    values = column[:, flat]
    return float(np.median(values)), float(np.max(values) - np.min(values)) + 1.0


def enumeration_kl(
    p: Any,
    q: Any,
    *,
    rtol: float = 1e-3,
    atol: float = 1e-4,
    max_support: int = 10_000_000,
    seed: int = 0,
) -> NumericalResult:
    """D(P ‖ Q) for discrete univariate P and Q by summing over a window around P's bulk.

    Returns:
        A :class:`NumericalResult` of the broadcast batch shape (``+inf`` with
        error 0 where Q misses a point of P's support); ``extra`` holds
        ``dropped_mass`` (a bound on P's mass outside the windows) and the
        window per element.
    """
    p, q = _float64(p), _float64(q)
    shape = _batch_shape(p, q)
    outside = _support_outside(p, q, shape)
    lower, upper = (np.broadcast_to(to_numpy(b), shape) for b in p.support_bounds())
    value, error = np.empty(shape), np.empty(shape)
    dropped = np.zeros(shape)
    converged = np.ones(shape, dtype=bool)
    reasons: list[str] = []
    windows: dict[str, tuple[int, int]] = {}
    evaluations = 0
    for index in np.ndindex(*shape):
        if outside[index]:  # P's support reaches beyond Q's: +inf, exactly
            value[index], error[index] = math.inf, 0.0
            continue
        lo, hi = float(lower[index]), float(upper[index])
        evaluate = _log_probs(p, q, index, shape)
        mean, std = _moments(p, index, shape, seed)
        a = math.floor(max(lo, mean - 10.0 * std - 10.0)) if math.isfinite(mean) else lo
        b = math.ceil(min(hi, mean + 10.0 * std + 10.0)) if math.isfinite(mean) else lo + 1024
        a = max(a, math.ceil(lo)) if math.isfinite(lo) else a
        why = ""
        if not (math.isfinite(a) and math.isfinite(b)) or b - a + 1 > max_support:
            value[index], error[index], converged[index] = math.nan, math.inf, False
            dropped[index] = 1.0
            reasons.append(
                f"element {index}: P's bulk (mean {mean:.4g} ± 10 × {std:.4g}) spans more "
                f"than max_support = {max_support} points"
            )
            continue
        ks = np.arange(a, b + 1, dtype=np.float64)
        lp, lq = evaluate(ks)
        evaluations += ks.size
        bounds: dict[str, tuple[float, float] | None] = {}
        for _ in range(64):  # each round doubles a side's extension: bounded
            with np.errstate(all="ignore"):
                envelope = np.where(
                    np.exp(lp) > 0, lp + np.log(np.abs(lp) + np.abs(lq) + 1e-300), -np.inf
                )
            grow = {}
            for edge in ("lower", "upper"):
                at_end = (ks[0] <= lo) if edge == "lower" else (ks[-1] >= hi)
                if at_end:
                    bounds[edge] = (0.0, 0.0)
                    continue
                order = slice(None, None, -1) if edge == "lower" else slice(None)
                distance = ks[-1] - lo if math.isfinite(lo) else ks.size
                bounds[edge] = _tail_bound(envelope[order], lp[order], float(distance))
                target = 1e-15 * max(1.0, abs(float(np.sum(_terms(lp, lq)))))
                if bounds[edge] is None or bounds[edge][0] > target or bounds[edge][1] > 1e-14:
                    grow[edge] = max(64, ks.size)
            if not grow or ks.size >= max_support:
                break
            if "lower" in grow:
                n = int(min(grow["lower"], ks[0] - lo if math.isfinite(lo) else grow["lower"]))
                n = min(n, max_support - ks.size)
                new = np.arange(ks[0] - n, ks[0], dtype=np.float64)
                nlp, nlq = evaluate(new)
                ks, lp, lq = (
                    np.concatenate([new, ks]),
                    np.concatenate([nlp, lp]),
                    np.concatenate([nlq, lq]),
                )
                evaluations += new.size
            if "upper" in grow and ks.size < max_support:
                n = int(min(grow["upper"], hi - ks[-1] if math.isfinite(hi) else grow["upper"]))
                n = min(n, max_support - ks.size)
                new = np.arange(ks[-1] + 1, ks[-1] + 1 + n, dtype=np.float64)
                nlp, nlq = evaluate(new)
                ks, lp, lq = (
                    np.concatenate([ks, new]),
                    np.concatenate([lp, nlp]),
                    np.concatenate([lq, nlq]),
                )
                evaluations += new.size
        terms = _terms(lp, lq)
        total = float(np.sum(terms))
        mass = float(np.sum(np.exp(lp)))
        windows[str(index)] = (int(ks[0]), int(ks[-1]))
        tail_terms = sum(bd[0] for bd in bounds.values() if bd is not None)
        tail_mass = sum(bd[1] for bd in bounds.values() if bd is not None)
        unbounded = any(bd is None for bd in bounds.values())
        dropped[index] = min(1.0, max(tail_mass, 1.0 - mass, 0.0))
        if math.isinf(total):
            value[index], error[index] = total, 0.0
            continue
        if mass < 1.0 - 1e-6 and not unbounded and tail_mass < 1e-6:
            why = (
                f"the window [{int(ks[0])}, {int(ks[-1])}] holds P mass {mass:.6g}, not 1: "
                "P's mass is not on the integers it can enumerate"
            )
            unbounded = True
        # rounding: the summation, and log-density errors that show as a mass ≠ 1
        mean_ratio = float(np.sum(np.abs(terms))) / max(mass, 1e-300)
        normalisation = max(abs(1.0 - mass) - tail_mass, 0.0) * mean_ratio
        rounding = 8.0 * _EPS * math.log2(ks.size + 1) * float(np.sum(np.abs(terms)))
        value[index] = total
        if unbounded:
            error[index], converged[index] = math.inf, False
            reasons.append(
                f"element {index}: "
                + (why or f"the tail beyond [{int(ks[0])}, {int(ks[-1])}] cannot be bounded")
            )
            continue
        error[index] = tail_terms + normalisation + rounding
        if not error[index] <= max(atol, rtol * abs(total)):
            converged[index] = False
            reasons.append(
                f"element {index}: the enumeration error {error[index]:.3g} is above the "
                f"target {max(atol, rtol * abs(total)):.3g}"
            )
    return NumericalResult(
        value,
        error,
        converged,
        evaluations,
        reasons,
        {"dropped_mass": dropped, "windows": windows},
    )
