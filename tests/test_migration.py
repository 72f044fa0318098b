"""docs/migration.md: every row of its tables, run against the library it replaces.

Each table row pairs a call of torch, torch.distributions, optax or SciPy with the
kldiv call that computes the same thing. ``ROWS`` below holds one check per row,
keyed by the two code cells exactly as the page prints them, and
``test_every_table_row_has_a_check`` fails when the page and the checks differ. The
checks compute both sides on the same inputs with the real libraries; the traps the
page describes (NaN at masked entries, silent renormalisation, reductions) are
asserted separately below.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import kldiv

try:  # the torch rows skip without torch; the others run
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = F = None

MIGRATION_PAGE = Path(__file__).resolve().parents[1] / "docs" / "migration.md"
_CODE_CELL = re.compile(r"^`([^`]+)`$")

ROWS: dict[tuple[str, str], Callable[[], None]] = {}


def row(theirs: str, ours: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Registers the check of the table row whose two code cells are ``theirs`` and ``ours``."""

    def register(check: Callable[[], None]) -> Callable[[], None]:
        assert (theirs, ours) not in ROWS, f"two checks for the row {theirs!r}"
        ROWS[theirs, ours] = check
        return check

    return register


def table_rows(markdown: str) -> list[tuple[str, str]]:
    """The (first, second) cells of every table row whose first two cells are one code span."""
    rows = []
    for line in markdown.splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2:
            continue
        first, second = (_CODE_CELL.match(cell) for cell in cells[:2])
        if first and second:
            rows.append((first.group(1), second.group(1)))
    return rows


def test_every_table_row_has_a_check():
    """The migration tables and ROWS list the same calls, each row once."""
    rows = table_rows(MIGRATION_PAGE.read_text(encoding="utf-8"))
    assert len(rows) == len(set(rows)), "a row appears twice in docs/migration.md"
    assert len(rows) >= 20
    missing_checks = set(rows) - set(ROWS)
    stale_checks = set(ROWS) - set(rows)
    assert not missing_checks, f"rows without a check: {sorted(missing_checks)}"
    assert not stale_checks, f"checks of rows no longer on the page: {sorted(stale_checks)}"


def test_table_rows_parses_code_cells():
    """The parser takes rows whose first two cells are code, and nothing else."""
    page = "\n".join(
        [
            "| torch | kldiv | notes |",
            "|---|---|---|",
            "| `a(x)` | `b(x)` | a note with `code` |",
            "| prose | `b(x)` | |",
            "text | not a row",
        ]
    )
    assert table_rows(page) == [("a(x)", "b(x)")]


# ---------------------------------------------------------------------------- inputs


def _probs(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Strictly positive rows on the simplex (every library agrees on those), float64."""
    x = np.random.default_rng(seed).gamma(0.8, size=shape) + 1e-3
    return x / x.sum(axis=-1, keepdims=True)


def _weights(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Positive weights whose rows do not sum to 1."""
    return np.random.default_rng(seed).gamma(1.5, 2.0, size=shape) + 1e-3


def _close(actual, expected, *, rtol: float = 1e-10, atol: float = 1e-12) -> None:
    """``actual`` and ``expected`` (arrays of any library) hold the same finite numbers."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert np.all(np.isfinite(expected)), expected
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def _need_torch() -> None:
    if torch is None:
        pytest.skip("torch is not installed")


def _torch_pair(shape: tuple[int, ...]):
    """``p``, ``log_q`` as float64 torch tensors of ``shape``."""
    _need_torch()
    p = torch.from_numpy(_probs(shape, 1))
    log_q = torch.from_numpy(np.log(_probs(shape, 2)))
    return p, log_q


# ---------------------------------------------------------------------- torch.nn.functional


@row(
    'F.kl_div(log_q, p, reduction="batchmean")',
    "kldiv.kl_from_log_probs(p.log(), log_q).mean()",
)
def _batchmean_2d():
    _need_torch()
    p, log_q = _torch_pair((6, 9))
    _close(
        kldiv.kl_from_log_probs(p.log(), log_q).mean(),
        F.kl_div(log_q, p, reduction="batchmean"),
    )


@row(
    'F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)',
    "kldiv.kl_from_log_probs(log_p, log_q).mean()",
)
def _batchmean_log_target():
    _need_torch()
    p, log_q = _torch_pair((6, 9))
    log_p = p.log()
    _close(
        kldiv.kl_from_log_probs(log_p, log_q).mean(),
        F.kl_div(log_q, log_p, reduction="batchmean", log_target=True),
    )


@row('F.kl_div(log_q, p, reduction="sum")', "kldiv.kl_from_log_probs(p.log(), log_q).sum()")
def _sum():
    _need_torch()
    p, log_q = _torch_pair((2, 3, 9))
    _close(kldiv.kl_from_log_probs(p.log(), log_q).sum(), F.kl_div(log_q, p, reduction="sum"))


@row('F.kl_div(log_q, p, reduction="none").sum(-1)', "kldiv.kl_from_log_probs(p.log(), log_q)")
def _none():
    _need_torch()
    p, log_q = _torch_pair((2, 3, 9))
    _close(
        kldiv.kl_from_log_probs(p.log(), log_q),
        F.kl_div(log_q, p, reduction="none").sum(-1),
    )


@row(
    'F.kl_div(log_q, p, reduction="mean")',
    "kldiv.kl_from_log_probs(p.log(), log_q).mean() / p.shape[-1]",
)
def _mean():
    _need_torch()
    p, log_q = _torch_pair((2, 3, 9))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's own warning about "mean"
        theirs = F.kl_div(log_q, p, reduction="mean")
    _close(kldiv.kl_from_log_probs(p.log(), log_q).mean() / p.shape[-1], theirs)


@row(
    'F.kl_div(log_q, p, reduction="batchmean")',
    "kldiv.kl_from_log_probs(p.log(), log_q).sum() / p.shape[0]",
)
def _batchmean_3d():
    _need_torch()
    p, log_q = _torch_pair((2, 5, 9))
    _close(
        kldiv.kl_from_log_probs(p.log(), log_q).sum() / p.shape[0],
        F.kl_div(log_q, p, reduction="batchmean"),
    )


@row(
    'F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), reduction="none", '
    "log_target=True).sum(-1)",
    "kldiv.kl_from_logits(t, s)",
)
def _logits():
    _need_torch()
    gen = torch.Generator().manual_seed(0)
    t = 3 * torch.randn(4, 11, dtype=torch.float64, generator=gen)
    s = 3 * torch.randn(4, 11, dtype=torch.float64, generator=gen)
    _close(
        kldiv.kl_from_logits(t, s),
        F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), reduction="none", log_target=True).sum(
            -1
        ),
    )


@row(
    'F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean") * T**2',
    "DistillationLoss(temperature=T)(s, t)",
)
def _distillation():
    _need_torch()
    from kldiv.torch import DistillationLoss

    gen = torch.Generator().manual_seed(1)
    t = 2 * torch.randn(8, 13, dtype=torch.float64, generator=gen)
    s = (2 * torch.randn(8, 13, dtype=torch.float64, generator=gen)).requires_grad_()
    T = 2.5  # noqa: N806 (the page's name)
    ours = DistillationLoss(temperature=T)(s, t)
    (grad_ours,) = torch.autograd.grad(ours, s)
    theirs = F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean") * T**2
    (grad_theirs,) = torch.autograd.grad(theirs, s)
    _close(ours.detach(), theirs.detach())
    _close(grad_ours, grad_theirs)


@row(
    'nn.KLDivLoss(reduction="batchmean", log_target=True)(log_q, log_p)',
    'KLDivLoss(input="log_probs")(log_p, log_q)',
)
def _kldivloss_module():
    _need_torch()
    from kldiv.torch import KLDivLoss

    p, log_q = _torch_pair((6, 9))
    log_p = p.log()
    _close(
        KLDivLoss(input="log_probs")(log_p, log_q),
        torch.nn.KLDivLoss(reduction="batchmean", log_target=True)(log_q, log_p),
    )


# ------------------------------------------------------------------------ torch.distributions


def _torch_distribution_pairs():
    """Pairs torch.distributions has closed forms for, float64, with a batch."""
    _need_torch()
    td = torch.distributions

    def t(*values):
        return torch.tensor(values, dtype=torch.float64)

    eye = torch.eye(3, dtype=torch.float64)
    a = torch.tensor([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]], dtype=torch.float64)
    return [
        (td.Normal(t(0.0, 1.0), t(1.0, 0.5)), td.Normal(t(1.0, -1.0), t(2.0, 1.5))),
        (td.Gamma(t(2.0, 0.7), t(3.0, 1.0)), td.Gamma(t(1.5, 2.0), t(1.0, 0.5))),
        (td.Beta(t(2.0, 0.5), t(3.0, 1.5)), td.Beta(t(1.0, 2.0), t(1.0, 4.0))),
        (td.Categorical(probs=t(0.2, 0.3, 0.5)), td.Categorical(probs=t(0.4, 0.4, 0.2))),
        (td.Dirichlet(t(1.0, 2.0, 3.0)), td.Dirichlet(t(2.0, 2.0, 0.5))),
        (td.Poisson(t(3.0, 0.4)), td.Poisson(t(1.0, 2.5))),
        (
            td.MultivariateNormal(t(0.0, 1.0, -1.0), covariance_matrix=a),
            td.MultivariateNormal(t(0.5, 0.0, 0.0), scale_tril=0.7 * eye),
        ),
    ]


@row(
    "torch.distributions.kl_divergence(p_dist, q_dist)",
    "kldiv.kl_divergence(p_dist, q_dist)",
)
def _distributions_exact():
    _need_torch()
    for p_dist, q_dist in _torch_distribution_pairs():
        ours = kldiv.kl_divergence(p_dist, q_dist)
        assert isinstance(ours, torch.Tensor), type(ours)
        _close(ours, torch.distributions.kl_divergence(p_dist, q_dist))
    # gradients flow to the parameters, the same as torch's
    loc = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    scale = torch.tensor([0.8, 1.7], dtype=torch.float64, requires_grad=True)
    q_dist = torch.distributions.Normal(torch.zeros(2, dtype=torch.float64), 1.0)
    grads = [
        torch.autograd.grad(kl(torch.distributions.Normal(loc, scale), q_dist).sum(), (loc, scale))
        for kl in (kldiv.kl_divergence, torch.distributions.kl_divergence)
    ]
    for ours, theirs in zip(*grads, strict=True):
        _close(ours, theirs)


@row("torch.distributions.kl_divergence(p_dist, q_dist)", "kldiv.estimate(p_dist, q_dist)")
def _distributions_estimate():
    _need_torch()
    from scipy import integrate, stats

    p_dist = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.5)
    q_dist = torch.distributions.StudentT(torch.tensor(3.0, dtype=torch.float64), 0.0, 1.0)
    with pytest.raises(NotImplementedError):
        torch.distributions.kl_divergence(p_dist, q_dist)
    with pytest.raises(NotImplementedError):  # kldiv.NoClosedFormError is one too
        kldiv.kl_divergence(p_dist, q_dist)
    est = kldiv.estimate(p_dist, q_dist)
    p, q = stats.norm(0.0, 1.5), stats.t(3.0, 0.0, 1.0)
    reference, _ = integrate.quad(
        lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), -np.inf, np.inf, epsabs=1e-13
    )
    assert est.method != "exact"
    assert abs(float(est) - reference) <= max(5 * float(est.stderr), 1e-9), (est, reference)


@row("torch.distributions.kl.register_kl(P, Q)", "kldiv.register_kl(P, Q)")
def _register_kl():
    _need_torch()
    from kldiv import distributions as D

    td = torch.distributions

    class TorchUnitNormal(td.Normal):
        """A torch Normal with scale 1."""

    class UnitNormal(D.Normal):
        """A kldiv Normal with scale 1."""

    def half_squared_distance(p, q):
        return 0.5 * (p.loc - q.loc) ** 2

    td.kl.register_kl(TorchUnitNormal, TorchUnitNormal)(half_squared_distance)
    kldiv.register_kl(UnitNormal, UnitNormal)(half_squared_distance)
    locs = np.array([0.0, 1.0, -2.0]), np.array([0.5, -1.0, 1.0])
    theirs = td.kl_divergence(
        TorchUnitNormal(torch.from_numpy(locs[0]), 1.0),
        TorchUnitNormal(torch.from_numpy(locs[1]), 1.0),
    )
    ours = kldiv.kl_divergence(UnitNormal(locs[0], 1.0), UnitNormal(locs[1], 1.0))
    _close(ours, theirs)
    _close(ours, kldiv.kl_divergence(D.Normal(locs[0], 1.0), D.Normal(locs[1], 1.0)))


def test_register_kl_refuses_a_silent_overwrite():
    """Torch's register_kl replaces a registration silently; kldiv's raises without override."""
    _need_torch()
    from kldiv import distributions as D

    td = torch.distributions

    class TorchPoint(td.Normal):
        """A torch test type."""

    class Point(D.Normal):
        """A kldiv test type."""

    td.kl.register_kl(TorchPoint, TorchPoint)(lambda p, q: torch.zeros(()))
    td.kl.register_kl(TorchPoint, TorchPoint)(lambda p, q: torch.ones(()))
    assert float(td.kl_divergence(TorchPoint(0.0, 1.0), TorchPoint(0.0, 1.0))) == 1.0

    kldiv.register_kl(Point, Point)(lambda p, q: np.zeros(()))
    with pytest.raises(kldiv.KLDivError, match="override"):
        kldiv.register_kl(Point, Point)(lambda p, q: np.ones(()))
    assert float(kldiv.kl_divergence(Point(0.0, 1.0), Point(0.0, 1.0))) == 0.0
    kldiv.register_kl(Point, Point, override=True)(lambda p, q: np.ones(()))
    assert float(kldiv.kl_divergence(Point(0.0, 1.0), Point(0.0, 1.0))) == 1.0


# ------------------------------------------------------------------------------------ optax


def _optax():
    optax = pytest.importorskip("optax")
    jnp = pytest.importorskip("jax.numpy")
    return optax, jnp


def _jax_pair(shape: tuple[int, ...]):
    """``p``, ``log_q`` as float32 JAX arrays (JAX's default precision)."""
    _, jnp = _optax()
    return (
        jnp.asarray(_probs(shape, 3), dtype=jnp.float32),
        jnp.asarray(np.log(_probs(shape, 4)), dtype=jnp.float32),
    )


@row("optax.losses.kl_divergence(log_q, p)", "kldiv.kl_from_log_probs(jnp.log(p), log_q)")
def _optax_kl():
    optax, jnp = _optax()
    p, log_q = _jax_pair((5, 7))
    _close(
        kldiv.kl_from_log_probs(jnp.log(p), log_q),
        optax.losses.kl_divergence(log_q, p),
        rtol=2e-5,
        atol=1e-6,
    )


@row(
    "optax.losses.kl_divergence_with_log_targets(log_q, log_p)",
    "kldiv.kl_from_log_probs(log_p, log_q)",
)
def _optax_kl_log_targets():
    optax, jnp = _optax()
    p, log_q = _jax_pair((5, 7))
    log_p = jnp.log(p)
    _close(
        kldiv.kl_from_log_probs(log_p, log_q),
        optax.losses.kl_divergence_with_log_targets(log_q, log_p),
        rtol=2e-5,
        atol=1e-6,
    )


def _check_generalized(optax_function: Callable) -> None:
    """Optax's generalized KL of (log q, w) against kldiv.generalized_kl(w, q)."""
    _, jnp = _optax()
    w = jnp.asarray(_weights((5, 7), 5), dtype=jnp.float32)
    log_q = jnp.asarray(np.log(_weights((5, 7), 6)), dtype=jnp.float32)
    _close(kldiv.generalized_kl(w, jnp.exp(log_q)), optax_function(log_q, w), rtol=2e-5, atol=1e-5)


@row(
    "optax.losses.generalized_kl_divergence(log_q, w)",
    "kldiv.generalized_kl(w, jnp.exp(log_q))",
)
def _optax_generalized():
    optax, _ = _optax()
    _check_generalized(optax.losses.generalized_kl_divergence)


@row(
    "optax.losses.convex_kl_divergence(log_q, w)",
    "kldiv.generalized_kl(w, jnp.exp(log_q))",
)
def _optax_convex():
    optax, _ = _optax()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # optax's rename
        _check_generalized(optax.losses.convex_kl_divergence)


# ------------------------------------------------------------------------------------ SciPy


@row("scipy.stats.entropy(p, q, axis=-1)", "kldiv.kl_from_probs(p, q)")
def _scipy_entropy_rows():
    from scipy import stats

    p, q = _probs((4, 6), 7), _probs((4, 6), 8)
    _close(kldiv.kl_from_probs(p, q), stats.entropy(p, q, axis=-1))


@row("scipy.stats.entropy(p, q)", "kldiv.kl_from_probs(p, q, axis=0)")
def _scipy_entropy_columns():
    from scipy import stats

    p, q = _probs((4, 6), 9).T.copy(), _probs((4, 6), 10).T.copy()  # columns on the simplex
    ours = kldiv.kl_from_probs(p, q, axis=0)
    assert ours.shape == (4,)
    _close(ours, stats.entropy(p, q))


@row("scipy.stats.entropy(p, q, base=2, axis=-1)", "kldiv.kl_from_probs(p, q, base=2)")
def _scipy_entropy_bits():
    from scipy import stats

    p, q = _probs((4, 6), 11), _probs((4, 6), 12)
    _close(kldiv.kl_from_probs(p, q, base=2), stats.entropy(p, q, base=2, axis=-1))
    _close(kldiv.kl_from_probs([0.4, 0.6], [0.5, 0.5], base=2), 0.0290494055453313)


@row(
    "scipy.stats.entropy(w, v, axis=-1)",
    "kldiv.kl_from_probs(w / w.sum(-1, keepdims=True), v / v.sum(-1, keepdims=True))",
)
def _scipy_entropy_normalises():
    from scipy import stats

    w, v = _weights((4, 6), 13), _weights((4, 6), 14)
    _close(
        kldiv.kl_from_probs(w / w.sum(-1, keepdims=True), v / v.sum(-1, keepdims=True)),
        stats.entropy(w, v, axis=-1),
    )


@row("scipy.stats.entropy(p, axis=-1)", "kldiv.entropy(p)")
def _scipy_entropy_h():
    from scipy import stats

    p = _probs((4, 6), 15)
    _close(kldiv.entropy(p), stats.entropy(p, axis=-1))


@row("scipy.special.rel_entr(p, q).sum(-1)", "kldiv.kl_from_probs(p, q)")
def _scipy_rel_entr():
    from scipy import special

    p, q = _probs((4, 6), 16), _probs((4, 6), 17)
    p[0, :2] = 0.0  # zeros in P: rel_entr and kldiv both give 0·log 0 = 0
    p /= p.sum(-1, keepdims=True)
    _close(kldiv.kl_from_probs(p, q), special.rel_entr(p, q).sum(-1))


@row("scipy.special.kl_div(p, q).sum(-1)", "kldiv.generalized_kl(p, q)")
def _scipy_kl_div():
    from scipy import special

    for p, q in [
        (_probs((4, 6), 18), _probs((4, 6), 19)),
        (_weights((4, 6), 20), _weights((4, 6), 21)),
    ]:
        _close(kldiv.generalized_kl(p, q), special.kl_div(p, q).sum(-1))


# ------------------------------------------------------------------ the traps the page names


def test_torch_kl_div_gives_nan_where_both_are_masked():
    """F.kl_div is NaN at a token both distributions mask (-inf logits); kldiv counts it as 0."""
    _need_torch()
    t = torch.tensor([[1.0, 0.0, -math.inf]], dtype=torch.float64)
    s = torch.tensor([[0.0, 2.0, -math.inf]], dtype=torch.float64, requires_grad=True)
    log_p, log_q = F.log_softmax(t, -1), F.log_softmax(s, -1)
    assert torch.isnan(F.kl_div(log_q, log_p, reduction="sum", log_target=True))
    assert torch.isnan(F.kl_div(log_q, log_p.exp(), reduction="sum"))
    ours = kldiv.kl_from_logits(t, s)
    unmasked = kldiv.kl_from_logits(t[:, :2], s[:, :2])
    _close(ours.detach(), unmasked.detach())
    (grad,) = torch.autograd.grad(ours.sum(), s)
    assert torch.all(torch.isfinite(grad))
    assert grad[0, 2] == 0.0


def test_torch_kl_div_in_maths_order_is_the_reverse_kl():
    """F.kl_div(log_p, log_q, log_target=True) runs without error and is D(Q ‖ P), not D(P ‖ Q)."""
    _need_torch()
    p, log_q = _torch_pair((4, 9))
    log_p = p.log()
    swapped = F.kl_div(log_p, log_q, reduction="none", log_target=True).sum(-1)
    _close(swapped, kldiv.kl_from_log_probs(log_q, log_p))
    assert torch.all((swapped - kldiv.kl_from_log_probs(log_p, log_q)).abs() > 1e-3)


def test_torch_mean_and_batchmean_are_not_the_mean_kl():
    """Torch's "mean" is the KL over V; its "batchmean" on (B, T, V) is T times the mean KL."""
    _need_torch()
    from kldiv.torch import KLDivLoss

    p, log_q = _torch_pair((2, 5, 9))
    per_token = kldiv.kl_from_log_probs(p.log(), log_q)  # (2, 5)
    mean_kl = KLDivLoss(input="log_probs")(p.log(), log_q)
    _close(mean_kl, per_token.mean())
    _close(F.kl_div(log_q, p, reduction="batchmean"), 5 * mean_kl)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _close(F.kl_div(log_q, p, reduction="mean"), mean_kl / 9)


def test_optax_gives_nan_where_kldiv_is_finite():
    """optax: NaN at an entry both distributions mask, NaN target gradient at p = 0; kldiv not."""
    optax, jnp = _optax()
    import jax

    log_p = jnp.log(jnp.asarray([0.6, 0.4, 0.0], dtype=jnp.float32))
    log_q = jnp.log(jnp.asarray([0.3, 0.7, 0.0], dtype=jnp.float32))
    assert jnp.isnan(optax.losses.kl_divergence(log_q, jnp.exp(log_p)))
    assert jnp.isnan(optax.losses.kl_divergence_with_log_targets(log_q, log_p))
    _close(
        kldiv.kl_from_log_probs(log_p, log_q),
        kldiv.kl_from_probs([0.6, 0.4], [0.3, 0.7]),
        rtol=1e-6,
    )

    p = jnp.asarray([0.5, 0.5, 0.0], dtype=jnp.float32)
    log_q_full = jnp.log(jnp.asarray([0.25, 0.5, 0.25], dtype=jnp.float32))
    theirs = jax.grad(lambda t: optax.losses.kl_divergence(log_q_full, t))(p)
    ours = jax.grad(lambda t: kldiv.kl_from_probs(t, jnp.exp(log_q_full)))(p)
    assert jnp.isnan(theirs[2])
    assert bool(jnp.all(jnp.isfinite(ours)))
    _close(ours[:2], theirs[:2], rtol=1e-5)


def test_scipy_entropy_renormalises_where_kldiv_raises():
    """scipy.stats.entropy([.5, .5], [.3, .3]) is 0; kldiv refuses rows that do not sum to 1."""
    from scipy import stats

    assert stats.entropy([0.5, 0.5], [0.3, 0.3]) == 0.0
    with pytest.raises(kldiv.KLDivError, match=r"`q`.*sum"):
        kldiv.kl_from_probs([0.5, 0.5], [0.3, 0.3])


def test_scipy_kl_div_is_the_generalized_kl():
    """scipy.special.kl_div summed is the generalized KL, not the KL of the normalised rows."""
    from scipy import special, stats

    w, v = _weights((6,), 22), _weights((6,), 23)
    generalized = special.kl_div(w, v).sum()
    _close(kldiv.generalized_kl(w, v), generalized)
    assert abs(generalized - stats.entropy(w, v)) > 1e-3


# The parametrisation reads ROWS, so it comes after every @row above.
@pytest.mark.parametrize("key", list(ROWS), ids=[f"{theirs} -> {ours}" for theirs, ours in ROWS])
def test_row(key):
    """Both columns of one table row give the same numbers."""
    ROWS[key]()
