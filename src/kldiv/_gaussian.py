r"""Closed-form KL divergences between Gaussians: the VAE KL term, on every array library.

Two forms, both written once against the array API:

- :func:`diagonal_gaussian_kl`, per latent dimension (no sum), from means and
  log-variances: the ``N(mu, exp(logvar))`` posterior of a VAE against a
  ``N(0, I)`` or learned diagonal prior.
- :func:`full_covariance_gaussian_kl`, per distribution, from Cholesky factors
  :math:`\Sigma = L L^\top`, with triangular solves and no explicit inverse.

Both are written to be exactly 0 for identical arguments and accurate when the
two distributions are close: the pair ``exp(d) - 1 - d`` is computed as
``expm1(d) - d``, which does not cancel catastrophically for small ``d``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import is_array_api_obj

from kldiv._array_api import (
    _floating_dtype,
    as_float_arrays,
    device,
    is_jax_namespace,
    is_torch_namespace,
    is_traced,
    size,
    to_numpy,
)
from kldiv._validation import resolve_validate
from kldiv.errors import KLDivError

__all__ = ["diagonal_gaussian_kl", "full_covariance_gaussian_kl"]

Array = Any


def _float_arrays(
    named: dict[str, object], xp: ModuleType | None
) -> tuple[ModuleType, dict[str, Array]]:
    """The inputs that are not None, by name, in one namespace and floating compute dtype.

    Without ``xp`` the namespace is inferred (:func:`kldiv._array_api.as_float_arrays`);
    with it, the caller's namespace is trusted and only the dtypes are unified.
    Half precision is computed in float32 either way.
    """
    names = [n for n, v in named.items() if v is not None]
    values = [named[n] for n in names]
    if xp is None:
        xp, arrays, _, _ = as_float_arrays(*values, names=names)
    else:
        arrays = [v if is_array_api_obj(v) else xp.asarray(v) for v in values]
        input_dtype = _floating_dtype(arrays, names, xp)
        compute = xp.float32 if xp.finfo(input_dtype).bits < 32 else input_dtype
        arrays = [a if a.dtype == compute else xp.astype(a, compute) for a in arrays]
    return xp, dict(zip(names, arrays, strict=True))


def _broadcast_shape(shapes: Sequence[tuple[int, ...]], names: Sequence[str], what: str) -> tuple:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        described = ", ".join(f"`{n}` {s}" for n, s in zip(names, shapes, strict=True))
        raise KLDivError(f"the {what} do not broadcast: {described}") from None


def diagonal_gaussian_kl(
    mu: Array,
    logvar: Array,
    prior_mu: Array | None = None,
    prior_logvar: Array | None = None,
    *,
    xp: ModuleType | None = None,
) -> Array:
    r"""KL divergence between diagonal Gaussians, per dimension (no sum).

    .. math::

        D_{KL}\big(\mathcal N(\mu, e^{v}) \,\|\, \mathcal N(m, e^{w})\big)
        = \tfrac12 \big[ e^{v - w} + (\mu - m)^2 e^{-w} - 1 - v + w \big]

    elementwise, with :math:`v` = ``logvar`` and :math:`w` = ``prior_logvar``.
    Against the standard normal (both prior arguments None) this is the VAE
    term :math:`\tfrac12 (e^{v} + \mu^2 - 1 - v)`; sum it over the latent axis
    for the KL of the whole (factorised) posterior. It is computed as
    :math:`\tfrac12[\operatorname{expm1}(v - w) - (v - w) + (\mu - m)^2 e^{-w}]`:
    exactly 0 for identical arguments and accurate when they are close.

    Args:
        mu: means of the first distribution :math:`P`, any shape.
        logvar: log-variances of :math:`P`; broadcasts against ``mu``.
        prior_mu: means of the second distribution :math:`Q`; None is 0.
        prior_logvar: log-variances of :math:`Q`; None is 0 (unit variance).
        xp: the array namespace; None infers it from the inputs (nested
            sequences become NumPy arrays).

    Returns:
        The KL of each dimension, of the inputs' broadcast shape, in nats;
        float32 for half-precision inputs, the inputs' floating dtype otherwise.

    Raises:
        KLDivError: mixed array libraries, non-numeric or complex input, or
            shapes that do not broadcast.

    Examples:
        >>> import numpy as np
        >>> diagonal_gaussian_kl(np.array([0.0, 1.0]), np.array([0.0, np.log(2.0)]))
        array([0.        , 0.65342641])
        >>> float(diagonal_gaussian_kl(0.5, 0.0, prior_mu=0.5, prior_logvar=0.0))
        0.0
    """
    xp, by_name = _float_arrays(
        {"mu": mu, "logvar": logvar, "prior_mu": prior_mu, "prior_logvar": prior_logvar}, xp
    )
    _broadcast_shape([tuple(a.shape) for a in by_name.values()], list(by_name), "inputs' shapes")
    mu, logvar = by_name["mu"], by_name["logvar"]
    m, w = by_name.get("prior_mu"), by_name.get("prior_logvar")
    diff = mu if m is None else mu - m
    if w is None:
        return 0.5 * (xp.expm1(logvar) - logvar + diff * diff)
    d = logvar - w
    return 0.5 * (xp.expm1(d) - d + diff * diff * xp.exp(-w))


def _solve_lower_triangular(lower: Array, b: Array, *, xp: ModuleType) -> Array:
    r"""``X`` with ``lower @ X = b``, batched and broadcast over the leading dims.

    ``lower`` is ``[..., k, k]`` (only its lower triangle is read), ``b`` is
    ``[..., k, n]``. PyTorch and JAX use their native (differentiable)
    triangular solvers; every other backend a forward substitution written with
    the array API, ``k`` steps of one matrix product each.
    """
    batch = np.broadcast_shapes(tuple(lower.shape[:-2]), tuple(b.shape[:-2]))
    lower = xp.broadcast_to(lower, (*batch, *lower.shape[-2:]))
    b = xp.broadcast_to(b, (*batch, *b.shape[-2:]))
    if is_torch_namespace(xp):
        return sys.modules["torch"].linalg.solve_triangular(lower, b, upper=False)
    if is_jax_namespace(xp):
        import jax.scipy.linalg  # JAX is imported already: its arrays arrived

        return jax.scipy.linalg.solve_triangular(lower, b, lower=True)
    k = lower.shape[-1]
    x = xp.zeros(b.shape, dtype=b.dtype, device=device(b))
    for i in range(k):
        row = b[..., i : i + 1, :]
        if i:
            row = row - xp.matmul(lower[..., i : i + 1, :i], x[..., :i, :])
        x[..., i : i + 1, :] = row / lower[..., i : i + 1, i : i + 1]
    return x


def _check_scale_tril(scale_tril: Array, name: str, *, xp: ModuleType) -> None:
    """A Cholesky factor: zero above the diagonal, finite and positive on it."""
    if not size(scale_tril):
        return
    diag = xp.linalg.diagonal(scale_tril)
    if not bool(xp.all(xp.isfinite(diag) & (diag > 0))):
        bad = to_numpy(~(xp.isfinite(diag) & (diag > 0)))
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        value = float(to_numpy(diag)[index])
        where = (*index[:-1], index[-1], index[-1])
        raise KLDivError(
            f"`{name}` must be a Cholesky factor: lower triangular with a finite positive "
            f"diagonal; got {value} on the diagonal at index {where}"
        )
    above = xp.triu(scale_tril, k=1) != 0
    if bool(xp.any(above)):
        index = tuple(int(i) for i in np.argwhere(to_numpy(above))[0])
        value = float(to_numpy(scale_tril)[index])
        raise KLDivError(
            f"`{name}` must be a Cholesky factor: lower triangular with a finite positive "
            f"diagonal; got {value} above the diagonal at index {index}"
        )


def _check_full_shapes(arrays: dict[str, Array]) -> None:
    mu = arrays["mu"]
    if mu.ndim < 1:
        raise KLDivError("`mu` must have at least one dimension (the event axis); got a scalar")
    k = mu.shape[-1]
    for name, array in arrays.items():
        if name.endswith("scale_tril"):
            if array.ndim < 2 or array.shape[-2:] != (k, k):
                raise KLDivError(
                    f"`{name}` must have shape [..., {k}, {k}] to match `mu` of shape "
                    f"{tuple(mu.shape)}; got {tuple(array.shape)}"
                )
        elif array.ndim < 1 or array.shape[-1] != k:
            raise KLDivError(
                f"`{name}` must have {k} entries along the last axis like `mu` of shape "
                f"{tuple(mu.shape)}; got shape {tuple(array.shape)}"
            )
    names = list(arrays)
    shapes = [
        tuple(a.shape[:-2] if n.endswith("scale_tril") else a.shape[:-1]) for n, a in arrays.items()
    ]
    _broadcast_shape(shapes, names, "batch shapes (all but the event axes)")


def full_covariance_gaussian_kl(
    mu: Array,
    scale_tril: Array,
    prior_mu: Array | None = None,
    prior_scale_tril: Array | None = None,
    *,
    xp: ModuleType | None = None,
    validate: bool | None = None,
) -> Array:
    r"""KL divergence between multivariate Gaussians given by Cholesky factors.

    With :math:`P = \mathcal N(\mu, \Sigma_p)`, :math:`\Sigma_p = L L^\top` and
    :math:`Q = \mathcal N(m, \Sigma_q)`, :math:`\Sigma_q = M M^\top` in
    :math:`k` dimensions,

    .. math::

        D_{KL}(P \| Q) = \tfrac12 \big[ \operatorname{tr}(\Sigma_q^{-1} \Sigma_p)
            + (m - \mu)^\top \Sigma_q^{-1} (m - \mu) - k
            + \log\det\Sigma_q - \log\det\Sigma_p \big]

    computed as :math:`\tfrac12 [\|M^{-1} L\|_F^2 + \|M^{-1}(m - \mu)\|^2 - k
    + 2 \sum_i \log(M_{ii} / L_{ii})]` with triangular solves (no inverse, no
    determinant). The diagonal of :math:`M^{-1} L` is :math:`L_{ii} / M_{ii}`,
    so its share is summed as :math:`\operatorname{expm1}(2 r_i) - 2 r_i`,
    :math:`r_i = \log L_{ii} - \log M_{ii}`: exactly 0 for identical arguments,
    and equal to :func:`diagonal_gaussian_kl` summed when both factors are
    diagonal.

    Args:
        mu: means of :math:`P`, shape ``[..., k]``.
        scale_tril: the lower Cholesky factor :math:`L` of :math:`P`'s
            covariance, shape ``[..., k, k]``, with a positive diagonal.
        prior_mu: means of :math:`Q`, shape ``[..., k]``; None is 0.
        prior_scale_tril: the lower Cholesky factor :math:`M` of :math:`Q`'s
            covariance, ``[..., k, k]``; None is the identity.
        xp: the array namespace; None infers it from the inputs.
        validate: check eagerly that the factors are lower triangular with a
            finite positive diagonal; None uses :func:`kldiv.set_default_validate`'s
            setting. Skipped for traced and lazy arrays. Only the lower
            triangle is read either way.

    Returns:
        The divergence of each distribution, of the broadcast batch shape (the
        ``...`` above), in nats; float32 for half-precision inputs.

    Raises:
        KLDivError: mixed array libraries, shapes that do not match or do not
            broadcast, or (when validating) a factor with a non-positive or
            non-finite diagonal entry or a non-zero entry above the diagonal.

    Examples:
        >>> import numpy as np
        >>> scale_tril = np.array([[1.0, 0.0], [0.5, 2.0]])
        >>> float(full_covariance_gaussian_kl(np.array([1.0, 0.0]), scale_tril))
        1.4318528
        >>> float(full_covariance_gaussian_kl(np.zeros(2), scale_tril, np.zeros(2), scale_tril))
        0.0
    """
    do_validate = resolve_validate(validate)
    xp, by_name = _float_arrays(
        {
            "mu": mu,
            "scale_tril": scale_tril,
            "prior_mu": prior_mu,
            "prior_scale_tril": prior_scale_tril,
        },
        xp,
    )
    _check_full_shapes(by_name)
    for name in ("scale_tril", "prior_scale_tril"):
        factor = by_name.get(name)
        if factor is not None and do_validate and not is_traced(factor):
            _check_scale_tril(factor, name, xp=xp)
    mu, lower = by_name["mu"], xp.tril(by_name["scale_tril"])
    m, prior = by_name.get("prior_mu"), by_name.get("prior_scale_tril")
    diff = -mu if m is None else m - mu
    log_diag = xp.log(xp.linalg.diagonal(lower))
    if prior is None:
        off_diagonal = xp.tril(lower, k=-1)
        whitened = diff
    else:
        prior = xp.tril(prior)
        log_diag = log_diag - xp.log(xp.linalg.diagonal(prior))
        off_diagonal = xp.tril(_solve_lower_triangular(prior, lower, xp=xp), k=-1)
        whitened = _solve_lower_triangular(prior, xp.expand_dims(diff, axis=-1), xp=xp)[..., 0]
    two_r = 2.0 * log_diag
    trace_and_log_det = xp.sum(xp.expm1(two_r) - two_r, axis=-1) + xp.sum(
        off_diagonal * off_diagonal, axis=(-2, -1)
    )
    mahalanobis = xp.sum(whitened * whitened, axis=-1)
    return 0.5 * (trace_and_log_det + mahalanobis)
