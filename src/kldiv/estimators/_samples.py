r"""Monte Carlo D(P ‖ Q) from the log-densities of both laws at draws of P, on any backend.

When the draws and their log-densities already exist (a sampler's output, a
model's token log-probabilities, arrays larger than memory on Dask), the
estimate is a mean over them:

.. math::

    \hat D_{k1} = \frac1n \sum_i w_i, \qquad
    \hat D_{k3} = \frac1n \sum_i \left(e^{-w_i} - 1 + w_i\right), \qquad
    w_i = \log p(x_i) - \log q(x_i), \quad x_i \sim P,

with the standard error :math:`s / \sqrt n` of the sample standard deviation
:math:`s` of the terms.
"""

from __future__ import annotations

import math
import numbers
from types import ModuleType
from typing import Any

import numpy as np

from kldiv._array_api import as_float_arrays, is_dask_array, is_traced, size, to_numpy
from kldiv._validation import (
    Locate,
    as_given,
    check_below_plus_inf,
    defer_check,
    log_of_base,
    resolve_validate,
)
from kldiv.errors import KLDivError
from kldiv.estimators._estimate import Estimate
from kldiv.estimators._monte_carlo import _stop_gradient
from kldiv.estimators._policy import _check_shapes, _estimate

__all__ = ["kl_from_sample_log_probs"]

Array = Any

SAMPLE_ESTIMATORS = ("k1", "k3")


def _check_estimator(estimator: object) -> str:
    if not isinstance(estimator, str) or estimator not in SAMPLE_ESTIMATORS:
        raise KLDivError(f"`estimator` must be one of {list(SAMPLE_ESTIMATORS)}; got {estimator!r}")
    return estimator


def _sample_axis(axis: object, shape: tuple) -> tuple[int, int]:
    """The sample axis as a non-negative index, and the number of draws along it (>= 2)."""
    if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
        raise KLDivError(f"`axis` must be an integer; got {axis!r}")
    ndim = len(shape)
    if not -ndim <= axis < ndim:
        raise KLDivError(
            f"`axis` must be in [{-ndim}, {ndim - 1}] for inputs of shape {shape}; got {axis}"
        )
    n = shape[axis]
    if isinstance(n, float) and math.isnan(n):
        raise KLDivError(
            f"the sample axis {axis} must have a known length; got shape {shape} (a Dask array "
            "with unknown chunk sizes: call its compute_chunk_sizes() first)"
        )
    if n < 2:
        raise KLDivError(
            f"at least 2 draws along the sample axis {axis} are needed for a standard error; "
            f"got shape {shape}"
        )
    return int(axis) % ndim, int(n)


def _check_drawn_from_p(log_p: Array, *, xp: ModuleType, locate: Locate = as_given) -> None:
    """Draws of P have p(x) > 0: ``log_p = -inf`` is not a draw of P."""
    impossible = log_p == -xp.inf
    if size(impossible) and bool(xp.any(impossible)):
        index = tuple(int(i) for i in np.argwhere(to_numpy(impossible))[0])
        raise KLDivError(
            "`log_p` must be > -inf: the samples are draws of P, so p(x) > 0 at each; "
            f"got -inf at index {locate(index)}"
        )


def _checked(log_p: Array, log_q: Array, *, validate: bool, xp: ModuleType) -> list[Array]:
    """The value checks, eager or deferred into a Dask graph; the arrays to compute with."""
    log_p = check_below_plus_inf(log_p, "log_p", "log-densities", xp, validate=validate)
    log_q = check_below_plus_inf(log_q, "log_q", "log-densities", xp, validate=validate)
    if validate and is_dask_array(log_p):
        log_p = defer_check(log_p, _check_drawn_from_p, log_p)
    elif validate and not is_traced(log_p):
        _check_drawn_from_p(log_p, xp=xp)
    return [log_p, log_q]


def _mean_and_stderr(terms: Array, axis: int, n: int, *, xp: ModuleType) -> tuple[Array, Array]:
    """The mean and its standard error (NaN where a term is infinite), in one pass on Dask."""
    infinite = xp.isinf(terms)
    finite_terms = xp.where(infinite, 0.0, terms)
    variance = xp.var(finite_terms, axis=axis, correction=1)
    stderr = xp.where(xp.any(infinite, axis=axis), xp.nan, xp.sqrt(variance / n))
    value = xp.mean(terms, axis=axis)
    if is_dask_array(value):
        import dask

        return dask.compute(value, stderr)  # the chunks are read once for both
    return value, _stop_gradient(stderr, xp)


def _single_or_batch(value: Array) -> float | Array:
    """A Python float for a single NumPy estimate; batches and autodiff arrays as they are."""
    if isinstance(value, (np.ndarray, np.generic)) and np.ndim(value) == 0:
        return float(value)
    return value


def kl_from_sample_log_probs(
    log_p: Array,
    log_q: Array,
    *,
    estimator: str = "k1",
    axis: int = 0,
    base: float | None = None,
    validate: bool | None = None,
) -> Estimate:
    r"""Monte Carlo D(P ‖ Q) from log p(x) and log q(x) at draws x ~ P, with its standard error.

    With :math:`w_i = \log p(x_i) - \log q(x_i)` at n draws :math:`x_i \sim P`,

    .. math::

        \hat D_{k1} = \frac1n \sum_i w_i, \qquad
        \hat D_{k3} = \frac1n \sum_i \left(e^{-w_i} - 1 + w_i\right),
        \qquad \widehat{\mathrm{se}} = \frac{s}{\sqrt n},

    :math:`s` the sample standard deviation (n − 1) of the terms. ``"k1"`` is
    unbiased whenever D(P ‖ Q) is finite. ``"k3"`` (Schulman's k3: the k1 term
    plus the control variate :math:`r - 1`, :math:`r = q/p`, whose mean under
    P is 0) has non-negative terms and, when Q is close to P, a far smaller
    variance; it is unbiased only when Q's support lies inside P's (else
    :math:`E_P[r] = Q(\mathrm{supp}\,P) < 1` and it underestimates by the mass
    Q puts outside). ``log q = -inf`` at a draw gives +inf (and a NaN standard
    error): D(P ‖ Q) is then infinite. The terms are those of
    :func:`kldiv.estimators.policy_kl` (k1, k3), averaged.

    Works on NumPy, PyTorch, JAX (also under ``jax.jit``) and Dask. On
    PyTorch and JAX the value is differentiable and the standard error carries
    no gradient. On Dask (draws larger than memory) it computes at call time
    in one pass over the chunks, the mean and the variance (Dask's chunked,
    pairwise-merged moments) reading each chunk once, and returns NumPy
    values; the value checks run in the same tasks.

    Args:
        log_p: log-densities (or log-probabilities) of P at the draws, shape
            ``[..., n, ...]`` with the draws along ``axis``.
        log_q: log-densities of Q at the same draws; broadcasts against ``log_p``.
        estimator: ``"k1"`` or ``"k3"``.
        axis: the axis of the draws, averaged over; the others are a batch of
            estimates.
        base: the logarithm base of the unit: None for nats, 2 for bits.
        validate: check the values (no NaN or +inf, ``log_p > -inf``: each x is
            a draw of P); None uses :func:`kldiv.set_default_validate`'s setting.
            Deferred into the graph on Dask, skipped under ``jax.jit``.

    Returns:
        An :class:`~kldiv.estimators.Estimate` with ``method="monte_carlo"``,
        ``n`` the number of draws, a float value for a single NumPy or Dask
        estimate (else an array of the batch shape), and ``details`` holding
        ``estimator`` and ``axis``.

    Raises:
        KLDivError: an unknown ``estimator``, a bad ``axis`` or ``base``, shapes
            that do not broadcast, fewer than 2 draws, or (when validating) NaN
            or +inf log-densities, or ``log_p = -inf``.

    Examples:
        >>> import numpy as np
        >>> from scipy.stats import norm
        >>> from kldiv.estimators import kl_from_sample_log_probs
        >>> x = np.random.default_rng(0).normal(0.0, 1.0, size=100_000)  # draws of P = N(0, 1)
        >>> log_p, log_q = norm.logpdf(x, 0.0, 1.0), norm.logpdf(x, 0.5, 1.0)
        >>> kl_from_sample_log_probs(log_p, log_q)  # exact: 0.125
        0.1255 ± 0.0016 nats (monte_carlo, n=100000)
        >>> kl_from_sample_log_probs(log_p, log_q, estimator="k3")  # lower variance
        0.1250 ± 0.0006 nats (monte_carlo, n=100000)

    References:
        Schulman, J. (2020). Approximating KL divergence.
        http://joschu.net/blog/kl-approx.html
    """
    _check_estimator(estimator)
    log_base = log_of_base(base)
    do_validate = resolve_validate(validate)
    xp, arrays, _, _ = as_float_arrays(log_p, log_q, names=("log_p", "log_q"))
    shape = _check_shapes(arrays, ("log_p", "log_q"))
    sample_axis, n = _sample_axis(axis, shape)
    log_p_checked, log_q_checked = _checked(*arrays, validate=do_validate, xp=xp)
    terms = _estimate(log_p_checked, log_q_checked, estimator, xp=xp)
    if tuple(terms.shape) != shape:
        terms = xp.broadcast_to(terms, shape)
    value, stderr = _mean_and_stderr(terms, sample_axis, n, xp=xp)
    if log_base is not None:
        value, stderr = value / log_base, stderr / log_base
    details = {"estimator": estimator, "axis": sample_axis}
    return Estimate(
        _single_or_batch(value), _single_or_batch(stderr), "monte_carlo", n, base, details
    )
