"""Special functions outside the array API standard, routed per backend.

Each function takes ``*, xp`` and uses the backend's native implementation
where one exists (fused and differentiable), else a generic one written with
``xp.*`` only.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import numpy as np

from kldiv._array_api import is_jax_namespace, is_numpy_namespace, is_torch_namespace

__all__ = [
    "betaln",
    "digamma",
    "erf",
    "erfc",
    "finite_row_max",
    "gammainc",
    "gammaln",
    "i0e",
    "i1e",
    "log_ndtr",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "logsumexp_or_minus_inf",
    "multidigamma",
    "multigammaln",
    "ndtri",
    "shifted_by_max",
    "softplus",
    "stop_gradient",
    "trigamma",
    "with_minus_inf_at",
    "xlogy",
]

Array = Any


def finite_row_max(x: Array, axis: int, *, xp: ModuleType) -> Array:
    """Keeps-dims maximum along ``axis``, 0 where it is not finite (no mass, NaN, +inf)."""
    shift = xp.max(x, axis=axis, keepdims=True)
    return xp.where(xp.isfinite(shift), shift, xp.zeros_like(shift))


def shifted_by_max(x: Array, axis: int, *, xp: ModuleType) -> Array:
    r""":math:`x - \max_j x_j` along ``axis`` (by 0 where the maximum is not finite).

    Softmax and log-sum-exp are invariant to the shift; the result is at most
    0, so scaling it (a temperature) or exponentiating it cannot overflow.
    ``-inf`` entries stay ``-inf``, and so do entries more than the float range
    below the maximum (e.g. -1.7e308 beside 1.7e308): their mass is 0.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> shifted_by_max(np.array([1e30, 1e30 - 1e15, -np.inf]), -1, xp=xp)
        array([ 0.e+00, -1.e+15,    -inf])
    """
    with np.errstate(over="ignore"):
        return x - finite_row_max(x, axis, xp=xp)


def _generic_logsumexp(x: Array, axis: int, *, xp: ModuleType) -> Array:
    shift = finite_row_max(x, axis, xp=xp)
    with np.errstate(over="ignore"):
        total = xp.sum(xp.exp(x - shift), axis=axis, keepdims=True)
    return xp.log(total) + shift


def logsumexp(x: Array, axis: int, *, xp: ModuleType) -> Array:
    r"""Keeps-dims :math:`\log \sum_i e^{x_i}` along ``axis``, stable for large and -inf entries.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> float(logsumexp(np.log(np.array([0.25, 0.75])), -1, xp=xp)[0])
        0.0
    """
    if is_torch_namespace(xp):
        return sys.modules["torch"].logsumexp(x, dim=axis, keepdim=True)
    if is_jax_namespace(xp):
        return sys.modules["jax"].nn.logsumexp(x, axis=axis, keepdims=True)
    return _generic_logsumexp(x, axis, xp=xp)


def log_softmax(x: Array, axis: int, *, xp: ModuleType) -> Array:
    r"""Normalised log-probabilities :math:`x_i - \log \sum_j e^{x_j}` along ``axis``.

    Computed in two steps, :math:`s_i = x_i - \max_j x_j` then
    :math:`s_i - \log \sum_j e^{s_j}` (as torch and JAX do natively): the
    one-step :math:`x_i - (\max_j x_j + \log \sum_j e^{s_j})` loses the
    normaliser (at most :math:`\log n`) to rounding when the logits are huge.
    Entries of ``-inf`` stay ``-inf`` (zero mass) and their gradient is zero.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> np.exp(log_softmax(np.array([0.0, np.log(3.0), -np.inf]), -1, xp=xp)).round(4)
        array([0.25, 0.75, 0.  ])
    """
    if is_torch_namespace(xp):
        return sys.modules["torch"].log_softmax(x, dim=axis)
    if is_jax_namespace(xp):
        return sys.modules["jax"].nn.log_softmax(x, axis=axis)
    shifted = shifted_by_max(x, axis, xp=xp)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def stop_gradient(x: Array, *, xp: ModuleType) -> Array:
    """``x`` as a constant of automatic differentiation (torch ``detach``, JAX ``stop_gradient``).

    Namespaces without automatic differentiation return ``x`` itself.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> stop_gradient(np.array([1.0]), xp=xp)
        array([1.])
    """
    if is_torch_namespace(xp):
        return x.detach()
    if is_jax_namespace(xp):
        return sys.modules["jax"].lax.stop_gradient(x)
    return x


def logsumexp_or_minus_inf(x: Array, axis: int, *, xp: ModuleType) -> Array:
    r""":math:`\log \sum_i e^{x_i}` along ``axis`` (dropped), ``-inf`` for an all ``-inf`` row.

    Unlike the native ``logsumexp`` of torch and JAX, a row with no mass has a
    zero gradient instead of NaN (``exp(-inf - (-inf))``): the sum is computed
    on shifted values and selected with a double ``where``.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> logsumexp_or_minus_inf(np.array([[0.0, 0.0], [-np.inf, -np.inf]]), -1, xp=xp)
        array([0.69314718,       -inf])
    """
    shift = xp.max(x, axis=axis, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, xp.zeros_like(shift))
    total = xp.sum(xp.exp(x - shift), axis=axis)
    empty = total == 0
    safe = xp.log(xp.where(empty, 1.0, total)) + xp.squeeze(shift, axis=axis)
    return xp.where(empty, -xp.inf, safe)


def with_minus_inf_at(x: Array, indices: Array, axis: int, *, xp: ModuleType) -> Array:
    """A copy of ``x`` with ``-inf`` at ``indices`` along ``axis`` (take_along_axis layout).

    Uses the backend's scatter (torch ``scatter``, JAX and NumPy
    ``put_along_axis``); other namespaces compare every index against every
    position, which costs ``k`` times the input's memory.
    """
    if is_torch_namespace(xp):
        return x.scatter(axis, indices, float("-inf"))
    if is_jax_namespace(xp):
        jnp = sys.modules["jax"].numpy
        return jnp.put_along_axis(x, indices, -jnp.inf, axis=axis, inplace=False)
    if is_numpy_namespace(xp):
        out = x.copy()
        sys.modules["numpy"].put_along_axis(out, indices, -xp.inf, axis=axis)
        return out
    positions = xp.arange(x.shape[axis], dtype=indices.dtype)
    moved_indices = xp.moveaxis(indices, axis, -1)
    hit = xp.any(moved_indices[..., :, None] == positions, axis=-2)
    return xp.where(xp.moveaxis(hit, -1, axis), -xp.inf, x)


# --- Elementwise special functions of the distributions' closed forms --------------------------
#
# Each routes to torch.special / jax.scipy.special / scipy.special by namespace. Any other
# namespace (array_api_strict, Dask, ...) goes through SciPy on a NumPy copy (or Dask's
# map_blocks), which is exact but not differentiable: those backends have no autodiff.


def _scipy_special():
    import scipy.special  # a runtime dependency, imported only when needed

    return scipy.special


def _elementwise(name: str, *args: Array, xp: ModuleType, torch_name: str | None = None) -> Array:
    if is_torch_namespace(xp):
        torch = sys.modules["torch"]
        return getattr(torch.special, torch_name or name)(*args)
    if is_jax_namespace(xp):
        import jax.scipy.special  # JAX is imported already: its arrays arrived

        return getattr(jax.scipy.special, name)(*args)
    function = getattr(_scipy_special(), name)
    if is_numpy_namespace(xp):
        return function(*args)
    return _through_numpy(function, args, xp=xp)


def _through_numpy(function: Any, args: tuple, *, xp: ModuleType) -> Array:
    from kldiv._array_api import is_dask_namespace, to_numpy

    arrays = [a for a in args if hasattr(a, "shape")]
    if is_dask_namespace(xp):
        import dask.array as da

        return da.map_blocks(function, *args, dtype=arrays[0].dtype)
    import numpy as np

    like = arrays[0]
    values = [to_numpy(a) if hasattr(a, "shape") else a for a in args]
    result = np.asarray(function(*values), dtype=to_numpy(like).dtype)
    return xp.asarray(result, device=like.device)


def gammaln(x: Array, *, xp: ModuleType) -> Array:
    r""":math:`\log \Gamma(x)` for :math:`x > 0`.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> gammaln(np.array([1.0, 5.0]), xp=xp)
        array([0.        , 3.17805383])
    """
    return _elementwise("gammaln", x, xp=xp)


def digamma(x: Array, *, xp: ModuleType) -> Array:
    r"""The digamma function :math:`\psi(x) = \frac{d}{dx} \log\Gamma(x)`.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> float(digamma(np.array(1.0), xp=xp))  # minus the Euler–Mascheroni constant
        -0.5772156649015329
    """
    return _elementwise("digamma", x, xp=xp, torch_name="digamma")


def trigamma(x: Array, *, xp: ModuleType) -> Array:
    r"""The trigamma function :math:`\psi_1(x) = \psi'(x)`.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> round(float(trigamma(np.array(1.0), xp=xp)), 10)  # pi^2 / 6
        1.6449340668
    """
    if is_torch_namespace(xp):
        return sys.modules["torch"].special.polygamma(1, x)
    if is_jax_namespace(xp):
        import jax.numpy as jnp
        import jax.scipy.special

        return jax.scipy.special.polygamma(jnp.asarray(1, dtype=jnp.int32), x)
    if is_numpy_namespace(xp):
        return _scipy_special().polygamma(1, x)
    return _through_numpy(lambda v: _scipy_special().polygamma(1, v), (x,), xp=xp)


def betaln(a: Array, b: Array, *, xp: ModuleType) -> Array:
    r""":math:`\log B(a, b) = \log\Gamma(a) + \log\Gamma(b) - \log\Gamma(a + b)`.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> float(betaln(np.array(1.0), np.array(1.0), xp=xp))
        0.0
    """
    return gammaln(a, xp=xp) + gammaln(b, xp=xp) - gammaln(a + b, xp=xp)


def erf(x: Array, *, xp: ModuleType) -> Array:
    r"""The error function :math:`\frac{2}{\sqrt\pi}\int_0^x e^{-t^2} dt`.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> float(erf(np.array(0.0), xp=xp))
        0.0
    """
    return _elementwise("erf", x, xp=xp)


def erfc(x: Array, *, xp: ModuleType) -> Array:
    r"""The complementary error function :math:`1 - \operatorname{erf}(x)`, accurate for large x.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> float(erfc(np.array(0.0), xp=xp))
        1.0
    """
    return _elementwise("erfc", x, xp=xp)


def log_ndtr(x: Array, *, xp: ModuleType) -> Array:
    r"""The log of the standard normal CDF, :math:`\log\Phi(x)`, accurate in the far left tail.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> round(float(log_ndtr(np.array(0.0), xp=xp)), 12)  # log 1/2
        -0.69314718056
    """
    return _elementwise("log_ndtr", x, xp=xp)


def ndtri(p: Array, *, xp: ModuleType) -> Array:
    r"""The standard normal quantile :math:`\Phi^{-1}(p)`.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> float(ndtri(np.array(0.5), xp=xp))
        0.0
    """
    return _elementwise("ndtri", p, xp=xp)


def i0e(x: Array, *, xp: ModuleType) -> Array:
    r"""The exponentially scaled modified Bessel function :math:`e^{-|x|} I_0(x)`.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> float(i0e(np.array(0.0), xp=xp))
        1.0
    """
    return _elementwise("i0e", x, xp=xp)


def i1e(x: Array, *, xp: ModuleType) -> Array:
    r"""The exponentially scaled modified Bessel function :math:`e^{-|x|} I_1(x)`.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> float(i1e(np.array(0.0), xp=xp))
        0.0
    """
    return _elementwise("i1e", x, xp=xp)


def gammainc(a: Array, x: Array, *, xp: ModuleType) -> Array:
    r"""The regularised lower incomplete gamma function :math:`P(a, x)`.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> round(float(gammainc(np.array(1.0), np.array(1.0), xp=xp)), 12)  # 1 - 1/e
        0.632120558829
    """
    return _elementwise("gammainc", a, x, xp=xp)


def xlogy(x: Array, y: Array, *, xp: ModuleType) -> Array:
    r""":math:`x \log y`, 0 where :math:`x = 0`, with a finite gradient there (double where).

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> xlogy(np.array([0.0, 2.0]), np.array([0.0, np.e]), xp=xp)
        array([0., 2.])
    """
    safe_y = xp.where(x == 0, xp.ones_like(y), y)
    return xp.where(x == 0, xp.zeros_like(x), x * xp.log(safe_y))


def softplus(x: Array, *, xp: ModuleType) -> Array:
    r""":math:`\log(1 + e^x)`, stable for large :math:`|x|`.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> [float(softplus(np.array(x), xp=xp)) for x in (-1000.0, 1000.0)]
        [0.0, 1000.0]
    """
    return xp.logaddexp(xp.zeros_like(x), x)  # gradient 1/2 at 0 on every backend


def log_sigmoid(x: Array, *, xp: ModuleType) -> Array:
    r""":math:`\log \sigma(x) = -\operatorname{softplus}(-x)`.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> round(float(log_sigmoid(np.array(0.0), xp=xp)), 12)
        -0.69314718056
    """
    return -softplus(-x, xp=xp)


def multigammaln(a: Array, d: int, *, xp: ModuleType) -> Array:
    r"""The log multivariate gamma function.

    :math:`\log\Gamma_d(a) = \tfrac{d(d-1)}{4}\log\pi + \sum_{j=1}^{d} \log\Gamma(a + (1 - j)/2)`.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> float(multigammaln(np.array(3.0), 1, xp=xp))  # log Gamma(3)
        0.6931471805599453
    """
    import math

    total = d * (d - 1) / 4.0 * math.log(math.pi)
    for j in range(1, d + 1):
        total = total + gammaln(a + (1 - j) / 2.0, xp=xp)
    return total


def multidigamma(a: Array, d: int, *, xp: ModuleType) -> Array:
    r"""The derivative of :func:`multigammaln`: :math:`\sum_{j=1}^{d} \psi(a + (1 - j)/2)`.

    Examples:
        >>> import numpy as np
        >>> import array_api_compat.numpy as xp
        >>> float(multidigamma(np.array(1.0), 1, xp=xp))
        -0.5772156649015329
    """
    total = xp.zeros_like(a)
    for j in range(1, d + 1):
        total = total + digamma(a + (1 - j) / 2.0, xp=xp)
    return total
