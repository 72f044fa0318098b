r"""The VAE worked example: scikit-learn's digits, ``GaussianKLLoss``, free bits, a KL schedule.

Data: scikit-learn's bundled ``load_digits`` (no download), 1797 images of
8 × 8 pixels. Each pixel counts the "on" pixels of a 4 × 4 block of a 32 × 32
binary bitmap (UCI optdigits), so it is an integer from 0 to 16. A fixed
permutation (the same for every ``seed``) holds out 360 images; the model
trains on the other 1437.

Model, with a latent of ``latent_dim`` dimensions (default 16):

.. math::

    z \sim \mathcal N(0, I), \qquad
    x_j \mid z \sim \mathrm{Binomial}\big(16, \mathrm{sigmoid}(f_\theta(z)_j)\big),
    \ j = 1, \dots, 64, \qquad
    q_\phi(z \mid x) = \mathcal N\big(\mu_\phi(x), \operatorname{diag} e^{v_\phi(x)}\big)

with two-hidden-layer MLPs (SiLU) for the encoder (on ``x / 16``) and the
decoder. The binomial is the likelihood of what a pixel is, a count of 16
binary pixels: ``log p(x | z) = 16 · (−BCE(x / 16, π)) + Σ_j log C(16, x_j)``,
the Bernoulli cross-entropy on ``pixels / 16`` that VAE code uses on MNIST
made a proper probability of the data. The ELBO is then a true lower bound on
``log p(x)`` in nats per image. (A Bernoulli decoder on binarised pixels would
throw the grey levels away; a Gaussian one on 17 levels is a density, not a
probability, and its ELBO is not a bound on anything discrete.)

Training: Adam with a cosine learning-rate decay on

.. math::

    \text{loss} = \mathbb E_q[-\log p(x \mid z)] + w(t)\,
    \sum_d \max\big(\lambda, \overline{\mathrm{KL}}_d\big)

(one reparameterised draw per image; :class:`kldiv.torch.GaussianKLLoss` with
``free_bits`` λ), with the KL weight ``w(t)`` from a kldiv schedule ending at
``beta``. The report uses the plain KL (no floor, weight 1): the held-out ELBO
``E_q[log p(x | z)] − KL(q(z | x) ‖ p(z))`` with the KL in closed form and the
expectation over 500 draws per image, the importance-weighted bound (IWAE,
Burda et al. 2016) ``log p(x) ≥ E log (1/K) Σ_k p(x, z_k) / q(z_k | x)`` with
the same draws, and the KL of each latent dimension with its status:
*inactive* when its activity ``Var_x E_q[z_d]`` is at most 0.01 (Burda et al.
2016: q(z_d | x) hardly depends on x; with a KL near 0 too, the dimension has
collapsed onto the prior), *at the floor* when
its batch-mean KL was below λ in at least 10 % of the last epoch's batches
(free bits then kept it from collapsing, and it carries about λ nats), and
*active* otherwise (an informative dimension that pays for its KL).
"""

from __future__ import annotations

import html
import math
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kldiv._validation import check_nonnegative_number
from kldiv.demos._report import (
    html_page,
    one_torch_thread,
    prepare_out,
    require,
    save_figure,
    write_report,
)
from kldiv.errors import KLDivError

__all__ = ["SCHEDULES", "format_summary", "run_vae"]

SCHEDULES = ("linear", "cyclical", "sigmoid", "constant")
"""The KL weight schedules ``run_vae`` (and ``kldiv demo --schedule``) accept."""

LEVELS = 16
"""A digits pixel is a count of 0 … 16 on-pixels: the binomial's number of trials."""

ACTIVE_THRESHOLD = 0.01
"""A latent dimension is active when Var_x E_q[z_d] exceeds this (Burda et al. 2016)."""

FLOORED_THRESHOLD = 0.1
"""A dimension is *at the floor* when floored in at least this share of the last epoch's batches."""

STATUSES = ("active", "at the floor", "inactive")
"""The status of a latent dimension in the report, in the order of the bar chart's legend."""

FILES = (
    "losses.png",
    "kl_per_dim.png",
    "reconstructions.png",
    "samples.png",
    "latent.png",
    "index.html",
    "summary.json",
)
"""What ``run_vae`` writes into its report folder."""


@dataclass(frozen=True)
class _Settings:
    epochs: int = 200
    beta: float = 1.0
    free_bits: float = 0.25
    schedule: str = "linear"
    latent_dim: int = 16
    hidden: int = 128
    batch_size: int = 64
    lr: float = 2e-3
    final_lr_fraction: float = 0.05
    held_out: int = 360
    split_seed: int = 0
    importance_samples: int = 500
    reconstructions_per_digit: int = 2
    sample_grid: int = 10
    dpi: int = 100


_REPORTED_SETTINGS = (
    "epochs", "beta", "free_bits", "schedule", "latent_dim", "hidden", "batch_size", "lr",
    "final_lr_fraction", "importance_samples",
)  # fmt: skip


def _check_int(value: object, name: str, minimum: int) -> int:
    """An integer (Python, NumPy or torch; not a bool) >= ``minimum``, as a Python int."""
    if not isinstance(value, bool):
        try:
            index = operator.index(value)
        except TypeError:
            pass
        else:
            if index >= minimum:
                return index
    raise KLDivError(f"`{name}` must be an integer >= {minimum}; got {value!r}")


def _check_settings(settings: _Settings) -> _Settings:
    """Checks the user's choices (KLDivError naming the argument) and normalises their types."""
    if settings.schedule not in SCHEDULES:
        raise KLDivError(
            f"`schedule` must be one of {', '.join(SCHEDULES)}; got {settings.schedule!r}"
        )
    return replace(
        settings,
        epochs=_check_int(settings.epochs, "epochs", 1),
        latent_dim=_check_int(settings.latent_dim, "latent_dim", 2),
        beta=check_nonnegative_number(settings.beta, "beta"),
        free_bits=check_nonnegative_number(settings.free_bits, "free_bits"),
    )


def _kl_weight(settings: _Settings, total_steps: int) -> Any:
    """The KL weight schedule: each ramps from 0 to ``beta`` (constant: ``beta`` throughout).

    ``linear`` reaches ``beta`` after the first quarter of the steps and
    ``sigmoid`` is centred on the middle of that quarter; ``cyclical`` is Fu et
    al.'s four cycles, each ramping over its first half.
    """
    from kldiv.torch import ConstantSchedule, CyclicalSchedule, LinearSchedule, SigmoidSchedule

    ramp = max(1, total_steps // 4)
    beta = settings.beta
    if settings.schedule == "linear":
        return LinearSchedule(ramp, start=0.0, end=beta)
    if settings.schedule == "sigmoid":
        return SigmoidSchedule(ramp, start=0.0, end=beta)
    if settings.schedule == "cyclical":
        return CyclicalSchedule(total_steps, n_cycles=4, ratio=0.5, start=0.0, end=beta)
    return ConstantSchedule(beta)


class _Data:
    """The digits as float32 counts 0 … 16, split into a training and a fixed held-out set."""

    def __init__(self, torch: Any, datasets: Any, settings: _Settings) -> None:
        bunch = datasets.load_digits()
        x = torch.tensor(bunch.data, dtype=torch.float32)
        labels = torch.tensor(bunch.target, dtype=torch.int64)
        split = torch.Generator().manual_seed(settings.split_seed)
        order = torch.randperm(x.shape[0], generator=split)
        held, train = order[: settings.held_out], order[settings.held_out :]
        self.x_train, self.y_train = x[train], labels[train]
        self.x_held, self.y_held = x[held], labels[held]
        self.x_all, self.y_all = x, labels


class _VAE:
    """Encoder x ↦ (μ, log σ²) and decoder z ↦ the binomial logits, two hidden layers each."""

    def __init__(self, torch: Any, settings: _Settings) -> None:
        nn = torch.nn
        hidden, latent = settings.hidden, settings.latent_dim
        self.torch = torch
        self.encoder = nn.Sequential(
            nn.Linear(64, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, 2 * latent),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, 64),
        )  # fmt: skip

    def parameters(self) -> list[Any]:
        return [*self.encoder.parameters(), *self.decoder.parameters()]

    def encode(self, x: Any) -> tuple[Any, Any]:
        """Posterior means and log-variances, ``(n, latent_dim)`` each."""
        mu, logvar = self.encoder(x / LEVELS).chunk(2, dim=-1)
        return mu, logvar

    def negative_log_likelihood(self, logits: Any, x: Any) -> Any:
        """−log p(x | z) for binomial(16, sigmoid(logits)) pixels, summed over them: (..., 64)."""
        torch = self.torch
        log_p = torch.nn.functional.logsigmoid(logits)
        log_not_p = torch.nn.functional.logsigmoid(-logits)
        log_binomial = math.lgamma(LEVELS + 1) - torch.lgamma(x + 1) - torch.lgamma(LEVELS + 1 - x)
        return -(x * log_p + (LEVELS - x) * log_not_p + log_binomial).sum(-1)


class _Adam:
    """Adam (Kingma & Ba 2015) with torch.optim.Adam's defaults and update, step by step.

    ``torch.optim`` imports ``torch._dynamo`` on first use, which takes about
    2 s here: most of a one-epoch run. This is the same update (the
    single-tensor form of ``torch.optim.Adam``: betas (0.9, 0.999), eps 1e-8,
    bias-corrected; the tests check it against torch's), with the learning rate
    given at each step.
    """

    def __init__(
        self, torch: Any, params: list[Any], betas: tuple[float, float] = (0.9, 0.999)
    ) -> None:
        self.torch = torch
        self.params = params
        self.betas = betas
        self.eps = 1e-8
        self.steps = 0
        self.first = [torch.zeros_like(p) for p in params]
        self.second = [torch.zeros_like(p) for p in params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self, lr: float) -> None:
        beta1, beta2 = self.betas
        self.steps += 1
        step_size = lr / (1 - beta1**self.steps)
        bias_correction2_sqrt = math.sqrt(1 - beta2**self.steps)
        with self.torch.no_grad():
            for p, m, v in zip(self.params, self.first, self.second, strict=True):
                m.lerp_(p.grad, 1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                denominator = (v.sqrt() / bias_correction2_sqrt).add_(self.eps)
                p.addcdiv_(m, denominator, value=-step_size)


def _per_dim_kl(mu: Any, logvar: Any) -> Any:
    """KL(N(μ, e^v) ‖ N(0, 1)) of every image and latent dimension, ``(n, latent_dim)``."""
    from kldiv._gaussian import diagonal_gaussian_kl

    return diagonal_gaussian_kl(mu, logvar)


def _reparameterise(mu: Any, logvar: Any, noise: Any) -> Any:
    """A draw μ + σ ε from q(z | x), differentiable in μ and log σ² (the reparameterisation)."""
    return mu + noise * (0.5 * logvar).exp()


def _evaluate_curve(vae: _VAE, x: Any, noise: Any) -> dict[str, float]:
    """Held-out reconstruction, KL and ELBO (nats per image) with fixed noise, one draw each."""
    torch = vae.torch
    with torch.no_grad():
        mu, logvar = vae.encode(x)
        z = _reparameterise(mu, logvar, noise)
        reconstruction = vae.negative_log_likelihood(vae.decoder(z), x).double().mean()
        kl = _per_dim_kl(mu, logvar).sum(-1).double().mean()
    return {
        "reconstruction": float(reconstruction),
        "kl": float(kl),
        "elbo": float(-(reconstruction + kl)),
    }


def _train(
    vae: _VAE,
    data: _Data,
    settings: _Settings,
    seed: int,
    progress: Callable[[int, dict[str, float]], None] | None,
) -> dict[str, Any]:
    """Adam on the free-bits objective; the train and held-out curves per epoch."""
    from kldiv.torch import GaussianKLLoss

    torch = vae.torch
    n_train = data.x_train.shape[0]
    steps_per_epoch = math.ceil(n_train / settings.batch_size)
    total_steps = steps_per_epoch * settings.epochs
    weight = _kl_weight(settings, total_steps)
    kl_loss = GaussianKLLoss(free_bits=settings.free_bits)
    optimizer = _Adam(torch, vae.parameters())
    floor = settings.final_lr_fraction

    def learning_rate(step: int) -> float:
        cosine = 0.5 * (1 + math.cos(math.pi * step / total_steps))
        return settings.lr * (floor + (1 - floor) * cosine)

    gen = torch.Generator().manual_seed(seed + 1)
    held_noise = torch.randn(
        data.x_held.shape[0], settings.latent_dim, generator=torch.Generator().manual_seed(seed + 2)
    )
    names = ("reconstruction", "kl", "elbo", "objective", "kl_weight")
    train: dict[str, list[float]] = {name: [] for name in names}
    held: dict[str, list[float]] = {name: [] for name in ("reconstruction", "kl", "elbo")}
    for name, value in _evaluate_curve(vae, data.x_held, held_noise).items():
        held[name].append(value)
    if progress is not None:
        progress(0, {name: values[-1] for name, values in held.items()})
    step, batches = 0, 0
    floored = torch.zeros(settings.latent_dim, dtype=torch.int64)
    for epoch in range(1, settings.epochs + 1):
        sums = dict.fromkeys(("reconstruction", "kl", "objective"), 0.0)
        order = torch.randperm(n_train, generator=gen)
        for start in range(0, n_train, settings.batch_size):
            x = data.x_train[order[start : start + settings.batch_size]]
            mu, logvar = vae.encode(x)
            noise = torch.randn(mu.shape, generator=gen)
            z = _reparameterise(mu, logvar, noise)
            reconstruction = vae.negative_log_likelihood(vae.decoder(z), x).mean()
            w = weight(step)
            objective = reconstruction + w * kl_loss(mu, logvar)
            optimizer.zero_grad()
            objective.backward()
            optimizer.step(learning_rate(step))
            step += 1
            with torch.no_grad():
                per_dim = _per_dim_kl(mu, logvar).mean(0)
                if epoch == settings.epochs:
                    floored += per_dim < settings.free_bits
                    batches += 1
            n = x.shape[0]
            sums["reconstruction"] += n * reconstruction.item()
            sums["kl"] += n * per_dim.sum().item()
            sums["objective"] += n * objective.item()
        if not all(math.isfinite(v) for v in sums.values()):
            raise KLDivError(
                f"training diverged in epoch {epoch}: the loss is not finite "
                f"(beta={settings.beta}, free_bits={settings.free_bits}, "
                f"latent_dim={settings.latent_dim}, seed={seed})"
            )
        for name in ("reconstruction", "kl", "objective"):
            train[name].append(sums[name] / n_train)
        train["elbo"].append(-(train["reconstruction"][-1] + train["kl"][-1]))
        train["kl_weight"].append(weight(step))
        for name, value in _evaluate_curve(vae, data.x_held, held_noise).items():
            held[name].append(value)
        if progress is not None:
            progress(epoch, {name: values[-1] for name, values in held.items()})
    return {
        "train": train,
        "held_out": held,
        "steps": total_steps,
        "floored_fraction": (floored / batches).tolist(),
    }


def _bound(vae: _VAE, x: Any, samples: int, seed: int, chunk: int = 100) -> dict[str, Any]:
    """The ELBO (exact KL, Monte Carlo reconstruction) and the IWAE bound, per image.

    Both use the same ``samples`` draws z_k ~ q(z | x); the IWAE bound is
    ``logsumexp_k log w_k − log K`` with ``log w = log p(x | z) + log p(z) − log q(z | x)``.
    """
    torch = vae.torch
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        mu, logvar = vae.encode(x)
        per_dim = _per_dim_kl(mu, logvar).double()
        std = (0.5 * logvar).exp()
        log_weights, reconstruction = [], torch.zeros(x.shape[0], dtype=torch.float64)
        half_log_2pi = 0.5 * math.log(2 * math.pi)
        for start in range(0, samples, chunk):
            k = min(chunk, samples - start)
            noise = torch.randn((k, *mu.shape), generator=gen)
            z = mu + noise * std
            nll = vae.negative_log_likelihood(vae.decoder(z), x).double()
            log_prior = (-0.5 * z * z - half_log_2pi).sum(-1).double()
            log_q = (-0.5 * noise * noise - half_log_2pi - 0.5 * logvar).sum(-1).double()
            log_weights.append(-nll + log_prior - log_q)
            reconstruction += nll.sum(0)
        log_w = torch.cat(log_weights)
    reconstruction = reconstruction / samples
    kl = per_dim.sum(-1)
    return {
        "mu": mu,
        "per_dim_kl": per_dim,
        "reconstruction": reconstruction,
        "kl": kl,
        "elbo": -(reconstruction + kl),
        "iwae": torch.logsumexp(log_w, 0) - math.log(samples),
    }


def _mean_and_stderr(values: Any) -> tuple[float, float]:
    n = values.shape[0]
    return float(values.mean()), float(values.std() / math.sqrt(n))


def _mosaic(images: Any, rows: int, cols: int, gap: int = 1) -> Any:
    """``rows × cols`` 8 × 8 images tiled into one array, separated by ``gap`` NaN pixels."""
    import numpy as np

    size = 8 + gap
    canvas = np.full((rows * size - gap, cols * size - gap), np.nan)
    for index, image in enumerate(images):
        r, c = divmod(index, cols)
        canvas[r * size : r * size + 8, c * size : c * size + 8] = image.reshape(8, 8)
    return canvas


def _show_mosaic(ax: Any, canvas: Any, title: str) -> None:
    import matplotlib as mpl

    cmap = mpl.colormaps["gray_r"].with_extremes(bad="white")
    ax.imshow(canvas, cmap=cmap, vmin=0, vmax=LEVELS, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()


def _plot_losses(
    figure_cls: Any, history: dict[str, Any], iwae: float, path: Path, dpi: int
) -> None:
    fig = figure_cls(figsize=(13, 3.9), layout="constrained")
    axes = fig.subplots(1, 3)
    train, held = history["train"], history["held_out"]
    train_epochs = list(range(1, len(train["elbo"]) + 1))
    held_epochs = list(range(len(held["elbo"])))
    titles = {
        "reconstruction": "Reconstruction  E_q[−log p(x | z)]",
        "kl": "KL(q(z | x) ‖ p(z))",
        "elbo": "ELBO",
    }
    for ax, name in zip(axes, ("reconstruction", "kl", "elbo"), strict=True):
        ax.plot(train_epochs, train[name], color="C0", lw=1.4, label="train (mean over the epoch)")
        ax.plot(held_epochs, held[name], color="C1", lw=1.4, label="held-out (end of epoch)")
        ax.set(xlabel="epoch", ylabel="nats per image", title=titles[name])
        if name == "kl":  # from 0: the warm-up's rise and fall is the point
            ax.set_ylim(0, 1.05 * max(max(held[name]), max(train[name]), 1e-3))
            continue
        # The first epochs dwarf the rest: show the last 90 % of the run on a fitting scale.
        tail = held[name][max(1, len(held[name]) // 10) :] + train[name][len(train[name]) // 10 :]
        if name == "elbo":
            tail.append(iwae)
        if tail:
            low, high = min(tail), max(tail)
            pad = 0.08 * (high - low) + 1e-3 * max(1.0, abs(high))
            ax.set_ylim(low - pad, high + pad)
    axes[2].axhline(iwae, color="k", ls="--", lw=1, label=f"held-out IWAE bound {iwae:.2f}")
    weight_ax = axes[1].twinx()
    weight_ax.plot(train_epochs, train["kl_weight"], color="0.5", ls=":", lw=1.2)
    weight_ax.set_ylim(0, 1.05 * max(max(train["kl_weight"]), 1e-3))
    weight_ax.set_ylabel("KL weight (dotted)", color="0.4")
    axes[0].legend(fontsize=8)
    axes[2].legend(fontsize=8, loc="lower right")
    save_figure(fig, path, dpi)


def _status(activity: float, floored_fraction: float) -> str:
    """A latent dimension's status: inactive, held at the free-bits floor, or active."""
    if activity <= ACTIVE_THRESHOLD:
        return "inactive"
    if floored_fraction >= FLOORED_THRESHOLD:
        return "at the floor"
    return "active"


_STATUS_COLORS = dict(zip(STATUSES, ("C0", "C1", "0.6"), strict=True))


def _plot_kl_per_dim(
    figure_cls: Any, kl: list[float], status: list[str], free_bits: float, path: Path, dpi: int
) -> None:
    from matplotlib.patches import Patch

    d = len(kl)
    fig = figure_cls(figsize=(min(13.0, 3.0 + 0.45 * d), 3.8), layout="constrained")
    ax = fig.subplots()
    ax.bar(range(1, d + 1), kl, color=[_STATUS_COLORS[s] for s in status])
    shown = [name for name in STATUSES if free_bits > 0 or name != "at the floor"]
    handles = [
        Patch(color=_STATUS_COLORS[name], label=f"{name} ({status.count(name)})") for name in shown
    ]
    if free_bits > 0:
        handles.append(
            ax.axhline(
                free_bits, color="C3", ls="--", lw=1.2, label=f"free-bits floor λ = {free_bits:g}"
            )
        )
    ax.set_ylim(0, 1.3 * max(max(kl), free_bits, 1e-3))  # room for the legend above the bars
    ax.legend(handles=handles, fontsize=8, loc="upper center", ncols=len(handles))
    step = max(1, d // 32)
    ax.set_xticks(range(1, d + 1, step))
    ax.set(
        xlabel="latent dimension",
        ylabel="KL (nats per image)",
        title=f"Held-out KL of each latent dimension (total {sum(kl):.2f} nats)",
        xlim=(0.3, d + 0.7),
    )
    save_figure(fig, path, dpi)


def _plot_reconstructions(
    figure_cls: Any, originals: Any, means: Any, path: Path, dpi: int
) -> None:
    cols = originals.shape[0]
    fig = figure_cls(figsize=(0.5 * cols + 0.4, 1.9), layout="constrained")
    top, bottom = fig.subplots(2, 1)
    _show_mosaic(top, _mosaic(originals, 1, cols), "held-out images")
    _show_mosaic(bottom, _mosaic(means, 1, cols), "reconstructions: 16 · π(μ(x))")
    save_figure(fig, path, dpi)


def _plot_samples(figure_cls: Any, means: Any, grid: int, path: Path, dpi: int) -> None:
    fig = figure_cls(figsize=(4.6, 4.8), layout="constrained")
    _show_mosaic(fig.subplots(), _mosaic(means, grid, grid), "samples: 16 · π(z), z ~ N(0, I)")
    save_figure(fig, path, dpi)


def _plot_latent(
    figure_cls: Any,
    mu: Any,
    labels: Any,
    dims: tuple[int, int],
    kl: list[float],
    path: Path,
    dpi: int,
) -> None:
    fig = figure_cls(figsize=(6.4, 5.6), layout="constrained")
    ax = fig.subplots()
    a, b = dims
    points = ax.scatter(
        mu[:, a], mu[:, b], c=labels, cmap="tab10", vmin=-0.5, vmax=9.5, s=7, alpha=0.75,
        linewidths=0,
    )  # fmt: skip
    for digit in range(10):
        where = labels == digit
        if where.any():
            x, y = float(mu[where, a].mean()), float(mu[where, b].mean())
            ax.annotate(
                str(digit), (x, y), ha="center", va="center", fontsize=11, weight="bold",
                bbox={"boxstyle": "circle,pad=0.2", "fc": "white", "ec": "0.3", "alpha": 0.85},
            )  # fmt: skip
    import matplotlib.patches as patches

    for radius in (1.0, 2.0):
        ax.add_patch(patches.Circle((0, 0), radius, fill=False, ls=":", ec="0.5", lw=0.8))
    ax.set_aspect("equal", adjustable="datalim")
    ax.set(
        xlabel=f"z{a + 1}  (KL {kl[a]:.2f} nats)",
        ylabel=f"z{b + 1}  (KL {kl[b]:.2f} nats)",
        title="Posterior means μ(x) of every image, the two highest-KL dimensions",
    )
    ax.title.set_fontsize(10)
    colorbar = fig.colorbar(points, ax=ax, ticks=range(10))
    colorbar.set_label("digit")
    save_figure(fig, path, dpi)


def _html(summary: dict[str, Any]) -> str:
    held, train, s = summary["held_out"], summary["train"], summary["settings"]
    rows = "".join(
        f"<tr><td>{name}</td><td>{values['elbo']:.2f}</td><td>{values['reconstruction']:.2f}</td>"
        f"<td>{values['kl']:.2f}</td></tr>"
        for name, values in (("held-out", held), ("train", train))
    )
    dims = "".join(
        f"<tr><td>z{i + 1}</td><td>{kl:.3f}</td><td>{activity:.3f}</td>"
        f"<td>{floored:.2f}</td><td>{status}</td></tr>"
        for i, (kl, activity, floored, status) in enumerate(
            zip(
                summary["kl_per_dim"],
                summary["activity_per_dim"],
                summary["floored_fraction"],
                summary["status_per_dim"],
                strict=True,
            )
        )
    )
    a, b = summary["scatter_dims"]
    schedule = html.escape(summary["schedule_description"])
    body = f"""<h1>A VAE on scikit-learn's digits with <code>kldiv.torch.GaussianKLLoss</code></h1>
<p>{summary["data"]["n_train"]} training and {summary["data"]["n_held_out"]} held-out images of
8 × 8 pixels, each pixel a count from 0 to 16, modelled as Binomial(16, π(z)) given a latent
z ~ N(0, I<sub>{s["latent_dim"]}</sub>). Encoder and decoder are MLPs with two hidden layers of
{s["hidden"]} units; Adam (learning rate {s["lr"]:g}, cosine decay to
{s["final_lr_fraction"]:.0%} of it), batches of {s["batch_size"]},
{s["epochs"]} epochs ({summary["steps"]} steps). The KL term is
<code>GaussianKLLoss(free_bits={s["free_bits"]:g})</code>, weighted by {schedule}.
Seed {summary["seed"]}; run time {summary["runtime_s"]:.1f} s.</p>
<p><b>Held-out ELBO {held["elbo"]:.2f} ± {held["elbo_stderr"]:.2f} nats per image</b>
(± one standard error over the images); the importance-weighted bound with
K = {held["iwae_samples"]} draws gives log p(x) ≥ {held["iwae"]:.2f}, so the encoder's
posteriors are on average at least {held["iwae_gap"]:.2f} nats from the true ones
(ELBO = log p(x) − KL(q(z | x) ‖ p(z | x))). Of the {s["latent_dim"]} latent dimensions,
{_status_counts(summary)}.</p>
<table>
<tr><th>nats per image</th><th>ELBO</th><th>reconstruction E<sub>q</sub>[−log p(x | z)]</th>
<th>KL(q(z | x) ‖ p(z))</th></tr>
{rows}
</table>
<p>The training images fit better than the held-out ones: 1437 images are few for this model,
and the difference between the two ELBOs is what it has memorised.</p>
<h2>Training curves</h2>
<p>Reconstruction, KL and ELBO per epoch, on the training images (averaged over each epoch while
the weights change) and on the held-out images (after each epoch, the same noise every time).
The KL shown is the plain KL: no free-bits floor, weight 1. The dotted line is the KL weight of
the schedule; the dashed one the held-out IWAE bound, which the ELBO approaches from below.</p>
<img src="losses.png" alt="reconstruction, KL and ELBO per epoch">
<h2>KL per latent dimension</h2>
<p>Each dimension's KL, averaged over the held-out images; the KL term of the ELBO is their sum.
The dashed line is the free-bits floor λ: a dimension whose batch-mean KL is below λ gets no
gradient from the KL term. A dimension the decoder does not need would collapse onto the prior
(KL 0, and <i>inactive</i>: its posterior mean does not vary with the image,
Var<sub>x</sub> E<sub>q</sub>[z<sub>d</sub>] ≤ {summary["active_threshold"]:g}); with free bits it
settles <i>at the floor</i> instead (floored in at least {summary["floored_threshold"]:.0%} of the
last epoch's batches), carrying about λ nats. The other <i>active</i> dimensions are the
informative ones: the decoder pays their KL because they improve the reconstruction more. Run
with <code>--free-bits 0</code> to see the collapse free bits prevent.</p>
<img src="kl_per_dim.png" alt="KL per latent dimension">
<table><tr><th>dimension</th><th>KL (nats)</th><th>activity Var<sub>x</sub> E<sub>q</sub>[z]</th>
<th>share of last-epoch batches floored</th><th>status</th></tr>{dims}</table>
<h2>Reconstructions</h2>
<p>Held-out images (top) and the decoder's mean 16 π(μ(x)) at the posterior mean (bottom).</p>
<img src="reconstructions.png" alt="originals and reconstructions">
<h2>Samples from the prior</h2>
<p>The decoder's mean 16 π(z) for z drawn from the prior N(0, I): what the model thinks digits
look like.</p>
<img src="samples.png" alt="samples from the prior">
<h2>The latent space</h2>
<p>Posterior means μ(x) of all {summary["data"]["n_images"]} images in the two dimensions with the
largest KL (z{a + 1} and z{b + 1}), the most informative pair, coloured by digit; each class's
centroid is labelled. The dotted circles are the prior's 1σ and 2σ. With a latent larger than 2
this is a slice: classes that overlap here can be apart in the other dimensions.</p>
<img src="latent.png" alt="latent scatter">
"""
    return html_page("kldiv: a VAE on scikit-learn's digits", body, width=1000)


def _status_counts(summary: dict[str, Any]) -> str:
    status = summary["status_per_dim"]
    return ", ".join(f"{status.count(name)} {name}" for name in STATUSES)


def _schedule_description(settings: _Settings) -> str:
    beta = f"{settings.beta:g}"
    return {
        "linear": f"a linear warm-up from 0 to β = {beta} over the first quarter of the steps",
        "sigmoid": f"a sigmoid warm-up from 0 to β = {beta} over the first quarter of the steps",
        "cyclical": f"cyclical annealing, 4 cycles ramping from 0 to β = {beta} over each half",
        "constant": f"a constant β = {beta}",
    }[settings.schedule]


def run_vae(
    out: str | Path = "kldiv-vae-report",
    *,
    seed: int = 0,
    epochs: int = 200,
    beta: float = 1.0,
    free_bits: float = 0.25,
    schedule: str = "linear",
    latent_dim: int = 16,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Trains the VAE on scikit-learn's digits and writes its report into ``out``.

    The report: ``losses.png``, ``kl_per_dim.png``, ``reconstructions.png``,
    ``samples.png``, ``latent.png``, ``index.html`` and ``summary.json``. The
    same ``seed`` gives the same numbers in every process (one torch thread).

    Args:
        out: the output folder (created if needed; checked before training).
        seed: seeds the weights, the minibatches and every draw. The held-out
            split is the same for every seed.
        epochs: passes over the 1437 training images (23 Adam steps each).
        beta: the KL weight the schedule ends at (1 is the ELBO; β-VAE above).
        free_bits: λ, the free-bits floor in nats per latent dimension (0: off).
        schedule: the KL weight schedule: ``"linear"``, ``"cyclical"``,
            ``"sigmoid"`` or ``"constant"``.
        latent_dim: the number of latent dimensions, at least 2.
        progress: called before training (epoch 0) and after every epoch with
            the epoch number and the held-out ``reconstruction``, ``kl`` and
            ``elbo`` (nats per image).

    Returns:
        The summary (also written as ``summary.json``).

    Raises:
        KLDivError: an argument is out of range, or training diverged.
        ImportError: torch, scikit-learn or matplotlib is missing (the message
            says what to install).
        OSError: ``out`` cannot be created or written to.

    Examples:
        >>> import tempfile
        >>> from kldiv.demos import run_vae
        >>> with tempfile.TemporaryDirectory() as out:
        ...     summary = run_vae(out, epochs=1, seed=1)
        >>> held_out = summary["held_out"]  # nats per image
        >>> held_out["elbo"] < held_out["iwae"] < 0  # ELBO <= IWAE bound <= log p(x)
        True
        >>> abs(sum(summary["kl_per_dim"]) - held_out["kl"]) < 1e-9
        True
        >>> summary["files"][:2]
        ['losses.png', 'kl_per_dim.png']
    """
    start = time.perf_counter()
    settings = _check_settings(
        _Settings(
            epochs=epochs,
            beta=beta,
            free_bits=free_bits,
            schedule=schedule,
            latent_dim=latent_dim,
        )
    )
    torch, datasets, mpl_figure = require("vae")
    out = prepare_out(out)
    with one_torch_thread(torch):
        summary = _run(torch, datasets, mpl_figure, out, seed, settings, progress)
    summary["runtime_s"] = time.perf_counter() - start
    write_report(out, _html(summary), summary)
    return summary


def _run(
    torch: Any,
    datasets: Any,
    mpl_figure: Any,
    out: Path,
    seed: int,
    settings: _Settings,
    progress: Callable[[int, dict[str, float]], None] | None,
) -> dict[str, Any]:
    data = _Data(torch, datasets, settings)
    with torch.random.fork_rng():  # the caller's global RNG state is left alone
        torch.manual_seed(seed)
        vae = _VAE(torch, settings)
    history = _train(vae, data, settings, seed, progress)

    held = _bound(vae, data.x_held, settings.importance_samples, seed + 3)
    train = _bound(vae, data.x_train, 8, seed + 4)
    kl_per_dim = held["per_dim_kl"].mean(0).tolist()
    activity = held["mu"].double().var(0).tolist()
    floored = history["floored_fraction"]
    status = [_status(a, f) for a, f in zip(activity, floored, strict=True)]
    ranked = sorted(range(settings.latent_dim), key=lambda d: -kl_per_dim[d])
    scatter_dims = (ranked[0], ranked[1])
    elbo, elbo_stderr = _mean_and_stderr(held["elbo"])
    iwae = float(held["iwae"].mean())

    figure = mpl_figure.Figure
    _plot_losses(figure, history, iwae, out / "losses.png", settings.dpi)
    _plot_kl_per_dim(
        figure, kl_per_dim, status, settings.free_bits, out / "kl_per_dim.png", settings.dpi
    )
    with torch.no_grad():
        picks = torch.cat(
            [
                (data.y_held == digit).nonzero()[: settings.reconstructions_per_digit, 0]
                for digit in range(10)
            ]
        )
        originals = data.x_held[picks]
        mu, _ = vae.encode(originals)
        means = LEVELS * torch.sigmoid(vae.decoder(mu))
        _plot_reconstructions(
            figure, originals.numpy(), means.numpy(), out / "reconstructions.png", settings.dpi
        )
        z = torch.randn(
            settings.sample_grid**2,
            settings.latent_dim,
            generator=torch.Generator().manual_seed(seed + 5),
        )
        samples = LEVELS * torch.sigmoid(vae.decoder(z))
        _plot_samples(
            figure, samples.numpy(), settings.sample_grid, out / "samples.png", settings.dpi
        )
        mu_all, _ = vae.encode(data.x_all)
        _plot_latent(
            figure,
            mu_all.numpy(),
            data.y_all.numpy(),
            scatter_dims,
            kl_per_dim,
            out / "latent.png",
            settings.dpi,
        )

    held_curve = history["held_out"]
    kl_curve = history["train"]["kl"] + held_curve["kl"]
    return {
        "demo": "vae",
        "seed": seed,
        "settings": {name: getattr(settings, name) for name in _REPORTED_SETTINGS},
        "schedule_description": _schedule_description(settings),
        "steps": history["steps"],
        "data": {
            "name": "scikit-learn load_digits",
            "n_images": int(data.x_all.shape[0]),
            "n_train": int(data.x_train.shape[0]),
            "n_held_out": int(data.x_held.shape[0]),
            "pixels": 64,
            "levels": LEVELS + 1,
        },
        "likelihood": "Binomial(16, sigmoid(decoder(z))) per pixel",
        "held_out": {
            "elbo": elbo,
            "elbo_stderr": elbo_stderr,
            "reconstruction": float(held["reconstruction"].mean()),
            "kl": float(held["kl"].mean()),
            "iwae": iwae,
            "iwae_samples": settings.importance_samples,
            "iwae_gap": iwae - elbo,
        },
        "train": {
            "elbo": float(train["elbo"].mean()),
            "reconstruction": float(train["reconstruction"].mean()),
            "kl": float(train["kl"].mean()),
        },
        "kl_per_dim": kl_per_dim,
        "activity_per_dim": activity,
        "floored_fraction": floored,
        "status_per_dim": status,
        "active_threshold": ACTIVE_THRESHOLD,
        "floored_threshold": FLOORED_THRESHOLD,
        "scatter_dims": list(scatter_dims),
        "history": {"train": history["train"], "held_out": held_curve},
        "checks": {
            "kl_finite": all(math.isfinite(v) for v in kl_curve),
            "kl_nonnegative": all(v >= 0 for v in kl_curve),
            "elbo_improved": held_curve["elbo"][-1] > held_curve["elbo"][0],
        },
        "files": list(FILES),
    }


def format_summary(summary: dict[str, Any], out: str | Path) -> str:
    """The short report ``kldiv demo`` prints.

    Args:
        summary: what :func:`run_vae` returned.
        out: the report folder.

    Returns:
        A few lines of text.
    """
    s, held, train = summary["settings"], summary["held_out"], summary["train"]
    kl = ", ".join(f"{v:.2f}" for v in summary["kl_per_dim"])
    epochs = f"{s['epochs']} epoch" + ("s" if s["epochs"] != 1 else "")
    lines = [
        f"kldiv demo: VAE on scikit-learn's digits ({summary['data']['n_train']} train / "
        f"{summary['data']['n_held_out']} held-out 8×8 images), latent {s['latent_dim']}, "
        f"{epochs}, β {s['beta']:g} ({s['schedule']} schedule), free bits "
        f"{s['free_bits']:g} nats/dim, seed {summary['seed']}",
        f"held-out ELBO {held['elbo']:.2f} ± {held['elbo_stderr']:.2f} nats/image "
        f"= −(reconstruction {held['reconstruction']:.2f} + KL {held['kl']:.2f}); "
        f"log p(x) ≥ {held['iwae']:.2f} (IWAE, K={held['iwae_samples']}); "
        f"train ELBO {train['elbo']:.2f}",
        f"KL per latent dim (nats): {kl}; {_status_counts(summary)}",
    ]
    failed = [name for name, ok in summary["checks"].items() if not ok]
    if failed:
        lines.append(f"warning: sanity checks failed: {', '.join(failed)}")
    lines.append(f"wrote {Path(out) / 'index.html'} in {summary['runtime_s']:.1f} s")
    return "\n".join(lines)
