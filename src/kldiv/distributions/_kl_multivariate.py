r"""Closed forms among the multivariate and structural families.

Gaussians (MultivariateNormal in any parameterisation, LowRankMultivariateNormal,
and Independent(Normal, 1) as a diagonal Gaussian) all use

.. math::

    D_{KL}(P \| Q) = \tfrac12\big[\operatorname{tr}(\Sigma_q^{-1}\Sigma_p) - d
        + (\mu_q - \mu_p)^\top \Sigma_q^{-1} (\mu_q - \mu_p)
        + \log\det\Sigma_q - \log\det\Sigma_p\big],

with the trace, Mahalanobis term and log-determinants taken by the cheapest
route each family offers (Cholesky factors and triangular solves, a given
precision matrix used as is, the Woodbury identity for low-rank
covariances; torch.distributions/kl.py for the low-rank forms). Pairs of the
same parameterisation are exact (0.0) for equal parameters.

A ``MixtureSameFamily`` has no closed form: nothing is registered for it, so
:func:`kldiv.kl_divergence` raises :class:`kldiv.NoClosedFormError`.
"""

from __future__ import annotations

from typing import Any

from kldiv._array_api import device, is_torch_namespace
from kldiv._special import multidigamma, multigammaln
from kldiv.distributions._base import Distribution
from kldiv.distributions._kl_helpers import infinite_kl, where_finite
from kldiv.distributions._multivariate import (
    Dirichlet,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Wishart,
    _log_diagonal_sum,
    _solve_lower,
    _squared_norm,
)
from kldiv.distributions._real import Normal
from kldiv.distributions._registry import kl_divergence, register_kl
from kldiv.distributions._stable import dirichlet_kl
from kldiv.distributions._structural import Deterministic, Independent, _sum_rightmost
from kldiv.errors import NoClosedFormError

Array = Any

_PRECISION = "precision_matrix"


# --- Gaussians ---------------------------------------------------------------------------------


class _DiagonalGaussian:
    r"""``Independent(Normal(loc, scale), 1)`` as :math:`\mathcal N(\mu, \mathrm{diag}(\sigma^2))`.

    It offers the Gaussian hooks of :mod:`kldiv.distributions._multivariate`.
    """

    def __init__(self, independent: Independent) -> None:
        base = independent.base_distribution
        self.xp = independent.xp
        self.loc = base.loc
        self.scale = base.scale
        self.event_shape = independent.event_shape

    def _log_det_covariance(self) -> Array:
        return 2.0 * self.xp.sum(self.xp.log(self.scale), axis=-1)

    def _mahalanobis(self, diff: Array) -> Array:
        z = diff / self.scale
        return self.xp.sum(z * z, axis=-1)

    def _trace_inv_factor(self, factor: Array) -> Array:
        z = factor / self.scale[..., None]
        return self.xp.sum(z * z, axis=(-2, -1))

    def _trace_inv_diag(self, diagonal: Array) -> Array:
        return self.xp.sum(diagonal / (self.scale * self.scale), axis=-1)

    def _covariance_terms(self) -> tuple[Array | None, Array | None]:
        return None, self.scale * self.scale


def _diagonal_gaussian(d: Independent, role: str, other: Distribution) -> _DiagonalGaussian:
    """``d`` as a diagonal Gaussian, or NoClosedFormError when it is not Independent(Normal, 1)."""
    base = d.base_distribution
    if not isinstance(base, Normal) or d.reinterpreted_batch_ndims != 1:
        raise NoClosedFormError(
            f"KL between Independent and {type(other).__name__} has a closed form only when the "
            f"Independent is Independent(Normal, reinterpreted_batch_ndims=1); `{role}` is "
            f"Independent({type(base).__name__}, "
            f"reinterpreted_batch_ndims={d.reinterpreted_batch_ndims})"
        )
    return _DiagonalGaussian(d)


def _sum_below_diagonal(x: Array, *, xp: Any) -> Array:
    """The sum of the entries of ``x`` below the diagonal, by a matrix-vector product with a mask.

    The matrix is flattened for the product; PyTorch's triangular solves return
    column-major matrices, whose transpose flattens without a copy (the mask is
    transposed to match).
    """
    dim = x.shape[-1]
    ones = xp.ones((dim, dim), dtype=x.dtype, device=device(x))
    if is_torch_namespace(xp):
        x, mask = x.mT, xp.triu(ones, k=1)
    else:
        mask = xp.tril(ones, k=-1)
    flat = xp.reshape(x, (*x.shape[:-2], dim * dim))
    return xp.matmul(flat, xp.reshape(mask, (dim * dim,)))


def _whitened_trace_minus_log_det(inner: Array, outer: Array, *, xp: Any) -> Array:
    r""":math:`\operatorname{tr}(X X^\top) - d - \log\det(X X^\top)` for :math:`X = M^{-1} N`.

    ``inner`` :math:`M` and ``outer`` :math:`N` are lower triangular with
    positive diagonals, so :math:`X` is lower triangular with diagonal
    :math:`N_{ii}/M_{ii} = e^{r_i}`. The diagonal's share is summed as
    :math:`\operatorname{expm1}(2r_i) - 2r_i` and the entries below the
    diagonal as squares (selected by a matrix-vector product with a 0/1 mask,
    which needs no second matrix-sized temporary): exactly 0 for equal
    factors, and accurate when they are close. With :math:`M = L_q`,
    :math:`N = L_p` this is :math:`\operatorname{tr}(\Sigma_q^{-1}\Sigma_p) - d
    + \log\det\Sigma_q - \log\det\Sigma_p` (as in
    :func:`kldiv._gaussian.full_covariance_gaussian_kl`).
    """
    whitened = _solve_lower(inner, outer, xp=xp)
    below_diagonal = _sum_below_diagonal(whitened * whitened, xp=xp)
    two_r = 2.0 * (xp.log(xp.linalg.diagonal(outer)) - xp.log(xp.linalg.diagonal(inner)))
    return below_diagonal + xp.sum(xp.expm1(two_r) - two_r, axis=-1)


def _trace_of_inverse_times(p: Any, q: Any) -> Array:
    r""":math:`\operatorname{tr}(\Sigma_q^{-1}\Sigma_p)` from P's covariance terms and Q's hooks."""
    factor, diagonal = p._covariance_terms()
    trace = 0.0
    if factor is not None:
        trace = trace + q._trace_inv_factor(factor)
    if diagonal is not None:
        trace = trace + q._trace_inv_diag(diagonal)
    return trace


def _gaussian_kl(p: Any, q: Any) -> Array:
    """The Gaussian KL from the hooks of any two Gaussian views (see the module docstring)."""
    dim = p.event_shape[-1]
    trace = _trace_of_inverse_times(p, q)
    mahalanobis = q._mahalanobis(q.loc - p.loc)
    log_det_ratio = q._log_det_covariance() - p._log_det_covariance()
    return 0.5 * (trace - dim + mahalanobis + log_det_ratio)


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn_mvn(p: MultivariateNormal, q: MultivariateNormal) -> Array:
    r"""MultivariateNormal–MultivariateNormal, by the cheapest route for the two parameterisations.

    - Both factorised covariances (``covariance_matrix`` or ``scale_tril``, or
      P given a precision, whose Cholesky factor of :math:`\Sigma_p` is derived):
      :math:`\|L_q^{-1}L_p\|_F^2` by a triangular solve, its diagonal share
      summed as :math:`\operatorname{expm1}(2r_i) - 2r_i` with the log-determinants,
      :math:`r_i = \log(L_{p,ii}/L_{q,ii})`
      (see :func:`_whitened_trace_minus_log_det`).
    - Both precisions :math:`\Lambda = C C^\top`:
      :math:`\operatorname{tr}(\Lambda_q\Sigma_p) = \|C_p^{-1}C_q\|_F^2`, the same
      form with the roles of the factors swapped; no inverse.
    - Q given a precision, P a covariance: :math:`\operatorname{tr}(\Lambda_q\Sigma_p)` as
      an elementwise sum, :math:`O(d^2)`; P given ``scale_tril``:
      :math:`\|C_q^\top L_p\|_F^2`.
    """
    xp = p.xp
    mahalanobis = q._mahalanobis(q.loc - p.loc)
    if q._given != _PRECISION:
        lower_p = p._unbroadcasted_scale_tril
        trace_and_log_det = _whitened_trace_minus_log_det(q._factor, lower_p, xp=xp)
        return 0.5 * (trace_and_log_det + mahalanobis)
    if p._given == _PRECISION:
        trace_and_log_det = _whitened_trace_minus_log_det(p._factor, q._factor, xp=xp)
        return 0.5 * (trace_and_log_det + mahalanobis)
    if p._given == "covariance_matrix":
        trace = xp.sum(q._matrix * p._matrix, axis=(-2, -1))
    else:
        trace = _squared_norm(xp.matmul(q._factor.mT, p._factor), xp=xp)
    dim = p.event_shape[-1]
    log_det_ratio = q._log_det_covariance() - p._log_det_covariance()
    return 0.5 * (trace - dim + mahalanobis + log_det_ratio)


@register_kl(LowRankMultivariateNormal, LowRankMultivariateNormal)
def _kl_lowrank_lowrank(p: LowRankMultivariateNormal, q: LowRankMultivariateNormal) -> Array:
    r"""LowRank–LowRank in :math:`O(d r^2)`, exact (0.0) for equal parameters.

    The trace is taken as :math:`\operatorname{tr}(\Sigma_q^{-1}(\Sigma_p - \Sigma_q))
    = \operatorname{tr}(W_p^\top\Sigma_q^{-1}W_p) - \operatorname{tr}(W_q^\top\Sigma_q^{-1}W_q)
    + \sum_j (D_p - D_q)_j (\Sigma_q^{-1})_{jj}`, each through the Woodbury form
    (torch.distributions/kl.py expands the same products).
    """
    factor_p, diag_p = p._covariance_terms()
    factor_q, diag_q = q._covariance_terms()
    trace_minus_dim = (
        q._trace_inv_factor(factor_p)
        - q._trace_inv_factor(factor_q)
        + q._trace_inv_diag(diag_p - diag_q)
    )
    mahalanobis = q._mahalanobis(q.loc - p.loc)
    log_det_ratio = q._log_det_covariance() - p._log_det_covariance()
    return 0.5 * (trace_minus_dim + mahalanobis + log_det_ratio)


@register_kl(MultivariateNormal, LowRankMultivariateNormal)
def _kl_mvn_lowrank(p: MultivariateNormal, q: LowRankMultivariateNormal) -> Array:
    r""":math:`\operatorname{tr}(\Sigma_q^{-1} L_p L_p^\top)` by Woodbury, :math:`O(d^2 r)`."""
    return _gaussian_kl(p, q)


@register_kl(LowRankMultivariateNormal, MultivariateNormal)
def _kl_lowrank_mvn(p: LowRankMultivariateNormal, q: MultivariateNormal) -> Array:
    r"""LowRank–MultivariateNormal: :math:`\operatorname{tr}(\Sigma_q^{-1}(W_p W_p^\top + D_p))`.

    By triangular solves, or :math:`\|C_q^\top W_p\|_F^2 + \sum_j \Lambda_{q,jj} D_{p,j}`
    given Q's precision (no inverse).
    """
    return _gaussian_kl(p, q)


@register_kl(Independent, MultivariateNormal)
def _kl_independent_mvn(p: Independent, q: MultivariateNormal) -> Array:
    r"""Independent(Normal, 1)–MultivariateNormal: :math:`\Sigma_p = \operatorname{diag}(\sigma^2)`.

    Raises:
        NoClosedFormError: P is not an Independent(Normal) with one reinterpreted axis.
    """
    return _gaussian_kl(_diagonal_gaussian(p, "p", q), q)


@register_kl(MultivariateNormal, Independent)
def _kl_mvn_independent(p: MultivariateNormal, q: Independent) -> Array:
    r"""MultivariateNormal–Independent(Normal, 1): Q's inverse covariance is diagonal.

    Raises:
        NoClosedFormError: Q is not an Independent(Normal) with one reinterpreted axis.
    """
    return _gaussian_kl(p, _diagonal_gaussian(q, "q", p))


@register_kl(Independent, LowRankMultivariateNormal)
def _kl_independent_lowrank(p: Independent, q: LowRankMultivariateNormal) -> Array:
    r"""Independent(Normal, 1)–LowRankMultivariateNormal, :math:`O(d r^2)`.

    Raises:
        NoClosedFormError: P is not an Independent(Normal) with one reinterpreted axis.
    """
    return _gaussian_kl(_diagonal_gaussian(p, "p", q), q)


@register_kl(LowRankMultivariateNormal, Independent)
def _kl_lowrank_independent(p: LowRankMultivariateNormal, q: Independent) -> Array:
    r"""LowRankMultivariateNormal–Independent(Normal, 1), :math:`O(d r)`.

    Raises:
        NoClosedFormError: Q is not an Independent(Normal) with one reinterpreted axis.
    """
    return _gaussian_kl(p, _diagonal_gaussian(q, "q", p))


# --- Structural --------------------------------------------------------------------------------


@register_kl(Independent, Independent)
def _kl_independent_independent(p: Independent, q: Independent) -> Array:
    r"""The base distributions' KL summed over the reinterpreted axes (torch.distributions).

    :math:`D(\prod_i P_i \| \prod_i Q_i) = \sum_i D(P_i \| Q_i)`.

    Raises:
        NoClosedFormError: the two reinterpret different numbers of axes, or the
            bases have no closed form.
    """
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NoClosedFormError(
            "KL(Independent ‖ Independent) has a closed form only for equal "
            f"reinterpreted_batch_ndims; got {p.reinterpreted_batch_ndims} for `p` and "
            f"{q.reinterpreted_batch_ndims} for `q`"
        )
    base = kl_divergence(p.base_distribution, q.base_distribution)
    return _sum_rightmost(base, p.reinterpreted_batch_ndims, xp=p.xp)


@register_kl(Deterministic, Distribution)
def _kl_deterministic_distribution(p: Deterministic, q: Distribution) -> Array:
    r"""A point mass against any distribution: :math:`-\log Q(a)` if Q is discrete, else +inf.

    .. math::

        D_{KL}(\delta_a \| Q) = \log \frac{1}{Q(\{a\})}

    which is :math:`-\log q(a)` for a discrete Q (its mass at :math:`a`) and
    :math:`+\infty` for a continuous Q, which gives the point no mass. That is
    the exact divergence. Pyro and TFP return :math:`-\log q(a)` (the density)
    for a continuous Q as well, the convention that makes MAP estimation a KL
    minimisation; for that number use ``-q.log_prob(a)``.
    """
    if not q.is_discrete:
        return infinite_kl(p, q)
    return -q.log_prob(p.loc)


@register_kl(Deterministic, Deterministic)
def _kl_deterministic_deterministic(p: Deterministic, q: Deterministic) -> Array:
    r""":math:`D(\delta_a \| \delta_b)` is 0 where :math:`a = b` and +inf elsewhere.

    The zeros are ``0 * (a - b)``, so that the result stays on the autograd graph
    (with a zero gradient) like every other closed form.
    """
    xp = p.xp
    at_same_point = q._at_loc(p.loc)
    zero = _sum_rightmost(0.0 * (p.loc - q.loc), p.event_ndims, xp=xp)
    return where_finite(~at_same_point, zero, xp)


# --- Dirichlet and Wishart ---------------------------------------------------------------------


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet_dirichlet(p: Dirichlet, q: Dirichlet) -> Array:
    r"""Dirichlet–Dirichlet (torch.distributions/kl.py).

    :math:`\log\Gamma(\alpha_0) - \log\Gamma(\beta_0) - \sum_i[\log\Gamma(\alpha_i)
    - \log\Gamma(\beta_i)] + \sum_i (\alpha_i - \beta_i)(\psi(\alpha_i) - \psi(\alpha_0))`,
    as :math:`\sum_i B(\beta_i, \alpha_i) - B(\beta_0, \alpha_0)` with :math:`B` the Bregman
    divergence of :math:`\log\Gamma`, without cancellation
    (:func:`kldiv.distributions._stable.dirichlet_kl`).
    """
    xp = p.xp
    alpha, beta = xp.broadcast_arrays(p.concentration, q.concentration)
    return dirichlet_kl(alpha, beta, xp)


@register_kl(Wishart, Wishart)
def _kl_wishart_wishart(p: Wishart, q: Wishart) -> Array:
    r"""Wishart–Wishart, exact (0.0) for equal parameters.

    .. math::

        \tfrac{\nu_q}2 G + \tfrac{\nu_p}2 T + \log\frac{\Gamma_n(\nu_q/2)}{\Gamma_n(\nu_p/2)}
        + \tfrac{\nu_p - \nu_q}2 \psi_n(\nu_p/2),

    :math:`T = \operatorname{tr}(\Sigma_q^{-1}\Sigma_p) - n`,
    :math:`G = \log\det\Sigma_q - \log\det\Sigma_p` (e.g. Penny, "KL-divergences
    of Normal, Gamma, Dirichlet and Wishart densities", 2001), computed as
    :math:`\tfrac{\nu_p}2(T + G) + \tfrac{\nu_p - \nu_q}2(\psi_n(\nu_p/2) - G) + \dots`,
    where :math:`T + G` is the Gaussian form of :func:`_whitened_trace_minus_log_det`.
    """
    xp = p.xp
    dim = p.event_shape[-1]
    nu_p, nu_q = p.df, q.df
    lower_p, lower_q = p._unbroadcasted_scale_tril, q._unbroadcasted_scale_tril
    trace_plus_log_det = _whitened_trace_minus_log_det(lower_q, lower_p, xp=xp)
    log_det_ratio = 2.0 * (_log_diagonal_sum(lower_q, xp=xp) - _log_diagonal_sum(lower_p, xp=xp))
    half_p, half_q = 0.5 * nu_p, 0.5 * nu_q
    return (
        half_p * trace_plus_log_det
        + (half_p - half_q) * (multidigamma(half_p, dim, xp=xp) - log_det_ratio)
        + multigammaln(half_q, dim, xp=xp)
        - multigammaln(half_p, dim, xp=xp)
    )
