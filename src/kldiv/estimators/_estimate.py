r"""The result of every estimator: a value with its standard error, method and sample size.

An :class:`Estimate` says how good a number is. Its value and standard error
are in the unit of ``base`` (nats when None), its confidence interval is the
normal one, :math:`\hat D \pm z_{(1+\text{level})/2}\, \widehat{\mathrm{se}}`, and
``float(estimate)`` gives the value, so that an Estimate can stand wherever a
number was expected.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from kldiv._array_api import array_namespace, is_dask_array, is_traced, size, to_numpy
from kldiv._validation import log_of_base
from kldiv.errors import KLDivError

__all__ = ["Estimate"]

Array = Any

_UNIT_NAMES = {2.0: "bits", 10.0: "hartleys", math.e: "nats"}
_SCIENTIFIC_BELOW = 1e-6  # a standard error below this prints in scientific notation


def _is_array(value: object) -> bool:
    from array_api_compat import is_array_api_obj

    return is_array_api_obj(value) and not isinstance(value, np.generic)


def _is_real_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def unit_name(base: float | None) -> str:
    """The unit of a divergence in logarithms of ``base``: nats, bits, hartleys, …."""
    if base is None:
        return "nats"
    return _UNIT_NAMES.get(float(base), f"units of log base {base:g}")


def _as_float(value: float | Array) -> float | None:
    """A float, or a concrete 0-d array as a float; None for batches and traced arrays."""
    if not _is_array(value):
        return value
    if len(value.shape) or is_traced(value):
        return None
    return float(to_numpy(value))


def _check_number_or_array(value: object, name: str) -> float | Array:
    if _is_real_number(value):
        return float(value)
    if _is_array(value):
        return value
    raise KLDivError(f"`{name}` must be a real number or an array; got {type(value).__name__}")


def _check_same_library(value: float | Array, stderr: float | Array) -> None:
    if _is_array(value) and _is_array(stderr):
        try:
            array_namespace(value, stderr)
        except TypeError:
            raise KLDivError(
                f"`value` and `stderr` must come from the same array library; got "
                f"{type(value).__name__} and {type(stderr).__name__}"
            ) from None


def _check_stderr(stderr: float | Array) -> None:
    if _is_real_number(stderr):
        if stderr < 0:
            raise KLDivError(f"`stderr` must be >= 0 (or NaN when unknown); got {stderr!r}")
        return
    if is_traced(stderr) or not size(stderr):
        return
    xp = array_namespace(stderr)
    if bool(xp.any(stderr < 0)):
        got = float(np.min(to_numpy(stderr)))
        raise KLDivError(f"`stderr` must be >= 0 (or NaN when unknown); got {got!r}")


def _check_method(method: object) -> str:
    if not isinstance(method, str) or not method:
        raise KLDivError(f"`method` must be a non-empty string; got {method!r}")
    return method


def _check_n(n: object) -> int:
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 0:
        raise KLDivError(f"`n` must be an integer >= 0; got {n!r}")
    return int(n)


def _check_details(details: object) -> dict[str, Any]:
    if not isinstance(details, Mapping):
        raise KLDivError(f"`details` must be a mapping; got {type(details).__name__}")
    return dict(details)


def _check_converged(converged: object) -> bool | None:
    if converged is None or isinstance(converged, (bool, np.bool_)):
        return None if converged is None else bool(converged)
    raise KLDivError(f"`converged` must be True, False or None; got {converged!r}")


def _check_level(level: object) -> float:
    if not _is_real_number(level) or not 0.0 < level < 1.0:
        raise KLDivError(f"`level` must be a number strictly between 0 and 1; got {level!r}")
    return float(level)


def _decimals(stderr: float) -> int:
    """Decimal places that show a positive standard error to one significant digit.

    Two digits when the leading one is 1 (0.0012, not 0.001: the rounding
    would be a fifth of the value).
    """
    exponent = math.floor(math.log10(stderr))
    leading = int(round(stderr / 10.0**exponent, 6))
    return -exponent + (1 if leading == 1 else 0)


def format_value(value: float, stderr: float) -> str:
    """``value ± stderr`` rounded to the precision the standard error supports.

    Examples:
        >>> format_value(0.0201355, 0.00031)
        '0.0201 ± 0.0003'
        >>> format_value(1.234, 0.0)
        '1.234 ± 0'
    """
    if math.isnan(stderr):
        return f"{value:.4g} ± ?"
    if stderr == 0.0 or math.isinf(stderr) or not math.isfinite(value):
        return f"{value:.6g} ± {stderr:g}"
    decimals = _decimals(stderr)
    if stderr < _SCIENTIFIC_BELOW:
        stderr_exponent = math.floor(math.log10(stderr))
        exponent = math.floor(math.log10(abs(value))) if value else stderr_exponent
        significant = decimals + stderr_exponent  # 0 or 1 digits after the stderr's first
        return f"{value:.{max(exponent + decimals, 0)}e} ± {stderr:.{significant}e}"
    if decimals >= 0:
        return f"{value:.{decimals}f} ± {stderr:.{decimals}f}"
    scale = 10.0 ** (-decimals)
    return f"{round(value / scale) * scale:.0f} ± {round(stderr / scale) * scale:.0f}"


@dataclass(frozen=True, eq=False, repr=False)
class Estimate:
    r"""An estimate of a divergence, with its standard error and how it was obtained.

    ``value`` and ``stderr`` are in the unit of ``base`` (nats for None, bits
    for 2). The confidence interval is the normal one,

    .. math::

        \hat D \pm z_{(1 + \text{level})/2} \cdot \widehat{\mathrm{se}},

    with :math:`z_{0.975} = 1.95996\ldots` for the default 95%. It is
    symmetric and not clipped at 0 (sample-based estimates can be negative;
    the divergence cannot). A ``stderr`` of 0 marks an exact value and NaN an
    unknown error.

    ``value`` and ``stderr`` are Python floats for a single estimate, or
    arrays of any backend (NumPy, PyTorch, JAX, ...) for a batch of them;
    ``float(estimate)`` works for a single value (also a size-1 array).

    Args:
        value: the estimate, a float or an array.
        stderr: its standard error, >= 0, of the shape of ``value`` (or a
            float); 0 when exact, NaN when unknown.
        method: how it was computed: ``"exact"``, ``"enumeration"``,
            ``"quadrature"``, ``"monte_carlo"``, ``"knn"``, ``"histogram"``, ...
        n: the number of samples (or function evaluations) it used.
        base: the logarithm base of the unit: None for nats, 2 for bits.
        details: extra information from the estimator (bounds, the choices it
            made, approximations). Keys ending in ``_nats`` hold values in nats
            whatever ``base`` is.
        converged: whether the estimator met its own accuracy target and
            passed its self-checks: True, False (the value is the best the
            method could do; ``stderr`` then includes what the method could
            not rule out, and ``details["reason"]`` says why), or None where
            the estimator makes no such claim (the default, for backward
            compatibility). ``repr`` marks an unconverged estimate.

    Examples:
        >>> from kldiv.estimators import Estimate
        >>> est = Estimate(0.0201355, 0.00031, "monte_carlo", 40000)
        >>> est
        0.0201 ± 0.0003 nats (monte_carlo, n=40000)
        >>> float(est)
        0.0201355
        >>> lo, hi = est.ci(0.95)
        >>> round(lo, 5), round(hi, 5)
        (0.01954, 0.02074)
        >>> est.to_base(2)
        0.0290 ± 0.0004 bits (monte_carlo, n=40000)
    """

    value: float | Array
    stderr: float | Array
    method: str
    n: int
    base: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    converged: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _check_number_or_array(self.value, "value"))
        object.__setattr__(self, "stderr", _check_number_or_array(self.stderr, "stderr"))
        _check_same_library(self.value, self.stderr)
        _check_stderr(self.stderr)
        object.__setattr__(self, "method", _check_method(self.method))
        object.__setattr__(self, "n", _check_n(self.n))
        log_of_base(self.base)
        if self.base is not None:
            object.__setattr__(self, "base", float(self.base))
        object.__setattr__(self, "details", _check_details(self.details))
        object.__setattr__(self, "converged", _check_converged(self.converged))

    @property
    def unit(self) -> str:
        """The unit of ``value`` and ``stderr``: ``"nats"``, ``"bits"``, ``"hartleys"``, …."""
        return unit_name(self.base)

    @property
    def is_batch(self) -> bool:
        """Whether ``value`` is an array of one or more dimensions (a batch of estimates)."""
        return _is_array(self.value) and len(self.value.shape) > 0

    def ci(self, level: float = 0.95) -> tuple[float | Array, float | Array]:
        r"""The normal confidence interval :math:`\hat D \pm z_{(1+\text{level})/2}\,\mathrm{se}`.

        An exact value (``stderr`` 0) gives ``(value, value)``, an infinite
        standard error ``(-inf, +inf)``, an unknown one (NaN) ``(nan, nan)``.

        Args:
            level: the coverage, strictly between 0 and 1.

        Returns:
            ``(lower, upper)``, floats or arrays like ``value``.

        Examples:
            >>> from kldiv.estimators import Estimate
            >>> Estimate(1.0, 0.1, "monte_carlo", 100).ci(0.6827)
            (0.9, 1.1)
        """
        z = NormalDist().inv_cdf(0.5 + _check_level(level) / 2.0)
        value, stderr = self.value, self.stderr
        if not _is_array(value) and not _is_array(stderr):
            if math.isinf(stderr):
                return -math.inf, math.inf
            return value - z * stderr, value + z * stderr
        xp = array_namespace(*(a for a in (value, stderr) if _is_array(a)))
        if not _is_array(stderr):
            stderr = xp.full_like(value, stderr)
        unbounded = xp.isinf(stderr)
        half = z * xp.where(unbounded, xp.zeros_like(stderr), stderr)
        lower = xp.where(unbounded, xp.full_like(half, -math.inf), value - half)
        upper = xp.where(unbounded, xp.full_like(half, math.inf), value + half)
        return lower, upper

    def to_base(self, base: float | None) -> Estimate:
        """The same estimate in the unit of ``base`` (None: nats; 2: bits).

        ``details`` is copied unchanged (its ``*_nats`` entries stay in nats).

        Examples:
            >>> from kldiv.estimators import Estimate
            >>> Estimate(1.0, 0.0, "exact", 1, base=2).to_base(None).value
            0.6931471805599453
        """
        new_log = log_of_base(base)
        old_log = log_of_base(self.base)
        factor = (1.0 if old_log is None else old_log) / (1.0 if new_log is None else new_log)
        return Estimate(
            value=self.value * factor if factor != 1.0 else self.value,
            stderr=self.stderr * factor if factor != 1.0 else self.stderr,
            method=self.method,
            n=self.n,
            base=base,
            details=self.details,
            converged=self.converged,
        )

    def __float__(self) -> float:
        if not _is_array(self.value):
            return float(self.value)
        if size(self.value) != 1:
            raise TypeError(
                f"float() needs a single estimate; this Estimate holds a batch of shape "
                f"{tuple(self.value.shape)} (use .value)"
            )
        return float(to_numpy(self.value).reshape(()))

    def __format__(self, spec: str) -> str:
        if not spec:
            return repr(self)
        return format(float(self), spec)

    def __repr__(self) -> str:
        note = ", not converged" if self.converged is False else ""
        tail = f"{self.unit} ({self.method}, n={self.n}{note})"
        single = _as_float(self.value), _as_float(self.stderr)
        if None not in single:
            return f"{format_value(*single)} {tail}"
        return f"Estimate({self._describe('value')}, {self._describe('stderr')}, {tail})"

    def _describe(self, name: str) -> str:
        array = getattr(self, name)
        if not _is_array(array):
            return f"{name}={array:g}"
        if is_traced(array):  # printing must not compute a Dask graph
            kind = "lazy Dask array" if is_dask_array(array) else "traced"
            return f"{name}=<{kind}, shape {tuple(array.shape)}>"
        text = np.array2string(to_numpy(array), precision=4, separator=", ", threshold=8)
        return f"{name}={text}"
