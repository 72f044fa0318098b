r"""The worked variational-inference example: Bayesian logistic regression, ELBO with exact KL.

Model (scikit-learn's bundled breast-cancer data, n = 569, 30 standardised
features plus an intercept, d = 31):

.. math::

    w \sim \mathcal N(0, \sigma^2 I),\ \sigma = 1, \qquad
    y_i \mid w \sim \mathrm{Bernoulli}(\mathrm{sigmoid}(x_i^\top w))

Two Gaussian posteriors are fitted by maximising the ELBO with
:func:`kldiv.torch.elbo` (Adam, reparameterised draws, the exact KL to the
prior): a mean-field ``Independent(Normal(m, s), 1)`` and a full-covariance
``MultivariateNormal(m, scale_tril=L)``. They are checked against

- the Laplace approximation at the MAP (Newton's method, the Hessian by
  ``torch.autograd``), and
- a long, seeded Hamiltonian Monte Carlo run (the reference): chains in the
  coordinates whitened by the Laplace covariance, step size adapted during
  warm-up to an acceptance of 0.8, R-hat and effective sample size reported;

and the log evidence is estimated by importance sampling from the Laplace
approximation (covariance inflated by 1.2²), so that the gap
log p(y) − ELBO(q) = KL(q ‖ posterior) can be read off for each q. Finally the
variance of the ELBO's gradient is measured over repeated evaluations at the
same parameters with the exact KL and with the Monte Carlo KL (the same draws
for both), at the initial and at the trained parameters.
"""

from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kldiv.demos._report import (
    html_page,
    one_torch_thread,
    prepare_out,
    require,
    save_figure,
    write_report,
)

__all__ = ["PRIOR_SCALE", "format_summary", "run_vi"]

PRIOR_SCALE = 1.0
"""The prior N(0, σ² I) on the standardised-feature coefficients and the intercept."""


@dataclass(frozen=True)
class _Settings:
    steps: int
    n_samples: int = 8
    lr: float = 0.05
    final_lr_fraction: float = 0.01
    n_eval: int = 4000
    hmc_chains: int = 8
    hmc_warmup: int = 300
    hmc_draws: int = 2000
    hmc_leapfrog: int = 10
    importance_draws: int = 20000
    grad_reps: int = 200
    dpi: int = 110


_DEFAULT = _Settings(steps=2000)
_QUICK = _Settings(
    steps=100,
    n_eval=500,
    hmc_chains=4,
    hmc_warmup=100,
    hmc_draws=150,
    importance_draws=2000,
    grad_reps=30,
    dpi=60,
)


class _Data:
    """The standardised design matrix with an intercept column, the labels, the log density."""

    def __init__(self, torch: Any, datasets: Any) -> None:
        bunch = datasets.load_breast_cancer()
        x = torch.tensor(bunch.data, dtype=torch.float64)
        x = (x - x.mean(0)) / x.std(0)
        self.x = torch.cat([torch.ones(x.shape[0], 1, dtype=torch.float64), x], dim=1)
        self.y = torch.tensor(bunch.target, dtype=torch.float64)
        self.names = ["intercept", *(str(n) for n in bunch.feature_names)]
        self.n, self.d = self.x.shape
        self.torch = torch

    def log_likelihood(self, w: Any) -> Any:
        """The log-likelihood log p(y | X, w), summed over the data points: (..., d) -> (...)."""
        eta = w @ self.x.T
        return (self.y * eta - self.torch.nn.functional.softplus(eta)).sum(-1)

    def log_prior(self, w: Any) -> Any:
        """The log prior density log N(w; 0, σ² I)."""
        return -0.5 * (w * w).sum(-1) / PRIOR_SCALE**2 - self.d * (
            math.log(PRIOR_SCALE) + 0.5 * math.log(2 * math.pi)
        )

    def grad_log_posterior(self, w: Any) -> Any:
        """∇_w [log p(y | w) + log p(w)], analytic (for HMC): (..., d) -> (..., d)."""
        eta = w @ self.x.T
        return (self.y - self.torch.sigmoid(eta)) @ self.x - w / PRIOR_SCALE**2


def _laplace(data: _Data) -> tuple[Any, Any, int]:
    """The MAP by Newton's method and the Laplace covariance H⁻¹ (autograd Hessian)."""
    torch = data.torch

    def negative_log_posterior(w: Any) -> Any:
        return -(data.log_likelihood(w) + data.log_prior(w))

    w = torch.zeros(data.d, dtype=torch.float64)
    for iteration in range(1, 101):  # noqa: B007 (reported)
        hessian = torch.autograd.functional.hessian(negative_log_posterior, w)
        grad = -data.grad_log_posterior(w)
        step = torch.linalg.solve(hessian, grad)
        w = w - step
        if float(step.abs().max()) < 1e-10:
            break
    hessian = torch.autograd.functional.hessian(negative_log_posterior, w)
    return w, torch.linalg.inv(hessian), iteration


def _hmc(data: _Data, w_map: Any, cov: Any, settings: _Settings, seed: int) -> dict[str, Any]:
    """HMC in the coordinates u with w = w_map + A u, A the Cholesky factor of the Laplace cov."""
    torch = data.torch
    gen = torch.Generator().manual_seed(seed + 7919)
    a = torch.linalg.cholesky(cov)
    chains, d = settings.hmc_chains, data.d

    def log_target(u: Any) -> Any:
        w = w_map + u @ a.T
        return data.log_likelihood(w) + data.log_prior(w)

    def grad(u: Any) -> Any:
        return data.grad_log_posterior(w_map + u @ a.T) @ a

    u = torch.randn(chains, d, generator=gen, dtype=torch.float64)
    log_eps = math.log(0.5)
    target_accept = 0.8
    draws = []
    accepted = 0.0
    total = settings.hmc_warmup + settings.hmc_draws
    for it in range(total):
        eps = math.exp(log_eps) * (0.8 + 0.4 * float(torch.rand((), generator=gen)))
        p = torch.randn(chains, d, generator=gen, dtype=torch.float64)
        current_h = log_target(u) - 0.5 * (p * p).sum(-1)
        u_new, p_new = u, p + 0.5 * eps * grad(u)
        for step in range(settings.hmc_leapfrog):
            u_new = u_new + eps * p_new
            if step < settings.hmc_leapfrog - 1:
                p_new = p_new + eps * grad(u_new)
        p_new = p_new + 0.5 * eps * grad(u_new)
        new_h = log_target(u_new) - 0.5 * (p_new * p_new).sum(-1)
        log_ratio = torch.nan_to_num(new_h - current_h, nan=-math.inf)
        accept_prob = torch.clamp(log_ratio, max=0.0).exp()
        accept = torch.rand(chains, generator=gen, dtype=torch.float64) < accept_prob
        u = torch.where(accept[:, None], u_new, u)
        if it < settings.hmc_warmup:
            log_eps += 0.05 * (float(accept_prob.mean()) - target_accept)
        else:
            accepted += float(accept_prob.mean())
            draws.append(w_map + u @ a.T)
    samples = torch.stack(draws, dim=1)  # (chains, draws, d)
    return {
        "samples": samples,
        "step_size": math.exp(log_eps),
        "acceptance": accepted / settings.hmc_draws,
        **_diagnostics(samples),
    }


def _diagnostics(samples: Any) -> dict[str, float]:
    """Split R-hat (max over coordinates) and a batch-means effective sample size (min)."""
    chains, n, _ = samples.shape
    half = n // 2
    split = samples[:, : 2 * half].reshape(2 * chains, half, -1)
    within = split.var(dim=1).mean(0)
    between = half * split.mean(dim=1).var(dim=0)
    var_plus = (half - 1) / half * within + between / half
    rhat = float((var_plus / within).sqrt().max())
    batches = 10
    size = n // batches
    if size < 2:
        return {"rhat_max": rhat, "ess_min": float("nan")}
    batch_means = samples[:, : batches * size].reshape(chains, batches, size, -1).mean(2)
    var = samples.reshape(chains * n, -1).var(0)
    tau = size * batch_means.reshape(chains * batches, -1).var(0) / var
    ess = chains * n / tau.clamp(min=1.0 / (chains * n))
    return {"rhat_max": rhat, "ess_min": float(ess.min())}


def _importance_log_evidence(
    data: _Data, w_map: Any, cov: Any, draws: int, seed: int
) -> dict[str, float]:
    """The log evidence by importance sampling from N(w_map, 1.2² cov), with its stderr."""
    torch = data.torch
    gen = torch.Generator().manual_seed(seed + 104729)
    proposal = torch.distributions.MultivariateNormal(
        w_map, scale_tril=1.2 * torch.linalg.cholesky(cov)
    )
    eps = torch.randn(draws, data.d, generator=gen, dtype=torch.float64)
    w = w_map + eps @ proposal.scale_tril.T
    log_w = data.log_likelihood(w) + data.log_prior(w) - proposal.log_prob(w)
    log_z = torch.logsumexp(log_w, 0) - math.log(draws)
    weights = (log_w - log_w.max()).exp()
    ess = float(weights.sum() ** 2 / (weights * weights).sum())
    stderr = float(weights.std() / weights.mean() / math.sqrt(draws))
    return {"log_evidence": float(log_z), "log_evidence_stderr": stderr, "ess": ess}


class _MeanField:
    name = "mean-field"
    key = "mean_field"

    def __init__(self, torch: Any, d: int) -> None:
        self.torch = torch
        self.d = d
        zeros = torch.zeros(d, dtype=torch.float64)
        from kldiv import distributions

        self.D = distributions
        self.prior = distributions.Independent(distributions.Normal(zeros, PRIOR_SCALE), 1)

    def init(self) -> list[Any]:
        torch = self.torch
        return [
            torch.zeros(self.d, dtype=torch.float64, requires_grad=True),
            torch.full((self.d,), -2.0, dtype=torch.float64, requires_grad=True),
        ]

    def q(self, params: list[Any]) -> Any:
        loc, log_scale = params
        return self.D.Independent(self.D.Normal(loc, log_scale.exp()), 1)

    def moments(self, params: list[Any]) -> tuple[Any, Any]:
        loc, log_scale = params
        return loc.detach(), log_scale.detach().exp()

    def free(self, params: list[Any]) -> Any:
        """A mask of the gradient entries that are parameters (all of them here)."""
        return self.torch.ones(2 * self.d, dtype=self.torch.bool)


class _FullCovariance(_MeanField):
    name = "full-covariance"
    key = "full_covariance"

    def __init__(self, torch: Any, d: int) -> None:
        super().__init__(torch, d)
        eye = torch.eye(d, dtype=torch.float64)
        self.prior = self.D.MultivariateNormal(
            torch.zeros(d, dtype=torch.float64), scale_tril=PRIOR_SCALE * eye
        )

    def init(self) -> list[Any]:
        torch = self.torch
        return [
            *super().init(),
            torch.zeros(self.d, self.d, dtype=torch.float64, requires_grad=True),
        ]

    def scale_tril(self, params: list[Any]) -> Any:
        _, log_scale, lower = params
        return self.torch.tril(lower, -1) + self.torch.diag_embed(log_scale.exp())

    def q(self, params: list[Any]) -> Any:
        return self.D.MultivariateNormal(params[0], scale_tril=self.scale_tril(params))

    def moments(self, params: list[Any]) -> tuple[Any, Any]:
        tril = self.scale_tril(params).detach()
        return params[0].detach(), (tril * tril).sum(-1).sqrt()

    def free(self, params: list[Any]) -> Any:
        torch = self.torch
        lower = torch.tril(torch.ones(self.d, self.d, dtype=torch.bool), -1).reshape(-1)
        return torch.cat([torch.ones(2 * self.d, dtype=torch.bool), lower])


def _fit(family: _MeanField, data: _Data, settings: _Settings, seed: int) -> dict[str, Any]:
    """Adam on -ELBO with a cosine learning-rate decay; the ELBO and KL at every step."""
    from kldiv.torch import elbo

    torch = data.torch
    params = family.init()
    initial = [p.detach().clone().requires_grad_(True) for p in params]
    optimizer = torch.optim.Adam(params, lr=settings.lr)
    floor = settings.final_lr_fraction

    def schedule(step: int) -> float:
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * step / settings.steps))

    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    gen = torch.Generator().manual_seed(seed)
    history_elbo, history_kl = [], []
    method = None
    for _ in range(settings.steps):
        result = elbo(
            data.log_likelihood,
            family.q(params),
            family.prior,
            n_samples=settings.n_samples,
            rng=gen,
        )
        optimizer.zero_grad()
        (-result.elbo).backward()
        optimizer.step()
        lr_schedule.step()
        history_elbo.append(float(result.elbo.detach()))
        history_kl.append(float(result.kl.detach()))
        method = result.kl_method
    with torch.no_grad():
        final = elbo(
            data.log_likelihood,
            family.q(params),
            family.prior,
            n_samples=settings.n_eval,
            rng=torch.Generator().manual_seed(seed + 1),
        )
    mean, sd = family.moments(params)
    return {
        "params": params,
        "initial": initial,
        "elbo_history": history_elbo,
        "kl_history": history_kl,
        "kl_method": method,
        "elbo": float(final.elbo),
        "elbo_stderr": float(final.stderr),
        "expected_log_likelihood": float(final.expected_log_likelihood),
        "kl": float(final.kl),
        "mean": mean,
        "sd": sd,
    }


def _gradient_variance(
    family: _MeanField, data: _Data, params: list[Any], reps: int, seed: int
) -> dict[str, Any]:
    """Per-parameter variance of ∇(-ELBO) over ``reps`` evaluations, exact vs Monte Carlo KL.

    One draw per evaluation (``n_samples=1``); evaluation r uses the seed
    ``seed + r`` for both methods, so both see the same z and differ only in
    the KL term.
    """
    from kldiv.torch import elbo

    torch = data.torch
    params = [p.detach().clone().requires_grad_(True) for p in params]
    free = family.free(params)
    out: dict[str, Any] = {}
    for method in ("exact", "monte_carlo"):
        grads = []
        for r in range(reps):
            gen = torch.Generator().manual_seed(seed + r)
            result = elbo(data.log_likelihood, family.q(params), family.prior, kl=method, rng=gen)
            grad = torch.autograd.grad(-result.elbo, params)
            grads.append(torch.cat([g.reshape(-1) for g in grad])[free])
        stacked = torch.stack(grads)
        out[method] = stacked.var(0)
    out["ratio"] = float(out["monte_carlo"].sum() / out["exact"].sum())
    out["total_exact"] = float(out["exact"].sum())
    out["total_monte_carlo"] = float(out["monte_carlo"].sum())
    return out


def _running_mean(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _plot_training(
    figure_cls: Any, fits: dict[str, dict], log_evidence: float, path: Path, dpi: int
) -> None:
    fig = figure_cls(figsize=(11, 4.2), layout="constrained")
    ax_elbo, ax_kl = fig.subplots(1, 2)
    window = max(1, len(next(iter(fits.values()))["elbo_history"]) // 40)
    low = math.inf
    for (name, fit), color in zip(fits.items(), ("C0", "C1"), strict=False):
        steps = range(1, len(fit["elbo_history"]) + 1)
        smooth = _running_mean(fit["elbo_history"], window)
        ax_elbo.plot(steps, fit["elbo_history"], color=color, alpha=0.2, lw=0.6)
        ax_elbo.plot(steps, smooth, color=color, lw=1.6, label=f"{name} (final {fit['elbo']:.2f})")
        ax_kl.plot(
            steps, fit["kl_history"], color=color, lw=1.6, label=f"{name} ({fit['kl_method']})"
        )
        low = min(low, min(smooth[len(smooth) // 10 :]))
    ax_elbo.axhline(
        log_evidence, color="k", ls="--", lw=1, label=f"log evidence {log_evidence:.2f}"
    )
    ax_elbo.set_ylim(
        low - 0.1 * abs(low - log_evidence) - 1, log_evidence + 0.05 * abs(log_evidence)
    )
    ax_elbo.set(xlabel="Adam step", ylabel="ELBO (nats)", title="ELBO per step (running mean)")
    ax_elbo.legend(fontsize=8, loc="lower right")
    ax_kl.set(xlabel="Adam step", ylabel="KL(q ‖ prior) (nats)", title="The KL term (exact)")
    ax_kl.legend(fontsize=8)
    save_figure(fig, path, dpi)


def _plot_posterior(
    figure_cls: Any, names: list[str], rows: dict[str, tuple[Any, Any]], path: Path, dpi: int
) -> None:
    fig = figure_cls(figsize=(13, 7.5), layout="constrained")
    ax_mean, ax_sd = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    ref_sd = rows["HMC reference"][1]
    x = list(range(len(names)))
    styles = {
        "HMC reference": ("k", "o"),
        "Laplace": ("0.55", "s"),
        "mean-field": ("C0", "^"),
        "full-covariance": ("C1", "v"),
    }
    offsets = dict(zip(styles, (-0.27, -0.09, 0.09, 0.27), strict=True))
    for label, (mean, sd) in rows.items():
        color, marker = styles[label]
        xs = [i + offsets[label] for i in x]
        ax_mean.errorbar(
            xs, mean.tolist(), yerr=(2 * sd).tolist(), fmt=marker, ms=3.5, color=color,
            elinewidth=1, capsize=1.5, label=f"{label} (mean ± 2σ)",
        )  # fmt: skip
        if label != "HMC reference":
            ratio = (sd / ref_sd).tolist()
            ax_sd.plot(xs, ratio, marker, color=color, ms=4, label=label)
    ax_mean.axhline(0.0, color="0.8", lw=0.8, zorder=0)
    ax_mean.set(ylabel="coefficient", title="Posterior of the logistic-regression coefficients")
    ax_mean.legend(fontsize=8, ncols=4, loc="upper center")
    ax_sd.axhline(1.0, color="k", lw=0.8)
    ax_sd.set(ylabel="sd / reference sd", yscale="log")
    ax_sd.legend(fontsize=8, ncols=3)
    ax_sd.set_xticks(x, names, rotation=70, ha="right", fontsize=7)
    save_figure(fig, path, dpi)


def _plot_gradients(
    figure_cls: Any, variances: dict[str, dict[str, dict]], path: Path, dpi: int
) -> None:
    fig = figure_cls(figsize=(12, 4.6), layout="constrained")
    ax_scatter, ax_bar = fig.subplots(1, 2)
    for (name, by_point), color in zip(variances.items(), ("C0", "C1"), strict=False):
        trained = by_point["trained"]
        ax_scatter.loglog(
            trained["exact"].tolist(), trained["monte_carlo"].tolist(), ".", color=color,
            ms=3, alpha=0.6, label=f"{name}: total ratio {trained['ratio']:.2f}",
        )  # fmt: skip
    lims = ax_scatter.get_xlim()
    ax_scatter.plot(lims, lims, "k--", lw=0.8, label="equal variance")
    ax_scatter.set(
        xlabel="variance of the gradient, exact KL",
        ylabel="variance of the gradient, Monte Carlo KL",
        title="Per parameter, at the trained q (1 draw per evaluation)",
    )
    ax_scatter.legend(fontsize=8)
    labels, exact, mc = [], [], []
    for name, by_point in variances.items():
        for point in ("init", "trained"):
            labels.append(f"{name}\n{point}")
            exact.append(by_point[point]["total_exact"])
            mc.append(by_point[point]["total_monte_carlo"])
    xs = range(len(labels))
    ax_bar.bar([i - 0.2 for i in xs], exact, width=0.4, label="exact KL", color="C2")
    ax_bar.bar([i + 0.2 for i in xs], mc, width=0.4, label="Monte Carlo KL", color="C3")
    for i, (e, m) in enumerate(zip(exact, mc, strict=True)):
        ax_bar.annotate(f"×{m / e:.2f}", (i, max(e, m)), ha="center", va="bottom", fontsize=8)
    ax_bar.set_yscale("log")
    ax_bar.set_xticks(list(xs), labels, fontsize=8)
    ax_bar.set(ylabel="total gradient variance (sum over parameters)", title="Total variance")
    ax_bar.legend(fontsize=8)
    save_figure(fig, path, dpi)


def _html(summary: dict[str, Any]) -> str:
    esc = html.escape
    ref = summary["reference"]
    rows = []
    for key in ("mean_field", "full_covariance"):
        f = summary[key]
        g = summary["gradient_variance"][key]
        rows.append(
            f"<tr><td>{esc(f['name'])}</td><td>{f['elbo']:.3f} ± {f['elbo_stderr']:.3f}</td>"
            f"<td>{f['kl']:.3f}</td><td>{f['kl_to_posterior']:.3f}</td>"
            f"<td>{f['max_mean_error_sd']:.3f}</td>"
            f"<td>{f['sd_ratio_min']:.2f} / {f['sd_ratio_median']:.2f} / "
            f"{f['sd_ratio_max']:.2f}</td>"
            f"<td>{g['init']:.2f}</td><td>{g['trained']:.2f}</td></tr>"
        )
    lap = summary["laplace"]
    rows.append(
        f"<tr><td>Laplace at the MAP</td><td></td><td></td><td></td>"
        f"<td>{lap['max_mean_error_sd']:.3f}</td><td>{lap['sd_ratio_min']:.2f} / "
        f"{lap['sd_ratio_median']:.2f} / {lap['sd_ratio_max']:.2f}</td><td></td><td></td></tr>"
    )
    body = f"""<h1>Variational inference with <code>kldiv.torch.elbo</code></h1>
<p>Bayesian logistic regression on scikit-learn's breast-cancer data (n = {summary["n"]},
{summary["d"] - 1} standardised features and an intercept), prior
N(0, {summary["prior_scale"]:g}² I).
Two Gaussian posteriors were fitted by maximising the ELBO (Adam, {summary["steps"]} steps,
{summary["n_samples"]} reparameterised draws per step, cosine learning-rate decay); the KL term to
the prior is exact (<code>kl_method = "{esc(summary["mean_field"]["kl_method"])}"</code>).
Seed {summary["seed"]}; run time {summary["runtime_s"]:.1f} s.</p>
<p><b>Reference:</b> {esc(ref["method"])}: {ref["draws"]} draws, acceptance
{ref["acceptance"]:.2f}, step size {ref["step_size"]:.3f}, max split R-hat {ref["rhat_max"]:.3f},
min effective sample size {ref["ess_min"]:.0f}. Log evidence by importance sampling
({summary["importance"]["draws"]} draws from the Laplace approximation with its covariance inflated
by 1.2², effective sample size {summary["importance"]["ess"]:.0f}):
{summary["log_evidence"]:.3f} ± {summary["log_evidence_stderr"]:.3f}.</p>
<table>
<tr><th>posterior</th><th>ELBO ± se</th><th>KL(q ‖ prior)</th>
<th>log p(y) − ELBO = KL(q ‖ posterior)</th><th>max |mean − ref| / ref sd</th>
<th>sd / ref sd (min / median / max)</th>
<th>grad-variance ratio MC/exact, init</th><th>… trained</th></tr>
{"".join(rows)}
</table>
<h2>Training</h2><img src="elbo.png" alt="ELBO and KL over the steps">
<h2>Posterior means ± 2σ against the reference</h2><img src="posterior.png" alt="posteriors">
<h2>Gradient variance: exact KL against Monte Carlo KL</h2>
<p>Variance of ∇(−ELBO) over {summary["grad_reps"]} evaluations at the same parameters, one draw
each, the same draws for both KL methods. Ratios are total variance (summed over parameters)
with the Monte Carlo KL divided by that with the exact KL.</p>
<img src="grad_variance.png" alt="gradient variance">
"""
    return html_page("kldiv: variational inference for Bayesian logistic regression", body)


def _agreement(mean: Any, sd: Any, ref_mean: Any, ref_sd: Any) -> dict[str, float]:
    ratio = sd / ref_sd
    return {
        "max_mean_error_sd": float(((mean - ref_mean).abs() / ref_sd).max()),
        "sd_ratio_min": float(ratio.min()),
        "sd_ratio_median": float(ratio.median()),
        "sd_ratio_max": float(ratio.max()),
    }


def run_vi(
    out: str | Path = "kldiv-vi-report",
    *,
    seed: int = 0,
    steps: int | None = None,
    quick: bool = False,
) -> dict[str, Any]:
    """Runs the worked example and writes its report into ``out``.

    The report: ``elbo.png``, ``posterior.png``, ``grad_variance.png``,
    ``index.html`` and ``summary.json``. About 13 s by default on two busy
    CPU cores, 7–9 s with ``quick``.

    Args:
        out: the output folder (created if needed).
        seed: seeds every random draw (VI, HMC, importance sampling, gradients).
        steps: Adam steps per posterior (default 2000; 100 with ``quick``).
        quick: a few-second run with short chains (for tests and a first look).

    Returns:
        The summary (also written as ``summary.json``).

    Raises:
        ImportError: torch, scikit-learn or matplotlib is missing (the message
            says what to install).
    """
    start = time.perf_counter()
    torch, datasets, mpl_figure = require("vi")
    # The tensors are small (569 × 31): one thread is fastest (see one_torch_thread).
    with one_torch_thread(torch):
        return _run(torch, datasets, mpl_figure, out, seed, steps, quick, start)


def _run(
    torch: Any,
    datasets: Any,
    mpl_figure: Any,
    out: str | Path,
    seed: int,
    steps: int | None,
    quick: bool,
    start: float,
) -> dict[str, Any]:
    settings = _QUICK if quick else _DEFAULT
    if steps is not None:
        settings = _Settings(**{**settings.__dict__, "steps": int(steps)})
    out = prepare_out(out)
    torch.manual_seed(seed)
    data = _Data(torch, datasets)

    w_map, cov, newton_iterations = _laplace(data)
    lap_sd = cov.diagonal().sqrt()
    hmc = _hmc(data, w_map, cov, settings, seed)
    ref = hmc["samples"].reshape(-1, data.d)
    ref_mean, ref_sd = ref.mean(0), ref.std(0)
    evidence = _importance_log_evidence(data, w_map, cov, settings.importance_draws, seed)

    families = [_MeanField(torch, data.d), _FullCovariance(torch, data.d)]
    fits, variances = {}, {}
    summary: dict[str, Any] = {}
    for offset, family in enumerate(families):
        fit = _fit(family, data, settings, seed + 1000 * (offset + 1))
        fits[family.name] = fit
        variances[family.name] = {
            point: _gradient_variance(family, data, fit[key], settings.grad_reps, seed + 50_000)
            for point, key in (("init", "initial"), ("trained", "params"))
        }
        summary[family.key] = {
            "name": family.name,
            "kl_method": fit["kl_method"],
            "elbo": fit["elbo"],
            "elbo_stderr": fit["elbo_stderr"],
            "expected_log_likelihood": fit["expected_log_likelihood"],
            "kl": fit["kl"],
            "kl_to_posterior": evidence["log_evidence"] - fit["elbo"],
            **_agreement(fit["mean"], fit["sd"], ref_mean, ref_sd),
        }

    _plot_training(
        mpl_figure.Figure, fits, evidence["log_evidence"], out / "elbo.png", settings.dpi
    )
    rows = {
        "HMC reference": (ref_mean, ref_sd),
        "Laplace": (w_map, lap_sd),
        **{name: (fit["mean"], fit["sd"]) for name, fit in fits.items()},
    }
    _plot_posterior(mpl_figure.Figure, data.names, rows, out / "posterior.png", settings.dpi)
    _plot_gradients(mpl_figure.Figure, variances, out / "grad_variance.png", settings.dpi)

    summary.update(
        {
            "seed": seed,
            "quick": quick,
            "steps": settings.steps,
            "n_samples": settings.n_samples,
            "grad_reps": settings.grad_reps,
            "n": int(data.n),
            "d": int(data.d),
            "prior_scale": PRIOR_SCALE,
            "laplace": {
                "newton_iterations": newton_iterations,
                **_agreement(w_map, lap_sd, ref_mean, ref_sd),
            },
            "reference": {
                "method": (
                    f"Hamiltonian Monte Carlo, {settings.hmc_chains} chains × "
                    f"{settings.hmc_draws} draws after {settings.hmc_warmup} warm-up iterations, "
                    f"{settings.hmc_leapfrog} leapfrog steps, in coordinates whitened by the "
                    f"Laplace covariance, seed {seed}"
                ),
                "draws": int(ref.shape[0]),
                "acceptance": hmc["acceptance"],
                "step_size": hmc["step_size"],
                "rhat_max": hmc["rhat_max"],
                "ess_min": hmc["ess_min"],
            },
            "importance": {"draws": settings.importance_draws, "ess": evidence["ess"]},
            "log_evidence": evidence["log_evidence"],
            "log_evidence_stderr": evidence["log_evidence_stderr"],
            "gradient_variance": {
                family.key: {
                    point: variances[family.name][point]["ratio"] for point in ("init", "trained")
                }
                for family in families
            },
            "gradient_variance_totals": {
                family.key: {
                    point: {
                        "exact": variances[family.name][point]["total_exact"],
                        "monte_carlo": variances[family.name][point]["total_monte_carlo"],
                    }
                    for point in ("init", "trained")
                }
                for family in families
            },
            "files": [
                "elbo.png",
                "posterior.png",
                "grad_variance.png",
                "index.html",
                "summary.json",
            ],
        }
    )
    summary["runtime_s"] = time.perf_counter() - start
    write_report(out, _html(summary), summary)
    return summary


def format_summary(summary: dict[str, Any], out: str | Path) -> str:
    """The short report ``kldiv demo vi`` prints."""
    lines = [
        f"kldiv demo vi: Bayesian logistic regression, breast cancer (n={summary['n']}, "
        f"d={summary['d']}), prior N(0, {summary['prior_scale']:g}² I), seed {summary['seed']}, "
        f"{summary['steps']} steps",
        f"reference: HMC, {summary['reference']['draws']} draws (max R-hat "
        f"{summary['reference']['rhat_max']:.3f}); log evidence {summary['log_evidence']:.3f} "
        f"± {summary['log_evidence_stderr']:.3f} (importance sampling)",
    ]
    for key in ("mean_field", "full_covariance"):
        f = summary[key]
        g = summary["gradient_variance"][key]
        lines.append(
            f"{f['name']:>16}: ELBO {f['elbo']:.3f} ± {f['elbo_stderr']:.3f}, KL {f['kl']:.3f} "
            f"({f['kl_method']}), KL(q‖post) {f['kl_to_posterior']:.3f}, max |mean−ref|/sd "
            f"{f['max_mean_error_sd']:.3f}, sd/ref {f['sd_ratio_min']:.2f}–"
            f"{f['sd_ratio_max']:.2f}, grad variance MC/exact {g['init']:.2f} (init) "
            f"{g['trained']:.2f} (trained)"
        )
    lap = summary["laplace"]
    lines.append(
        f"{'Laplace':>16}: max |mean−ref|/sd {lap['max_mean_error_sd']:.3f}, sd/ref "
        f"{lap['sd_ratio_min']:.2f}–{lap['sd_ratio_max']:.2f}"
    )
    lines.append(f"wrote {Path(out) / 'index.html'} in {summary['runtime_s']:.1f} s")
    return "\n".join(lines)
