"""Gradient variance of the ELBO with the exact KL against the Monte Carlo KL, by data size.

The conjugate model x_i ~ N(z, 1), z ~ N(0, 1) with n data points, and
q = N(m, s²) at the exact posterior or at the prior (an untrained q). For
each n, R independent one-draw gradients of −ELBO with respect to (m, log s)
are computed at once: q is given R identical copies as its batch, so that
``kldiv.torch.elbo`` returns R independent ELBOs whose gradients are the R
per-evaluation gradients. Both KL methods see the same draws. Prints the
markdown table of docs/vi.md. Run from anywhere::

    python docs/vi_gradient_variance.py
"""

from __future__ import annotations

import math

import torch

from kldiv import distributions
from kldiv.torch import elbo

REPS = 20_000
SEED = 0


def _variances(n: int, at: str) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(SEED)
    x = torch.randn(n, generator=gen, dtype=torch.float64) + 0.5
    if at == "posterior":
        precision = 1.0 + n
        m0, s0 = float(x.sum()) / precision, 1 / math.sqrt(precision)
    else:
        m0, s0 = 0.0, 1.0
    out = {}
    for kl in ("exact", "monte_carlo"):
        loc = torch.full((REPS,), m0, dtype=torch.float64, requires_grad=True)
        log_scale = torch.full((REPS,), math.log(s0), dtype=torch.float64, requires_grad=True)

        def log_lik(z, x=x):  # (1, R) -> (1, R)
            return -0.5 * ((z[..., None] - x) ** 2).sum(-1) - 0.5 * n * math.log(2 * math.pi)

        result = elbo(
            log_lik,
            distributions.Normal(loc, log_scale.exp()),
            distributions.Normal(0.0, 1.0),
            kl=kl,
            rng=torch.Generator().manual_seed(SEED + 1),
        )
        grad_m, grad_s = torch.autograd.grad(-result.elbo.sum(), [loc, log_scale])
        out[kl] = torch.stack([grad_m.var(), grad_s.var()])
    return out


def main() -> None:
    """Prints the table: per n and q, the variances with each KL method and their ratios."""
    print("| n | q at | Var ∂/∂m exact | MC | ratio | Var ∂/∂log s exact | MC | ratio | total |")
    print("|---|---|---|---|---|---|---|---|---|")
    for at in ("posterior", "prior"):
        for n in (1, 10, 100, 1000):
            v = _variances(n, at)
            e, m = v["exact"], v["monte_carlo"]
            print(
                f"| {n} | {at} | {e[0]:.4g} | {m[0]:.4g} | {m[0] / e[0]:.2f} | {e[1]:.4g} | "
                f"{m[1]:.4g} | {m[1] / e[1]:.2f} | {m.sum() / e.sum():.2f} |"
            )


if __name__ == "__main__":
    main()
