r"""Deterministic approximations and bounds of the KL divergence between Gaussian mixtures.

For :math:`f = \sum_a \pi_a f_a` and :math:`g = \sum_b \omega_b g_b` with
Gaussian components (Normal or MultivariateNormal; a single Gaussian is a
mixture of one), with :math:`D` the KL divergence, :math:`H(\cdot,\cdot)` the
cross-entropy and :math:`z_{ab} = \int f_a g_b = \mathcal N(\mu_a; \mu_b,
\Sigma_a + \Sigma_b)`:

- variational approximation (Hershey & Olsen 2007, eq. 20):
  :math:`\sum_a \pi_a \log \frac{\sum_{a'} \pi_{a'} e^{-D(f_a\|f_{a'})}}
  {\sum_b \omega_b e^{-D(f_a\|g_b)}}`;
- product-of-Gaussians approximation (Hershey & Olsen 2007, eq. 13):
  :math:`\sum_a \pi_a \log \frac{\sum_{a'} \pi_{a'} z_{aa'}}{\sum_b \omega_b z_{ab}}`;
- bounds from :math:`D(f\|g) = H(f, g) - H(f)` and Jensen's inequality on
  each term (as in Durrieu, Thiran & Kelly 2012):
  :math:`-\sum_a \pi_a \log\sum_b \omega_b z_{ab} \le H(f, g) \le
  -\sum_a \pi_a \log\sum_b \omega_b e^{-H(f_a, g_b)}` and
  :math:`-\sum_a \pi_a \log\sum_{a'} \pi_{a'} z_{aa'} \le H(f) \le
  \min\big(-\sum_a \pi_a\log\sum_{a'}\pi_{a'}e^{-H(f_a, f_{a'})},\;
  H(\pi) + \sum_a \pi_a H(f_a)\big)`; the lower bound is clipped at 0.

The approximations are not bounds (they can fall either side of the truth);
the bounds are rigorous but can be loose. All are computed in float64 NumPy
and reported as diagnostics, next to a Monte Carlo estimate with its error bar.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kldiv._array_api import to_numpy

__all__ = ["gaussian_mixture_parts", "mixture_bounds"]


def _as_numpy(x: Any) -> np.ndarray:
    return np.asarray(to_numpy(x), dtype=np.float64)


def gaussian_mixture_parts(d: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(weights [..., K], means [..., K, k], covariances [..., K, k, k])`` or None.

    For a Normal, a MultivariateNormal, or a MixtureSameFamily of either; None
    for any other distribution.
    """
    from kldiv import distributions

    mixture_cls = getattr(distributions, "MixtureSameFamily", None)
    if mixture_cls is not None and isinstance(d, mixture_cls):
        weights = _as_numpy(d.mixture_distribution.probs)
        parts = _gaussian(d.component_distribution)
        if parts is None:
            return None
        means, covariances = parts
        return weights, means, covariances
    parts = _gaussian(d)
    if parts is None:
        return None
    means, covariances = parts
    weights = np.ones((*means.shape[:-1], 1))
    return weights, means[..., None, :], covariances[..., None, :, :]


def _gaussian(d: Any) -> tuple[np.ndarray, np.ndarray] | None:
    from kldiv import distributions

    if isinstance(d, distributions.Normal):
        loc, scale = _as_numpy(d.loc), _as_numpy(d.scale)
        return loc[..., None], (scale * scale)[..., None, None]
    mvn = getattr(distributions, "MultivariateNormal", None)
    if mvn is not None and isinstance(d, mvn):
        return _as_numpy(d.loc), _as_numpy(d.covariance_matrix)
    return None


def _pairwise(
    means_a: np.ndarray, cov_a: np.ndarray, means_b: np.ndarray, cov_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """KL(a ‖ b), cross-entropy H(a, b) and log z_ab for every pair: [..., Ka, Kb]."""
    k = means_a.shape[-1]
    ma, ca = means_a[..., :, None, :], cov_a[..., :, None, :, :]
    mb, cb = means_b[..., None, :, :], cov_b[..., None, :, :, :]
    diff = mb - ma
    _, logdet_a = np.linalg.slogdet(ca)
    _, logdet_b = np.linalg.slogdet(cb)
    trace = np.trace(np.linalg.solve(cb, ca), axis1=-2, axis2=-1)
    maha = np.einsum("...i,...i->...", diff, np.linalg.solve(cb, diff[..., None])[..., 0])
    kl = 0.5 * (trace + maha - k + logdet_b - logdet_a)
    entropy_a = 0.5 * (k * (1.0 + math.log(2.0 * math.pi)) + logdet_a)
    cross = kl + entropy_a
    total = ca + cb
    _, logdet_total = np.linalg.slogdet(total)
    maha_total = np.einsum("...i,...i->...", diff, np.linalg.solve(total, diff[..., None])[..., 0])
    log_z = -0.5 * (k * math.log(2.0 * math.pi) + logdet_total + maha_total)
    return kl, cross, log_z


def mixture_bounds(p: Any, q: Any) -> dict[str, np.ndarray] | None:
    """The approximations and bounds of the module docstring, or None if not Gaussian mixtures."""
    from scipy.special import logsumexp

    parts_p, parts_q = gaussian_mixture_parts(p), gaussian_mixture_parts(q)
    if parts_p is None or parts_q is None:
        return None
    pi, mean_p, cov_p = parts_p
    omega, mean_q, cov_q = parts_q
    if mean_p.shape[-1] != mean_q.shape[-1]:
        return None
    kl_pp, cross_pp, log_z_pp = _pairwise(mean_p, cov_p, mean_p, cov_p)
    kl_pq, cross_pq, log_z_pq = _pairwise(mean_p, cov_p, mean_q, cov_q)
    log_pi = np.log(pi)[..., None, :]
    log_omega = np.log(omega)[..., None, :]
    weights = pi

    def expect(values: np.ndarray) -> np.ndarray:
        return np.sum(weights * values, axis=-1)

    variational = expect(logsumexp(log_pi - kl_pp, axis=-1) - logsumexp(log_omega - kl_pq, axis=-1))
    product = expect(
        logsumexp(log_pi + log_z_pp, axis=-1) - logsumexp(log_omega + log_z_pq, axis=-1)
    )
    cross_lower = -expect(logsumexp(log_omega + log_z_pq, axis=-1))
    cross_upper = -expect(logsumexp(log_omega - cross_pq, axis=-1))
    entropy_lower = -expect(logsumexp(log_pi + log_z_pp, axis=-1))
    component_entropy = np.diagonal(cross_pp, axis1=-2, axis2=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        weight_entropy = -np.sum(np.where(pi > 0, pi * np.log(pi), 0.0), axis=-1)
    entropy_upper = np.minimum(
        -expect(logsumexp(log_pi - cross_pp, axis=-1)), weight_entropy + expect(component_entropy)
    )
    return {
        "variational_approximation": variational,
        "product_approximation": product,
        "lower_bound": np.maximum(cross_lower - entropy_upper, 0.0),
        "upper_bound": cross_upper - entropy_lower,
    }
