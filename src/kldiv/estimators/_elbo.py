r"""The evidence lower bound with the exact KL term where one exists, else Monte Carlo.

.. math::

    \mathrm{ELBO}(q) = \mathbb E_{z \sim q}\big[\log p(x \mid z)\big]
                       - D_{KL}\big(q(z) \,\|\, p(z)\big)
                     = \log p(x) - D_{KL}\big(q(z) \,\|\, p(z \mid x)\big)

The expectation is a Monte Carlo average over reparameterised draws
:math:`z_s = g(\epsilon_s; \phi) \sim q`, so the result is differentiable in
q's parameters :math:`\phi` and in the model's. The KL term is the registered
closed form when the pair (q, prior) has one (``kl="auto"`` and
``kl="exact"``); otherwise (``"auto"``, or always with ``"monte_carlo"``) it
is estimated from *the same draws*,
:math:`\widehat{KL} = \frac1S \sum_s [\log q(z_s) - \log p(z_s)]`, so that the
ELBO estimate is the average of :math:`\log p(x \mid z_s) + \log p(z_s) - \log
q(z_s)`. The result says which method was used and carries the Monte Carlo
standard errors.

Written once against the array API: NumPy, PyTorch and JAX (where ``rng`` is a
``jax.random`` key, and the function can be ``jax.jit``-ed: the method is
chosen from the types, not the values).
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from kldiv._array_api import array_namespace, device, is_jax_namespace, is_traced, to_numpy
from kldiv.distributions._convert import as_distribution, common_namespace
from kldiv.distributions._registry import closed_form_kl
from kldiv.errors import KLDivError, NoClosedFormError
from kldiv.estimators._estimate import Estimate, format_value

__all__ = ["ELBO", "KL_METHODS", "elbo", "elbo_from_samples"]

Array = Any

KL_METHODS = ("auto", "exact", "monte_carlo")


@dataclass(frozen=True, eq=False)
class ELBO:
    r"""The ELBO and its parts, per batch element; the arrays stay differentiable.

    .. math::

        \text{elbo} = \text{expected\_log\_likelihood} - \text{kl}

    Built by :func:`kldiv.elbo` and :func:`kldiv.torch.elbo`; on JAX it is a
    pytree, so jitted functions can return it.

    Args:
        elbo: the ELBO estimate, shape ``batch`` (the broadcast batch shape of
            q and the prior).
        expected_log_likelihood: :math:`\frac1S \sum_s \log p(x \mid z_s)`,
            shape ``batch``.
        kl: :math:`D_{KL}(q \| p)`: exact, or estimated from the same draws;
            shape ``batch``.
        kl_method: ``"exact"`` or ``"monte_carlo"``: how ``kl`` was obtained.
        n_samples: the number S of draws of q.
        kl_stderr: the standard error of ``kl``: zeros when exact, NaN when
            estimated from a single draw.
        stderr: the Monte Carlo standard error of ``elbo`` over the S draws
            (NaN for S = 1; 0 when every draw gives the same value, e.g. q
            equal to the exact posterior with the Monte Carlo KL).

    Examples:
        >>> import kldiv
        >>> from kldiv import distributions as D
        >>> res = kldiv.elbo(lambda z: -0.5 * z**2, D.Normal(0.0, 1.0), D.Normal(0.0, 2.0),
        ...                  n_samples=1000, rng=0)
        >>> res.kl_method, round(float(res.kl), 6)
        ('exact', 0.318147)
        >>> res.kl_estimate
        0.318147 ± 0 nats (exact, n=0)
    """

    elbo: Array
    expected_log_likelihood: Array
    kl: Array
    kl_method: str
    n_samples: int
    kl_stderr: Array
    stderr: Array

    @property
    def kl_estimate(self) -> Estimate:
        """The KL term as a :class:`kldiv.Estimate` (value, stderr, method, n)."""
        n = 0 if self.kl_method == "exact" else self.n_samples
        return Estimate(value=self.kl, stderr=self.kl_stderr, method=self.kl_method, n=n)

    def __repr__(self) -> str:
        if _is_scalar(self.elbo) and _is_scalar(self.stderr):
            shown = format_value(float(to_numpy(self.elbo)), float(to_numpy(self.stderr)))
        else:
            shown = f"{_show(self.elbo)} ± {_show(self.stderr)}"
        return (
            f"ELBO(elbo={shown}, "
            f"expected_log_likelihood={_show(self.expected_log_likelihood)}, "
            f"kl={_show(self.kl)} ({self.kl_method}), n_samples={self.n_samples})"
        )


def _is_scalar(value: Array) -> bool:
    return hasattr(value, "shape") and len(value.shape) == 0 and not is_traced(value)


def _show(value: Array) -> str:
    if not hasattr(value, "shape"):
        return f"{value!r}"
    if is_traced(value):
        return f"<traced, shape {tuple(value.shape)}>"
    if len(value.shape) == 0:
        return f"{float(to_numpy(value)):.6g}"
    return np.array2string(to_numpy(value), precision=4, separator=", ", threshold=6)


_JAX_REGISTERED = False


def _register_jax_pytree() -> None:
    """Makes :class:`ELBO` a JAX pytree (once, and only when JAX is in use)."""
    global _JAX_REGISTERED
    if _JAX_REGISTERED:
        return
    jax = sys.modules["jax"]
    children = ("elbo", "expected_log_likelihood", "kl", "kl_stderr", "stderr")

    def flatten(result: ELBO) -> tuple[tuple, tuple]:
        return tuple(getattr(result, c) for c in children), (result.kl_method, result.n_samples)

    def unflatten(aux: tuple, leaves: tuple) -> ELBO:
        method, n_samples = aux
        return ELBO(
            elbo=leaves[0],
            expected_log_likelihood=leaves[1],
            kl=leaves[2],
            kl_method=method,
            n_samples=n_samples,
            kl_stderr=leaves[3],
            stderr=leaves[4],
        )

    jax.tree_util.register_pytree_node(ELBO, flatten, unflatten)
    _JAX_REGISTERED = True


def check_kl_method(kl: object) -> str:
    """A valid ``kl`` option, else a :class:`~kldiv.KLDivError`."""
    if not isinstance(kl, str) or kl not in KL_METHODS:
        raise KLDivError(f"`kl` must be one of {list(KL_METHODS)}; got {kl!r}")
    return kl


def check_n_samples(n_samples: object) -> int:
    """A valid ``n_samples`` (an integer >= 1), else a :class:`~kldiv.KLDivError`."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 1:
        raise KLDivError(f"`n_samples` must be an integer >= 1; got {n_samples!r}")
    return int(n_samples)


def check_log_likelihood(log_likelihood: object) -> None:
    """``log_likelihood`` must be callable."""
    if not callable(log_likelihood):
        raise KLDivError(
            "`log_likelihood` must be a callable z -> log p(x | z) returning an array of shape "
            f"(n_samples, *batch); got {type(log_likelihood).__name__}"
        )


def _batch_shape(q: Any, prior: Any) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(q.batch_shape, prior.batch_shape))
    except ValueError:
        raise KLDivError(
            f"the batch shapes of `q` {q.batch_shape} and `prior` {prior.batch_shape} do not "
            "broadcast"
        ) from None


def exact_kl(q: Any, prior: Any, kl: str) -> Array | None:
    """The closed-form KL(q ‖ prior), or None where ``kl="auto"`` falls back to Monte Carlo.

    ``kl="exact"`` raises :class:`~kldiv.NoClosedFormError` instead of
    returning None; ``"monte_carlo"`` always returns None.
    """
    if kl == "monte_carlo":
        return None
    value = closed_form_kl(q, prior)
    if value is None and kl == "exact":
        raise NoClosedFormError(
            f"no closed form is registered for KL({type(q).__name__} ‖ "
            f"{type(prior).__name__}); use kl='auto' or kl='monte_carlo' for the Monte Carlo "
            "estimate from the ELBO's own draws"
        )
    return value


def _stderr(terms: Array, n: int, *, xp: ModuleType) -> Array:
    """The standard error of the mean over axis 0 (NaN for a single draw)."""
    if n == 1:
        return xp.full(terms.shape[1:], math.nan, dtype=terms.dtype, device=device(terms))
    return xp.std(terms, axis=0, correction=1) / math.sqrt(n)


def elbo_from_samples(
    log_likelihood: Callable[[Array], Array],
    z: Array,
    log_q: Callable[[Array], Array],
    log_prior: Callable[[Array], Array],
    kl_exact: Array | None,
    *,
    batch_shape: tuple[int, ...],
) -> ELBO:
    """Assembles the :class:`ELBO` from draws ``z`` of q (shared by every front door).

    Args:
        log_likelihood: z -> log p(x | z), shape ``(n_samples, *batch_shape)``.
        z: the draws, shape ``(n_samples, *q.batch_shape, *event_shape)``.
        log_q: z -> log q(z).
        log_prior: z -> log p(z).
        kl_exact: the closed-form KL (shape broadcastable to ``batch_shape``),
            or None for the Monte Carlo estimate from ``z``.
        batch_shape: the broadcast batch shape of q and the prior.

    Returns:
        The ELBO and its parts.
    """
    n = int(z.shape[0])
    ll = log_likelihood(z)
    expected = (n, *batch_shape)
    if not hasattr(ll, "shape") or not hasattr(ll, "dtype"):
        raise KLDivError(
            f"`log_likelihood` must return an array of shape {expected} (n_samples, *batch); "
            f"got {type(ll).__name__}"
        )
    try:
        xp = array_namespace(ll, z)
    except TypeError:
        raise KLDivError(
            f"`log_likelihood` must return an array of the same library as q's parameters "
            f"({type(z).__module__}); got {type(ll).__module__}.{type(ll).__name__}"
        ) from None
    if tuple(ll.shape) != expected:
        hint = (
            " (for a single global posterior, sum over the data points inside log_likelihood)"
            if len(ll.shape) > len(expected)
            else ""
        )
        raise KLDivError(
            f"`log_likelihood` must return shape (n_samples, *batch) = {expected}, one value per "
            f"draw and batch element; got {tuple(ll.shape)}{hint}"
        )
    if kl_exact is None:
        log_ratio = log_q(z) - log_prior(z)
        log_ratio = xp.broadcast_to(log_ratio, expected)
        kl_value = xp.mean(log_ratio, axis=0)
        kl_stderr = _stderr(log_ratio, n, xp=xp)
        per_draw = ll - log_ratio
        method = "monte_carlo"
    else:
        kl_value = xp.broadcast_to(kl_exact, batch_shape)
        kl_stderr = xp.zeros_like(kl_value)
        per_draw = ll - kl_value
        method = "exact"
    expected_ll = xp.mean(ll, axis=0)
    result = ELBO(
        elbo=expected_ll - kl_value,
        expected_log_likelihood=expected_ll,
        kl=kl_value,
        kl_method=method,
        n_samples=n,
        kl_stderr=kl_stderr,
        stderr=_stderr(per_draw, n, xp=xp),
    )
    if is_jax_namespace(xp):
        _register_jax_pytree()
    return result


def prepare(q: Any, prior: Any) -> tuple[Any, Any, tuple[int, ...]]:
    """The approximate posterior and the prior, converted to one library and checked."""
    q, prior = common_namespace(as_distribution(q, "q"), as_distribution(prior, "prior"))
    if q.event_shape != prior.event_shape:
        raise KLDivError(
            f"`q` and `prior` must have the same event shape; got {q.event_shape} for "
            f"{type(q).__name__} and {prior.event_shape} for {type(prior).__name__}"
        )
    if not q.has_rsample or q.is_discrete:
        raise KLDivError(
            f"`q` must have reparameterised samples (has_rsample) for the ELBO's gradient; "
            f"{type(q).__name__} has none. Use a reparameterisable family (Normal, "
            "MultivariateNormal, Independent(Normal, 1), Gamma, ...)"
        )
    return q, prior, _batch_shape(q, prior)


def elbo(
    log_likelihood: Callable[[Array], Array],
    q: Any,
    prior: Any,
    *,
    n_samples: int = 1,
    kl: str = "auto",
    rng: object = None,
) -> ELBO:
    r"""The evidence lower bound, with the exact KL term where the pair has one.

    .. math::

        \mathrm{ELBO} = \frac1S \sum_{s=1}^S \log p(x \mid z_s)
                        - D_{KL}(q \| p), \qquad z_s \sim q \text{ (reparameterised)}

    where :math:`D_{KL}(q \| p)` is the registered closed form
    (``kldiv.kl_divergence``) or, without one, the Monte Carlo estimate from
    the same draws, :math:`\frac1S \sum_s [\log q(z_s) - \log p(z_s)]`.
    Maximise it (minimise ``-result.elbo``); both parts are differentiable in
    q's parameters and in whatever ``log_likelihood`` closes over.

    **Shapes and reductions.** The draws have shape ``(n_samples, *batch,
    *event)`` and ``log_likelihood`` must return ``(n_samples, *batch)``: one
    log-likelihood per draw and batch element, where ``batch`` is the
    (broadcast) batch shape of q and the prior. Every field of the result has
    shape ``batch``; kldiv does not reduce over it:

    - a *single global posterior* over parameters shared by all data points
      (Bayesian regression): q has batch shape ``()``, ``log_likelihood``
      sums over the data points inside, and the result is the ELBO of the
      data set (divide by the number of points for a per-point loss);
    - an *amortised* posterior (a VAE encoder: one q per data point,
      batch ``(B,)``): ``log_likelihood`` returns ``(n_samples, B)`` and the
      per-point ELBOs are averaged, ``result.elbo.mean()``, the loss being
      ``-result.elbo.mean()``.

    Args:
        log_likelihood: a callable ``z -> log p(x | z)`` as described above.
        q: the approximate posterior: a kldiv distribution or a
            ``torch.distributions`` object with reparameterised draws
            (``has_rsample``).
        prior: the prior p(z), of the same event shape; a distribution built
            from Python numbers (NumPy) is moved to q's library.
        n_samples: the number S of draws of q (>= 1).
        kl: ``"auto"`` (exact when a closed form is registered for the pair
            and applies to these parameters, else Monte Carlo), ``"exact"``
            (raises :class:`~kldiv.NoClosedFormError` without one) or
            ``"monte_carlo"``.
        rng: the backend's random state: a ``numpy.random.Generator``, a
            ``torch.Generator`` (None: torch's global one), a ``jax.random``
            key (required on JAX), or an int seed.

    Returns:
        An :class:`ELBO` with ``elbo``, ``expected_log_likelihood``, ``kl``,
        ``kl_method``, ``n_samples``, ``kl_stderr`` and ``stderr``.

    Raises:
        KLDivError: ``log_likelihood`` is not callable or returns the wrong
            shape, q has no reparameterised sampler, the event shapes differ,
            or a bad ``n_samples``, ``kl`` or ``rng``.
        NoClosedFormError: ``kl="exact"`` and the pair has no closed form.

    Examples:
        The conjugate Gaussian: x = 1.3 observed with N(z, 1) noise, prior
        N(0, 1); the posterior is N(0.65, 0.5) and the log evidence
        log N(1.3; 0, 2) = -1.688012, which the ELBO reaches at q = posterior.

        >>> import math
        >>> import kldiv
        >>> from kldiv import distributions as D
        >>> def log_lik(z):
        ...     return -0.5 * (1.3 - z) ** 2 - 0.5 * math.log(2 * math.pi)
        >>> q = D.Normal(0.65, math.sqrt(0.5))
        >>> res = kldiv.elbo(log_lik, q, D.Normal(0.0, 1.0), n_samples=100_000, rng=0)
        >>> res.kl_method, round(float(res.kl), 6)
        ('exact', 0.307824)
        >>> round(float(res.elbo), 2), round(float(res.stderr), 3)
        (-1.69, 0.002)
        >>> mc = kldiv.elbo(log_lik, q, D.Normal(0.0, 1.0), n_samples=4, kl="monte_carlo", rng=0)
        >>> round(float(mc.elbo), 6), float(mc.stderr) < 1e-12  # every draw gives log p(x)
        (-1.688012, True)
    """
    check_log_likelihood(log_likelihood)
    n_samples = check_n_samples(n_samples)
    kl = check_kl_method(kl)
    q, prior, batch_shape = prepare(q, prior)
    kl_exact = exact_kl(q, prior, kl)
    z = q.sample((n_samples,), rng=rng)
    return elbo_from_samples(
        log_likelihood, z, q.log_prob, prior.log_prob, kl_exact, batch_shape=batch_shape
    )
