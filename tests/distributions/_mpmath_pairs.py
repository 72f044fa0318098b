"""Same-family closed forms re-derived in mpmath (50 digits): the reference of the edge sweep.

Each entry maps a family to ``(draw, build, reference)``: ``draw(rng_draw)`` gives
two parameter tuples, ``build(params)`` the kldiv distribution, and
``reference(pp, qp)`` the divergence D(P ‖ Q) as an ``mpmath.mpf`` from the
textbook formula, evaluated at 50 digits so that its cancellations do not matter.
"""

from __future__ import annotations

import mpmath as mp

from kldiv import distributions as D

mp.mp.dps = 50
EULER = mp.euler


def _mpf(*values):
    return [mp.mpf(float(v)) for v in values]


def normal(pp, qp):
    (mp_, sp), (mq, sq) = _mpf(*pp), _mpf(*qp)
    return mp.log(sq / sp) + (sp**2 + (mp_ - mq) ** 2) / (2 * sq**2) - mp.mpf(1) / 2


def laplace(pp, qp):
    (mp_, bp), (mq, bq) = _mpf(*pp), _mpf(*qp)
    d = abs(mp_ - mq)
    return mp.log(bq / bp) + d / bq + bp / bq * mp.exp(-d / bp) - 1


def cauchy(pp, qp):
    (mp_, gp), (mq, gq) = _mpf(*pp), _mpf(*qp)
    return mp.log(((gp + gq) ** 2 + (mp_ - mq) ** 2) / (4 * gp * gq))


def half_cauchy(pp, qp):
    return cauchy((0.0, pp[0]), (0.0, qp[0]))


def half_normal(pp, qp):
    return normal((0.0, pp[0]), (0.0, qp[0]))


def exponential(pp, qp):
    rho = mp.mpf(float(qp[0])) / mp.mpf(float(pp[0]))
    return rho - 1 - mp.log(rho)


def gamma(pp, qp):
    (kp, rp), (kq, rq) = _mpf(*pp), _mpf(*qp)
    return (
        kq * mp.log(rp / rq)
        + mp.loggamma(kq)
        - mp.loggamma(kp)
        + (kp - kq) * mp.digamma(kp)
        + (rq / rp - 1) * kp
    )


def chi2(pp, qp):
    a, b = mp.mpf(float(pp[0])) / 2, mp.mpf(float(qp[0])) / 2
    return (a - b) * mp.digamma(a) + mp.loggamma(b) - mp.loggamma(a)


def dirichlet(pp, qp):
    alpha, beta = _mpf(*pp), _mpf(*qp)
    a0, b0 = mp.fsum(alpha), mp.fsum(beta)
    total = mp.loggamma(a0) - mp.loggamma(b0)
    for a, b in zip(alpha, beta, strict=True):
        total += mp.loggamma(b) - mp.loggamma(a) + (a - b) * (mp.digamma(a) - mp.digamma(a0))
    return total


def gumbel(pp, qp):
    (mp_, bp), (mq, bq) = _mpf(*pp), _mpf(*qp)
    r, d = bp / bq, (mp_ - mq) / bq
    return -mp.log(r) + EULER * (r - 1) + d + mp.exp(-d) * mp.gamma(1 + r) - 1


def weibull(pp, qp):
    (lp, kp), (lq, kq) = _mpf(*pp), _mpf(*qp)
    s, u = kq / kp, kq * mp.log(lp / lq)
    return mp.log(kp / kq) + EULER * (s - 1) - u + mp.exp(u) * mp.gamma(1 + s) - 1


def moyal(pp, qp):
    (mp_, sp), (mq, sq) = _mpf(*pp), _mpf(*qp)
    r, d = sp / sq, (mp_ - mq) / sq
    big_l = (r - 1) * mp.log(2) + mp.loggamma(mp.mpf(1) / 2 + r) - mp.loggamma(mp.mpf(3) / 2)
    return (mp.exp(big_l - d) - 1 + d + (r - 1) * (EULER + mp.log(2)) - 2 * mp.log(r)) / 2


def pareto(pp, qp):
    (sp, ap), (sq, aq) = _mpf(*pp), _mpf(*qp)
    if sp < sq:
        return mp.inf
    return aq * mp.log(sp / sq) + aq / ap - 1 - mp.log(aq / ap)


# family -> (parameter kinds, constructor, reference); kinds: "loc" (real) or "pos" (> 0)
PAIRS = {
    "Normal": (("loc", "pos"), D.Normal, normal),
    "Laplace": (("loc", "pos"), D.Laplace, laplace),
    "Cauchy": (("loc", "pos"), D.Cauchy, cauchy),
    "HalfCauchy": (("pos",), D.HalfCauchy, half_cauchy),
    "HalfNormal": (("pos",), D.HalfNormal, half_normal),
    "LogNormal": (("loc", "pos"), D.LogNormal, normal),
    "Exponential": (("pos",), D.Exponential, exponential),
    "Gamma": (("pos", "pos"), D.Gamma, gamma),
    "InverseGamma": (("pos", "pos"), D.InverseGamma, gamma),
    "Chi2": (("pos",), D.Chi2, chi2),
    "Chi": (("pos",), D.Chi, chi2),
    "Beta": (("pos", "pos"), D.Beta, dirichlet),
    "Dirichlet": (("pos", "pos", "pos"), lambda *c: D.Dirichlet(list(c)), dirichlet),
    "Gumbel": (("loc", "pos"), D.Gumbel, gumbel),
    "Weibull": (("pos", "pos"), D.Weibull, weibull),
    "Moyal": (("loc", "pos"), D.Moyal, moyal),
    "Pareto": (("pos", "pos"), D.Pareto, pareto),
}
