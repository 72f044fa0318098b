"""Front doors: torch.distributions objects and SciPy frozen distributions as kldiv ones.

``kl_divergence`` (and the estimators) accept three kinds of distribution:

- kldiv's own, used as they are;
- ``torch.distributions`` objects, whose parameter tensors are passed through
  untouched (no copy, no detach), so gradients flow to them and the result is
  a torch tensor; the parameterisation the user chose is kept (``probs`` or
  ``logits``, covariance, precision or Cholesky factor);
- SciPy frozen distributions (``scipy.stats.norm(0, 1)``), converted to
  NumPy parameters; a ``loc`` or ``scale`` that the kldiv family has no room
  for (a shifted exponential, say) is an error, not a silent drop.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from kldiv._array_api import device, is_numpy_namespace
from kldiv.distributions._base import Distribution
from kldiv.errors import KLDivError, NoClosedFormError

__all__ = [
    "as_distribution",
    "as_numpy_distribution",
    "check_pair_shapes",
    "common_namespace",
    "from_scipy",
    "from_torch",
]


def _family(name: str) -> type:
    import kldiv.distributions as families

    return getattr(families, name)


def _given(d: Any, *names: str) -> dict[str, Any]:
    """The parameter among ``names`` the torch object was built with (kept as given).

    torch computes the other parameterisations lazily and caches them in the
    object's ``__dict__`` once read, so presence there does not tell which was
    given: families with ``probs``/``logits`` record it in ``_param``; for the
    matrix families the first of ``names`` present is taken (all are tied to
    the user's tensors by torch's graph).
    """
    given = getattr(d, "_param", None)
    for name in names:
        if given is not None and vars(d).get(name) is given:
            return {name: given}
    for name in names:
        if name in vars(d):
            return {name: vars(d)[name]}
    return {names[-1]: getattr(d, names[-1])}


def _torch_mvn(d: Any) -> Distribution:
    given = _given(d, "precision_matrix", "covariance_matrix", "scale_tril")
    return _family("MultivariateNormal")(d.loc, **given, validate=False)


def _torch_wishart(d: Any) -> Distribution:
    given = _given(d, "precision_matrix", "covariance_matrix", "scale_tril")
    return _family("Wishart")(d.df, **given, validate=False)


def _torch_mixture(d: Any) -> Distribution:
    return _family("MixtureSameFamily")(
        from_torch(d.mixture_distribution), from_torch(d.component_distribution)
    )


def _simple(name: str, *params: str) -> Callable[[Any], Distribution]:
    def convert(d: Any) -> Distribution:
        return _family(name)(*(getattr(d, p) for p in params), validate=False)

    return convert


def _with_probs_or_logits(name: str, *params: str) -> Callable[[Any], Distribution]:
    def convert(d: Any) -> Distribution:
        positional = [getattr(d, p) for p in params]
        return _family(name)(*positional, **_given(d, "probs", "logits"), validate=False)

    return convert


def _torch_multinomial(d: Any) -> Distribution:
    inner = d._categorical
    count = d.total_count
    return _family("Multinomial")(
        float(count) if isinstance(count, int) else count,
        **_given(inner, "probs", "logits"),
        validate=False,
    )


_TORCH: dict[str, Callable[[Any], Distribution]] = {
    "Normal": _simple("Normal", "loc", "scale"),
    "Laplace": _simple("Laplace", "loc", "scale"),
    "Cauchy": _simple("Cauchy", "loc", "scale"),
    "Gumbel": _simple("Gumbel", "loc", "scale"),
    "StudentT": _simple("StudentT", "df", "loc", "scale"),
    "HalfNormal": _simple("HalfNormal", "scale"),
    "HalfCauchy": _simple("HalfCauchy", "scale"),
    "LogNormal": _simple("LogNormal", "loc", "scale"),
    "Exponential": _simple("Exponential", "rate"),
    "Gamma": _simple("Gamma", "concentration", "rate"),
    "Chi2": _simple("Chi2", "df"),
    "InverseGamma": _simple("InverseGamma", "concentration", "rate"),
    "Weibull": _simple("Weibull", "scale", "concentration"),
    "Pareto": _simple("Pareto", "scale", "alpha"),
    "Uniform": _simple("Uniform", "low", "high"),
    "Beta": _simple("Beta", "concentration1", "concentration0"),
    "Kumaraswamy": _simple("Kumaraswamy", "concentration1", "concentration0"),
    "VonMises": _simple("VonMises", "loc", "concentration"),
    "Poisson": _simple("Poisson", "rate"),
    "Dirichlet": _simple("Dirichlet", "concentration"),
    "LowRankMultivariateNormal": _simple(
        "LowRankMultivariateNormal", "loc", "cov_factor", "cov_diag"
    ),
    "ContinuousBernoulli": _with_probs_or_logits("ContinuousBernoulli"),
    "Bernoulli": _with_probs_or_logits("Bernoulli"),
    "Categorical": _with_probs_or_logits("Categorical"),
    "OneHotCategorical": lambda d: _family("OneHotCategorical")(
        **_given(d._categorical, "probs", "logits"), validate=False
    ),
    "Geometric": _with_probs_or_logits("Geometric"),
    "Binomial": _with_probs_or_logits("Binomial", "total_count"),
    "NegativeBinomial": _with_probs_or_logits("NegativeBinomial", "total_count"),
    "Multinomial": _torch_multinomial,
    "MultivariateNormal": _torch_mvn,
    "Wishart": _torch_wishart,
    "Independent": lambda d: _family("Independent")(
        from_torch(d.base_dist), d.reinterpreted_batch_ndims
    ),
    "MixtureSameFamily": _torch_mixture,
    "TransformedDistribution": lambda d: _torch_transformed(d),
}


def _torch_transformed(d: Any) -> Distribution:
    """A torch ``TransformedDistribution`` (or subclass, e.g. LogisticNormal) with a kldiv base."""
    try:
        base = from_torch(d.base_dist)
    except NoClosedFormError as err:
        raise NoClosedFormError(
            f"kldiv has no counterpart of torch.distributions.{type(d).__name__}: its base "
            f"distribution cannot be converted ({err})"
        ) from None
    return _family("TransformedDistribution")(
        base, d.transforms, event_shape=d.event_shape, batch_shape=d.batch_shape
    )


def from_torch(d: Any) -> Distribution:
    """A kldiv distribution with the very parameter tensors of a ``torch.distributions`` object.

    Gradients flow from kldiv's results to the torch parameters. The
    parameterisation is kept (``probs`` or ``logits``; covariance, precision
    or Cholesky factor). The parameters are not re-validated (torch did,
    if its validation was on).

    Args:
        d: a ``torch.distributions.Distribution``.

    Returns:
        The kldiv distribution of the same law.

    Raises:
        NoClosedFormError: kldiv has no counterpart of ``d``'s class (a
            :class:`KLDivError` and a :class:`NotImplementedError`, what
            ``torch.distributions.kl_divergence`` raises for an unknown pair).

    Examples:
        >>> import torch
        >>> import kldiv
        >>> p = kldiv.distributions.from_torch(torch.distributions.Normal(0.0, 1.0))
        >>> type(p).__name__, float(p.scale)
        ('Normal', 1.0)
    """
    for cls in type(d).__mro__:
        if cls.__module__.startswith("torch.distributions") and cls.__name__ in _TORCH:
            return _TORCH[cls.__name__](d)
    raise NoClosedFormError(
        f"kldiv has no counterpart of torch.distributions.{type(d).__name__}; supported: "
        f"{', '.join(sorted(_TORCH))}"
    )


def _no_shift(name: str, loc: float, *, allowed: float = 0.0) -> None:
    if np.any(np.asarray(loc) != allowed):
        raise KLDivError(
            f"scipy.stats.{name} with loc={loc!r} has no kldiv counterpart: the kldiv family "
            f"has no location parameter (loc must be {allowed:g})"
        )


def _no_scale(name: str, scale: float) -> None:
    if np.any(np.asarray(scale) != 1):
        raise KLDivError(
            f"scipy.stats.{name} with scale={scale!r} has no kldiv counterpart: the kldiv "
            "family has no scale parameter (scale must be 1)"
        )


def _scipy_continuous(name: str, shapes: tuple, loc: Any, scale: Any) -> Distribution:
    f = _family
    if name == "norm":
        return f("Normal")(loc, scale)
    if name == "laplace":
        return f("Laplace")(loc, scale)
    if name == "cauchy":
        return f("Cauchy")(loc, scale)
    if name == "gumbel_r":
        return f("Gumbel")(loc, scale)
    if name == "logistic":
        return f("Logistic")(loc, scale)
    if name == "moyal":
        return f("Moyal")(loc, scale)
    if name == "t":
        return f("StudentT")(shapes[0], loc, scale)
    if name == "uniform":
        return f("Uniform")(loc, np.asarray(loc) + np.asarray(scale))
    if name == "vonmises":
        _no_scale(name, scale)
        return f("VonMises")(loc, shapes[0])
    _no_shift(name, loc)
    if name == "expon":
        return f("Exponential")(1.0 / np.asarray(scale, dtype=float))
    if name == "gamma":
        return f("Gamma")(shapes[0], 1.0 / np.asarray(scale, dtype=float))
    if name == "invgamma":
        return f("InverseGamma")(shapes[0], scale)
    if name == "lognorm":
        return f("LogNormal")(np.log(np.asarray(scale, dtype=float)), shapes[0])
    if name == "halfnorm":
        return f("HalfNormal")(scale)
    if name == "halfcauchy":
        return f("HalfCauchy")(scale)
    if name == "weibull_min":
        return f("Weibull")(scale, shapes[0])
    if name == "pareto":
        return f("Pareto")(scale, shapes[0])
    _no_scale(name, scale)
    if name == "beta":
        return f("Beta")(*shapes)
    if name == "chi2":
        return f("Chi2")(shapes[0])
    if name == "chi":
        return f("Chi")(shapes[0])
    raise KeyError(name)


def _scipy_discrete(name: str, shapes: tuple, loc: Any) -> Distribution:
    f = _family
    if name == "geom":
        _no_shift(name, loc, allowed=-1.0)  # SciPy counts trials, kldiv (like torch) failures
        return f("Geometric")(probs=shapes[0])
    _no_shift(name, loc)
    if name == "poisson":
        return f("Poisson")(shapes[0])
    if name == "bernoulli":
        return f("Bernoulli")(probs=shapes[0])
    if name == "binom":
        return f("Binomial")(shapes[0], probs=shapes[1])
    if name == "nbinom":  # SciPy's p is the success probability of the stopping trials
        return f("NegativeBinomial")(shapes[0], probs=1.0 - np.asarray(shapes[1], dtype=float))
    raise KeyError(name)


_SCIPY_CONTINUOUS = [
    "norm",
    "laplace",
    "cauchy",
    "gumbel_r",
    "logistic",
    "moyal",
    "t",
    "uniform",
    "vonmises",
    "expon",
    "gamma",
    "invgamma",
    "lognorm",
    "halfnorm",
    "halfcauchy",
    "weibull_min",
    "pareto",
    "beta",
    "chi2",
    "chi",
]
_SCIPY_DISCRETE = ["geom", "poisson", "bernoulli", "binom", "nbinom"]


def from_scipy(frozen: Any) -> Distribution:
    """A kldiv distribution (NumPy parameters) from a SciPy frozen distribution.

    Univariate: norm, laplace, cauchy, gumbel_r, logistic, moyal, t, uniform,
    vonmises, expon, gamma, invgamma, lognorm, halfnorm, halfcauchy,
    weibull_min, pareto, beta, chi2, chi, poisson, bernoulli, binom, nbinom,
    geom (with ``loc=-1``: kldiv's Geometric counts failures, like torch's);
    multivariate: multivariate_normal, dirichlet, multinomial.

    Args:
        frozen: e.g. ``scipy.stats.gamma(2.0, scale=0.5)``.

    Returns:
        The kldiv distribution of the same law.

    Raises:
        KLDivError: an unsupported family, or a ``loc`` / ``scale`` the kldiv
            family cannot represent (e.g. a shifted exponential).

    Examples:
        >>> from scipy import stats
        >>> import kldiv
        >>> d = kldiv.distributions.from_scipy(stats.gamma(2.0, scale=0.5))
        >>> type(d).__name__, float(d.rate)
        ('Gamma', 2.0)
    """
    kind = type(frozen).__name__
    if kind == "multivariate_normal_frozen":
        return _family("MultivariateNormal")(frozen.mean, covariance_matrix=frozen.cov)
    if kind == "dirichlet_frozen":
        return _family("Dirichlet")(frozen.alpha)
    if kind == "multinomial_frozen":
        return _family("Multinomial")(np.asarray(frozen.n, dtype=float), probs=frozen.p)
    dist = getattr(frozen, "dist", None)
    name = getattr(dist, "name", None)
    if name in _SCIPY_CONTINUOUS:
        shapes, loc, scale = dist._parse_args(*frozen.args, **frozen.kwds)
        return _scipy_continuous(name, shapes, loc, scale)
    if name in _SCIPY_DISCRETE:
        shapes, loc, scale = dist._parse_args(*frozen.args, **frozen.kwds)
        _no_scale(name, scale)
        return _scipy_discrete(name, shapes, loc)
    supported = ", ".join([*_SCIPY_CONTINUOUS, *_SCIPY_DISCRETE, "multivariate_normal"])
    raise KLDivError(
        f"kldiv has no counterpart of the SciPy distribution {name or kind!r}; "
        f"supported: {supported}, dirichlet, multinomial"
    )


def _is_torch_distribution(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.distributions.Distribution)


def _is_scipy_frozen(value: Any) -> bool:
    module = type(value).__module__
    return module.startswith("scipy.stats") and (
        hasattr(value, "dist") or type(value).__name__.endswith("_frozen")
    )


def as_distribution(value: Any, name: str) -> Distribution:
    """``value`` as a kldiv distribution, converting torch.distributions and SciPy objects."""
    if isinstance(value, Distribution):
        return value
    if _is_torch_distribution(value):
        return from_torch(value)
    if _is_scipy_frozen(value):
        return from_scipy(value)
    raise KLDivError(
        f"`{name}` must be a kldiv distribution, a torch.distributions object or a SciPy "
        f"frozen distribution; got {type(value).__module__}.{type(value).__qualname__}"
    )


def _with_arrays_converted(
    d: Distribution, convert: Callable[[Any], Any], xp: ModuleType
) -> Distribution:
    """A shallow copy of ``d`` (and of its nested distributions) on namespace ``xp``.

    ``convert`` is applied to every other attribute and returns the new value
    (arrays converted, anything else as it is); the dtype is read off the
    converted parameters.
    """
    moved = copy.copy(d)
    for key, value in vars(d).items():
        if isinstance(value, Distribution):
            setattr(moved, key, _with_arrays_converted(value, convert, xp))
        else:
            setattr(moved, key, convert(value))
    moved.xp = xp
    moved.dtype = moved._like().dtype
    return moved


def _moved(d: Distribution, xp: ModuleType, like: Any) -> Distribution:
    """A shallow copy of ``d`` with every NumPy array (and nested distribution) moved to ``xp``."""

    def convert(value: Any) -> Any:
        if not isinstance(value, np.ndarray):
            return value
        # a copy: broadcast parameters are read-only views, which torch warns about
        array = xp.asarray(np.array(value), device=device(like))
        return xp.astype(array, like.dtype) if np.issubdtype(value.dtype, np.floating) else array

    return _with_arrays_converted(d, convert, xp)


def common_namespace(p: Distribution, q: Distribution) -> tuple[Distribution, Distribution]:
    """P and Q on one array library.

    A distribution held in NumPy (for instance built from Python numbers, like
    the prior ``Normal(0.0, 1.0)``) is moved to the other's library, dtype and
    device, so that ``kl_divergence(Normal(mu_tensor, sigma_tensor), Normal(0.0, 1.0))``
    works; any other mix of libraries is an error.
    """
    if p.xp is q.xp:
        return p, q
    if is_numpy_namespace(p.xp):
        return _moved(p, q.xp, q._like()), q
    if is_numpy_namespace(q.xp):
        return p, _moved(q, p.xp, p._like())
    raise KLDivError(
        f"`p` and `q` must hold parameters of the same array library; got "
        f"{p.xp.__name__} and {q.xp.__name__}"
    )


def check_pair_shapes(p: Distribution, q: Distribution) -> None:
    """Raises :class:`KLDivError` unless P, Q share the event shape and their batches broadcast."""
    if p.event_shape != q.event_shape:
        raise KLDivError(
            f"`p` and `q` must have the same event shape; got {p.event_shape} for "
            f"{type(p).__name__} and {q.event_shape} for {type(q).__name__}"
        )
    try:
        np.broadcast_shapes(p.batch_shape, q.batch_shape)
    except ValueError:
        raise KLDivError(
            f"the batch shapes of `p` and `q` must broadcast; got {p.batch_shape} for "
            f"{type(p).__name__} and {q.batch_shape} for {type(q).__name__}"
        ) from None


def as_numpy_distribution(d: Distribution) -> Distribution:
    """A copy of ``d`` with NumPy copies of its arrays (detached from any autodiff graph).

    Used by the algorithms that only exist in NumPy/SciPy (adaptive quadrature,
    enumeration): they return numbers, not differentiable arrays.
    """
    import array_api_compat.numpy as np_xp

    from kldiv._array_api import is_array_api_obj, to_numpy

    if is_numpy_namespace(d.xp):
        return d

    def convert(value: Any) -> Any:
        if is_array_api_obj(value) and not isinstance(value, np.ndarray):
            return np.asarray(to_numpy(value))
        return value

    return _with_arrays_converted(d, convert, np_xp)
