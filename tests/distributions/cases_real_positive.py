"""Cases for the real-line and positive-half-line pairs (kldiv/distributions/_kl_real_positive.py).

Parameters stay away from the edges where a pair turns infinite (tail
indices, shape ratios) so that the finite-difference gradient checks see
finite values; the ``*-inf`` cases check those edges separately.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, stats

from kldiv import distributions as D
from tests.distributions._cases import PairCase


def _scipy_quad_kl(p_law, q_law, p_params: dict, q_params: dict) -> list[float]:
    """Independent reference: quadrature of p log(p/q) with SciPy's densities, per batch element.

    Used where Q's log-density overflows to -inf in a far tail in which P's
    density has already underflowed to 0 (Gumbel and Moyal Q on the left):
    there the integrand is taken as 0, where the shared quadrature helper
    computes 0 * inf = NaN.
    """
    values = []
    for i in range(len(next(iter(p_params.values())))):
        p = p_law(**{k: v[i] for k, v in p_params.items()})
        q = q_law(**{k: v[i] for k, v in q_params.items()})

        def integrand(x, p=p, q=q):
            with np.errstate(over="ignore", under="ignore"):
                log_p = float(p.logpdf(x))
                weight = math.exp(log_p) if log_p > -math.inf else 0.0
                if weight == 0.0:
                    return 0.0
                return weight * (log_p - float(q.logpdf(x)))

        total, _ = integrate.quad(integrand, -np.inf, np.inf, limit=500, epsabs=1e-13, epsrel=1e-11)
        values.append(total)
    return values


def _normal(loc, scale):
    return stats.norm(loc, scale)


def _laplace(loc, scale):
    return stats.laplace(loc, scale)


def _logistic(loc, scale):
    return stats.logistic(loc, scale)


def _gumbel(loc, scale):
    return stats.gumbel_r(loc, scale)


class _MoyalDensity:
    """The Moyal log-density written out (SciPy's ``moyal.logpdf`` underflows to -inf early)."""

    def __init__(self, loc: float, scale: float) -> None:
        self.loc, self.scale = loc, scale

    def logpdf(self, x: float) -> float:
        z = (x - self.loc) / self.scale
        if -z > 700.0:
            return -math.inf
        return -0.5 * (z + math.exp(-z)) - math.log(self.scale) - 0.5 * math.log(2.0 * math.pi)


def _moyal(loc, scale):
    return _MoyalDensity(loc, scale)


# P-side and Q-side parameter sets (batch of 3, varied).
NORMAL = {"loc": [0.0, 1.5, -2.0], "scale": [1.0, 0.5, 3.0]}
NORMAL_Q = {"loc": [0.3, -1.0, 1.0], "scale": [2.0, 1.0, 4.0]}
LAPLACE = {"loc": [0.0, 1.5, -2.0], "scale": [1.0, 0.5, 2.0]}
LAPLACE_Q = {"loc": [0.3, -1.0, 1.0], "scale": [2.0, 1.0, 0.7]}
CAUCHY = {"loc": [0.0, 1.5, -2.0], "scale": [1.0, 0.5, 2.0]}
CAUCHY_Q = {"loc": [0.3, -1.0, 1.0], "scale": [2.0, 1.0, 0.7]}
GUMBEL = {"loc": [0.0, 1.5, -2.0], "scale": [1.0, 0.5, 2.0]}
GUMBEL_Q = {"loc": [0.3, -1.0, 1.0], "scale": [2.0, 1.0, 3.0]}
MOYAL = {"loc": [0.0, 1.5, -2.0], "scale": [1.0, 0.5, 2.0]}
MOYAL_Q = {"loc": [0.3, -1.0, 1.0], "scale": [2.0, 1.0, 3.0]}
LOGISTIC = {"loc": [0.0, 1.5, -2.0], "scale": [1.0, 0.5, 1.5]}
STUDENT_T = {"df": [3.0, 5.0, 2.5], "loc": [0.0, 1.5, -2.0], "scale": [1.0, 0.5, 2.0]}
EXPONENTIAL = {"rate": [0.5, 1.0, 3.0]}
EXPONENTIAL_Q = {"rate": [2.0, 0.3, 3.5]}
GAMMA = {"concentration": [0.8, 2.0, 5.0], "rate": [1.0, 3.0, 0.5]}
GAMMA_Q = {"concentration": [1.5, 0.6, 4.0], "rate": [0.7, 2.0, 1.0]}
GAMMA_ABOVE_ONE = {"concentration": [1.5, 2.0, 5.0], "rate": [1.0, 3.0, 0.5]}
UNIFORM = {"low": [0.2, 1.0, 0.1], "high": [0.9, 4.0, 2.5]}
HALF_NORMAL = {"scale": [1.0, 0.5, 3.0]}
HALF_NORMAL_Q = {"scale": [2.0, 1.0, 0.7]}
LOG_NORMAL = {"loc": [0.0, 0.5, -1.0], "scale": [0.5, 1.0, 0.3]}
LOG_NORMAL_Q = {"loc": [0.3, -0.5, 0.2], "scale": [1.0, 0.6, 0.8]}
CHI2 = {"df": [1.5, 4.0, 7.0]}
CHI2_Q = {"df": [3.0, 2.0, 6.5]}
CHI = {"df": [1.5, 3.0, 5.0]}
CHI_Q = {"df": [2.0, 1.2, 4.0]}
WEIBULL = {"scale": [1.0, 2.0, 0.7], "concentration": [1.5, 2.5, 0.8]}
WEIBULL_Q = {"scale": [1.5, 1.0, 1.0], "concentration": [2.0, 1.2, 1.1]}
WEIBULL_STEEP = {"scale": [1.0, 2.0, 0.7], "concentration": [1.5, 2.5, 1.8]}
WEIBULL_FLAT_Q = {"scale": [1.5, 1.0, 1.0], "concentration": [0.5, 0.8, 0.3]}
INVERSE_GAMMA = {"concentration": [3.0, 4.0, 2.5], "rate": [1.0, 2.0, 0.5]}
INVERSE_GAMMA_Q = {"concentration": [2.5, 3.0, 5.0], "rate": [1.5, 1.0, 2.0]}
PARETO = {"scale": [1.0, 2.0, 0.5], "alpha": [3.0, 4.5, 2.5]}
PARETO_Q = {"scale": [0.8, 1.0, 0.4], "alpha": [2.0, 3.0, 1.5]}
HALF_CAUCHY = {"scale": [1.0, 0.5, 3.0]}
HALF_CAUCHY_Q = {"scale": [2.0, 1.0, 0.7]}

# gammainc has no derivative in its first argument on PyTorch: those parameters are not
# gradient-checked (JAX's gradient is still required to be finite).
_NO_GRAD_SHAPE = ("concentration",)

SAME_FAMILY = [
    PairCase(D.Laplace, D.Laplace, LAPLACE, LAPLACE_Q),
    PairCase(D.Cauchy, D.Cauchy, CAUCHY, CAUCHY_Q),
    PairCase(D.Gumbel, D.Gumbel, GUMBEL, GUMBEL_Q),
    PairCase(D.Moyal, D.Moyal, MOYAL, MOYAL_Q),
    PairCase(D.HalfNormal, D.HalfNormal, HALF_NORMAL, HALF_NORMAL_Q),
    PairCase(D.LogNormal, D.LogNormal, LOG_NORMAL, LOG_NORMAL_Q),
    PairCase(D.Chi2, D.Chi2, CHI2, CHI2_Q),
    PairCase(D.Chi, D.Chi, CHI, CHI_Q),
    PairCase(D.Weibull, D.Weibull, WEIBULL, WEIBULL_Q),
    PairCase(D.InverseGamma, D.InverseGamma, INVERSE_GAMMA, INVERSE_GAMMA_Q),
    PairCase(D.Pareto, D.Pareto, PARETO, PARETO_Q),
    PairCase(
        D.Pareto,
        D.Pareto,
        {"scale": [1.0, 0.5], "alpha": [3.0, 2.0]},
        {"scale": [1.5, 0.6], "alpha": [3.0, 1.0]},
        reference="inf",
        label="scale-below-q",
    ),
    PairCase(D.HalfCauchy, D.HalfCauchy, HALF_CAUCHY, HALF_CAUCHY_Q),
]

TORCH_CROSS = [
    PairCase(D.Exponential, D.Gumbel, EXPONENTIAL, GUMBEL_Q),
    PairCase(D.Gamma, D.Gumbel, GAMMA, GUMBEL_Q),
    PairCase(D.Gumbel, D.Normal, GUMBEL, NORMAL_Q),
    PairCase(D.Laplace, D.Normal, LAPLACE, NORMAL_Q),
    PairCase(
        D.Normal,
        D.Gumbel,
        NORMAL,
        GUMBEL_Q,
        reference="exact",
        expected=_scipy_quad_kl(_normal, _gumbel, NORMAL, GUMBEL_Q),
    ),
    PairCase(D.Normal, D.Laplace, NORMAL, LAPLACE_Q),
    PairCase(D.Pareto, D.Exponential, PARETO, EXPONENTIAL_Q),
    PairCase(
        D.Pareto,
        D.Exponential,
        {"scale": [1.0, 2.0], "alpha": [1.0, 0.5]},
        {"rate": [1.0, 0.5]},
        reference="inf",
        label="alpha-at-most-1",
    ),
    PairCase(D.Pareto, D.Gamma, PARETO, GAMMA_Q),
    PairCase(
        D.Pareto,
        D.Gamma,
        {"scale": [1.0, 2.0], "alpha": [1.0, 0.5]},
        {"concentration": [2.0, 0.5], "rate": [1.0, 0.5]},
        reference="inf",
        label="alpha-at-most-1",
    ),
    PairCase(D.Pareto, D.Normal, PARETO, NORMAL_Q),
    PairCase(
        D.Pareto,
        D.Normal,
        {"scale": [1.0, 2.0], "alpha": [2.0, 1.5]},
        {"loc": [0.0, 1.0], "scale": [1.0, 2.0]},
        reference="inf",
        label="alpha-at-most-2",
    ),
    PairCase(D.Uniform, D.Gumbel, UNIFORM, GUMBEL_Q),
    PairCase(D.Uniform, D.Pareto, UNIFORM, {"scale": [0.1, 0.5, 0.05], "alpha": [2.0, 0.7, 3.0]}),
    PairCase(
        D.Uniform,
        D.Pareto,
        {"low": [0.2, 1.0], "high": [0.9, 4.0]},
        {"scale": [0.3, 1.5], "alpha": [2.0, 1.0]},
        reference="inf",
        label="low-below-scale",
    ),
]

TFP_CROSS = [
    PairCase(D.Chi2, D.Gamma, CHI2, GAMMA_Q),
    PairCase(D.Gamma, D.Chi2, GAMMA, CHI2_Q),
    PairCase(D.Weibull, D.Gamma, WEIBULL, GAMMA_Q),
]

LAPLACE_CROSS = [
    PairCase(D.Exponential, D.Laplace, EXPONENTIAL, LAPLACE_Q),
    PairCase(D.Gamma, D.Laplace, GAMMA, LAPLACE_Q, no_grad=_NO_GRAD_SHAPE),
    PairCase(D.Uniform, D.Laplace, UNIFORM, LAPLACE_Q),
    PairCase(D.Pareto, D.Laplace, PARETO, {"loc": [0.3, 3.0, 1.0], "scale": [2.0, 1.0, 0.7]}),
    PairCase(
        D.Pareto,
        D.Laplace,
        {"scale": [1.0], "alpha": [0.9]},
        {"loc": [0.3], "scale": [2.0]},
        reference="inf",
        label="alpha-at-most-1",
    ),
    PairCase(D.Logistic, D.Laplace, LOGISTIC, LAPLACE_Q),
    PairCase(D.HalfNormal, D.Laplace, HALF_NORMAL, LAPLACE_Q),
    PairCase(D.LogNormal, D.Laplace, LOG_NORMAL, LAPLACE_Q),
    PairCase(D.Weibull, D.Laplace, WEIBULL, LAPLACE_Q, no_grad=_NO_GRAD_SHAPE),
    PairCase(D.Chi, D.Laplace, CHI, LAPLACE_Q, no_grad=("df",)),
    PairCase(D.InverseGamma, D.Laplace, INVERSE_GAMMA, LAPLACE_Q, no_grad=_NO_GRAD_SHAPE),
]

EXTREME_CROSS = [
    PairCase(
        D.Laplace,
        D.Gumbel,
        LAPLACE,
        GUMBEL_Q,
        reference="exact",
        expected=_scipy_quad_kl(_laplace, _gumbel, LAPLACE, GUMBEL_Q),
    ),
    PairCase(
        D.Laplace,
        D.Gumbel,
        {"loc": [0.0, 1.0], "scale": [2.0, 3.0]},
        {"loc": [0.0, 1.0], "scale": [2.0, 1.0]},
        reference="inf",
        label="scale-at-least-q",
    ),
    PairCase(
        D.Logistic,
        D.Gumbel,
        LOGISTIC,
        GUMBEL_Q,
        reference="exact",
        expected=_scipy_quad_kl(_logistic, _gumbel, LOGISTIC, GUMBEL_Q),
    ),
    PairCase(D.Moyal, D.Gumbel, MOYAL, GUMBEL_Q),
    PairCase(D.HalfNormal, D.Gumbel, HALF_NORMAL, GUMBEL_Q),
    PairCase(
        D.Normal,
        D.Moyal,
        NORMAL,
        MOYAL_Q,
        reference="exact",
        expected=_scipy_quad_kl(_normal, _moyal, NORMAL, MOYAL_Q),
    ),
    PairCase(
        D.Laplace,
        D.Moyal,
        LAPLACE,
        MOYAL_Q,
        reference="exact",
        expected=_scipy_quad_kl(_laplace, _moyal, LAPLACE, MOYAL_Q),
    ),
    PairCase(
        D.Logistic,
        D.Moyal,
        LOGISTIC,
        MOYAL_Q,
        reference="exact",
        expected=_scipy_quad_kl(_logistic, _moyal, LOGISTIC, MOYAL_Q),
    ),
    PairCase(D.Gumbel, D.Moyal, GUMBEL, MOYAL_Q),
    PairCase(D.Exponential, D.Moyal, EXPONENTIAL, MOYAL_Q),
    PairCase(D.Gamma, D.Moyal, GAMMA, MOYAL_Q),
    PairCase(D.Uniform, D.Moyal, UNIFORM, MOYAL_Q),
    PairCase(D.HalfNormal, D.Moyal, HALF_NORMAL, MOYAL_Q),
]

NORMAL_CROSS = [
    PairCase(D.Moyal, D.Normal, MOYAL, NORMAL_Q),
    PairCase(D.Logistic, D.Normal, LOGISTIC, NORMAL_Q),
    PairCase(D.StudentT, D.Normal, STUDENT_T, NORMAL_Q),
    PairCase(
        D.StudentT,
        D.Normal,
        {"df": [2.0, 1.0, 0.5], "loc": [0.0, 1.0, 2.0], "scale": [1.0, 1.0, 1.0]},
        {"loc": [0.0, 1.0, 2.0], "scale": [1.0, 2.0, 3.0]},
        reference="inf",
        label="df-at-most-2",
    ),
    PairCase(D.LogNormal, D.Normal, LOG_NORMAL, NORMAL_Q),
    PairCase(D.HalfNormal, D.Normal, HALF_NORMAL, NORMAL_Q),
    PairCase(D.Weibull, D.Normal, WEIBULL, NORMAL_Q),
    PairCase(D.Chi, D.Normal, CHI, NORMAL_Q),
    PairCase(D.InverseGamma, D.Normal, INVERSE_GAMMA, NORMAL_Q),
    PairCase(
        D.InverseGamma,
        D.Normal,
        {"concentration": [2.0, 1.0], "rate": [1.0, 2.0]},
        {"loc": [0.0, 1.0], "scale": [1.0, 2.0]},
        reference="inf",
        label="alpha-at-most-2",
    ),
]

POSITIVE_CROSS = [
    PairCase(D.LogNormal, D.Exponential, LOG_NORMAL, EXPONENTIAL_Q),
    PairCase(D.LogNormal, D.Gamma, LOG_NORMAL, GAMMA_Q),
    PairCase(D.LogNormal, D.Weibull, LOG_NORMAL, WEIBULL_Q),
    PairCase(D.LogNormal, D.InverseGamma, LOG_NORMAL, INVERSE_GAMMA_Q),
    PairCase(D.LogNormal, D.HalfNormal, LOG_NORMAL, HALF_NORMAL_Q),
    PairCase(D.LogNormal, D.Chi, LOG_NORMAL, CHI_Q),
    PairCase(D.Gamma, D.LogNormal, GAMMA, LOG_NORMAL_Q),
    PairCase(D.Gamma, D.Weibull, GAMMA, WEIBULL_Q),
    PairCase(D.Gamma, D.InverseGamma, GAMMA_ABOVE_ONE, INVERSE_GAMMA_Q),
    PairCase(
        D.Gamma,
        D.InverseGamma,
        {"concentration": [1.0, 0.5], "rate": [1.0, 2.0]},
        {"concentration": [2.0, 3.0], "rate": [1.0, 1.0]},
        reference="inf",
        label="k-at-most-1",
    ),
    PairCase(D.Gamma, D.HalfNormal, GAMMA, HALF_NORMAL_Q),
    PairCase(D.Gamma, D.Chi, GAMMA, CHI_Q),
    PairCase(D.Exponential, D.LogNormal, EXPONENTIAL, LOG_NORMAL_Q),
    PairCase(D.Exponential, D.Weibull, EXPONENTIAL, WEIBULL_Q),
    PairCase(D.Exponential, D.HalfNormal, EXPONENTIAL, HALF_NORMAL_Q),
    PairCase(D.Exponential, D.Chi, EXPONENTIAL, CHI_Q),
    PairCase(D.Exponential, D.InverseGamma, EXPONENTIAL, INVERSE_GAMMA_Q, reference="inf"),
    PairCase(D.Weibull, D.Exponential, WEIBULL, EXPONENTIAL_Q),
    PairCase(D.Weibull, D.LogNormal, WEIBULL, LOG_NORMAL_Q),
    PairCase(D.Weibull, D.HalfNormal, WEIBULL, HALF_NORMAL_Q),
    PairCase(D.Weibull, D.InverseGamma, WEIBULL_STEEP, INVERSE_GAMMA_Q),
    PairCase(
        D.Weibull,
        D.InverseGamma,
        {"scale": [1.0, 2.0], "concentration": [1.0, 0.7]},
        {"concentration": [2.0, 3.0], "rate": [1.0, 1.0]},
        reference="inf",
        label="k-at-most-1",
    ),
    PairCase(D.Weibull, D.Chi, WEIBULL, CHI_Q),
    PairCase(D.HalfNormal, D.Exponential, HALF_NORMAL, EXPONENTIAL_Q),
    PairCase(D.HalfNormal, D.Gamma, HALF_NORMAL, GAMMA_Q),
    PairCase(D.HalfNormal, D.LogNormal, HALF_NORMAL, LOG_NORMAL_Q),
    PairCase(D.HalfNormal, D.Weibull, HALF_NORMAL, WEIBULL_Q),
    PairCase(D.HalfNormal, D.Chi, HALF_NORMAL, CHI_Q),
    PairCase(D.InverseGamma, D.Exponential, INVERSE_GAMMA, EXPONENTIAL_Q),
    PairCase(D.InverseGamma, D.Gamma, INVERSE_GAMMA, GAMMA_Q),
    PairCase(
        D.InverseGamma,
        D.Gamma,
        {"concentration": [1.0, 0.5], "rate": [1.0, 2.0]},
        {"concentration": [2.0, 3.0], "rate": [1.0, 1.0]},
        reference="inf",
        label="alpha-at-most-1",
    ),
    PairCase(D.InverseGamma, D.LogNormal, INVERSE_GAMMA, LOG_NORMAL_Q),
    PairCase(D.InverseGamma, D.Weibull, INVERSE_GAMMA, WEIBULL_Q),
    PairCase(D.Chi, D.Exponential, CHI, EXPONENTIAL_Q),
    PairCase(D.Chi, D.Gamma, CHI, GAMMA_Q),
    PairCase(D.Chi, D.HalfNormal, CHI, HALF_NORMAL_Q),
    PairCase(D.Chi, D.LogNormal, CHI, LOG_NORMAL_Q),
    PairCase(D.Chi, D.Weibull, CHI, WEIBULL_Q),
    PairCase(D.Chi, D.InverseGamma, CHI, INVERSE_GAMMA_Q),
    PairCase(D.Pareto, D.LogNormal, PARETO, LOG_NORMAL_Q),
    PairCase(D.Pareto, D.Weibull, PARETO, WEIBULL_Q),
    PairCase(
        D.Pareto,
        D.Weibull,
        {"scale": [1.0, 2.0], "alpha": [2.0, 1.0]},
        {"scale": [1.0, 1.0], "concentration": [2.0, 1.5]},
        reference="inf",
        label="k-at-least-alpha",
    ),
    PairCase(D.Pareto, D.InverseGamma, PARETO, INVERSE_GAMMA_Q),
    PairCase(D.Pareto, D.HalfNormal, PARETO, HALF_NORMAL_Q),
    PairCase(D.Pareto, D.Chi, PARETO, CHI_Q),
    PairCase(D.HalfCauchy, D.LogNormal, HALF_CAUCHY, LOG_NORMAL_Q),
    PairCase(D.HalfCauchy, D.Weibull, HALF_CAUCHY, WEIBULL_FLAT_Q),
    PairCase(
        D.HalfCauchy,
        D.Weibull,
        {"scale": [1.0, 2.0]},
        {"scale": [1.0, 1.0], "concentration": [1.0, 2.0]},
        reference="inf",
        label="k-at-least-1",
    ),
    PairCase(D.Uniform, D.HalfNormal, UNIFORM, HALF_NORMAL_Q),
    PairCase(
        D.Uniform,
        D.HalfNormal,
        {"low": [-0.5], "high": [1.0]},
        {"scale": [1.0]},
        reference="inf",
        label="below-zero",
    ),
    PairCase(D.Uniform, D.Chi, UNIFORM, CHI_Q),
    PairCase(D.Uniform, D.Weibull, UNIFORM, WEIBULL_Q),
]

INFINITE = [
    PairCase(D.Gumbel, D.Exponential, GUMBEL, EXPONENTIAL_Q, reference="inf"),
    PairCase(D.Gumbel, D.Gamma, GUMBEL, GAMMA_Q, reference="inf"),
    PairCase(D.Gumbel, D.Pareto, GUMBEL, PARETO_Q, reference="inf"),
    PairCase(D.Gumbel, D.Uniform, GUMBEL, UNIFORM, reference="inf"),
    PairCase(D.Laplace, D.Exponential, LAPLACE, EXPONENTIAL_Q, reference="inf"),
    PairCase(D.Laplace, D.Gamma, LAPLACE, GAMMA_Q, reference="inf"),
    PairCase(D.Laplace, D.Pareto, LAPLACE, PARETO_Q, reference="inf"),
    PairCase(D.Laplace, D.Uniform, LAPLACE, UNIFORM, reference="inf"),
    PairCase(D.Normal, D.Pareto, NORMAL, PARETO_Q, reference="inf"),
    PairCase(D.Pareto, D.Uniform, PARETO, UNIFORM, reference="inf"),
    PairCase(D.Exponential, D.Pareto, EXPONENTIAL, PARETO_Q, reference="inf"),
    PairCase(D.Gamma, D.Pareto, GAMMA, PARETO_Q, reference="inf"),
    PairCase(D.Normal, D.HalfNormal, NORMAL, HALF_NORMAL_Q, reference="inf"),
    PairCase(D.Normal, D.LogNormal, NORMAL, LOG_NORMAL_Q, reference="inf"),
    PairCase(D.Cauchy, D.Normal, CAUCHY, NORMAL_Q, reference="inf"),
    PairCase(D.Cauchy, D.Laplace, CAUCHY, LAPLACE_Q, reference="inf"),
    PairCase(D.Cauchy, D.Gumbel, CAUCHY, GUMBEL_Q, reference="inf"),
    PairCase(D.Cauchy, D.Moyal, CAUCHY, MOYAL_Q, reference="inf"),
]

CASES = (
    SAME_FAMILY
    + TORCH_CROSS
    + TFP_CROSS
    + LAPLACE_CROSS
    + EXTREME_CROSS
    + NORMAL_CROSS
    + POSITIVE_CROSS
    + INFINITE
)
