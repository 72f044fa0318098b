"""Families of kldiv/distributions/_real.py, _positive.py, _bounded.py against scipy.stats."""

from __future__ import annotations

import numpy as np
from scipy import stats

from kldiv import distributions as D
from tests.distributions._families import FamilyCase

FAMILIES = [
    FamilyCase(
        D.Normal,
        {"loc": [0.0, 1.5, -2.0], "scale": [1.0, 0.5, 3.0]},
        lambda p: stats.norm(np.asarray(p["loc"]), np.asarray(p["scale"])),
        [-1.0, 0.3, 7.0],
    ),
    FamilyCase(
        D.Gamma,
        {"concentration": [0.8, 2.0, 1.0], "rate": [1.0, 3.0, 0.5]},
        lambda p: stats.gamma(np.asarray(p["concentration"]), scale=1 / np.asarray(p["rate"])),
        [[-1.0, 0.0, 0.0], [0.5, 0.2, 3.0]],
    ),
    FamilyCase(
        D.Exponential,
        {"rate": [0.5, 1.0, 3.0]},
        lambda p: stats.expon(scale=1 / np.asarray(p["rate"])),
        [[-1.0, 0.0, 0.5], [0.5, 2.0, 3.0]],
    ),
    FamilyCase(
        D.Uniform,
        {"low": [0.2, 1.0, -1.0], "high": [0.9, 4.0, 2.5]},
        lambda p: stats.uniform(np.asarray(p["low"]), np.asarray(p["high"]) - np.asarray(p["low"])),
        [[0.5, 0.0, 2.0], [1.0, 3.9, 2.6]],
    ),
]
