r"""Multivariate distributions: MultivariateNormal, LowRankMultivariateNormal, Dirichlet, Wishart.

The Gaussian families keep the parameterisation they were given and derive
the others lazily (Cholesky factors, triangular solves, the Woodbury identity
for low-rank covariances), so that each closed form can take the cheapest
route. A covariance or precision matrix is checked by its Cholesky
factorisation, which the distribution needs anyway: one that succeeds proves
positive definiteness.

The Gaussians also expose private hooks used by the closed forms in
:mod:`kldiv.distributions._kl_multivariate`:

- ``_log_det_covariance()``: :math:`\log\det\Sigma`;
- ``_mahalanobis(diff)``: :math:`\delta^\top \Sigma^{-1} \delta`;
- ``_trace_inv_factor(F)``: :math:`\operatorname{tr}(F^\top \Sigma^{-1} F)`;
- ``_trace_inv_diag(v)``: :math:`\sum_j v_j (\Sigma^{-1})_{jj}`;
- ``_covariance_terms()``: ``(F, v)`` with :math:`\Sigma = F F^\top + \operatorname{diag}(v)`
  (either may be None).
"""

from __future__ import annotations

import math
import sys
from types import ModuleType
from typing import Any

import numpy as np

from kldiv._array_api import device, is_jax_namespace, is_torch_namespace, is_traced, size, to_numpy
from kldiv._gaussian import _check_scale_tril, _solve_lower_triangular
from kldiv._special import digamma, gammaln, multidigamma, multigammaln
from kldiv.distributions._base import Distribution, float_parameters
from kldiv.distributions._constraints import (
    Constraint,
    check_parameter,
    greater_than,
    positive,
    real,
    real_vector,
)
from kldiv.distributions._random import split_rng, standard_gamma, standard_normal
from kldiv.errors import KLDivError

__all__ = ["Dirichlet", "LowRankMultivariateNormal", "MultivariateNormal", "Wishart"]

Array = Any

_LOG_TWO_PI = math.log(2.0 * math.pi)
_MATRIX_NAMES = ("covariance_matrix", "precision_matrix", "scale_tril")


def _is_positive_definite(v: Array, xp: ModuleType) -> Array:
    return xp.all(xp.linalg.eigvalsh(v) > 0, axis=-1) & xp.all(v == v.mT, axis=(-2, -1))


def _is_lower_cholesky(v: Array, xp: ModuleType) -> Array:
    diagonal = xp.linalg.diagonal(v)
    upper_zero = xp.all(xp.triu(v, k=1) == 0, axis=(-2, -1))
    return upper_zero & xp.all(xp.isfinite(v), axis=(-2, -1)) & xp.all(diagonal > 0, axis=-1)


positive_definite = Constraint("symmetric positive definite matrices", _is_positive_definite, 2)
lower_cholesky = Constraint(
    "lower triangular matrices with a positive diagonal", _is_lower_cholesky, 2
)


# --- Shapes, checks and factorisations shared by the matrix-parameterised families ------------


def _the_one_matrix(owner: str, named: dict[str, object]) -> tuple[str, object]:
    """The name and value of the one matrix parameter given (exactly one is allowed)."""
    given = [name for name, value in named.items() if value is not None]
    if len(given) != 1:
        got = ", ".join(f"`{n}`" for n in given) if given else "none"
        raise KLDivError(
            f"{owner} takes exactly one of `covariance_matrix`, `precision_matrix`, "
            f"`scale_tril`; got {got}"
        )
    return given[0], named[given[0]]


def _check_square(matrix: Array, name: str, owner: str, size_: int | None, against: str) -> None:
    if matrix.ndim < 2 or matrix.shape[-1] != matrix.shape[-2]:
        raise KLDivError(
            f"`{name}` of {owner} must be a batch of square matrices, shape [..., d, d]; "
            f"got shape {tuple(matrix.shape)}"
        )
    if size_ is not None and matrix.shape[-1] != size_:
        raise KLDivError(
            f"`{name}` of {owner} must have shape [..., {size_}, {size_}] to match {against}; "
            f"got {tuple(matrix.shape)}"
        )


def _batch_shape(shapes: dict[str, tuple[int, ...]], owner: str) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*shapes.values()))
    except ValueError:
        described = ", ".join(f"`{n}` {s}" for n, s in shapes.items())
        raise KLDivError(
            f"the batch shapes of the parameters of {owner} do not broadcast: {described}"
        ) from None


def _broadcast_to(x: Array, shape: tuple[int, ...], *, xp: ModuleType) -> Array:
    """``x`` broadcast to ``shape``, itself when it has that shape already (no read-only view)."""
    return x if tuple(x.shape) == tuple(shape) else xp.broadcast_to(x, shape)


def _first_index(mask: Array) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(np.asarray(to_numpy(mask)))[0])


def _checks_values(array: Array, validate: bool) -> bool:
    return validate and not is_traced(array) and bool(size(array))


def _probe(count: int, like: Array, *, xp: ModuleType) -> Array:
    """A fixed vector of ``count`` entries in [1, 2) with no simple pattern: 1 + frac(k phi)."""
    k = xp.arange(1, count + 1, dtype=like.dtype, device=device(like))
    return 1.0 + xp.remainder(k * 0.6180339887498949, 1.0)


def _check_symmetric(matrix: Array, name: str, owner: str, *, xp: ModuleType) -> None:
    r"""Finite and symmetric, checked with two matrix-vector products and no matrix-sized temporary.

    :math:`A v` and :math:`A^\top v` agree for a symmetric :math:`A`; for a
    fixed probe :math:`v` with no zero entry, an asymmetry :math:`a` in one
    pair of entries shows as :math:`|a| v_j`, flagged above
    :math:`\max(\sqrt{\epsilon}, 10^{-6}) \max_i |A_{ii}| \|v\|_2`. Non-finite
    entries make the products non-finite. The details of a failure are read
    from a NumPy copy.
    """
    tolerance = max(math.sqrt(float(xp.finfo(matrix.dtype).eps)), 1e-6)
    probe = _probe(matrix.shape[-1], matrix, xp=xp)
    right, left = xp.matmul(matrix, probe), xp.matmul(probe, matrix)
    scale = xp.max(xp.abs(xp.linalg.diagonal(matrix)), axis=-1, keepdims=True)
    bound = (tolerance * xp.sqrt(xp.sum(probe * probe))) * scale
    close = (xp.abs(right - left) <= bound) & xp.isfinite(right) & xp.isfinite(left)
    ok = xp.all(close, axis=-1)
    if bool(xp.all(ok)):
        return
    index = _first_index(~ok)
    values = to_numpy(matrix)[index] if index else to_numpy(matrix)
    where = f" at batch index {index}" if index else ""
    if not np.all(np.isfinite(values)):
        got = "a matrix with non-finite entries"
    else:
        got = f"a matrix with |A - A^T| up to {float(np.max(np.abs(values - values.T))):.6g}"
    raise KLDivError(f"`{name}` of {owner} must be a symmetric matrix; got {got}{where}")


def _check_lower_cholesky(matrix: Array, name: str, owner: str, *, xp: ModuleType) -> None:
    r"""A Cholesky factor: zero above the diagonal, a finite positive diagonal, finite entries.

    Checked without a matrix-sized temporary: the entries above the diagonal
    must have a zero weighted sum (fixed weights in [1, 2), so that no
    realistic nonzero pattern cancels) and a product with a probe vector must
    be finite. A failure is explained by
    :func:`kldiv._gaussian._check_scale_tril` on the values.
    """
    dim = matrix.shape[-1]
    # The entries above the diagonal are those below it in the transpose, whose flattening is
    # free for the column-major factors LAPACK returns (torch.linalg.cholesky).
    weights = xp.tril(xp.reshape(_probe(dim * dim, matrix, xp=xp), (dim, dim)), k=-1)
    upper = xp.reshape(weights, (dim * dim,))
    flat = xp.reshape(matrix.mT, (*matrix.shape[:-2], dim * dim))
    diagonal = xp.linalg.diagonal(matrix)
    probe = _probe(dim, matrix, xp=xp)
    ok = (
        (xp.matmul(flat, upper) == 0)
        & xp.all(xp.isfinite(xp.matmul(matrix, probe)), axis=-1)
        & xp.all(diagonal > 0, axis=-1)
    )
    if bool(xp.all(ok)):
        return
    _check_scale_tril(matrix, name, xp=xp)
    index = _first_index(~ok)
    where = f" at batch index {index}" if index else ""
    raise KLDivError(
        f"`{name}` of {owner} must be a Cholesky factor with finite entries; got a matrix with "
        f"non-finite entries{where}"
    )


def _not_positive_definite(matrix: Array, name: str, owner: str, index: tuple) -> KLDivError:
    values = np.asarray(to_numpy(matrix), dtype=float)
    values = values[index] if index else values
    try:
        got = f"a matrix with smallest eigenvalue {float(np.linalg.eigvalsh(values).min()):.6g}"
    except np.linalg.LinAlgError:
        got = "a matrix whose eigenvalues could not be computed"
    where = f" at batch index {index}" if index else ""
    return KLDivError(
        f"`{name}` of {owner} must be positive definite (its Cholesky factorisation failed); "
        f"got {got}{where}"
    )


def _failed_cholesky_index(matrix: Array) -> tuple[int, ...]:
    """The first batch index whose matrix has no Cholesky factor (NumPy copy; error path)."""
    values = np.asarray(to_numpy(matrix), dtype=float)
    for index in np.ndindex(*values.shape[:-2]):
        try:
            np.linalg.cholesky(values[index])
        except np.linalg.LinAlgError:
            return tuple(int(i) for i in index)
    return ()


def _cholesky(matrix: Array, name: str, owner: str, *, check: bool, xp: ModuleType) -> Array:
    """The lower Cholesky factor of ``matrix``; a failure is a :class:`KLDivError` naming the index.

    PyTorch reports failures per matrix (``cholesky_ex``; read only when
    ``check``), JAX returns NaN (detected when ``check``), NumPy-backed
    namespaces raise for the whole batch (always reported).
    """
    if is_torch_namespace(xp):
        factor, info = sys.modules["torch"].linalg.cholesky_ex(matrix)
        if check and bool(xp.any(info != 0)):
            raise _not_positive_definite(matrix, name, owner, _first_index(info != 0))
        return factor
    try:
        factor = xp.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        raise _not_positive_definite(matrix, name, owner, _failed_cholesky_index(matrix)) from None
    if check:
        failed = ~xp.all(xp.isfinite(xp.linalg.diagonal(factor)), axis=-1)
        if bool(xp.any(failed)):
            raise _not_positive_definite(matrix, name, owner, _first_index(failed))
    return factor


def _eye(n: int, like: Array, *, xp: ModuleType) -> Array:
    return xp.eye(n, dtype=like.dtype, device=device(like))


def _solve_lower(lower: Array, b: Array, *, xp: ModuleType) -> Array:
    """``X`` with ``lower @ X = b`` (batched, broadcast)."""
    return _solve_lower_triangular(lower, b, xp=xp)


def _solve_lower_transposed(lower: Array, b: Array, *, xp: ModuleType) -> Array:
    r"""``X`` with :math:`L^\top X = b` for lower triangular :math:`L` (an upper triangular solve).

    Generic backends reverse rows and columns, which turns the upper triangular
    :math:`L^\top` into a lower triangular matrix.
    """
    if is_torch_namespace(xp):
        torch = sys.modules["torch"]
        batch = np.broadcast_shapes(tuple(lower.shape[:-2]), tuple(b.shape[:-2]))
        upper = xp.broadcast_to(lower.mT, (*batch, *lower.shape[-2:]))
        return torch.linalg.solve_triangular(
            upper, xp.broadcast_to(b, (*batch, *b.shape[-2:])), upper=True
        )
    if is_jax_namespace(xp):
        import jax.scipy.linalg

        batch = np.broadcast_shapes(tuple(lower.shape[:-2]), tuple(b.shape[:-2]))
        lower = xp.broadcast_to(lower, (*batch, *lower.shape[-2:]))
        b = xp.broadcast_to(b, (*batch, *b.shape[-2:]))
        return jax.scipy.linalg.solve_triangular(lower, b, trans=1, lower=True)
    flipped = xp.flip(lower.mT, axis=(-2, -1))
    return xp.flip(_solve_lower(flipped, xp.flip(b, axis=-2), xp=xp), axis=-2)


def _inverse_lower(lower: Array, *, xp: ModuleType) -> Array:
    """The inverse of a lower triangular matrix (lower triangular)."""
    return _solve_lower(lower, _eye(lower.shape[-1], lower, xp=xp), xp=xp)


def _precision_to_scale_tril(precision: Array, *, xp: ModuleType) -> Array:
    r"""The lower Cholesky factor of :math:`\Lambda^{-1}` without inverting :math:`\Lambda`.

    With :math:`J` the reversal, :math:`J\Lambda J = L_f L_f^\top` gives
    :math:`\Lambda = U U^\top`, :math:`U = J L_f J` upper triangular, so
    :math:`\Lambda^{-1} = U^{-\top} U^{-1}` with :math:`U^{-\top}` lower
    triangular (as in torch.distributions.multivariate_normal).
    """
    flipped = xp.linalg.cholesky(xp.flip(precision, axis=(-2, -1)))
    scale_tril_inverse = xp.flip(flipped, axis=(-2, -1)).mT
    return _inverse_lower(scale_tril_inverse, xp=xp)


def _log_diagonal_sum(factor: Array, *, xp: ModuleType) -> Array:
    return xp.sum(xp.log(xp.linalg.diagonal(factor)), axis=-1)


def _squared_norm(x: Array, *, xp: ModuleType, axis: int | tuple[int, ...] = (-2, -1)) -> Array:
    return xp.sum(x * x, axis=axis)


def _matvec(matrix: Array, vector: Array, *, xp: ModuleType) -> Array:
    return xp.matmul(matrix, vector[..., None])[..., 0]


# --- Gaussians ---------------------------------------------------------------------------------


class MultivariateNormal(Distribution):
    r"""The multivariate normal distribution :math:`\mathcal N(\mu, \Sigma)` in d dimensions.

    .. math::

        p(x) = (2\pi)^{-d/2} \det(\Sigma)^{-1/2}
               \exp\big(-\tfrac12 (x - \mu)^\top \Sigma^{-1} (x - \mu)\big)

    Give exactly one of ``covariance_matrix`` :math:`\Sigma`,
    ``precision_matrix`` :math:`\Lambda = \Sigma^{-1}` or ``scale_tril``
    :math:`L` (:math:`\Sigma = L L^\top`, lower triangular with a positive
    diagonal). The one given is kept, the others are derived when asked for;
    the closed forms pick the cheapest route for each pair of
    parameterisations. A covariance or precision matrix is factorised by
    Cholesky when the distribution is built: a failure (a matrix that is not
    positive definite) raises :class:`kldiv.KLDivError` naming the batch index
    when validating and the values are concrete (not under ``jax.jit``).

    Args:
        loc: the mean :math:`\mu`, shape ``[..., d]``.
        covariance_matrix: :math:`\Sigma`, shape ``[..., d, d]``, symmetric positive definite.
        precision_matrix: :math:`\Lambda`, shape ``[..., d, d]``, symmetric positive definite.
        scale_tril: :math:`L`, shape ``[..., d, d]``, lower triangular with a positive
            diagonal (checked when validating, as torch does; trusted otherwise).
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> import numpy as np
        >>> from kldiv import distributions as D
        >>> d = D.MultivariateNormal(np.zeros(2), covariance_matrix=np.diag([1.0, 4.0]))
        >>> d.batch_shape, d.event_shape
        ((), (2,))
        >>> d.scale_tril
        array([[1., 0.],
               [0., 2.]])
        >>> round(float(d.log_prob(np.zeros(2))), 6)  # -log(2 pi) - log 2
        -2.531024
    """

    arg_constraints = {
        "loc": real_vector,
        "covariance_matrix": positive_definite,
        "precision_matrix": positive_definite,
        "scale_tril": lower_cholesky,
    }
    has_rsample = True

    def __init__(
        self,
        loc: Array,
        covariance_matrix: Array | None = None,
        precision_matrix: Array | None = None,
        scale_tril: Array | None = None,
        *,
        validate: bool | None = None,
    ) -> None:
        owner = "MultivariateNormal"
        name, matrix = _the_one_matrix(
            owner,
            {
                "covariance_matrix": covariance_matrix,
                "precision_matrix": precision_matrix,
                "scale_tril": scale_tril,
            },
        )
        xp, arrays = float_parameters({"loc": loc, name: matrix}, owner)
        loc, matrix = arrays["loc"], arrays[name]
        if loc.ndim < 1:
            raise KLDivError(
                f"`loc` of {owner} must have at least one dimension (the event axis); got a scalar"
            )
        dim = loc.shape[-1]
        _check_square(matrix, name, owner, dim, f"`loc` of shape {tuple(loc.shape)}")
        batch = _batch_shape({"loc": tuple(loc.shape[:-1]), name: tuple(matrix.shape[:-2])}, owner)
        self.loc = _broadcast_to(loc, (*batch, dim), xp=xp)
        self._given = name
        self._matrix = matrix
        self._derived_scale_tril: Array | None = None
        self._derived_covariance: Array | None = None
        self._derived_precision: Array | None = None
        super().__init__(
            xp=xp, batch_shape=batch, event_shape=(dim,), dtype=loc.dtype, validate=validate
        )
        self._check_parameters()
        check = _checks_values(matrix, self.validate)
        if name == "scale_tril":
            self._factor = matrix  # checked to be lower triangular when validating
        else:
            self._factor = _cholesky(self._matrix, name, owner, check=check, xp=xp)

    def _check_parameters(self) -> None:
        xp, owner = self.xp, type(self).__name__
        check_parameter(self.loc, "loc", real_vector, owner, validate=self.validate, xp=xp)
        matrix = self._matrix
        if not _checks_values(matrix, self.validate):
            return
        if self._given == "scale_tril":
            _check_lower_cholesky(matrix, "scale_tril", owner, xp=xp)
        else:
            _check_symmetric(matrix, self._given, owner, xp=xp)

    @property
    def parameters(self) -> dict[str, Array]:
        """The mean and the one matrix parameter given, broadcast to the batch shape."""
        return {"loc": self.loc, self._given: self._broadcast(self._matrix)}

    def _broadcast(self, matrix: Array) -> Array:
        shape = (*self.batch_shape, *self.event_shape, *self.event_shape)
        return _broadcast_to(matrix, shape, xp=self.xp)

    @property
    def _unbroadcasted_scale_tril(self) -> Array:
        if self._given != "precision_matrix":
            return self._factor
        if self._derived_scale_tril is None:
            self._derived_scale_tril = _precision_to_scale_tril(self._matrix, xp=self.xp)
        return self._derived_scale_tril

    @property
    def scale_tril(self) -> Array:
        r"""The lower Cholesky factor :math:`L` of the covariance, ``[..., d, d]``."""
        return self._broadcast(self._unbroadcasted_scale_tril)

    @property
    def covariance_matrix(self) -> Array:
        r"""The covariance :math:`\Sigma = L L^\top`, ``[..., d, d]``."""
        if self._given == "covariance_matrix":
            return self._broadcast(self._matrix)
        if self._derived_covariance is None:
            lower = self._unbroadcasted_scale_tril
            self._derived_covariance = self.xp.matmul(lower, lower.mT)
        return self._broadcast(self._derived_covariance)

    @property
    def precision_matrix(self) -> Array:
        r"""The precision :math:`\Lambda = \Sigma^{-1} = L^{-\top} L^{-1}`, ``[..., d, d]``."""
        if self._given == "precision_matrix":
            return self._broadcast(self._matrix)
        if self._derived_precision is None:
            inverse = _inverse_lower(self._factor, xp=self.xp)
            self._derived_precision = self.xp.matmul(inverse.mT, inverse)
        return self._broadcast(self._derived_precision)

    @property
    def mean(self) -> Array:
        r"""The mean :math:`\mu`."""
        return self.loc

    @property
    def variance(self) -> Array:
        r"""The marginal variances, the diagonal of :math:`\Sigma`."""
        xp = self.xp
        if self._given == "covariance_matrix":
            diagonal = xp.linalg.diagonal(self._matrix)
        else:
            diagonal = _squared_norm(self._unbroadcasted_scale_tril, xp=xp, axis=-1)
        return _broadcast_to(diagonal, (*self.batch_shape, *self.event_shape), xp=xp)

    def log_prob(self, value: Array) -> Array:
        r""":math:`-\tfrac12[d\log 2\pi + \log\det\Sigma + (x - \mu)^\top\Sigma^{-1}(x - \mu)]`."""
        diff = self._value(value) - self.loc
        dim = self.event_shape[0]
        return -0.5 * (dim * _LOG_TWO_PI + self._log_det_covariance() + self._mahalanobis(diff))

    def entropy(self) -> Array:
        r""":math:`\tfrac12[d(1 + \log 2\pi) + \log\det\Sigma]`."""
        dim = self.event_shape[0]
        value = 0.5 * (dim * (1.0 + _LOG_TWO_PI) + self._log_det_covariance())
        return _broadcast_to(value, self.batch_shape, xp=self.xp)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        xp = self.xp
        eps = standard_normal(rng, self._extended_shape(shape), xp=xp, like=self.loc)
        if self._given == "precision_matrix":
            # x = mu + C^{-T} eps has covariance C^{-T} C^{-1} = Lambda^{-1}.
            return self.loc + _solve_lower_transposed(self._factor, eps[..., None], xp=xp)[..., 0]
        return self.loc + _matvec(self._factor, eps, xp=xp)

    # Gaussian hooks (see the module docstring). ``_factor`` is the Cholesky factor of the
    # covariance (given a covariance or scale_tril) or of the precision (given a precision).

    def _log_det_covariance(self) -> Array:
        log_det = 2.0 * _log_diagonal_sum(self._factor, xp=self.xp)
        return -log_det if self._given == "precision_matrix" else log_det

    def _mahalanobis(self, diff: Array) -> Array:
        xp = self.xp
        if self._given == "precision_matrix":
            whitened = xp.matmul(diff[..., None, :], self._factor)[..., 0, :]
        else:
            whitened = _solve_lower(self._factor, diff[..., None], xp=xp)[..., 0]
        return _squared_norm(whitened, xp=xp, axis=-1)

    def _trace_inv_factor(self, factor: Array) -> Array:
        xp = self.xp
        if self._given == "precision_matrix":
            return _squared_norm(xp.matmul(self._factor.mT, factor), xp=xp)
        return _squared_norm(_solve_lower(self._factor, factor, xp=xp), xp=xp)

    def _trace_inv_diag(self, diagonal: Array) -> Array:
        xp = self.xp
        if self._given == "precision_matrix":
            return xp.sum(xp.linalg.diagonal(self._matrix) * diagonal, axis=-1)
        inverse = _inverse_lower(self._factor, xp=xp)
        return xp.sum(inverse * inverse * diagonal[..., None, :], axis=(-2, -1))

    def _covariance_terms(self) -> tuple[Array | None, Array | None]:
        return self._unbroadcasted_scale_tril, None


class LowRankMultivariateNormal(Distribution):
    r"""A multivariate normal with low-rank-plus-diagonal covariance :math:`\Sigma = W W^\top + D`.

    .. math::

        p(x) = \mathcal N(x; \mu, W W^\top + \operatorname{diag}(D))

    with :math:`W` of shape :math:`d \times r`. As in torch.distributions,
    everything goes through the :math:`r \times r` capacitance matrix
    :math:`C = I + W^\top D^{-1} W` (its Cholesky factor :math:`L_C`):
    :math:`\log\det\Sigma = \log\det C + \sum_i \log D_i` and, by the Woodbury
    identity, :math:`\Sigma^{-1} = D^{-1} - A^\top A` with
    :math:`A = L_C^{-1} W^\top D^{-1}`, so ``log_prob``, ``entropy`` and the
    closed forms cost :math:`O(d r^2)`, not :math:`O(d^3)`.

    Args:
        loc: the mean :math:`\mu`, shape ``[..., d]``.
        cov_factor: :math:`W`, shape ``[..., d, r]``.
        cov_diag: the diagonal :math:`D > 0`, shape ``[..., d]``.
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> import numpy as np
        >>> from kldiv import distributions as D
        >>> d = D.LowRankMultivariateNormal(np.zeros(3), np.ones((3, 1)), np.ones(3))
        >>> d.covariance_matrix
        array([[2., 1., 1.],
               [1., 2., 1.],
               [1., 1., 2.]])
        >>> round(float(d.entropy()), 6)  # (3 (1 + log 2 pi) + log det(I + 1 1^T)) / 2
        4.949963
    """

    arg_constraints = {"loc": real_vector, "cov_factor": real, "cov_diag": positive}
    has_rsample = True

    def __init__(
        self, loc: Array, cov_factor: Array, cov_diag: Array, *, validate: bool | None = None
    ) -> None:
        owner = "LowRankMultivariateNormal"
        xp, arrays = float_parameters(
            {"loc": loc, "cov_factor": cov_factor, "cov_diag": cov_diag}, owner
        )
        loc, factor, diagonal = arrays["loc"], arrays["cov_factor"], arrays["cov_diag"]
        if loc.ndim < 1:
            raise KLDivError(
                f"`loc` of {owner} must have at least one dimension (the event axis); got a scalar"
            )
        dim = loc.shape[-1]
        if factor.ndim < 2 or factor.shape[-2] != dim:
            raise KLDivError(
                f"`cov_factor` of {owner} must have shape [..., {dim}, rank] to match `loc` of "
                f"shape {tuple(loc.shape)}; got {tuple(factor.shape)}"
            )
        if diagonal.ndim < 1 or diagonal.shape[-1] != dim:
            raise KLDivError(
                f"`cov_diag` of {owner} must have shape [..., {dim}] to match `loc` of shape "
                f"{tuple(loc.shape)}; got {tuple(diagonal.shape)}"
            )
        batch = _batch_shape(
            {
                "loc": tuple(loc.shape[:-1]),
                "cov_factor": tuple(factor.shape[:-2]),
                "cov_diag": tuple(diagonal.shape[:-1]),
            },
            owner,
        )
        rank = factor.shape[-1]
        self._unbroadcasted_cov_factor = factor
        self._unbroadcasted_cov_diag = diagonal
        self.loc = _broadcast_to(loc, (*batch, dim), xp=xp)
        self.cov_factor = _broadcast_to(factor, (*batch, dim, rank), xp=xp)
        self.cov_diag = _broadcast_to(diagonal, (*batch, dim), xp=xp)
        super().__init__(
            xp=xp, batch_shape=batch, event_shape=(dim,), dtype=loc.dtype, validate=validate
        )
        self._check_parameters()
        capacitance = xp.matmul(factor.mT, factor / diagonal[..., None]) + _eye(rank, factor, xp=xp)
        self._capacitance_tril = xp.linalg.cholesky(capacitance)
        self._woodbury: Array | None = None

    @property
    def _woodbury_factor(self) -> Array:
        r"""The Woodbury factor :math:`A = L_C^{-1} W^\top D^{-1}`, ``[..., r, d]``.

        :math:`\Sigma^{-1} = D^{-1} - A^\top A`.
        """
        if self._woodbury is None:
            scaled = self._unbroadcasted_cov_factor.mT / self._unbroadcasted_cov_diag[..., None, :]
            self._woodbury = _solve_lower(self._capacitance_tril, scaled, xp=self.xp)
        return self._woodbury

    def _broadcast(self, matrix: Array) -> Array:
        dim = self.event_shape[0]
        return _broadcast_to(matrix, (*self.batch_shape, dim, dim), xp=self.xp)

    @property
    def covariance_matrix(self) -> Array:
        r"""The covariance :math:`W W^\top + \operatorname{diag}(D)`, ``[..., d, d]``."""
        xp, factor = self.xp, self._unbroadcasted_cov_factor
        diagonal = self._unbroadcasted_cov_diag
        dense = xp.matmul(factor, factor.mT) + diagonal[..., None] * _eye(
            diagonal.shape[-1], diagonal, xp=xp
        )
        return self._broadcast(dense)

    @property
    def precision_matrix(self) -> Array:
        r"""The precision :math:`D^{-1} - A^\top A` (Woodbury), ``[..., d, d]``."""
        xp, woodbury = self.xp, self._woodbury_factor
        diagonal = self._unbroadcasted_cov_diag
        dense = (1.0 / diagonal)[..., None] * _eye(diagonal.shape[-1], diagonal, xp=xp)
        return self._broadcast(dense - xp.matmul(woodbury.mT, woodbury))

    @property
    def scale_tril(self) -> Array:
        r"""The Cholesky factor of the covariance, ``[..., d, d]``.

        :math:`D^{1/2}\operatorname{chol}(I + D^{-1/2} W W^\top D^{-1/2})`, as in torch.
        """
        xp = self.xp
        root = xp.sqrt(self._unbroadcasted_cov_diag)
        scaled = self._unbroadcasted_cov_factor / root[..., None]
        inner = xp.matmul(scaled, scaled.mT) + _eye(root.shape[-1], root, xp=xp)
        return self._broadcast(root[..., None] * xp.linalg.cholesky(inner))

    @property
    def mean(self) -> Array:
        r"""The mean :math:`\mu`."""
        return self.loc

    @property
    def variance(self) -> Array:
        r"""The marginal variances :math:`\sum_k W_{ik}^2 + D_i`."""
        xp, factor = self.xp, self._unbroadcasted_cov_factor
        diagonal = _squared_norm(factor, xp=xp, axis=-1) + self._unbroadcasted_cov_diag
        return _broadcast_to(diagonal, (*self.batch_shape, *self.event_shape), xp=xp)

    def log_prob(self, value: Array) -> Array:
        r"""The log density, by Woodbury.

        :math:`-\tfrac12[d\log 2\pi + \log\det\Sigma + \delta^\top\Sigma^{-1}\delta]`.
        """
        diff = self._value(value) - self.loc
        dim = self.event_shape[0]
        return -0.5 * (dim * _LOG_TWO_PI + self._log_det_covariance() + self._mahalanobis(diff))

    def entropy(self) -> Array:
        r""":math:`\tfrac12[d(1 + \log 2\pi) + \log\det C + \sum_i \log D_i]`."""
        dim = self.event_shape[0]
        value = 0.5 * (dim * (1.0 + _LOG_TWO_PI) + self._log_det_covariance())
        return _broadcast_to(value, self.batch_shape, xp=self.xp)

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        xp = self.xp
        rank = self._unbroadcasted_cov_factor.shape[-1]
        rng_low, rng_diag = split_rng(rng, 2, xp=xp)
        ext = (*shape, *self.batch_shape)
        eps_low = standard_normal(rng_low, (*ext, rank), xp=xp, like=self.loc)
        eps_diag = standard_normal(rng_diag, self._extended_shape(shape), xp=xp, like=self.loc)
        low = _matvec(self._unbroadcasted_cov_factor, eps_low, xp=xp)
        return self.loc + low + xp.sqrt(self._unbroadcasted_cov_diag) * eps_diag

    # Gaussian hooks (see the module docstring), all O(d r^2).

    def _log_det_covariance(self) -> Array:
        xp = self.xp
        log_det_capacitance = 2.0 * _log_diagonal_sum(self._capacitance_tril, xp=xp)
        return log_det_capacitance + xp.sum(xp.log(self._unbroadcasted_cov_diag), axis=-1)

    def _mahalanobis(self, diff: Array) -> Array:
        xp = self.xp
        diagonal_part = xp.sum(diff * diff / self._unbroadcasted_cov_diag, axis=-1)
        low_rank = _matvec(self._woodbury_factor, diff, xp=xp)
        return diagonal_part - _squared_norm(low_rank, xp=xp, axis=-1)

    def _trace_inv_factor(self, factor: Array) -> Array:
        xp = self.xp
        diagonal_part = xp.sum(
            factor * factor / self._unbroadcasted_cov_diag[..., None], axis=(-2, -1)
        )
        return diagonal_part - _squared_norm(xp.matmul(self._woodbury_factor, factor), xp=xp)

    def _trace_inv_diag(self, diagonal: Array) -> Array:
        xp, woodbury = self.xp, self._woodbury_factor
        diagonal_part = xp.sum(diagonal / self._unbroadcasted_cov_diag, axis=-1)
        return diagonal_part - xp.sum(woodbury * woodbury * diagonal[..., None, :], axis=(-2, -1))

    def _covariance_terms(self) -> tuple[Array | None, Array | None]:
        return self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag


# --- Dirichlet ---------------------------------------------------------------------------------


class Dirichlet(Distribution):
    r"""The Dirichlet distribution on the probability simplex of :math:`K` categories.

    .. math::

        p(x) = \frac{\Gamma(\alpha_0)}{\prod_i \Gamma(\alpha_i)} \prod_i x_i^{\alpha_i - 1},
        \qquad \alpha_0 = \sum_i \alpha_i,\ x_i \ge 0,\ \sum_i x_i = 1

    Args:
        concentration: :math:`\alpha > 0`, shape ``[..., K]`` (the event axis last).
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> import numpy as np
        >>> from kldiv import distributions as D
        >>> d = D.Dirichlet(np.array([1.0, 1.0, 2.0]))
        >>> d.mean
        array([0.25, 0.25, 0.5 ])
        >>> round(float(d.log_prob(np.array([0.2, 0.3, 0.5]))), 6)  # log(Gamma(4) * 0.5)
        1.098612
    """

    arg_constraints = {"concentration": positive}
    has_rsample = True
    support_lower = 0.0
    support_upper = 1.0

    def __init__(self, concentration: Array, *, validate: bool | None = None) -> None:
        xp, arrays = float_parameters({"concentration": concentration}, "Dirichlet")
        self.concentration = arrays["concentration"]
        if self.concentration.ndim < 1:
            raise KLDivError(
                "`concentration` of Dirichlet must have at least one dimension (the categories); "
                "got a scalar"
            )
        shape = tuple(self.concentration.shape)
        super().__init__(
            xp=xp,
            batch_shape=shape[:-1],
            event_shape=shape[-1:],
            dtype=self.concentration.dtype,
            validate=validate,
        )
        self._check_parameters()

    @property
    def _total(self) -> Array:
        return self.xp.sum(self.concentration, axis=-1)

    def log_prob(self, value: Array) -> Array:
        r"""The log density on the simplex, ``-inf`` off it.

        :math:`\log\Gamma(\alpha_0) - \sum_i \log\Gamma(\alpha_i) + \sum_i (\alpha_i - 1)\log x_i`.

        ``-inf`` off the simplex (entries below 0, or a sum off 1 by more than
        ``max(sqrt(eps), 1e-6)``); a zero entry gives ``+inf`` where
        :math:`\alpha_i < 1` and contributes nothing where :math:`\alpha_i = 1`.
        """
        xp, alpha = self.xp, self.concentration
        x = self._value(value)
        tolerance = max(math.sqrt(float(xp.finfo(x.dtype).eps)), 1e-6)
        inside = xp.all(x >= 0, axis=-1) & (xp.abs(xp.sum(x, axis=-1) - 1.0) <= tolerance)
        positive_entry = inside[..., None] & (x > 0)
        safe = xp.where(positive_entry, x, xp.ones_like(x))
        exponent = alpha - 1.0
        unbounded = xp.where(
            exponent < 0, xp.full_like(exponent, math.inf), xp.full_like(exponent, -math.inf)
        )
        zero_entry = inside[..., None] & (x == 0) & (exponent != 0)
        at_zero = xp.where(zero_entry, unbounded, xp.zeros_like(unbounded))
        terms = xp.where(positive_entry, exponent * xp.log(safe), at_zero)
        normaliser = gammaln(self._total, xp=xp) - xp.sum(gammaln(alpha, xp=xp), axis=-1)
        return xp.where(inside, normaliser + xp.sum(terms, axis=-1), -math.inf)

    def entropy(self) -> Array:
        r"""The entropy.

        :math:`\log B(\alpha) + (\alpha_0 - K)\psi(\alpha_0) - \sum_i (\alpha_i - 1)\psi(\alpha_i)`.
        """
        xp, alpha, total = self.xp, self.concentration, self._total
        count = alpha.shape[-1]
        log_beta = xp.sum(gammaln(alpha, xp=xp), axis=-1) - gammaln(total, xp=xp)
        return (
            log_beta
            + (total - count) * digamma(total, xp=xp)
            - xp.sum((alpha - 1.0) * digamma(alpha, xp=xp), axis=-1)
        )

    @property
    def mean(self) -> Array:
        r""":math:`\alpha_i / \alpha_0`."""
        return self.concentration / self._total[..., None]

    @property
    def variance(self) -> Array:
        r""":math:`\alpha_i(\alpha_0 - \alpha_i) / (\alpha_0^2 (\alpha_0 + 1))`."""
        total = self._total[..., None]
        alpha = self.concentration
        return alpha * (total - alpha) / (total * total * (total + 1.0))

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        xp = self.xp
        alpha = xp.broadcast_to(self.concentration, self._extended_shape(shape))
        tiny = float(xp.finfo(alpha.dtype).smallest_normal)
        draws = xp.clip(standard_gamma(rng, alpha, xp=xp), tiny, None)
        return draws / xp.sum(draws, axis=-1, keepdims=True)

    def _expected_log(self) -> Array:
        r""":math:`E\log X_i = \psi(\alpha_i) - \psi(\alpha_0)`, shape ``[..., K]``."""
        xp = self.xp
        return digamma(self.concentration, xp=xp) - digamma(self._total, xp=xp)[..., None]


# --- Wishart -----------------------------------------------------------------------------------


class Wishart(Distribution):
    r"""The Wishart distribution of :math:`p \times p` positive definite matrices.

    .. math::

        p(X) = \frac{\det(X)^{(\nu - p - 1)/2} e^{-\operatorname{tr}(\Sigma^{-1} X)/2}}
                    {2^{\nu p/2} \det(\Sigma)^{\nu/2} \Gamma_p(\nu/2)}

    with :math:`\nu > p - 1` degrees of freedom and scale :math:`\Sigma`
    (``covariance_matrix``), given instead as ``precision_matrix``
    :math:`\Sigma^{-1}` or ``scale_tril`` (:math:`\Sigma = L L^\top`), exactly
    one of them, as in torch.distributions. For :math:`p = 1` it is
    :math:`\sigma^2 \chi^2_\nu = \mathrm{Gamma}(\nu/2, \text{rate } 1/2\sigma^2)`.
    Samples use the Bartlett decomposition :math:`X = L A A^\top L^\top` with
    :math:`A_{ii}^2 \sim \chi^2_{\nu - i + 1}` and standard normals below the diagonal.

    Args:
        df: the degrees of freedom :math:`\nu > p - 1`, shape ``[...]``.
        covariance_matrix: the scale matrix :math:`\Sigma`, ``[..., p, p]``.
        precision_matrix: :math:`\Sigma^{-1}`, ``[..., p, p]``.
        scale_tril: the lower Cholesky factor of :math:`\Sigma`, ``[..., p, p]``.
        validate: check the parameters eagerly (None: the global default).

    Examples:
        >>> import numpy as np
        >>> from kldiv import distributions as D
        >>> w = D.Wishart(5.0, covariance_matrix=np.eye(2))
        >>> w.event_shape
        (2, 2)
        >>> w.mean
        array([[5., 0.],
               [0., 5.]])
    """

    arg_constraints = {
        "df": real,
        "covariance_matrix": positive_definite,
        "precision_matrix": positive_definite,
        "scale_tril": lower_cholesky,
    }
    has_rsample = True

    def __init__(
        self,
        df: Array,
        covariance_matrix: Array | None = None,
        precision_matrix: Array | None = None,
        scale_tril: Array | None = None,
        *,
        validate: bool | None = None,
    ) -> None:
        owner = "Wishart"
        name, matrix = _the_one_matrix(
            owner,
            {
                "covariance_matrix": covariance_matrix,
                "precision_matrix": precision_matrix,
                "scale_tril": scale_tril,
            },
        )
        xp, arrays = float_parameters({"df": df, name: matrix}, owner)
        df, matrix = arrays["df"], arrays[name]
        _check_square(matrix, name, owner, None, "")
        dim = matrix.shape[-1]
        batch = _batch_shape({"df": tuple(df.shape), name: tuple(matrix.shape[:-2])}, owner)
        self.df = _broadcast_to(df, batch, xp=xp)
        self._given = name
        self._matrix = matrix
        super().__init__(
            xp=xp, batch_shape=batch, event_shape=(dim, dim), dtype=df.dtype, validate=validate
        )
        self._check_parameters()
        check = _checks_values(matrix, self.validate)
        if name == "scale_tril":
            self._unbroadcasted_scale_tril = matrix
        elif name == "covariance_matrix":
            self._unbroadcasted_scale_tril = _cholesky(matrix, name, owner, check=check, xp=xp)
        else:
            _cholesky(matrix, name, owner, check=check, xp=xp)  # validates positive definiteness
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(matrix, xp=xp)
        self._derived_precision: Array | None = None

    def _check_parameters(self) -> None:
        xp, owner = self.xp, type(self).__name__
        dim = self.event_shape[-1]
        check_parameter(self.df, "df", greater_than(dim - 1), owner, validate=self.validate, xp=xp)
        matrix = self._matrix
        if not _checks_values(matrix, self.validate):
            return
        if self._given == "scale_tril":
            _check_lower_cholesky(matrix, "scale_tril", owner, xp=xp)
        else:
            _check_symmetric(matrix, self._given, owner, xp=xp)

    @property
    def parameters(self) -> dict[str, Array]:
        """The degrees of freedom and the one matrix parameter given, broadcast."""
        return {"df": self.df, self._given: self._broadcast(self._matrix)}

    def _broadcast(self, matrix: Array) -> Array:
        shape = (*self.batch_shape, *self.event_shape)
        return _broadcast_to(matrix, shape, xp=self.xp)

    @property
    def scale_tril(self) -> Array:
        r"""The lower Cholesky factor :math:`L` of the scale :math:`\Sigma`."""
        return self._broadcast(self._unbroadcasted_scale_tril)

    @property
    def _unbroadcasted_covariance(self) -> Array:
        if self._given == "covariance_matrix":
            return self._matrix
        lower = self._unbroadcasted_scale_tril
        return self.xp.matmul(lower, lower.mT)

    @property
    def covariance_matrix(self) -> Array:
        r"""The scale matrix :math:`\Sigma = L L^\top`."""
        return self._broadcast(self._unbroadcasted_covariance)

    @property
    def _unbroadcasted_precision(self) -> Array:
        if self._given == "precision_matrix":
            return self._matrix
        if self._derived_precision is None:
            inverse = _inverse_lower(self._unbroadcasted_scale_tril, xp=self.xp)
            self._derived_precision = self.xp.matmul(inverse.mT, inverse)
        return self._derived_precision

    @property
    def precision_matrix(self) -> Array:
        r"""The inverse scale :math:`\Sigma^{-1}`."""
        return self._broadcast(self._unbroadcasted_precision)

    @property
    def mean(self) -> Array:
        r""":math:`\nu \Sigma`."""
        return self.df[..., None, None] * self._unbroadcasted_covariance

    @property
    def variance(self) -> Array:
        r""":math:`\operatorname{Var} X_{ij} = \nu(\Sigma_{ij}^2 + \Sigma_{ii}\Sigma_{jj})`."""
        xp = self.xp
        scale = self._unbroadcasted_covariance
        diagonal = xp.linalg.diagonal(scale)
        outer = diagonal[..., :, None] * diagonal[..., None, :]
        return self.df[..., None, None] * (scale * scale + outer)

    def _log_det_scale(self) -> Array:
        return 2.0 * _log_diagonal_sum(self._unbroadcasted_scale_tril, xp=self.xp)

    def log_prob(self, value: Array) -> Array:
        r"""The log density; ``-inf`` where ``value`` is not positive definite.

        :math:`\tfrac{\nu - p - 1}2\log\det X - \tfrac12\operatorname{tr}(\Sigma^{-1}X)
        - \tfrac{\nu p}2\log 2 - \tfrac\nu2\log\det\Sigma - \log\Gamma_p(\nu/2)`
        (``value`` is read as symmetric: its eigenvalues come from its lower triangle).
        """
        xp, nu = self.xp, self.df
        dim = self.event_shape[-1]
        x = self._value(value)
        eigenvalues = xp.linalg.eigvalsh(x)
        inside = xp.all(eigenvalues > 0, axis=-1)
        safe = xp.where(inside[..., None], eigenvalues, xp.ones_like(eigenvalues))
        log_det_x = xp.sum(xp.log(safe), axis=-1)
        trace = xp.sum(self._unbroadcasted_precision * x, axis=(-2, -1))
        value = (
            0.5 * (nu - dim - 1.0) * log_det_x
            - 0.5 * trace
            - 0.5 * nu * (dim * math.log(2.0) + self._log_det_scale())
            - multigammaln(0.5 * nu, dim, xp=xp)
        )
        return xp.where(inside, value, -math.inf)

    def entropy(self) -> Array:
        r"""The entropy (as in torch.distributions).

        :math:`\tfrac{p+1}2\log\det\Sigma + \tfrac{p(p+1)}2\log 2 + \log\Gamma_p(\tfrac\nu2)
        - \tfrac{\nu-p-1}2\psi_p(\tfrac\nu2) + \tfrac{\nu p}2`.
        """
        xp, nu = self.xp, self.df
        dim = self.event_shape[-1]
        half = 0.5 * nu
        return (
            0.5 * (dim + 1) * (self._log_det_scale() + dim * math.log(2.0))
            + multigammaln(half, dim, xp=xp)
            - 0.5 * (nu - dim - 1.0) * multidigamma(half, dim, xp=xp)
            + 0.5 * nu * dim
        )

    def _sample(self, shape: tuple[int, ...], rng: Any) -> Array:
        xp, nu = self.xp, self.df
        dim = self.event_shape[-1]
        ext = (*shape, *self.batch_shape)
        rng_gamma, rng_normal = split_rng(rng, 2, xp=xp)
        offsets = xp.arange(dim, dtype=nu.dtype, device=device(nu))
        concentration = xp.broadcast_to(0.5 * (nu[..., None] - offsets), (*ext, dim))
        chi2 = 2.0 * standard_gamma(rng_gamma, concentration, xp=xp)
        normals = standard_normal(rng_normal, (*ext, dim, dim), xp=xp, like=nu)
        bartlett = xp.tril(normals, k=-1) + xp.sqrt(chi2)[..., None] * _eye(dim, nu, xp=xp)
        root = xp.matmul(self._unbroadcasted_scale_tril, bartlett)
        return xp.matmul(root, root.mT)
