r"""The histogram (binned plug-in) estimator of D(P ‖ Q) for 1-D samples: the data-drift case.

Both samples are counted in the same bins, the counts are smoothed by adding
α to every bin (Lidstone; α = 1/2 is Jeffreys / Krichevsky–Trofimov), and the
divergence of the two binned distributions is

.. math::

    \hat D = \sum_j \hat p_j \log \frac{\hat p_j}{\hat q_j}, \qquad
    \hat p_j = \frac{c^x_j + \alpha}{n + J\alpha}, \quad
    \hat q_j = \frac{c^y_j + \alpha}{m + J\alpha}.

It estimates the KL divergence of the *binned* distributions, which is at most
the continuous one (data-processing inequality).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from kldiv._array_api import as_float_arrays, is_traced, to_numpy
from kldiv._validation import check_nonnegative_number, log_of_base
from kldiv.errors import KLDivError
from kldiv.estimators._estimate import Estimate

__all__ = ["histogram_kl"]

Array = Any

_BIN_RULES = ("auto", "fd", "doane", "scott", "stone", "rice", "sturges", "sqrt")


def _as_sample(array: Array, name: str) -> np.ndarray:
    """A 1-D float64 NumPy copy of a sample of shape (n,) or (n, 1)."""
    if is_traced(array):
        raise KLDivError(
            f"`{name}` must be a concrete array: the histogram estimator runs in NumPy and "
            "cannot be traced (jax.jit, torch.compile)"
        )
    sample = np.asarray(to_numpy(array), dtype=np.float64)
    if sample.ndim == 2 and sample.shape[1] == 1:
        sample = sample[:, 0]
    if sample.ndim != 1 or sample.shape[0] == 0:
        raise KLDivError(
            f"`{name}` must be a non-empty 1-D sample, shape (n,) or (n, 1); "
            f"got shape {tuple(array.shape)}"
        )
    finite = np.isfinite(sample)
    if not finite.all():
        index = int(np.argmin(finite))
        raise KLDivError(f"`{name}` must hold finite values; got {sample[index]} at index {index}")
    return sample


def _edges(bins: object, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Common bin edges: a count or a NumPy rule on the pooled data, or the edges given."""
    if isinstance(bins, str):
        if bins not in _BIN_RULES:
            raise KLDivError(
                f"`bins` must be an int, edges or one of {list(_BIN_RULES)}; got {bins!r}"
            )
        return np.histogram_bin_edges(np.concatenate([x, y]), bins=bins)
    if isinstance(bins, numbers.Integral) and not isinstance(bins, bool):
        if bins < 1:
            raise KLDivError(f"`bins` as a count must be >= 1; got {bins}")
        return np.histogram_bin_edges(np.concatenate([x, y]), bins=int(bins))
    try:
        edges = np.asarray(to_numpy(bins) if not isinstance(bins, Sequence) else bins, float)
    except (TypeError, ValueError):
        raise KLDivError(
            f"`bins` must be an int, a sequence of edges or one of {list(_BIN_RULES)}; "
            f"got {type(bins).__name__}"
        ) from None
    if edges.ndim != 1 or edges.shape[0] < 2:
        raise KLDivError(f"`bins` as edges must be 1-D with >= 2 entries; got shape {edges.shape}")
    if not np.all(np.isfinite(edges)) or not np.all(np.diff(edges) > 0):
        raise KLDivError(f"`bins` as edges must be finite and strictly increasing; got {edges}")
    return edges


def _counts(sample: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in ``[below, bin 1, ..., bin J, above]``: open-ended bins outside the edges."""
    inside, _ = np.histogram(sample, bins=edges)
    below = np.count_nonzero(sample < edges[0])
    above = np.count_nonzero(sample > edges[-1])
    return np.concatenate([[below], inside, [above]])


def _smoothed(counts: np.ndarray, alpha: float) -> np.ndarray:
    return (counts + alpha) / (counts.sum() + alpha * counts.shape[0])


def _binned_kl(p: np.ndarray, q: np.ndarray) -> float:
    """Σ p log(p/q) with 0 log 0 = 0 and +inf where p > 0 = q."""
    if np.any((p > 0) & (q == 0)):
        return math.inf
    used = p > 0
    return float(np.sum(p[used] * np.log(p[used] / q[used])))


def _delta_stderr(p: np.ndarray, q: np.ndarray, n: int, m: int) -> float:
    r"""Standard error of the plug-in for multinomial counts: the delta method, floored.

    First order: :math:`\mathrm{Var}_p[\log(p/q)]/n + \chi^2(p \| q)/m`. At
    p = q that vanishes and the estimate is a quadratic form,
    :math:`\hat D \approx \tfrac12 (1/n + 1/m)\, \chi^2_{J-1}`, whose variance
    :math:`\tfrac12 (J - 1)(1/n + 1/m)^2` is the floor.
    """
    used = p > 0
    log_ratio = np.log(p[used] / q[used])
    spread = float(np.sum(p[used] * log_ratio**2) - np.sum(p[used] * log_ratio) ** 2)
    chi_square = float(np.sum(p[used] ** 2 / q[used])) - 1.0
    first_order = max(spread, 0.0) / n + max(chi_square, 0.0) / m
    dof = int(np.count_nonzero((p > 0) | (q > 0))) - 1
    quadratic = 0.5 * dof * (1.0 / n + 1.0 / m) ** 2
    return math.sqrt(max(first_order, quadratic))


def _plugin_bias(p: np.ndarray, q: np.ndarray, n: int, m: int) -> float:
    r"""First-order bias of the plug-in: :math:`(J_p - 1)/(2n) + (\sum_j p_j/q_j - 1)/(2m)`."""
    used = p > 0
    return (np.count_nonzero(used) - 1) / (2.0 * n) + (float(np.sum(p[used] / q[used])) - 1.0) / (
        2.0 * m
    )


def histogram_kl(
    x: Array,
    y: Array,
    *,
    bins: int | str | Sequence[float] | Array = "auto",
    smoothing: float = 0.5,
    base: float | None = None,
) -> Estimate:
    r"""Estimates D(P ‖ Q) from 1-D samples x ~ P and y ~ Q by counting them in common bins.

    With :math:`c^x_j, c^y_j` the counts of the n x's and m y's in bin j of J,
    and the smoothing α added to every bin,

    .. math::

        \hat D = \sum_{j=1}^J \hat p_j \log \frac{\hat p_j}{\hat q_j}, \qquad
        \hat p_j = \frac{c^x_j + \alpha}{n + J\alpha}, \quad
        \hat q_j = \frac{c^y_j + \alpha}{m + J\alpha}.

    The bins are common to both samples: ``bins`` edges as given, or a
    count or NumPy rule (``numpy.histogram_bin_edges``) applied to the pooled
    samples. Points outside given edges are counted in two open-ended bins,
    ``(-inf, first edge)`` and ``(last edge, +inf)``, which join the J bins
    when either sample has a point there (no mass is dropped).

    What it estimates, and its biases:

    - **Discretisation.** The target is the divergence of the binned
      distributions, :math:`\sum_j P(B_j) \log(P(B_j)/Q(B_j))`, which is at
      most the continuous D(P ‖ Q) (data-processing inequality): coarse bins
      *underestimate* it. It converges to the continuous divergence when the
      bins shrink while the counts per bin grow.
    - **Smoothing** (α > 0, default 1/2: Jeffreys / Krichevsky–Trofimov; 1:
      Laplace) keeps an empty y-bin under a non-empty x-bin finite, and pulls
      both histograms toward uniform over the J bins, which lowers the
      estimate; the shrinkage matters where bins hold only a few counts.
      ``smoothing=0`` is the exact plug-in, +inf when an x lands in a bin with
      no y.
    - **Finite samples.** The unsmoothed plug-in is biased upward by about
      :math:`(J_p - 1)/(2n) + (\sum_j \hat p_j/\hat q_j - 1)/(2m)` (second-order
      expansion for multinomial counts, J_p the bins with :math:`\hat p_j > 0`),
      reported in ``details["plugin_bias_nats"]``; at P = Q the estimate is
      about :math:`\tfrac12(1/n + 1/m)\chi^2_{J-1}`, not 0: compare a drift
      estimate with that bias, not with 0.

    Standard error: the delta method for the two multinomial counts,
    :math:`\mathrm{Var}_{\hat p}[\log(\hat p/\hat q)]/n + \chi^2(\hat p \| \hat q)/m`,
    floored at :math:`\tfrac12(J-1)(1/n + 1/m)^2`, the variance of the
    χ² form the estimate takes at P = Q (so that two identical histograms do
    not claim an exact 0). Near P = Q, where the estimate is skewed, it is
    conservative (up to about 1.5 times the true spread). NaN when the value
    is +inf.

    Inputs of any backend are copied to NumPy float64; the value and standard
    error are Python floats (not differentiable).

    Args:
        x: samples of P, shape (n,) or (n, 1), any array library.
        y: samples of Q, shape (m,) or (m, 1).
        bins: the number of equal-width bins, a rule of
            ``numpy.histogram_bin_edges`` (``"auto"``, ``"fd"``, ``"sturges"``,
            ...), both on the pooled samples, or the bin edges (strictly
            increasing; e.g. fixed from a reference data set, for drift
            monitoring).
        smoothing: α >= 0 added to every bin's count.
        base: the logarithm base of the unit: None for nats, 2 for bits.

    Returns:
        An :class:`~kldiv.estimators.Estimate` with ``method="histogram"``, ``n``
        the number of x's, and ``details`` holding ``m``, ``edges``, ``bins`` (J,
        open-ended bins included), ``smoothing``, ``counts_x``, ``counts_y``,
        ``p`` and ``q`` (the smoothed binned distributions), and
        ``plugin_bias_nats``.

    Raises:
        KLDivError: samples that are not 1-D, empty or not finite, bad ``bins``
            or a negative ``smoothing``.

    Examples:
        >>> import numpy as np
        >>> from kldiv.estimators import histogram_kl
        >>> rng = np.random.default_rng(0)
        >>> reference = rng.normal(0.0, 1.0, size=50000)
        >>> current = rng.normal(0.3, 1.0, size=50000)
        >>> histogram_kl(current, reference, bins=np.linspace(-4, 4, 33))  # exact: 0.045
        0.0439 ± 0.0019 nats (histogram, n=50000)
    """
    alpha = check_nonnegative_number(smoothing, "smoothing")
    log_base = log_of_base(base)
    _, (x_arr, y_arr), _, _ = as_float_arrays(x, y, names=("x", "y"))
    x_sample, y_sample = _as_sample(x_arr, "x"), _as_sample(y_arr, "y")
    n, m = x_sample.shape[0], y_sample.shape[0]
    edges = _edges(bins, x_sample, y_sample)
    counts_x, counts_y = _counts(x_sample, edges), _counts(y_sample, edges)
    keep = np.ones(counts_x.shape[0], dtype=bool)
    keep[[0, -1]] = (counts_x[[0, -1]] + counts_y[[0, -1]]) > 0
    counts_x, counts_y = counts_x[keep], counts_y[keep]
    p, q = _smoothed(counts_x, alpha), _smoothed(counts_y, alpha)
    value = _binned_kl(p, q)
    finite = math.isfinite(value)
    stderr = _delta_stderr(p, q, n, m) if finite else math.nan
    bias = _plugin_bias(p, q, n, m) if finite else math.nan
    details = {
        "m": m,
        "edges": edges,
        "bins": int(p.shape[0]),
        "smoothing": alpha,
        "counts_x": counts_x,
        "counts_y": counts_y,
        "p": p,
        "q": q,
        "plugin_bias_nats": bias,
        "stderr_method": "delta" if finite else "none (infinite value)",
    }
    scale = 1.0 if log_base is None else 1.0 / log_base
    return Estimate(value * scale, stderr * scale, "histogram", n, base, details)
