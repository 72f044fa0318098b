"""Cases for the multivariate and structural pairs (kldiv/distributions/_kl_multivariate.py).

Gaussian pairs are checked against the dense formula computed here with
``np.linalg.inv`` / ``slogdet`` on the covariance matrices (every combination
of MultivariateNormal parameterisations), plus seeded Monte Carlo; Dirichlet
and Wishart against quadrature of their 1-D equivalents (Beta, Gamma) and
Monte Carlo; structural pairs against hand calculations.

Matrix parameters go through a ``build`` that symmetrises covariance and
precision matrices and keeps the lower triangle of ``scale_tril``, so that
gradcheck's one-entry perturbations stay valid parameters.
"""

from __future__ import annotations

import math

import numpy as np
from array_api_compat import array_namespace
from scipy import integrate, special, stats

from kldiv import distributions as D
from tests.distributions._cases import PairCase

_RNG = np.random.default_rng(20240607)
DIM = 3
KINDS = ("covariance_matrix", "precision_matrix", "scale_tril")


def _spd(batch: int, dim: int, shift: float) -> np.ndarray:
    a = _RNG.standard_normal((batch, dim, dim))
    return a @ np.swapaxes(a, -1, -2) / dim + shift * np.eye(dim)


# Two batches of two 3-D Gaussians, and low-rank / diagonal ones.
LOC_P = _RNG.standard_normal((2, DIM))
LOC_Q = _RNG.standard_normal((2, DIM))
COV_P = _spd(2, DIM, 0.8)
COV_Q = _spd(2, DIM, 1.2)
FACTOR_P = 0.7 * _RNG.standard_normal((2, DIM, 2))
DIAG_P = _RNG.uniform(0.5, 1.5, (2, DIM))
FACTOR_Q = 0.7 * _RNG.standard_normal((2, DIM, 1))
DIAG_Q = _RNG.uniform(0.5, 1.5, (2, DIM))
SCALE_P = _RNG.uniform(0.6, 1.6, (2, DIM))
SCALE_Q = _RNG.uniform(0.6, 1.6, (2, DIM))


def _symmetric(a):
    return (a + a.mT) / 2


def _as_kind(cov: np.ndarray, kind: str) -> np.ndarray:
    """The parameter of ``kind`` describing covariance ``cov`` (NumPy)."""
    if kind == "covariance_matrix":
        return cov
    if kind == "precision_matrix":
        inverse = np.linalg.inv(cov)
        return (inverse + np.swapaxes(inverse, -1, -2)) / 2
    return np.linalg.cholesky(cov)


def _matrix_argument(array, kind: str):
    """A valid matrix parameter from a perturbed one: symmetrised, or its lower triangle."""
    return array_namespace(array).tril(array) if kind == "scale_tril" else _symmetric(array)


def _mvn(arrays: dict, kind: str) -> D.MultivariateNormal:
    return D.MultivariateNormal(arrays["loc"], **{kind: _matrix_argument(arrays[kind], kind)})


def _mvn_params(loc: np.ndarray, cov: np.ndarray, kind: str) -> dict:
    return {"loc": loc, kind: _as_kind(cov, kind)}


def _lowrank(arrays: dict) -> D.LowRankMultivariateNormal:
    return D.LowRankMultivariateNormal(arrays["loc"], arrays["cov_factor"], arrays["cov_diag"])


def _independent_normal(arrays: dict) -> D.Independent:
    return D.Independent(D.Normal(arrays["loc"], arrays["scale"]), 1)


def _dense_kl(loc_p, cov_p, loc_q, cov_q) -> np.ndarray:
    """The Gaussian KL by the textbook formula with an explicit inverse (batched)."""
    inverse_q = np.linalg.inv(cov_q)
    diff = loc_q - loc_p
    trace = np.trace(inverse_q @ cov_p, axis1=-2, axis2=-1)
    mahalanobis = np.einsum("...i,...ij,...j->...", diff, inverse_q, diff)
    log_det = np.linalg.slogdet(cov_q)[1] - np.linalg.slogdet(cov_p)[1]
    return 0.5 * (trace + mahalanobis - loc_p.shape[-1] + log_det)


def _lowrank_cov(factor, diagonal):
    return factor @ np.swapaxes(factor, -1, -2) + diagonal[..., None] * np.eye(diagonal.shape[-1])


def _diag_cov(scale):
    return (scale * scale)[..., None] * np.eye(scale.shape[-1])


LOWRANK_P = {"loc": LOC_P, "cov_factor": FACTOR_P, "cov_diag": DIAG_P}
LOWRANK_Q = {"loc": LOC_Q, "cov_factor": FACTOR_Q, "cov_diag": DIAG_Q}
LOWRANK_COV_P = _lowrank_cov(FACTOR_P, DIAG_P)
LOWRANK_COV_Q = _lowrank_cov(FACTOR_Q, DIAG_Q)
DIAG_NORMAL_P = {"loc": LOC_P, "scale": SCALE_P}
DIAG_NORMAL_Q = {"loc": LOC_Q, "scale": SCALE_Q}


def _mvn_mvn_cases() -> list[PairCase]:
    cases = []
    for kind_p in KINDS:
        for kind_q in KINDS:
            cases.append(
                PairCase(
                    D.MultivariateNormal,
                    D.MultivariateNormal,
                    _mvn_params(LOC_P, COV_P, kind_p),
                    _mvn_params(LOC_Q, COV_Q, kind_q),
                    reference="exact",
                    expected=_dense_kl(LOC_P, COV_P, LOC_Q, COV_Q),
                    rtol=1e-10,
                    build=lambda pa, qa, kp=kind_p, kq=kind_q: (_mvn(pa, kp), _mvn(qa, kq)),
                    label=f"{kind_p}-{kind_q}",
                )
            )
    cases.append(
        PairCase(
            D.MultivariateNormal,
            D.MultivariateNormal,
            _mvn_params(LOC_P, COV_P, "covariance_matrix"),
            _mvn_params(LOC_Q, COV_Q, "precision_matrix"),
            reference="mc",
            build=lambda pa, qa: (_mvn(pa, "covariance_matrix"), _mvn(qa, "precision_matrix")),
            label="mc",
        )
    )
    # An unbatched prior against a batch, precision against scale_tril.
    cases.append(
        PairCase(
            D.MultivariateNormal,
            D.MultivariateNormal,
            _mvn_params(LOC_P, COV_P, "scale_tril"),
            _mvn_params(np.zeros(DIM), np.eye(DIM), "precision_matrix"),
            reference="exact",
            expected=_dense_kl(LOC_P, COV_P, np.zeros(DIM), np.eye(DIM)),
            rtol=1e-10,
            build=lambda pa, qa: (_mvn(pa, "scale_tril"), _mvn(qa, "precision_matrix")),
            label="broadcast-prior",
        )
    )
    return cases


def _lowrank_cases() -> list[PairCase]:
    cases = [
        PairCase(
            D.LowRankMultivariateNormal,
            D.LowRankMultivariateNormal,
            LOWRANK_P,
            LOWRANK_Q,
            reference="exact",
            expected=_dense_kl(LOC_P, LOWRANK_COV_P, LOC_Q, LOWRANK_COV_Q),
            rtol=1e-10,
            build=lambda pa, qa: (_lowrank(pa), _lowrank(qa)),
        ),
        PairCase(
            D.LowRankMultivariateNormal,
            D.LowRankMultivariateNormal,
            LOWRANK_P,
            LOWRANK_Q,
            reference="mc",
            build=lambda pa, qa: (_lowrank(pa), _lowrank(qa)),
            label="mc",
        ),
    ]
    for kind in KINDS:
        cases.append(
            PairCase(
                D.MultivariateNormal,
                D.LowRankMultivariateNormal,
                _mvn_params(LOC_P, COV_P, kind),
                LOWRANK_Q,
                reference="exact",
                expected=_dense_kl(LOC_P, COV_P, LOC_Q, LOWRANK_COV_Q),
                rtol=1e-10,
                build=lambda pa, qa, k=kind: (_mvn(pa, k), _lowrank(qa)),
                label=kind,
            )
        )
        cases.append(
            PairCase(
                D.LowRankMultivariateNormal,
                D.MultivariateNormal,
                LOWRANK_P,
                _mvn_params(LOC_Q, COV_Q, kind),
                reference="exact",
                expected=_dense_kl(LOC_P, LOWRANK_COV_P, LOC_Q, COV_Q),
                rtol=1e-10,
                build=lambda pa, qa, k=kind: (_lowrank(pa), _mvn(qa, k)),
                label=kind,
            )
        )
    return cases


def _independent_gaussian_cases() -> list[PairCase]:
    cases = []
    for kind in KINDS:
        cases.append(
            PairCase(
                D.Independent,
                D.MultivariateNormal,
                DIAG_NORMAL_P,
                _mvn_params(LOC_Q, COV_Q, kind),
                reference="exact",
                expected=_dense_kl(LOC_P, _diag_cov(SCALE_P), LOC_Q, COV_Q),
                rtol=1e-10,
                build=lambda pa, qa, k=kind: (_independent_normal(pa), _mvn(qa, k)),
                label=kind,
            )
        )
        cases.append(
            PairCase(
                D.MultivariateNormal,
                D.Independent,
                _mvn_params(LOC_P, COV_P, kind),
                DIAG_NORMAL_Q,
                reference="exact",
                expected=_dense_kl(LOC_P, COV_P, LOC_Q, _diag_cov(SCALE_Q)),
                rtol=1e-10,
                build=lambda pa, qa, k=kind: (_mvn(pa, k), _independent_normal(qa)),
                label=kind,
            )
        )
    cases += [
        PairCase(
            D.Independent,
            D.LowRankMultivariateNormal,
            DIAG_NORMAL_P,
            LOWRANK_Q,
            reference="exact",
            expected=_dense_kl(LOC_P, _diag_cov(SCALE_P), LOC_Q, LOWRANK_COV_Q),
            rtol=1e-10,
            build=lambda pa, qa: (_independent_normal(pa), _lowrank(qa)),
        ),
        PairCase(
            D.LowRankMultivariateNormal,
            D.Independent,
            LOWRANK_P,
            DIAG_NORMAL_Q,
            reference="exact",
            expected=_dense_kl(LOC_P, LOWRANK_COV_P, LOC_Q, _diag_cov(SCALE_Q)),
            rtol=1e-10,
            build=lambda pa, qa: (_lowrank(pa), _independent_normal(qa)),
        ),
        PairCase(
            D.Independent,
            D.MultivariateNormal,
            DIAG_NORMAL_P,
            _mvn_params(LOC_Q, COV_Q, "scale_tril"),
            reference="mc",
            build=lambda pa, qa: (_independent_normal(pa), _mvn(qa, "scale_tril")),
            label="mc",
        ),
    ]
    return cases


# --- Independent–Independent ------------------------------------------------------------------


def _normal_kl(mu_p, s_p, mu_q, s_q):
    return np.log(s_q / s_p) + (s_p**2 + (mu_p - mu_q) ** 2) / (2 * s_q**2) - 0.5


GAMMA_K_P = np.array([[0.8, 2.0, 5.0], [1.5, 3.0, 0.9]])
GAMMA_R_P = np.array([[1.0, 3.0, 0.5], [2.0, 0.7, 1.2]])
GAMMA_K_Q = np.array([[1.5, 0.6, 4.0], [2.5, 1.1, 1.3]])
GAMMA_R_Q = np.array([[0.7, 2.0, 1.0], [1.5, 0.9, 2.2]])


def _gamma_quad_kl(k_p, r_p, k_q, r_q) -> float:
    p = stats.gamma(k_p, scale=1 / r_p)
    q = stats.gamma(k_q, scale=1 / r_q)
    value, _ = integrate.quad(
        lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), 0, np.inf, epsabs=1e-13, limit=500
    )
    return value


GAMMA_QUAD = np.vectorize(_gamma_quad_kl)(GAMMA_K_P, GAMMA_R_P, GAMMA_K_Q, GAMMA_R_Q)

NORMAL_2D_P = {"loc": _RNG.standard_normal((2, 3, 2)), "scale": _RNG.uniform(0.5, 2, (2, 3, 2))}
NORMAL_2D_Q = {"loc": _RNG.standard_normal((3, 2)), "scale": _RNG.uniform(0.5, 2, (3, 2))}

INDEPENDENT_CASES = [
    PairCase(
        D.Independent,
        D.Independent,
        DIAG_NORMAL_P,
        DIAG_NORMAL_Q,
        reference="exact",
        expected=_normal_kl(LOC_P, SCALE_P, LOC_Q, SCALE_Q).sum(-1),
        rtol=1e-12,
        build=lambda pa, qa: (_independent_normal(pa), _independent_normal(qa)),
        label="normal",
    ),
    PairCase(
        D.Independent,
        D.Independent,
        NORMAL_2D_P,
        NORMAL_2D_Q,
        reference="exact",
        expected=_normal_kl(
            NORMAL_2D_P["loc"], NORMAL_2D_P["scale"], NORMAL_2D_Q["loc"], NORMAL_2D_Q["scale"]
        ).sum((-2, -1)),
        rtol=1e-12,
        build=lambda pa, qa: (
            D.Independent(D.Normal(pa["loc"], pa["scale"]), 2),
            D.Independent(D.Normal(qa["loc"], qa["scale"]), 2),
        ),
        label="two-axes-broadcast",
    ),
    PairCase(
        D.Independent,
        D.Independent,
        {"concentration": GAMMA_K_P, "rate": GAMMA_R_P},
        {"concentration": GAMMA_K_Q, "rate": GAMMA_R_Q},
        reference="exact",
        expected=GAMMA_QUAD.sum(-1),
        rtol=1e-8,
        build=lambda pa, qa: (
            D.Independent(D.Gamma(pa["concentration"], pa["rate"]), 1),
            D.Independent(D.Gamma(qa["concentration"], qa["rate"]), 1),
        ),
        label="gamma",
    ),
]


# --- Dirichlet ----------------------------------------------------------------------------------


def _beta_quad_kl(a_p, b_p, a_q, b_q) -> float:
    p, q = stats.beta(a_p, b_p), stats.beta(a_q, b_q)
    value, _ = integrate.quad(
        lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), 0, 1, epsabs=1e-13, limit=500
    )
    return value


DIRICHLET2_P = np.array([[1.5, 2.5], [3.0, 0.8], [2.0, 2.0]])
DIRICHLET2_Q = np.array([[2.0, 1.2], [1.1, 1.7], [4.0, 3.0]])
DIRICHLET_P = np.array([[1.5, 2.5, 0.9, 3.0], [3.0, 0.8, 1.2, 2.2]])
DIRICHLET_Q = np.array([[2.0, 1.2, 1.4, 2.5], [1.1, 1.7, 0.9, 3.3]])

DIRICHLET_CASES = [
    PairCase(
        D.Dirichlet,
        D.Dirichlet,
        {"concentration": DIRICHLET2_P},
        {"concentration": DIRICHLET2_Q},
        reference="exact",
        expected=[_beta_quad_kl(*p, *q) for p, q in zip(DIRICHLET2_P, DIRICHLET2_Q, strict=True)],
        rtol=1e-8,
        label="as-beta",
    ),
    PairCase(
        D.Dirichlet,
        D.Dirichlet,
        {"concentration": DIRICHLET_P},
        {"concentration": DIRICHLET_Q},
        reference="mc",
        label="mc",
    ),
]


# --- Wishart ------------------------------------------------------------------------------------


def _wishart_kl_dense(nu_p, cov_p, nu_q, cov_q) -> np.ndarray:
    """The Wishart KL (Penny 2001) with NumPy linear algebra and SciPy's multigammaln."""
    n = cov_p.shape[-1]
    out = []
    for b in np.ndindex(*np.shape(nu_p)):
        vp, vq, sp, sq = nu_p[b], nu_q[b], cov_p[b], cov_q[b]
        trace = np.trace(np.linalg.inv(sq) @ sp) - n
        log_det = np.linalg.slogdet(sq)[1] - np.linalg.slogdet(sp)[1]
        psi = sum(special.digamma(vp / 2 + (1 - j) / 2) for j in range(1, n + 1))
        out.append(
            vq / 2 * log_det
            + vp / 2 * trace
            + special.multigammaln(vq / 2, n)
            - special.multigammaln(vp / 2, n)
            + (vp - vq) / 2 * psi
        )
    return np.asarray(out).reshape(np.shape(nu_p))


WISHART_DF_P = np.array([5.0, 7.5])
WISHART_DF_Q = np.array([4.0, 9.0])
WISHART_COV_P = _spd(2, DIM, 0.6)
WISHART_COV_Q = _spd(2, DIM, 0.9)

# p = 1: Wishart(df, s) = Gamma(df / 2, rate 1 / (2 s)).
WISHART1_DF_P = np.array([3.0, 6.5, 2.2])
WISHART1_S_P = np.array([0.7, 1.5, 2.0])
WISHART1_DF_Q = np.array([4.5, 3.0, 2.8])
WISHART1_S_Q = np.array([1.1, 0.6, 2.5])
WISHART1_AS_GAMMA = np.vectorize(_gamma_quad_kl)(
    WISHART1_DF_P / 2, 1 / (2 * WISHART1_S_P), WISHART1_DF_Q / 2, 1 / (2 * WISHART1_S_Q)
)


def _wishart(arrays: dict, kind: str) -> D.Wishart:
    return D.Wishart(arrays["df"], **{kind: _matrix_argument(arrays[kind], kind)})


def _wishart_case(kind_p: str, kind_q: str) -> PairCase:
    return PairCase(
        D.Wishart,
        D.Wishart,
        {"df": WISHART_DF_P, kind_p: _as_kind(WISHART_COV_P, kind_p)},
        {"df": WISHART_DF_Q, kind_q: _as_kind(WISHART_COV_Q, kind_q)},
        reference="exact",
        expected=_wishart_kl_dense(WISHART_DF_P, WISHART_COV_P, WISHART_DF_Q, WISHART_COV_Q),
        rtol=1e-10,
        build=lambda pa, qa: (_wishart(pa, kind_p), _wishart(qa, kind_q)),
        label=f"{kind_p}-{kind_q}",
    )


WISHART_CASES = [
    _wishart_case("covariance_matrix", "precision_matrix"),
    _wishart_case("scale_tril", "covariance_matrix"),
    _wishart_case("precision_matrix", "scale_tril"),
    # With a `build`, so that test_front_doors does not compare it with torch: for a batch,
    # torch's generic ExponentialFamily KL (its only Wishart pair) sums the df term over the
    # batch (torch 2.13); the unbatched case below is compared.
    PairCase(
        D.Wishart,
        D.Wishart,
        {"df": WISHART1_DF_P, "covariance_matrix": WISHART1_S_P[:, None, None]},
        {"df": WISHART1_DF_Q, "covariance_matrix": WISHART1_S_Q[:, None, None]},
        reference="exact",
        expected=WISHART1_AS_GAMMA,
        rtol=1e-8,
        build=lambda pa, qa: (
            _wishart(pa, "covariance_matrix"),
            _wishart(qa, "covariance_matrix"),
        ),
        label="1x1-as-gamma",
    ),
    PairCase(
        D.Wishart,
        D.Wishart,
        {"df": 5.0, "covariance_matrix": WISHART_COV_P[0]},
        {"df": 6.5, "covariance_matrix": WISHART_COV_Q[1]},
        reference="exact",
        expected=_wishart_kl_dense(
            np.array(5.0), WISHART_COV_P[0], np.array(6.5), WISHART_COV_Q[1]
        ),
        rtol=1e-10,
        label="unbatched",
        no_grad=("covariance_matrix",),  # unsymmetrised: gradcheck's perturbations break symmetry
    ),
    PairCase(
        D.Wishart,
        D.Wishart,
        {"df": np.array([4.0, 6.0]), "covariance_matrix": _spd(2, 2, 0.7)},
        {"df": np.array([5.0, 4.5]), "covariance_matrix": _spd(2, 2, 0.9)},
        reference="mc",
        build=lambda pa, qa: (
            _wishart(pa, "covariance_matrix"),
            _wishart(qa, "covariance_matrix"),
        ),
        label="mc",
    ),
]


# --- Deterministic ------------------------------------------------------------------------------

DETERMINISTIC_CASES = [
    PairCase(
        D.Deterministic,
        D.Deterministic,
        {"loc": [0.5, 1.0, -2.0]},
        {"loc": [0.5, 1.5, -2.0]},
        reference="exact",
        expected=[0.0, math.inf, 0.0],
        gradcheck=False,
    ),
    PairCase(
        D.Deterministic,
        D.Deterministic,
        {"loc": [[0.5, 1.0], [1.0, 2.0]]},
        {"loc": [[0.5, 1.0], [1.0, 2.5]]},
        reference="exact",
        expected=[0.0, math.inf],
        build=lambda pa, qa: (D.Delta(pa["loc"], 1), D.Delta(qa["loc"], 1)),
        label="points-in-2d",
        gradcheck=False,
    ),
    PairCase(
        D.Deterministic,
        D.Distribution,
        {"loc": [0.5, 1.0, -2.0]},
        {"loc": [0.0, 1.0, 0.5], "scale": [1.0, 2.0, 0.5]},
        reference="inf",
        build=lambda pa, qa: (D.Deterministic(pa["loc"]), D.Normal(qa["loc"], qa["scale"])),
        label="continuous-q",
    ),
    PairCase(
        D.Deterministic,
        D.Distribution,
        {"loc": [[0.5, 1.0], [1.0, 2.0]]},
        {"loc": [[0.5, 1.0], [1.0, 2.5]]},
        reference="exact",
        expected=[0.0, math.inf],
        build=lambda pa, qa: (D.Delta(pa["loc"], 1), D.Independent(D.Delta(qa["loc"]), 1)),
        label="discrete-q-independent-deltas",
        gradcheck=False,
    ),
]

MIXTURE_LOGITS = np.array([[0.3, -0.2, 1.0], [0.0, 0.5, -1.0]])
MIXTURE_POINTS = np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]])
if hasattr(D, "Categorical"):
    weights = special.softmax(MIXTURE_LOGITS, axis=-1)
    DETERMINISTIC_CASES.append(
        PairCase(
            D.Deterministic,
            D.Distribution,
            {"loc": [1.0, 2.0]},
            {"logits": MIXTURE_LOGITS, "loc": MIXTURE_POINTS},
            reference="exact",
            expected=[-np.log(weights[0, 1]), -np.log(weights[1, 2])],
            rtol=1e-12,
            build=lambda pa, qa: (
                D.Deterministic(pa["loc"]),
                D.MixtureSameFamily(D.Categorical(logits=qa["logits"]), D.Deterministic(qa["loc"])),
            ),
            label="discrete-q-mixture-of-deltas",
            no_grad=("loc",),
        )
    )
if hasattr(D, "Poisson"):
    DETERMINISTIC_CASES.append(
        PairCase(
            D.Deterministic,
            D.Distribution,
            {"loc": [0.0, 3.0, 7.0]},
            {"rate": [0.5, 2.5, 6.0]},
            reference="exact",
            expected=-stats.poisson.logpmf([0, 3, 7], [0.5, 2.5, 6.0]),
            rtol=1e-12,
            build=lambda pa, qa: (D.Deterministic(pa["loc"]), D.Poisson(qa["rate"])),
            label="discrete-q-poisson",
            no_grad=("loc",),
        )
    )


CASES = [
    *_mvn_mvn_cases(),
    *_lowrank_cases(),
    *_independent_gaussian_cases(),
    *INDEPENDENT_CASES,
    *DIRICHLET_CASES,
    *WISHART_CASES,
    *DETERMINISTIC_CASES,
]
