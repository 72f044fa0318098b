"""GaussianKLLoss / FullCovarianceGaussianKLLoss: values, gradients, reductions, VAE objectives."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kldiv

torch = pytest.importorskip("torch")
from torch.distributions import MultivariateNormal, kl_divergence  # noqa: E402

from kldiv.torch._gaussian import FullCovarianceGaussianKLLoss, GaussianKLLoss  # noqa: E402

KERNEL = "_DiagonalGaussianKLBackward"


def _leaves(*shapes, seed=0, scale=1.0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    return [
        (scale * torch.randn(s, generator=generator, dtype=dtype)).requires_grad_(True)
        for s in shapes
    ]


def _naive_kl(mu, logvar, prior_mu=None, prior_logvar=None):
    """Per-dimension KL from the textbook formula, no numerical care."""
    m = torch.zeros_like(mu) if prior_mu is None else prior_mu
    w = torch.zeros_like(logvar) if prior_logvar is None else prior_logvar
    return 0.5 * (torch.exp(logvar - w) + (mu - m) ** 2 * torch.exp(-w) - 1.0 - logvar + w)


def _grads(value, leaves):
    return torch.autograd.grad(value, leaves, allow_unused=True)


def _random_scale_tril(shape, k, seed):
    generator = torch.Generator().manual_seed(seed)
    lower = torch.tril(
        0.5 * torch.randn(*shape, k, k, generator=generator, dtype=torch.float64), -1
    )
    diag = torch.exp(0.4 * torch.randn(*shape, k, generator=generator, dtype=torch.float64))
    return lower + torch.diag_embed(diag)


# --- values and gradients -----------------------------------------------------


def test_mean_matches_naive_reference_value_and_gradients():
    """Learned prior: value and gradients w.r.t. all four inputs equal the float64 formula."""
    leaves = _leaves((5, 4), (5, 4), (4,), (4,))
    ours = GaussianKLLoss()(*leaves)
    reference = _naive_kl(*leaves).sum(-1).mean()
    torch.testing.assert_close(ours, reference)
    for got, expected in zip(_grads(ours, leaves), _grads(reference, leaves), strict=True):
        torch.testing.assert_close(got, expected)


def test_standard_normal_prior_is_the_vae_formula():
    """-½ Σ(1 + logvar - mu² - exp(logvar)), averaged over the batch."""
    mu, logvar = _leaves((8, 3), (8, 3), seed=1)
    ours = GaussianKLLoss()(mu, logvar)
    vae = (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(-1)).mean()
    torch.testing.assert_close(ours, vae)
    for got, expected in zip(_grads(ours, [mu, logvar]), _grads(vae, [mu, logvar]), strict=True):
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize(
    "options",
    [{}, {"free_bits": 0.05}, {"capacity": 3.0, "beta": 2.0}, {"reduction": "sum"}],
    ids=["plain", "free-bits", "capacity", "sum"],
)
def test_gradcheck(options):
    """torch.autograd.gradcheck in float64, with a learned prior."""
    leaves = _leaves((3, 4), (3, 4), (4,), (4,), seed=2, scale=0.7)
    loss = GaussianKLLoss(**options)
    assert torch.autograd.gradcheck(lambda *a: loss(*a), tuple(leaves))


def test_beta_scales_the_result():
    """The weight beta multiplies the loss and its gradient."""
    mu, logvar = _leaves((4, 2), (4, 2), seed=3)
    torch.testing.assert_close(
        GaussianKLLoss(beta=0.25)(mu, logvar), 0.25 * GaussianKLLoss()(mu, logvar)
    )
    assert GaussianKLLoss(beta=0.0)(mu, logvar) == 0


# --- reductions, masks --------------------------------------------------------


def test_reductions_over_every_leading_dim():
    """'mean' divides by all leading dims (2·3 samples), 'sum' sums, 'none' keeps (2, 3)."""
    mu, logvar = _leaves((2, 3, 4), (2, 3, 4), seed=4)
    per_sample = _naive_kl(mu, logvar).sum(-1)
    torch.testing.assert_close(GaussianKLLoss(reduction="none")(mu, logvar), per_sample)
    torch.testing.assert_close(GaussianKLLoss(reduction="sum")(mu, logvar), per_sample.sum())
    torch.testing.assert_close(GaussianKLLoss()(mu, logvar), per_sample.sum() / 6)


def test_mask_and_num_items():
    """Masked samples do not count; num_items replaces the local count."""
    mu, logvar = _leaves((2, 3, 4), (2, 3, 4), seed=5)
    mask = torch.tensor([[True, False, True], [True, True, False]])
    per_sample = _naive_kl(mu, logvar).sum(-1)
    kept = per_sample[mask].sum()
    loss = GaussianKLLoss()
    torch.testing.assert_close(loss(mu, logvar, mask=mask), kept / 4)
    torch.testing.assert_close(loss(mu, logvar, mask=mask, num_items=10), kept / 10)
    torch.testing.assert_close(loss(mu, logvar, mask=mask, num_items=torch.tensor(8.0)), kept / 8)
    none = GaussianKLLoss(reduction="none")(mu, logvar, mask=mask)
    torch.testing.assert_close(none, torch.where(mask, per_sample, 0.0))


def test_masked_nan_padding_gives_zero_value_and_gradient():
    """NaN in padded samples: the loss and every gradient stay finite, 0 at the padding."""
    mu, logvar = _leaves((3, 2), (3, 2), seed=6)
    with torch.no_grad():
        mu[2] = math.nan
        logvar[2] = math.inf
    mask = torch.tensor([True, True, False])
    value = GaussianKLLoss(free_bits=0.01, capacity=1.0)(mu, logvar, mask=mask)
    assert torch.isfinite(value)
    value.backward()
    assert torch.isfinite(mu.grad).all()
    assert torch.isfinite(logvar.grad).all()
    assert (mu.grad[2] == 0).all()
    assert (logvar.grad[2] == 0).all()


@pytest.mark.parametrize(
    "options",
    [{}, {"reduction": "sum"}, {"free_bits": 0.5}, {"capacity": 2.0}],
    ids=["mean", "sum", "free-bits", "capacity"],
)
def test_all_masked_is_zero_with_zero_gradient(options):
    """Nothing counted: 0 and a zero gradient, never NaN (capacity: |0 - C·0| = 0)."""
    mu, logvar = _leaves((2, 3), (2, 3), seed=7)
    mask = torch.zeros(2, dtype=torch.bool)
    value = GaussianKLLoss(**options)(mu, logvar, mask=mask)
    assert value == 0
    value.backward()
    assert (mu.grad == 0).all()
    assert (logvar.grad == 0).all()


# --- free bits ----------------------------------------------------------------


def test_free_bits_floor_zeroes_gradient_of_dims_below_it():
    """Dimensions whose batch-mean KL is under λ cost exactly λ and get no gradient."""
    mu = torch.tensor([[2.0, 0.01, 1.0], [1.0, -0.01, -1.5]], dtype=torch.float64)
    logvar = torch.tensor([[0.1, 0.02, -0.3], [0.2, -0.02, 0.4]], dtype=torch.float64)
    mu.requires_grad_(True)
    logvar.requires_grad_(True)
    per_dim_mean = _naive_kl(mu, logvar).mean(0).detach()
    assert per_dim_mean[1] < 0.1 < per_dim_mean[0]
    assert per_dim_mean[2] > 0.1
    value = GaussianKLLoss(free_bits=0.1)(mu, logvar)
    torch.testing.assert_close(value, per_dim_mean[0] + 0.1 + per_dim_mean[2])
    value.backward()
    assert (mu.grad[:, 1] == 0).all()
    assert (logvar.grad[:, 1] == 0).all()
    assert (mu.grad[:, [0, 2]] != 0).all()


def test_free_bits_inactive_equals_plain_kl():
    """A floor below every dimension's KL changes neither value nor gradient."""
    mu, logvar = _leaves((6, 3), (6, 3), seed=8)
    with torch.no_grad():
        mu += 2.0  # every dimension well above the floor
    plain = GaussianKLLoss()(mu, logvar)
    floored = GaussianKLLoss(free_bits=1e-3)(mu, logvar)
    torch.testing.assert_close(floored, plain)
    for got, expected in zip(
        _grads(floored, [mu, logvar]), _grads(plain, [mu, logvar]), strict=True
    ):
        torch.testing.assert_close(got, expected)


def test_free_bits_sum_is_counted_batch_times_mean():
    """'sum' is the 'mean' objective times the number of counted samples."""
    mu, logvar = _leaves((2, 5, 3), (2, 5, 3), seed=9, scale=0.3)
    mask = torch.rand(2, 5, generator=torch.Generator().manual_seed(0)) < 0.7
    mean = GaussianKLLoss(free_bits=0.2)(mu, logvar, mask=mask)
    total = GaussianKLLoss(free_bits=0.2, reduction="sum")(mu, logvar, mask=mask)
    torch.testing.assert_close(total, mean * mask.sum())
    per_dim = _naive_kl(mu, logvar)[mask].mean(0)
    torch.testing.assert_close(mean, per_dim.clamp_min(0.2).sum())


def test_free_bits_with_num_items_weights_each_micro_batch_by_its_share():
    """Micro-batches with a global num_items: Σ = the share-weighted per-micro-batch objective."""
    mu, logvar = _leaves((5, 3), (5, 3), seed=10, scale=0.4)
    loss = GaussianKLLoss(free_bits=0.15)
    parts = [slice(0, 2), slice(2, 5)]
    accumulated = sum(loss(mu[s], logvar[s], num_items=5) for s in parts)
    expected = sum((s.stop - s.start) / 5 * loss(mu[s], logvar[s]) for s in parts)
    torch.testing.assert_close(accumulated, expected)


# --- capacity -----------------------------------------------------------------


def test_capacity_value_and_gradient_sign():
    """beta·|KL − C|: below C the gradient pushes the KL up, above C down."""
    mu = torch.tensor([[0.5, -0.5]], dtype=torch.float64, requires_grad=True)
    logvar = torch.zeros(1, 2, dtype=torch.float64)
    kl = 0.25
    loss = GaussianKLLoss(beta=3.0, capacity=1.0)
    value = loss(mu, logvar)
    torch.testing.assert_close(value, torch.tensor(3.0 * (1.0 - kl), dtype=torch.float64))
    (grad,) = torch.autograd.grad(value, mu)
    assert grad[0, 0] < 0 < grad[0, 1]  # growing |mu| (hence KL) lowers the loss
    above = loss(mu, logvar, capacity=0.1)  # per-call override
    torch.testing.assert_close(above, torch.tensor(3.0 * (kl - 0.1), dtype=torch.float64))
    (grad,) = torch.autograd.grad(above, mu)
    assert grad[0, 0] > 0 > grad[0, 1]


def test_capacity_accepts_a_scalar_tensor_and_sum_scales_by_count():
    """A 0-d tensor capacity (no host sync); 'sum' is n·beta·|mean KL − C|."""
    mu, logvar = _leaves((4, 3), (4, 3), seed=11)
    mean_kl = _naive_kl(mu, logvar).sum(-1).mean()
    capacity = torch.tensor(0.7, dtype=torch.float64)
    torch.testing.assert_close(
        GaussianKLLoss(beta=2.0)(mu, logvar, capacity=capacity), 2.0 * (mean_kl - 0.7).abs()
    )
    total = GaussianKLLoss(beta=2.0, capacity=0.7, reduction="sum")(mu, logvar)
    torch.testing.assert_close(total, 4 * 2.0 * (mean_kl - 0.7).abs())


# --- precision, compile -------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_is_computed_in_float32(dtype):
    """bf16/fp16 inputs give a float32 loss equal to float32 maths on the rounded inputs."""
    mu, logvar, m, w = (t.detach() for t in _leaves((16, 8), (16, 8), (8,), (8,), seed=12))
    half = [t.to(dtype) for t in (mu, logvar, m, w)]
    for options in ({}, {"free_bits": 0.3}, {"capacity": 5.0}):
        loss = GaussianKLLoss(**options)
        got = loss(*half)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, loss(*[t.float() for t in half]))
    leaf = half[0].clone().requires_grad_(True)
    GaussianKLLoss()(leaf, half[1]).backward()
    assert leaf.grad.dtype == dtype
    assert torch.isfinite(leaf.grad.float()).all()


@pytest.mark.filterwarnings("ignore:Dynamo detected a call:UserWarning")
def test_torch_compile_smoke():
    """torch.compile (eager backend) gives the eager values."""
    mu, logvar = (t.detach().float() for t in _leaves((4, 3), (4, 3), seed=13))
    mask = torch.tensor([True, True, False, True])
    loss = GaussianKLLoss(free_bits=0.05, capacity=0.5)
    full = FullCovarianceGaussianKLLoss()
    scale_tril = _random_scale_tril((4,), 3, seed=13).float()

    def both(a, b, c, keep):
        return loss(a, b, mask=keep) + full(a, c, mask=keep)

    compiled = torch.compile(both, backend="eager", fullgraph=False)
    torch.testing.assert_close(
        compiled(mu, logvar, scale_tril, mask), both(mu, logvar, scale_tril, mask)
    )


# --- full covariance ----------------------------------------------------------


def test_full_covariance_matches_torch_distributions():
    """Mean over the batch of torch's MultivariateNormal KL, value and gradients."""
    mu, m = _leaves((2, 3, 4), (4,), seed=14)
    lower = _random_scale_tril((2, 3), 4, seed=14).requires_grad_(True)
    prior = _random_scale_tril((), 4, seed=15).requires_grad_(True)
    leaves = [mu, lower, m, prior]
    ours = FullCovarianceGaussianKLLoss()(*leaves)
    reference = kl_divergence(
        MultivariateNormal(mu, scale_tril=lower), MultivariateNormal(m, scale_tril=prior)
    ).mean()
    torch.testing.assert_close(ours, reference)
    for got, expected in zip(_grads(ours, leaves), _grads(reference, leaves), strict=True):
        if got.ndim >= 2 and got.shape[-1] == got.shape[-2]:  # factors: the lower triangle
            got, expected = torch.tril(got), torch.tril(expected)
        torch.testing.assert_close(got, expected)


def test_full_covariance_reductions_capacity_and_gradcheck():
    """'sum'/'none', the capacity objective, and gradcheck in float64."""
    (mu,) = _leaves((3, 2), seed=16)
    lower = _random_scale_tril((3,), 2, seed=16).requires_grad_(True)
    per_sample = kl_divergence(
        MultivariateNormal(mu, scale_tril=lower),
        MultivariateNormal(torch.zeros(2, dtype=torch.float64), scale_tril=torch.eye(2).double()),
    )
    none = FullCovarianceGaussianKLLoss(reduction="none")(mu, lower)
    torch.testing.assert_close(none, per_sample)
    total = FullCovarianceGaussianKLLoss(reduction="sum")(mu, lower)
    torch.testing.assert_close(total, per_sample.sum())
    capped = FullCovarianceGaussianKLLoss(beta=2.0, capacity=10.0)(mu, lower)
    torch.testing.assert_close(capped, 2.0 * (10.0 - per_sample.mean()))
    loss = FullCovarianceGaussianKLLoss(capacity=0.1, validate=False)
    assert torch.autograd.gradcheck(lambda a, b: loss(a, torch.tril(b)), (mu, lower))


def test_full_covariance_masked_padding_is_not_validated():
    """Zero-filled padded factors would fail validation; masked, they contribute 0."""
    (mu,) = _leaves((3, 2), seed=17)
    lower = _random_scale_tril((3,), 2, seed=17)
    with torch.no_grad():
        lower[2] = 0.0
    lower.requires_grad_(True)
    mask = torch.tensor([True, True, False])
    with pytest.raises(kldiv.KLDivError, match="`scale_tril` must be a Cholesky factor"):
        FullCovarianceGaussianKLLoss()(mu, lower)
    value = FullCovarianceGaussianKLLoss()(mu, lower, mask=mask)
    expected = FullCovarianceGaussianKLLoss(reduction="sum")(mu[:2], lower[:2]) / 2
    torch.testing.assert_close(value, expected)
    value.backward()
    assert torch.isfinite(lower.grad).all()
    assert (lower.grad[2] == 0).all()
    assert (mu.grad[2] == 0).all()


def test_full_covariance_all_masked_is_zero():
    """Nothing counted: 0 with a zero gradient."""
    (mu,) = _leaves((2, 3), seed=18)
    lower = _random_scale_tril((2,), 3, seed=18).requires_grad_(True)
    value = FullCovarianceGaussianKLLoss()(mu, lower, mask=torch.zeros(2, dtype=torch.bool))
    assert value == 0
    value.backward()
    assert (mu.grad == 0).all()
    assert (lower.grad == 0).all()


# --- configuration errors -----------------------------------------------------


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"beta": -1.0}, r"`beta` must be a finite number >= 0; got -1.0"),
        ({"beta": math.inf}, "`beta` must be a finite number >= 0"),
        ({"beta": math.nan}, "`beta` must be a finite number >= 0"),
        ({"beta": True}, "`beta` must be a finite number >= 0"),
        ({"beta": "1"}, "`beta` must be a finite number >= 0"),
        ({"free_bits": -0.1}, "`free_bits` must be a finite number >= 0"),
        ({"free_bits": math.inf}, "`free_bits` must be a finite number >= 0"),
        ({"capacity": -1.0}, r"`capacity` must be None or a finite number >= 0"),
        ({"capacity": math.nan}, r"`capacity` must be None or a finite number >= 0"),
        ({"capacity": torch.tensor(1.0)}, "pass tensors per call"),
        ({"reduction": "batchmean"}, r"`reduction` must be one of \['mean', 'sum', 'none'\]"),
        ({"free_bits": 0.5, "reduction": "none"}, "`free_bits` .* needs reduction 'mean'"),
        ({"capacity": 1.0, "reduction": "none"}, "`capacity` .* needs reduction 'mean'"),
    ],
)
def test_config_errors(options, match):
    """Bad configuration raises KLDivError at construction, naming the argument."""
    with pytest.raises(kldiv.KLDivError, match=match):
        GaussianKLLoss(**options)


def test_full_covariance_config_errors():
    """The same checks for the full-covariance loss, and `validate`."""
    with pytest.raises(kldiv.KLDivError, match="`beta`"):
        FullCovarianceGaussianKLLoss(beta=-2.0)
    with pytest.raises(kldiv.KLDivError, match="`capacity`"):
        FullCovarianceGaussianKLLoss(capacity=1.0, reduction="none")
    with pytest.raises(kldiv.KLDivError, match="`validate`"):
        FullCovarianceGaussianKLLoss(validate="yes")


def test_call_errors():
    """Per-call capacity with 'none', bad masks and shapes name the argument."""
    mu, logvar = torch.zeros(2, 3), torch.zeros(2, 3)
    with pytest.raises(kldiv.KLDivError, match=r"`capacity` .* reduction='none'"):
        GaussianKLLoss(reduction="none")(mu, logvar, capacity=1.0)
    with pytest.raises(kldiv.KLDivError, match="`capacity` must be None or a finite"):
        GaussianKLLoss()(mu, logvar, capacity=-1.0)
    with pytest.raises(kldiv.KLDivError, match="one-element tensor"):
        GaussianKLLoss()(mu, logvar, capacity=torch.ones(2))
    with pytest.raises(kldiv.KLDivError, match=r"`mask` must have the inputs' batch shape \(2,\)"):
        GaussianKLLoss()(mu, logvar, mask=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(kldiv.KLDivError, match="`mask` must be a boolean tensor"):
        GaussianKLLoss()(mu, logvar, mask=torch.ones(2))
    with pytest.raises(kldiv.KLDivError, match=r"batch shapes .* do not broadcast"):
        GaussianKLLoss()(mu, torch.zeros(4, 3))
    with pytest.raises(kldiv.KLDivError, match="`mu` must have at least 1 dimension"):
        GaussianKLLoss()(torch.tensor(0.0), torch.tensor(0.0))
    with pytest.raises(kldiv.KLDivError, match=r"`scale_tril` must have shape \[\.\.\., 3, 3\]"):
        FullCovarianceGaussianKLLoss()(mu, torch.ones(2, 2, 2))


def test_repr_shows_configuration():
    """The module prints its configuration."""
    assert "free_bits=0.5" in repr(GaussianKLLoss(free_bits=0.5))
    assert "capacity=2.0" in repr(FullCovarianceGaussianKLLoss(capacity=2.0))


def test_numpy_reference_for_one_case():
    """One hand-checked value: mu = (1, 0), logvar = (log 2, 0) ⇒ ½(2 + 1 − 1 − log 2)."""
    mu = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    logvar = torch.tensor([[np.log(2.0), 0.0]], dtype=torch.float64)
    assert float(GaussianKLLoss()(mu, logvar)) == pytest.approx(0.5 * (2.0 - np.log(2.0)))


# --- the fused kernel (autograd.Function) against the reference path -------------------


def _kernel_case(seed, batch, d, prior, masked, dtype, padding="nan"):
    """Leaves at the scales the kernel must handle: variances 1e-6..1e6, means up to 1e3.

    Masked samples hold NaN and inf (``padding="nan"``: the kernel masks by replacing
    them) or whatever finite values (``"finite"``: it masks with per-sample factors).
    """
    gen = torch.Generator().manual_seed(seed)

    def uniform(shape, low, high):
        return low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float64)

    def means(shape):
        return torch.randn(shape, generator=gen, dtype=torch.float64) * 10.0 ** uniform(
            shape, -3, 3
        )

    shape = (*batch, d)
    mu, logvar = means(shape), uniform(shape, -14, 14)
    prior_shape = {"none": None, "full": shape, "row": (d,), "column": (*batch[:1], 1, d)}[prior]
    if prior_shape is not None and len(prior_shape) > len(shape):
        prior_shape = shape
    priors = [None, None]
    if prior_shape is not None:
        priors = [means(prior_shape), uniform(prior_shape, -14, 14)]
    mask = None
    if masked:
        mask = torch.rand(batch, generator=gen) < 0.7
        if padding == "nan":  # never looked at
            mu[~mask] = math.nan
            logvar[~mask] = math.inf
    leaves = [t if t is None else t.to(dtype).requires_grad_(True) for t in (mu, logvar, *priors)]
    return leaves, mask


def _value_and_grads(value, leaves, upstream):
    present = [t for t in leaves if t is not None]
    grads = torch.autograd.grad(value, present, upstream)
    return value.detach(), grads


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.sampled_from([(), (1,), (5,), (3, 4)]),
    d=st.integers(1, 6),
    prior=st.sampled_from(["none", "full", "row", "column"]),
    masked=st.booleans(),
    padding=st.sampled_from(["nan", "finite"]),
    options=st.sampled_from(
        [
            {},
            {"reduction": "sum"},
            {"reduction": "none"},
            {"free_bits": 0.5},
            {"free_bits": 3.0, "reduction": "sum", "beta": 0.3},
            {"capacity": 2.0, "beta": 4.0},
            {"beta": 0.0},
        ]
    ),
    num_items=st.sampled_from([None, 7, "tensor"]),
    dtype=st.sampled_from([torch.float64, torch.float32]),
)
def test_kernel_equals_reference(seed, batch, d, prior, masked, padding, options, num_items, dtype):
    """The fused kernel gives the reference path's value and gradients, at every scale."""
    if batch == () and masked:
        masked = False
    leaves, mask = _kernel_case(seed, batch, d, prior, masked, dtype, padding)
    loss = GaussianKLLoss(**options)
    if loss.reduction == "none" or num_items is None:
        num_items = None
    elif num_items == "tensor":
        num_items = torch.tensor(5.0, dtype=dtype)
    args = dict(mask=mask, num_items=num_items)
    ours = loss(*leaves, **args)
    if "capacity" not in options:
        assert type(ours.grad_fn).__name__ == KERNEL
    reference = loss._reference(*leaves, mask, num_items, loss.capacity)
    upstream = None if ours.ndim == 0 else torch.rand(ours.shape, dtype=dtype)
    value, grads = _value_and_grads(ours, leaves, upstream)
    expected, expected_grads = _value_and_grads(reference, leaves, upstream)
    rtol = 1e-9 if dtype == torch.float64 else 2e-5
    torch.testing.assert_close(value, expected, rtol=rtol, atol=rtol * float(expected.abs().max()))
    for got, want in zip(grads, expected_grads, strict=True):
        scale = float(want.abs().max()) if want.numel() else 0.0
        torch.testing.assert_close(got, want, rtol=rtol, atol=rtol * scale)
        if mask is not None and got.shape[:-1] == mask.shape:
            assert (got[~mask] == 0).all()


@pytest.mark.parametrize(
    ("options", "prior", "masked"),
    [
        ({}, "none", None),
        ({}, "full", "nan"),
        ({}, "row", "finite"),
        ({"free_bits": 0.3}, "column", None),
        ({"free_bits": 0.3, "reduction": "sum"}, "row", "nan"),
        ({"free_bits": 0.3}, "none", "finite"),
        ({"reduction": "none"}, "full", "nan"),
        ({"reduction": "none"}, "none", "finite"),
        ({"capacity": 1.0}, "none", "nan"),
        ({"capacity": 1.0, "free_bits": 0.2}, "row", "finite"),
    ],
)
def test_kernel_gradcheck_and_double_backward(options, prior, masked):
    """Gradients through the kernel pass gradcheck and gradgradcheck in float64, padding too."""
    gen = torch.Generator().manual_seed(3)
    shape = (4, 3)
    mu = torch.randn(shape, generator=gen, dtype=torch.float64)
    logvar = 0.5 * torch.randn(shape, generator=gen, dtype=torch.float64)
    mask = None if masked is None else torch.tensor([True, False, True, True])
    if masked == "nan":
        mu[1], logvar[1] = math.nan, math.inf
    prior_shape = {"none": None, "full": shape, "row": (3,), "column": (4, 1)}[prior]
    leaves = [mu, logvar]
    if prior_shape is not None:
        leaves += [
            0.5 * torch.randn(prior_shape, generator=gen, dtype=torch.float64),
            0.3 * torch.randn(prior_shape, generator=gen, dtype=torch.float64),
        ]
    leaves = tuple(t.requires_grad_(True) for t in leaves)
    loss = GaussianKLLoss(**options)

    def f(*args):
        return loss(*args, mask=mask)

    if "capacity" not in options:
        assert type(f(*leaves).grad_fn).__name__ == KERNEL
    assert torch.autograd.gradcheck(f, leaves)
    assert torch.autograd.gradgradcheck(f, leaves)


def test_kernel_takes_eager_float_inputs_only():
    """Half precision, torch.compile and torch.func run the reference formula instead."""
    mu, logvar = (t.detach().float().requires_grad_() for t in _leaves((4, 3), (4, 3), seed=19))
    loss = GaussianKLLoss()
    assert type(loss(mu, logvar).grad_fn).__name__ == KERNEL
    assert type(loss(mu.half(), logvar.half()).grad_fn).__name__ != KERNEL
    # a prior that enlarges the batch, and a mask that is not boolean, are the reference's
    prior = torch.zeros(2, 4, 3)
    assert type(loss(mu, logvar, prior).grad_fn).__name__ != KERNEL
    grad = torch.func.grad(lambda m: loss(m, logvar.detach()))(mu.detach())
    (expected,) = torch.autograd.grad(loss(mu, logvar), mu)
    torch.testing.assert_close(grad, expected)
    batched = torch.func.vmap(lambda m, v: GaussianKLLoss(reduction="sum")(m, v))(mu, logvar)
    torch.testing.assert_close(batched, GaussianKLLoss(reduction="none")(mu, logvar))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_nan_result_raises_naming_the_input(dtype):
    """A NaN in a counted sample is an error naming it (issue 16), not a silent NaN loss."""
    mu, logvar = torch.zeros(3, 2, dtype=dtype), torch.zeros(3, 2, dtype=dtype)
    mu[1, 0] = math.nan
    with pytest.raises(kldiv.KLDivError, match=r"`mu` must be finite .* got nan at index \(1, 0\)"):
        GaussianKLLoss()(mu, logvar)
    with pytest.raises(kldiv.KLDivError, match=r"`mu` must be finite"):
        GaussianKLLoss(reduction="none")(mu, logvar)
    logvar[2, 1] = math.inf  # an infinite variance: inf - inf
    with pytest.raises(kldiv.KLDivError, match=r"`logvar` .* got inf at index \(2, 1\)"):
        GaussianKLLoss()(mu, logvar, mask=torch.tensor([True, False, True]))
    masked = GaussianKLLoss()(mu, logvar, mask=torch.tensor([True, False, False]))
    assert masked == 0
    prior_logvar = torch.zeros(2, dtype=dtype)
    prior_logvar[0] = math.nan
    with pytest.raises(kldiv.KLDivError, match=r"`prior_logvar` .* index \(0,\)"):
        GaussianKLLoss()(
            torch.zeros(3, 2, dtype=dtype), torch.zeros(3, 2, dtype=dtype), None, prior_logvar
        )


def test_nan_check_can_be_switched_off():
    """validate=False, or the global default, returns the NaN (no host synchronisation)."""
    mu, logvar = torch.tensor([[math.nan, 0.0]]), torch.zeros(1, 2)
    assert torch.isnan(GaussianKLLoss(validate=False)(mu, logvar))
    previous = kldiv.set_default_validate(False)
    try:
        assert torch.isnan(GaussianKLLoss()(mu, logvar))
        with pytest.raises(kldiv.KLDivError):
            GaussianKLLoss(validate=True)(mu, logvar)
    finally:
        kldiv.set_default_validate(previous)
    with pytest.raises(kldiv.KLDivError, match="`validate`"):
        GaussianKLLoss(validate="no")
    assert "validate=False" in repr(GaussianKLLoss(validate=False))


def test_zero_variance_is_infinite_not_an_error():
    """A point-mass posterior (logvar = -inf) has an infinite KL: +inf, not an error."""
    mu, logvar = torch.zeros(2, 2), torch.zeros(2, 2)
    logvar[0, 0] = -math.inf
    assert GaussianKLLoss()(mu, logvar) == math.inf


def test_kernel_accuracy_near_the_prior():
    """expm1 keeps the KL of a posterior within 1e-6 of the prior accurate in float32."""
    logvar = torch.full((2, 3), 1e-6, requires_grad=True)
    mu = torch.zeros(2, 3, requires_grad=True)
    value = GaussianKLLoss()(mu, logvar)
    exact = 3 * 0.5 * (math.expm1(1e-6) - 1e-6)
    assert value.item() == pytest.approx(exact, rel=1e-3)
    value.backward()
    torch.testing.assert_close(logvar.grad, torch.full((2, 3), 0.5 * math.expm1(1e-6) / 2))
