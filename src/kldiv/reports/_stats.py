r"""Mergeable summary statistics of per-token values: counts, means and centred moments.

Each chunk of rows is reduced to a :class:`Moments` per quantity, and chunks are
combined with Chan, Golub and LeVeque's pairwise update, in float64:

.. math::

    n = n_a + n_b, \quad \delta = \bar x_b - \bar x_a, \quad
    \bar x = \bar x_a + \delta\, n_b / n, \quad
    M_2 = M_{2,a} + M_{2,b} + \delta^2 n_a n_b / n

so that the merged mean and variance equal those of the concatenated values up
to rounding, whatever the chunking, without the cancellation of
``sum(x**2) - n * mean**2``. Infinite values (a diverging KL, a reference token
with no mass) are counted apart, so that one ``+inf`` makes the mean ``+inf``
instead of turning every moment into NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

__all__ = ["Moments", "Summary", "merge_all", "merge_summaries"]


@dataclass(frozen=True)
class Moments:
    """Count, mean, centred second moment, extremes and infinities of a set of values.

    Attributes:
        count: how many values, finite or not.
        finite: how many of them are finite (the mean and ``m2`` are over these).
        mean: the mean of the finite values (0.0 when there are none).
        m2: the sum of squared deviations of the finite values from their mean.
        minimum: the smallest value (+inf when there are none).
        maximum: the largest value (-inf when there are none).
        positive_infinite: how many values are +inf.
        negative_infinite: how many values are -inf.
    """

    count: int = 0
    finite: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    positive_infinite: int = 0
    negative_infinite: int = 0

    @classmethod
    def of(cls, values: np.ndarray) -> Moments:
        """The moments of a 1-D array of values (two-pass mean and ``m2`` in float64)."""
        x = np.asarray(values, dtype=np.float64).reshape(-1)
        if x.size == 0:
            return cls()
        is_finite = np.isfinite(x)
        finite = x if bool(is_finite.all()) else x[is_finite]
        if np.isnan(x).any():
            raise ValueError("NaN in the per-token values")  # callers validate before this
        mean = float(finite.mean()) if finite.size else 0.0
        with np.errstate(over="ignore"):  # values beyond ~1e154: m2 is +inf, so is the stderr
            m2 = float(np.dot(finite - mean, finite - mean)) if finite.size else 0.0
        return cls(
            count=int(x.size),
            finite=int(finite.size),
            mean=mean,
            m2=m2,
            minimum=float(x.min()),
            maximum=float(x.max()),
            positive_infinite=int(np.count_nonzero(x == np.inf)),
            negative_infinite=int(np.count_nonzero(x == -np.inf)),
        )

    def merge(self, other: Moments) -> Moments:
        """The moments of the union of the two sets of values (Chan et al.'s update)."""
        n = self.finite + other.finite
        if n == 0:
            mean, m2 = 0.0, 0.0
        else:
            delta = other.mean - self.mean
            mean = self.mean + delta * (other.finite / n)
            m2 = self.m2 + other.m2 + delta * delta * (self.finite * other.finite / n)
        return Moments(
            count=self.count + other.count,
            finite=n,
            mean=mean,
            m2=m2,
            minimum=min(self.minimum, other.minimum),
            maximum=max(self.maximum, other.maximum),
            positive_infinite=self.positive_infinite + other.positive_infinite,
            negative_infinite=self.negative_infinite + other.negative_infinite,
        )

    @property
    def average(self) -> float:
        """The mean of all values: ±inf when infinite values are present (NaN if both signs)."""
        if self.count == 0:
            return math.nan
        if self.positive_infinite and self.negative_infinite:
            return math.nan
        if self.positive_infinite:
            return math.inf
        if self.negative_infinite:
            return -math.inf
        return self.mean

    @property
    def variance(self) -> float:
        """The sample variance (``m2 / (n - 1)``); NaN below 2 values, inf with infinities."""
        if self.count < 2:
            return math.nan
        if self.positive_infinite or self.negative_infinite:
            return math.inf
        return self.m2 / (self.count - 1)

    @property
    def stderr(self) -> float:
        """The standard error of the mean, ``sqrt(variance / n)``."""
        variance = self.variance
        return math.sqrt(variance / self.count) if variance == variance else math.nan


_Mergeable = TypeVar("_Mergeable", "Moments", "Summary")


def _merge_pairwise(items: list[_Mergeable], empty: _Mergeable) -> _Mergeable:
    """Merges ``items`` pairwise (a balanced tree: rounding grows as log n); ``empty`` if none."""
    if not items:
        return empty
    while len(items) > 1:
        merged = [a.merge(b) for a, b in zip(items[0::2], items[1::2], strict=False)]
        if len(items) % 2:
            merged.append(items[-1])
        items = merged
    return items[0]


def merge_all(items: list[Moments]) -> Moments:
    """Merges a list of moments pairwise (a balanced tree: rounding grows as log n)."""
    return _merge_pairwise(items, Moments())


@dataclass(frozen=True)
class Summary:
    """The mergeable statistics of a set of positions (one chunk, or several merged).

    Attributes:
        positions: rows seen, included or not.
        masked: rows left out (``ignore_index`` tokens or a False ``mask``).
        same_top: included rows whose two most probable tokens agree.
        kl: moments of the per-token KL (nats).
        delta_p: moments of ``p_test(t) - p_base(t)``.
        delta_p_squared: moments of its square (for the RMS and its error).
        nll_base: moments of ``-log p_base(t)`` (empty without tokens).
        nll_test: moments of ``-log p_test(t)`` (empty without tokens).
        nll_difference: moments of ``nll_test - nll_base`` (empty without tokens).
    """

    positions: int = 0
    masked: int = 0
    same_top: int = 0
    kl: Moments = Moments()
    delta_p: Moments = Moments()
    delta_p_squared: Moments = Moments()
    nll_base: Moments = Moments()
    nll_test: Moments = Moments()
    nll_difference: Moments = Moments()

    @classmethod
    def of(
        cls,
        *,
        positions: int,
        kl: np.ndarray,
        same_top: np.ndarray,
        delta_p: np.ndarray,
        nll_base: np.ndarray | None,
        nll_test: np.ndarray | None,
    ) -> Summary:
        """The statistics of one chunk's per-token values (the included rows only)."""
        with_nll = nll_base is not None and nll_test is not None
        with np.errstate(invalid="ignore"):
            difference = nll_test - nll_base if with_nll else None
        if difference is not None:  # inf - inf: both models give the token no mass
            difference = np.where(np.isnan(difference), np.inf, difference)
        return cls(
            positions=positions,
            masked=positions - int(kl.size),
            same_top=int(np.count_nonzero(same_top)),
            kl=Moments.of(kl),
            delta_p=Moments.of(delta_p),
            delta_p_squared=Moments.of(np.square(delta_p)),
            nll_base=Moments.of(nll_base) if with_nll else Moments(),
            nll_test=Moments.of(nll_test) if with_nll else Moments(),
            nll_difference=Moments.of(difference) if with_nll else Moments(),
        )

    def merge(self, other: Summary) -> Summary:
        """The statistics of both sets of positions."""
        return Summary(
            positions=self.positions + other.positions,
            masked=self.masked + other.masked,
            same_top=self.same_top + other.same_top,
            kl=self.kl.merge(other.kl),
            delta_p=self.delta_p.merge(other.delta_p),
            delta_p_squared=self.delta_p_squared.merge(other.delta_p_squared),
            nll_base=self.nll_base.merge(other.nll_base),
            nll_test=self.nll_test.merge(other.nll_test),
            nll_difference=self.nll_difference.merge(other.nll_difference),
        )


def merge_summaries(items: list[Summary]) -> Summary:
    """Merges summaries pairwise (a balanced tree)."""
    return _merge_pairwise(items, Summary())
