"""Families of kldiv/distributions/_multivariate.py and _structural.py against SciPy.

SciPy's multivariate laws are unbatched (and take points in their own
layouts), so each reference here is a small adapter that loops over the batch
and answers ``logpdf`` / ``entropy`` / ``mean`` / ``var`` (and ``cdf`` where
the samples can be KS-tested) in kldiv's ``sample + batch + event`` layout.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from kldiv import distributions as D
from tests.distributions._families import FamilyCase

_RNG = np.random.default_rng(7)


def _spd(batch: int, dim: int, shift: float) -> np.ndarray:
    a = _RNG.standard_normal((batch, dim, dim))
    return a @ np.swapaxes(a, -1, -2) / dim + shift * np.eye(dim)


class _Batched:
    """A batch of unbatched SciPy laws, one per batch index, with matrix or vector events."""

    def __init__(self, laws: list, batch: tuple[int, ...], event: tuple[int, ...], support=None):
        self.laws, self.batch, self.event = laws, batch, event
        self.support = support

    def _per_law(self, fn) -> np.ndarray:
        values = [np.asarray(fn(law)) for law in self.laws]
        return np.stack(values).reshape(self.batch + values[0].shape)

    def logpdf(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points)
        lead = points.shape[: points.ndim - len(self.batch) - len(self.event)]
        points = np.broadcast_to(points, lead + self.batch + self.event)
        out = np.empty(lead + self.batch)
        for index in np.ndindex(*self.batch):
            flat = int(np.ravel_multi_index(index, self.batch)) if self.batch else 0
            law = self.laws[flat]
            for lead_index in np.ndindex(*lead):
                x = points[lead_index + index]
                inside = self.support is None or self.support(x)
                out[lead_index + index] = law.logpdf(x) if inside else -np.inf
        return out

    def entropy(self) -> np.ndarray:
        return self._per_law(lambda law: law.entropy())

    def mean(self) -> np.ndarray:
        return self._per_law(lambda law: law.mean() if callable(law.mean) else law.mean)

    def var(self) -> np.ndarray:
        return self._per_law(lambda law: law.var() if hasattr(law, "var") else np.diag(law.cov))


# --- Gaussians ----------------------------------------------------------------------------------

LOC = _RNG.standard_normal((2, 3))
COV = _spd(2, 3, 0.7)
MVN_POINTS = _RNG.standard_normal((4, 2, 3)) * 1.5


def _mvn_reference(cov: np.ndarray):
    return lambda p: _Batched(
        [stats.multivariate_normal(LOC[b], cov[b]) for b in range(2)], (2,), (3,)
    )


def _mvn_family(kind: str, value: np.ndarray) -> FamilyCase:
    return FamilyCase(
        D.MultivariateNormal,
        {"loc": LOC, kind: value},
        _mvn_reference(COV),
        MVN_POINTS,
        label=kind,
        sample_check="moments",
    )


FACTOR = 0.8 * _RNG.standard_normal((2, 3, 2))
DIAG = _RNG.uniform(0.4, 1.4, (2, 3))
LOWRANK_COV = FACTOR @ np.swapaxes(FACTOR, -1, -2) + DIAG[..., None] * np.eye(3)

SCALE = _RNG.uniform(0.5, 2.0, (2, 3))


class _IndependentNormal:
    """Independent(Normal(loc, scale), 1): sums of univariate normal laws."""

    def __init__(self, loc: np.ndarray, scale: np.ndarray):
        self.law = stats.norm(loc, scale)
        self.loc, self.scale = loc, scale

    def logpdf(self, points):
        return self.law.logpdf(points).sum(-1)

    def entropy(self):
        return self.law.entropy().sum(-1)

    def mean(self):
        return self.loc

    def var(self):
        return self.scale**2


# --- Dirichlet and Wishart ----------------------------------------------------------------------

CONCENTRATION = np.array([[1.5, 2.0, 3.0], [0.7, 1.2, 4.0]])
DIRICHLET_POINTS = np.array(
    [
        [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]],
        [[0.6, 0.3, 0.1], [0.3, 0.3, 0.4]],
        [[0.5, 0.6, -0.1], [0.2, 0.2, 0.2]],  # off the simplex: -inf
    ]
)


def _on_simplex(x: np.ndarray) -> bool:
    return bool(np.all(x >= 0) and abs(x.sum() - 1) < 1e-9)


WISHART_DF = np.array([4.0, 6.5])
WISHART_COV = _spd(2, 3, 0.5)
WISHART_POINTS = np.stack(
    [
        _spd(2, 3, 0.3),
        _spd(2, 3, 1.0),
        np.broadcast_to(np.diag([1.0, -1.0, 2.0]), (2, 3, 3)),  # not positive definite: -inf
    ]
)


def _positive_definite(x: np.ndarray) -> bool:
    return bool(np.all(np.linalg.eigvalsh(x) > 0))


def _wishart_reference(p):
    laws = [stats.wishart(WISHART_DF[b], WISHART_COV[b]) for b in range(2)]
    return _Batched(laws, (2,), (3, 3), support=_positive_definite)


# --- Mixture ------------------------------------------------------------------------------------

MIX_LOGITS = np.array([[0.2, -0.5, 1.0], [0.0, 0.0, 0.0]])
MIX_LOC = np.array([[-2.0, 0.0, 1.5], [-1.0, 1.0, 3.0]])
MIX_SCALE = np.array([[0.5, 1.0, 0.7], [1.2, 0.4, 0.9]])


class _NormalMixture:
    """A batch of univariate normal mixtures (weights along the last axis)."""

    def __init__(self, logits, loc, scale):
        self.w = special.softmax(logits, axis=-1)
        self.loc, self.scale = loc, scale

    def logpdf(self, x):
        x = np.asarray(x)[..., None]
        return special.logsumexp(stats.norm.logpdf(x, self.loc, self.scale), b=self.w, axis=-1)

    def cdf(self, x):
        x = np.asarray(x)[..., None]
        return np.sum(self.w * stats.norm.cdf(x, self.loc, self.scale), axis=-1)

    def mean(self):
        return np.sum(self.w * self.loc, axis=-1)

    def var(self):
        mean = self.mean()[..., None]
        return np.sum(self.w * (self.scale**2 + (self.loc - mean) ** 2), axis=-1)


FAMILIES = [
    _mvn_family("covariance_matrix", COV),
    _mvn_family("precision_matrix", np.linalg.inv(COV)),
    _mvn_family("scale_tril", np.linalg.cholesky(COV)),
    FamilyCase(
        D.LowRankMultivariateNormal,
        {"loc": LOC, "cov_factor": FACTOR, "cov_diag": DIAG},
        lambda p: _Batched(
            [stats.multivariate_normal(LOC[b], LOWRANK_COV[b]) for b in range(2)], (2,), (3,)
        ),
        MVN_POINTS,
        sample_check="moments",
    ),
    FamilyCase(
        D.Independent,
        {"loc": LOC, "scale": SCALE},
        lambda p: _IndependentNormal(LOC, SCALE),
        MVN_POINTS,
        build=lambda a: D.Independent(D.Normal(a["loc"], a["scale"]), 1),
        label="normal",
        sample_check="moments",
    ),
    FamilyCase(
        D.Dirichlet,
        {"concentration": CONCENTRATION},
        lambda p: _Batched(
            [stats.dirichlet(CONCENTRATION[b]) for b in range(2)], (2,), (3,), support=_on_simplex
        ),
        DIRICHLET_POINTS,
        sample_check="moments",
    ),
    FamilyCase(
        D.Wishart,
        {"df": WISHART_DF, "covariance_matrix": WISHART_COV},
        _wishart_reference,
        WISHART_POINTS,
        sample_check="moments",
    ),
    FamilyCase(
        D.Deterministic,
        {"loc": [[0.5, -1.0], [2.0, 3.0]]},
        None,
        [[0.5, -1.0], [2.0, 3.0]],
        sample_check="moments",
    ),
]

if hasattr(D, "Categorical"):
    FAMILIES.append(
        FamilyCase(
            D.MixtureSameFamily,
            {"logits": MIX_LOGITS, "loc": MIX_LOC, "scale": MIX_SCALE},
            lambda p: _NormalMixture(MIX_LOGITS, MIX_LOC, MIX_SCALE),
            [[-1.0, 0.5], [2.0, 3.5], [0.0, 0.0]],
            build=lambda a: D.MixtureSameFamily(
                D.Categorical(logits=a["logits"]), D.Normal(a["loc"], a["scale"])
            ),
            label="normal",
            has_entropy=False,
        )
    )
