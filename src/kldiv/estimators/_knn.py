r"""The k-nearest-neighbour estimator of D(P ‖ Q) from samples (Wang, Kulkarni & Verdú, 2009).

Given :math:`x_1, \ldots, x_n \sim P` and :math:`y_1, \ldots, y_m \sim Q` in
:math:`\mathbb R^d`, with :math:`\rho_l(i)` the Euclidean distance from
:math:`x_i` to its l-th nearest neighbour among the other x's and
:math:`\nu_k(i)` the distance to its k-th nearest neighbour among the y's,

.. math::

    \hat D = \frac{d}{n} \sum_{i=1}^n \log \frac{\nu_{k_i}(i)}{\rho_{l_i}(i)}
        + \frac1n \sum_{i=1}^n \bigl[\psi(l_i) - \psi(k_i)\bigr] + \log \frac{m}{n - 1}

(Wang et al. 2009, eq. (17)): a k-NN density estimate of log p − log q at each
x_i, averaged. The digamma term keeps the estimator asymptotically unbiased
for any choice of the neighbour orders (l_i, k_i); with :math:`l_i = k_i = k`
it vanishes and this is their eq. (5). The neighbour searches use
``scipy.spatial.cKDTree`` on all cores; the arithmetic is NumPy float64.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from kldiv._array_api import as_float_arrays, is_dask_array, is_traced, to_numpy
from kldiv._validation import log_of_base
from kldiv.errors import KLDivError
from kldiv.estimators._estimate import Estimate

__all__ = ["knn_kl"]

Array = Any

_MIN_GROUP_PER_NEIGHBOUR = 10  # each stderr subsample holds >= 10 (k + 1) x's and >= 10 k y's
_ADAPTIVE_MAX_ORDER = 64  # the adaptive neighbour orders are capped at max(64, 4 k)
_LEAF_SIZE = 16
_PARALLEL_MIN_ROWS = 4096  # smaller queries run on one thread (starting threads costs more)


def _scipy():
    try:
        from scipy import spatial, special
    except ImportError:  # pragma: no cover - scipy is a dev dependency
        raise KLDivError("knn_kl needs SciPy for its KD-tree: pip install scipy") from None
    return spatial, special


# ---------------------------------------------------------------------------
# Arguments


def _check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise KLDivError(f"`{name}` must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _check_workers(workers: object) -> int:
    if (
        not isinstance(workers, numbers.Integral)
        or isinstance(workers, bool)
        or (workers < 1 and workers != -1)
    ):
        raise KLDivError(f"`workers` must be -1 (all cores) or an integer >= 1; got {workers!r}")
    return int(workers)


def _check_flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise KLDivError(f"`{name}` must be True or False; got {value!r}")
    return value


def _as_points(array: Array, name: str) -> np.ndarray:
    """A float64 NumPy copy of shape (samples, d); rows are points."""
    if is_dask_array(array):
        raise KLDivError(
            f"`{name}` is a Dask array: the k-NN estimator needs every point in memory (a "
            f"KD-tree); pass `{name}.compute()` for a sample that fits (or a subsample, "
            f"`{name}[::k]`), or use histogram_kl for 1-D data larger than memory"
        )
    if is_traced(array):
        raise KLDivError(
            f"`{name}` must be a concrete array: the k-NN estimator runs in NumPy/SciPy and "
            "cannot be traced (jax.jit, torch.compile) or differentiated"
        )
    points = np.asarray(to_numpy(array), dtype=np.float64)
    if points.ndim == 1:
        points = points[:, None]
    if points.ndim != 2 or points.shape[1] == 0:
        raise KLDivError(
            f"`{name}` must have shape (samples,) or (samples, d) with d >= 1; "
            f"got shape {tuple(array.shape)}"
        )
    finite = np.isfinite(points)
    if not finite.all():
        index = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise KLDivError(f"`{name}` must hold finite values; got {points[index]} at index {index}")
    return points


def _sample_points(x: Array, y: Array, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` (n, d) and ``y`` (m, d) as float64 NumPy points, checked for the k-NN estimator."""
    _, (x_arr, y_arr), _, _ = as_float_arrays(x, y, names=("x", "y"))
    x_points, y_points = _as_points(x_arr, "x"), _as_points(y_arr, "y")
    if x_points.shape[1] != y_points.shape[1]:
        raise KLDivError(
            f"`x` and `y` must have the same dimension d (columns); got d = "
            f"{x_points.shape[1]} for `x` and d = {y_points.shape[1]} for `y`"
        )
    if x_points.shape[0] < k + 1:
        raise KLDivError(
            f"`x` must have at least k + 1 = {k + 1} samples for k = {k} (each point needs "
            f"k neighbours besides itself); got {x_points.shape[0]}"
        )
    if y_points.shape[0] < k:
        raise KLDivError(
            f"`y` must have at least k = {k} samples for k = {k}; got {y_points.shape[0]}"
        )
    return x_points, y_points


# ---------------------------------------------------------------------------
# Neighbour distances


def _tree(points: np.ndarray) -> Any:
    spatial, _ = _scipy()
    return spatial.cKDTree(points, leafsize=_LEAF_SIZE, balanced_tree=False, compact_nodes=False)


def _threads(rows: int, workers: int) -> int:
    return 1 if rows < _PARALLEL_MIN_ROWS else workers


def _distances(tree: Any, points: np.ndarray, orders: list[int], workers: int) -> np.ndarray:
    """Distances from each point to its ``orders``-th nearest tree points: (rows, len(orders))."""
    distance, _ = tree.query(points, k=orders, workers=_threads(points.shape[0], workers))
    return distance.reshape(points.shape[0], len(orders))


def _copies(tree: Any, points: np.ndarray, workers: int) -> np.ndarray:
    """How many tree points equal each point (itself included when it is a tree point)."""
    counts = tree.query_ball_point(
        points, r=0.0, return_length=True, workers=_threads(points.shape[0], workers)
    )
    return np.asarray(counts, dtype=np.int64)


def _nearest_distinct(tree: Any, points: np.ndarray, workers: int) -> np.ndarray:
    """Distance from each point (itself a tree point) to the nearest tree point that differs.

    Searched among the distinct tree points, so that a point with a million
    copies costs one query, not a million.
    """
    distinct = _tree(np.unique(tree.data, axis=0))
    return _distances(distinct, points, [2], workers)[:, 0]


def _at_orders(
    tree: Any, points: np.ndarray, orders: np.ndarray, skip: int, workers: int
) -> np.ndarray:
    """Distance from each point to its own ``orders[i]``-th neighbour (``skip`` + order)."""
    distance = np.empty(points.shape[0])
    for order in np.unique(orders):
        rows = np.flatnonzero(orders == order)
        distance[rows] = _distances(tree, points[rows], [int(order) + skip], workers)[:, 0]
    return distance


@dataclass(frozen=True)
class _Neighbours:
    """Per point: the distances ρ and ν used and the orders l and k of the digamma term."""

    rho: np.ndarray
    nu: np.ndarray
    l_order: np.ndarray
    k_order: np.ndarray
    tied: np.ndarray  # where an order was raised past a zero distance


def _past_ties(
    x_tree: Any,
    y_tree: Any,
    points: np.ndarray,
    rho_k: np.ndarray,
    nu_k: np.ndarray,
    k: int,
    workers: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ρ, ν, l, k where ρ_k or ν_k is 0: the first positive distance beyond the copies.

    With c copies of x_i in x (itself included) and z in y, the x-order is
    max(k, c): the c - 1 other copies at distance 0, then the nearest x that
    differs; the y-order is k when z < k, else z + 1 at the nearest y that
    differs. For independent samples of rounded data both counts are then
    alike (c - 1 and z are the other points at the atom), so the digamma
    term compares the atom's mass under P and Q.
    """
    c, z = _copies(x_tree, points, workers), _copies(y_tree, points, workers)
    rho, nu = rho_k.copy(), nu_k.copy()
    many_x = np.flatnonzero(c > k)
    if many_x.size:
        rho[many_x] = _nearest_distinct(x_tree, points[many_x], workers)
    many_y = np.flatnonzero(z >= k)
    if many_y.size:
        nu[many_y] = _nearest_distinct(y_tree, points[many_y], workers)
    return rho, nu, np.maximum(k, c), np.where(z >= k, z + 1, k)


def _wang_neighbours(x_tree: Any, y_tree: Any, x: np.ndarray, k: int, workers: int) -> _Neighbours:
    """ρ_k and ν_k of every x_i, raised past exact ties to the first positive distance."""
    n = x.shape[0]
    rho = _distances(x_tree, x, [k + 1], workers)[:, 0]  # x_i itself is the nearest
    nu = _distances(y_tree, x, [k], workers)[:, 0]
    l_order = np.full(n, k, dtype=np.int64)
    k_order = np.full(n, k, dtype=np.int64)
    tied = (rho == 0.0) | (nu == 0.0)
    rows = np.flatnonzero(tied)
    if rows.size:
        rho[rows], nu[rows], l_order[rows], k_order[rows] = _past_ties(
            x_tree, y_tree, x[rows], rho[rows], nu[rows], k, workers
        )
    return _Neighbours(rho, nu, l_order, k_order, tied)


def _adaptive(
    x_tree: Any,
    y_tree: Any,
    points: np.ndarray,
    rho: np.ndarray,
    nu: np.ndarray,
    k: int,
    workers: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Wang et al.'s adaptive orders: every neighbour within ε(i) = max(ρ_k(i), ν_k(i)).

    l_i and k_i count the other x's and the y's within ε(i), so that
    :math:`\rho_{l_i}(i)` and :math:`\nu_{k_i}(i)` are both close to ε(i): the
    density estimates of p and q then use the same ball and their
    smoothing biases cancel to first order. The orders are capped at
    ``max(64, 4 k)``, which bounds the cost where one sample is much denser
    than the other; any order keeps the estimator consistent thanks to the
    digamma term. Returns ``(ρ, ν, l, k)`` for the (untied) points.
    """
    epsilon = np.maximum(rho, nu)
    radius = epsilon * (1.0 + 4.0 * np.finfo(np.float64).eps)  # count the point at ε itself
    cap = max(_ADAPTIVE_MAX_ORDER, 4 * k)
    threads = _threads(points.shape[0], workers)
    in_x = x_tree.query_ball_point(points, radius, return_length=True, workers=threads) - 1
    in_y = y_tree.query_ball_point(points, radius, return_length=True, workers=threads)
    l_order = np.clip(in_x, k, cap)
    k_order = np.clip(in_y, k, cap)
    # The side that attains ε has all its neighbours up to the ball's count at distance ε.
    rho_new, nu_new = rho.copy(), nu.copy()
    query_x = np.flatnonzero((rho < epsilon) & (l_order > k))
    query_y = np.flatnonzero((nu < epsilon) & (k_order > k))
    rho_new[query_x] = _at_orders(x_tree, points[query_x], l_order[query_x], 1, workers)
    nu_new[query_y] = _at_orders(y_tree, points[query_y], k_order[query_y], 0, workers)
    return rho_new, nu_new, l_order, k_order


# ---------------------------------------------------------------------------
# The estimate


def _constant(points: np.ndarray) -> bool:
    return bool(np.all(points == points[0]))


def _same_points(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether ``x`` and ``y`` hold the same points, in any order (cheap checks first)."""
    if x.shape != y.shape or not (
        np.array_equal(x.min(axis=0), y.min(axis=0))
        and np.array_equal(x.max(axis=0), y.max(axis=0))
        and np.array_equal(np.sort(x[:, 0]), np.sort(y[:, 0]))
    ):
        return False
    return np.array_equal(x[np.lexsort(x.T)], y[np.lexsort(y.T)])


def _degenerate(x: np.ndarray, y: np.ndarray) -> tuple[float, str] | None:
    """The value where the k-NN formula does not apply, else None.

    The same points in both samples (in any order): the same empirical
    distribution, 0 (the formula, made for independent samples, would give
    about -1/k). A constant sample has no positive neighbour distance: both
    constant at the same point give 0, otherwise the constant sample is a
    point mass the other distribution does not share as a point mass: +inf.
    """
    if _same_points(x, y):
        return 0.0, "`x` and `y` hold the same points: the same empirical distribution, 0"
    if _constant(y) and _constant(x) and np.array_equal(x[0], y[0]):
        return 0.0, "`x` and `y` are the same constant: the same point mass, 0"
    if _constant(y):
        return math.inf, "`y` is constant (Q looks like a point mass that P is not): +inf"
    if _constant(x):
        return math.inf, "`x` is constant (P looks like a point mass that Q is not): +inf"
    return None


@dataclass(frozen=True)
class _Result:
    value: float  # nats
    tied: int  # points whose neighbour order was raised past a zero distance


def _divergence(
    x: np.ndarray, y: np.ndarray, k: int, bias_correction: bool, workers: int
) -> _Result:
    """The Wang et al. estimate in nats (eq. (17) with the chosen orders)."""
    _, special = _scipy()
    n, d = x.shape
    m = y.shape[0]
    x_tree, y_tree = _tree(x), _tree(y)
    x = x[x_tree.indices]  # query in the tree's spatial order: about twice as fast (cache)
    nb = _wang_neighbours(x_tree, y_tree, x, k, workers)
    rho, nu, l_order, k_order = nb.rho, nb.nu, nb.l_order, nb.k_order
    if bias_correction:
        free = np.flatnonzero(~nb.tied)
        rho, nu, l_order, k_order = rho.copy(), nu.copy(), l_order.copy(), k_order.copy()
        rho[free], nu[free], l_order[free], k_order[free] = _adaptive(
            x_tree, y_tree, x[free], rho[free], nu[free], k, workers
        )
    log_ratio = float(np.mean(np.log(nu / rho)))
    correction = 0.0
    if np.any(l_order != k_order):
        digammas = special.digamma(l_order.astype(np.float64)) - special.digamma(
            k_order.astype(np.float64)
        )
        correction = float(np.mean(digammas))
    tied = int(np.count_nonzero(nb.tied))
    value = d * log_ratio + correction + math.log(m) - math.log(n - 1)
    return _Result(value, tied)


def _groups(n: int, m: int, k: int, wanted: int) -> int:
    """How many disjoint subsamples the standard error uses (0 when too few points)."""
    most = min(
        wanted,
        n // (_MIN_GROUP_PER_NEIGHBOUR * (k + 1)),
        m // (_MIN_GROUP_PER_NEIGHBOUR * k),
    )
    return most if most >= 2 else 0


def _subsample_stderr(
    x: np.ndarray,
    y: np.ndarray,
    k: int,
    bias_correction: bool,
    groups: int,
    seed: Any,
    workers: int,
) -> tuple[float, float]:
    """Standard error from ``groups`` disjoint random subsamples: ``sd / sqrt(groups)``.

    The subsample estimates are independent and identically distributed, each
    from n/B x's and m/B y's. The variance of the estimator falls as
    :math:`a/n + b/m` (its first-order, central-limit behaviour), so the
    variance of the full-sample estimate is the subsamples' variance divided
    by B. Returns ``(stderr, mean of the subsample estimates)`` in nats.
    """
    rng = np.random.default_rng(seed)
    x_parts = np.array_split(rng.permutation(x.shape[0]), groups)
    y_parts = np.array_split(rng.permutation(y.shape[0]), groups)
    values = np.array(
        [
            _value_or_degenerate(x[xi], y[yi], k, bias_correction, workers)
            for xi, yi in zip(x_parts, y_parts, strict=True)
        ]
    )
    if not np.all(np.isfinite(values)):
        return math.nan, math.nan
    return float(np.std(values, ddof=1) / math.sqrt(groups)), float(np.mean(values))


def _value_or_degenerate(
    x: np.ndarray, y: np.ndarray, k: int, bias_correction: bool, workers: int
) -> float:
    degenerate = _degenerate(x, y)
    if degenerate is not None:
        return degenerate[0]
    return _divergence(x, y, k, bias_correction, workers).value


def knn_kl(
    x: Array,
    y: Array,
    *,
    k: int = 1,
    bias_correction: bool = False,
    base: float | None = None,
    stderr_groups: int = 20,
    seed: Any = 0,
    workers: int = -1,
) -> Estimate:
    r"""Estimates D(P ‖ Q) from samples x ~ P and y ~ Q by k-nearest-neighbour distances.

    The estimator of Wang, Kulkarni & Verdú (2009), eq. (17):

    .. math::

        \hat D = \frac{d}{n} \sum_{i=1}^n \log \frac{\nu_{k_i}(i)}{\rho_{l_i}(i)}
            + \frac1n \sum_{i=1}^n \bigl[\psi(l_i) - \psi(k_i)\bigr]
            + \log \frac{m}{n - 1},

    where :math:`\rho_l(i)` is the Euclidean distance from :math:`x_i` to its
    l-th nearest neighbour among the other x's and :math:`\nu_k(i)` the
    distance to its k-th nearest neighbour among the y's. By default
    :math:`l_i = k_i = k` and the digamma term vanishes (their eq. (5)); it is
    asymptotically unbiased and mean-square consistent for continuous
    densities. At fixed n its bias grows with the dimension d (see
    ``docs/estimators.md`` for an accuracy table); estimates can be negative.

    **Ties and duplicates.** Where :math:`\rho_k(i) = 0` (x_i has more than k
    copies, itself included) or :math:`\nu_k(i) = 0` (at least k y's equal
    x_i), the order is raised to the first one with a positive distance, the
    distance to the nearest point that differs from x_i: :math:`l_i = c_i`
    with c_i the copies of x_i in x, :math:`k_i = z_i + 1` with z_i its copies
    in y; the digamma term corrects for those orders (Wang et al.'s estimator
    with per-point orders). For independent samples of rounded or integer
    data, c_i − 1 and z_i are the other points at the atom, so the digamma
    term compares the atom's mass under P and Q: rounded Gaussians and
    Poisson counts are estimated about as well as continuous data (tested).
    Rounding at about the scale of the neighbour distances (ties at
    positive distances) biases the estimate down (by a fifth with k = 1 and
    by half with k = 3 at 1e-3 rounding and n = 5000): use k = 1, or dequantise
    with noise of the rounding's size. Degenerate inputs: ``x`` and ``y``
    holding the same points (in any order) give exactly 0, the divergence of
    their empirical distributions (the formula assumes independent samples and
    would give about −1/k); both constant at the same point give 0, and any
    other constant sample +inf. Never −inf or NaN. Samples that share only
    some points are not independent either: split such data instead. Rows
    recorded twice in continuous data are not rounding but look like atoms:
    with k = 1, doubling every row of x raises the estimate by exactly
    1 − log((2n − 1)/(n − 1)) ≈ 1 − log 2 (tested); deduplicate such data.

    **Bias correction** (``bias_correction=True``): Wang et al.'s adaptive
    orders. With :math:`\varepsilon(i) = \max(\rho_k(i), \nu_k(i))`,
    :math:`l_i` and :math:`k_i` are the numbers of other x's and of y's
    within :math:`\varepsilon(i)` (capped at max(64, 4k)), so that both
    density estimates use about the same ball and their smoothing biases
    cancel to first order; the digamma term keeps it consistent.

    **Standard error.** The per-point terms share neighbours and are
    dependent, so their spread says little. The data are split at random
    (``seed``) into B = ``stderr_groups`` disjoint subsamples of n/B x's and
    m/B y's, the estimator is computed on each (about the cost of the full
    estimate again), and ``stderr = sd(subsample estimates) / sqrt(B)``: exact
    for a variance that falls as a/n + b/m (its central-limit behaviour). It
    is the error of the estimator around its own mean, not around the true
    divergence: the bias at this n is not in it. ``subsample_mean_nats`` in
    ``details``, the mean of the estimates from B times fewer points, shows
    how the estimate moves with n. Calibrated (reported / actual spread
    0.8–1.4) up to d = 5 in the tests and benchmarks; at d = 10 it was
    0.74–0.87, the variance falling more slowly than 1/n there. B is lowered
    so that every subsample has at least 10 (k + 1) x's and 10 k y's; below
    2 subsamples the standard error is NaN (unknown). Its B − 1 degrees of
    freedom are in ``details["stderr_dof"]``.

    Not differentiable: the inputs of any backend (NumPy, PyTorch, JAX, ...)
    are copied to NumPy float64, and the value and standard error are Python
    floats.

    Args:
        x: samples of P, shape (n,) or (n, d), any array library.
        y: samples of Q, shape (m,) or (m, d), the same library and d.
        k: the neighbour order, >= 1 (k = 1 has the least bias, larger k the
            least variance).
        bias_correction: use Wang et al.'s adaptive neighbour orders.
        base: the logarithm base of the unit: None for nats, 2 for bits.
        stderr_groups: the number B of subsamples for the standard error; 0
            skips it (stderr NaN, half the time).
        seed: seed (or ``numpy.random.Generator``) of the random split into
            subsamples; the value itself does not depend on it.
        workers: threads of the KD-tree queries: -1 for all cores.

    Returns:
        An :class:`~kldiv.estimators.Estimate` with ``method="knn"``, ``n`` the
        number of x's, and ``details`` holding ``k``, ``d``, ``m``,
        ``bias_correction``, ``tied_points`` (points whose order was raised past
        a zero distance), ``stderr_method``, ``stderr_groups``, ``stderr_dof``
        and ``subsample_mean_nats``.

    Raises:
        KLDivError: non-finite values, shapes other than (n,) or (n, d),
            different d, too few samples (n < k + 1 or m < k), a bad ``k``,
            ``stderr_groups`` or ``workers``, arrays of different libraries, or
            traced arrays.

    Examples:
        >>> import numpy as np
        >>> from kldiv.estimators import knn_kl
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(0.0, 1.0, size=(20000, 2))
        >>> y = rng.normal(0.5, 1.2, size=(20000, 2))
        >>> est = knn_kl(x, y)  # the exact value is 0.2327 nats
        >>> est
        0.231 ± 0.020 nats (knn, n=20000)
        >>> lo, hi = est.ci()
        >>> bool(lo < 0.2327 < hi)
        True

    References:
        Wang, Q., Kulkarni, S. R., & Verdú, S. (2009). Divergence estimation for
        multidimensional densities via k-nearest-neighbor distances. IEEE
        Transactions on Information Theory, 55(5), 2392–2405.
    """
    k = _check_positive_int(k, "k")
    bias_correction = _check_flag(bias_correction, "bias_correction")
    stderr_groups = _check_positive_int(stderr_groups, "stderr_groups", minimum=0)
    workers = _check_workers(workers)
    log_base = log_of_base(base)
    x_points, y_points = _sample_points(x, y, k)
    n, d = x_points.shape
    m = y_points.shape[0]
    details: dict[str, Any] = {"k": k, "d": d, "m": m, "bias_correction": bias_correction}
    degenerate = _degenerate(x_points, y_points)
    if degenerate is not None:
        value, note = degenerate
        details.update(
            degenerate=note,
            tied_points=0,
            stderr_method="none: exact value of a degenerate input",
            stderr_groups=0,
            stderr_dof=0,
            subsample_mean_nats=math.nan,
        )
        return Estimate(_in_base(value, log_base), 0.0, "knn", n, base, details)
    result = _divergence(x_points, y_points, k, bias_correction, workers)
    groups = _groups(n, m, k, stderr_groups)
    stderr, subsample_mean = math.nan, math.nan
    if groups:
        stderr, subsample_mean = _subsample_stderr(
            x_points, y_points, k, bias_correction, groups, seed, workers
        )
    details.update(
        tied_points=result.tied,
        stderr_method="subsample" if groups else "none: too few points or stderr_groups < 2",
        stderr_groups=groups,
        stderr_dof=max(groups - 1, 0),
        subsample_mean_nats=subsample_mean,
    )
    converged = None  # stderr_groups < 2: no error bar was asked for, none is claimed
    if stderr_groups >= 2 and not math.isfinite(stderr):
        # An error bar was asked for and cannot be given: unbounded, not NaN.
        stderr, converged = math.inf, False
        details["reason"] = _no_stderr_reason(groups, n, m, k)
    return Estimate(
        _in_base(result.value, log_base),
        _in_base(stderr, log_base),
        "knn",
        n,
        base,
        details,
        converged=converged,
    )


def _no_stderr_reason(groups: int, n: int, m: int, k: int) -> str:
    if not groups:
        return (
            f"too few points for a standard error: it needs two subsamples of "
            f"{_MIN_GROUP_PER_NEIGHBOUR * (k + 1)} x's and {_MIN_GROUP_PER_NEIGHBOUR * k} y's "
            f"(n >= {2 * _MIN_GROUP_PER_NEIGHBOUR * (k + 1)}, m >= "
            f"{2 * _MIN_GROUP_PER_NEIGHBOUR * k}); got n = {n}, m = {m}"
        )
    return "a subsample estimate was not finite, so the standard error is unknown"


def _in_base(value: float, log_base: float | None) -> float:
    return value if log_base is None else value / log_base
