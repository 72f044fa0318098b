"""Cases for the continuous univariate pairs (kldiv/distributions/_kl_continuous.py)."""

from __future__ import annotations

from kldiv import distributions as D
from tests.distributions._cases import PairCase

NORMAL = {"loc": [0.0, 1.5, -2.0], "scale": [1.0, 0.5, 3.0]}
NORMAL_Q = {"loc": [0.3, -1.0, 1.0], "scale": [2.0, 1.0, 0.7]}
GAMMA = {"concentration": [0.8, 2.0, 5.0], "rate": [1.0, 3.0, 0.5]}
GAMMA_Q = {"concentration": [1.5, 0.6, 4.0], "rate": [0.7, 2.0, 1.0]}
EXPONENTIAL = {"rate": [0.5, 1.0, 3.0]}
EXPONENTIAL_Q = {"rate": [2.0, 0.3, 3.5]}
UNIFORM = {"low": [0.2, 1.0, 0.1], "high": [0.9, 4.0, 2.5]}
UNIFORM_Q = {"low": [0.0, 0.5, -1.0], "high": [1.0, 5.0, 3.0]}

CASES = [
    PairCase(D.Normal, D.Normal, NORMAL, NORMAL_Q),
    PairCase(D.Gamma, D.Gamma, GAMMA, GAMMA_Q),
    PairCase(D.Exponential, D.Exponential, EXPONENTIAL, EXPONENTIAL_Q),
    PairCase(D.Uniform, D.Uniform, UNIFORM, UNIFORM_Q),
    PairCase(
        D.Uniform,
        D.Uniform,
        {"low": [0.0, -1.0], "high": [1.0, 1.0]},
        {"low": [0.5, -1.0], "high": [2.0, 0.5]},
        reference="inf",
        label="not-inside",
    ),
    PairCase(D.Exponential, D.Gamma, EXPONENTIAL, GAMMA_Q),
    PairCase(D.Exponential, D.Normal, EXPONENTIAL, NORMAL_Q),
    PairCase(D.Gamma, D.Exponential, GAMMA, EXPONENTIAL_Q),
    PairCase(D.Gamma, D.Normal, GAMMA, NORMAL_Q),
    PairCase(D.Uniform, D.Exponential, UNIFORM, EXPONENTIAL_Q),
    PairCase(
        D.Uniform,
        D.Exponential,
        {"low": [-0.5], "high": [1.0]},
        {"rate": [1.0]},
        reference="inf",
        label="below-zero",
    ),
    PairCase(D.Uniform, D.Gamma, UNIFORM, GAMMA_Q),
    PairCase(D.Uniform, D.Normal, UNIFORM, NORMAL_Q),
    PairCase(D.Normal, D.Exponential, NORMAL, EXPONENTIAL_Q, reference="inf"),
    PairCase(D.Normal, D.Gamma, NORMAL, GAMMA_Q, reference="inf"),
    PairCase(D.Normal, D.Uniform, NORMAL, UNIFORM_Q, reference="inf"),
    PairCase(D.Exponential, D.Uniform, EXPONENTIAL, UNIFORM_Q, reference="inf"),
    PairCase(D.Gamma, D.Uniform, GAMMA, UNIFORM_Q, reference="inf"),
]
