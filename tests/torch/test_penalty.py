"""KLPenalty: a thin module over policy_kl, in loss mode (GRPO) and reward mode (PPO)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import kldiv  # noqa: E402
from kldiv.estimators import policy_kl  # noqa: E402
from kldiv.torch._penalty import KLPenalty  # noqa: E402

ESTIMATORS = ("k1", "k2", "k3")


def _batch(seed=0, shape=(3, 5)):
    gen = torch.Generator().manual_seed(seed)
    logprobs = (-torch.rand(shape, generator=gen, dtype=torch.float64) * 3).requires_grad_()
    ref = -torch.rand(shape, generator=gen, dtype=torch.float64) * 3
    old = -torch.rand(shape, generator=gen, dtype=torch.float64) * 3
    mask = torch.rand(shape, generator=gen) < 0.7
    mask[0, 0] = True
    return logprobs, ref, old, mask


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_mode_matches_the_core(estimator, reduction):
    """Without a mask, the loss is coef times the reduced policy_kl."""
    logprobs, ref, _, _ = _batch()
    got = KLPenalty(estimator=estimator, coef=0.3, reduction=reduction)(logprobs, ref)
    k = policy_kl(logprobs, ref, estimator=estimator)
    expected = {"mean": k.mean(), "sum": k.sum(), "none": k}[reduction]
    torch.testing.assert_close(got, 0.3 * expected)
    assert got.requires_grad


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_loss_mode_with_mask_and_old_logprobs(estimator):
    """The mean runs over the unmasked tokens; old_logprobs applies the importance weight."""
    logprobs, ref, old, mask = _batch(1)
    penalty = KLPenalty(estimator=estimator, coef=0.5)
    got = penalty(logprobs, ref, mask, old_logprobs=old)
    k = policy_kl(logprobs, ref, estimator=estimator, log_behavior=old)
    expected = 0.5 * k[mask].sum() / mask.sum()
    torch.testing.assert_close(got, expected)
    got.backward()
    (grad,) = torch.autograd.grad(expected, logprobs)
    torch.testing.assert_close(logprobs.grad, grad)
    assert (logprobs.grad[~mask] == 0).all()


def test_loss_mode_num_items_is_the_denominator():
    """num_items replaces the local token count (gradient accumulation, DDP)."""
    logprobs, ref, _, mask = _batch(2)
    penalty = KLPenalty(estimator="k2", coef=1.0)
    k = policy_kl(logprobs, ref, estimator="k2")
    for num_items in (40, torch.tensor(40.0)):
        got = penalty(logprobs, ref, mask, num_items=num_items)
        torch.testing.assert_close(got, k[mask].sum() / 40)


def test_loss_sum_and_none_with_mask():
    """'sum' adds the unmasked tokens; 'none' returns them with masked tokens at 0."""
    logprobs, ref, _, mask = _batch(3)
    k = policy_kl(logprobs, ref)
    got_sum = KLPenalty(coef=2.0, reduction="sum")(logprobs, ref, mask)
    torch.testing.assert_close(got_sum, 2.0 * k[mask].sum())
    got_none = KLPenalty(coef=2.0, reduction="none")(logprobs, ref, mask)
    torch.testing.assert_close(got_none, torch.where(mask, 2.0 * k, 0.0))


def test_all_masked_is_zero_with_a_zero_gradient():
    """With no token counted the mean is 0, and the gradient is 0, not NaN."""
    logprobs, ref, old, _ = _batch(4)
    mask = torch.zeros(logprobs.shape, dtype=torch.bool)
    loss = KLPenalty(estimator="k3", coef=0.1)(logprobs, ref, mask, old_logprobs=old)
    assert loss.item() == 0.0
    loss.backward()
    assert (logprobs.grad == 0).all()


@pytest.mark.parametrize("mode", ["loss", "reward"])
def test_masked_padding_is_never_looked_at(mode):
    """Masked tokens may hold NaN, +inf or TRL's INVALID_LOGPROB = 1: no error, no NaN."""
    logprobs, ref, old, mask = _batch(5)
    mask[:, -1] = False
    with torch.no_grad():
        logprobs[:, -1] = torch.tensor([math.nan, math.inf, 1.0], dtype=torch.float64)
    ref = ref.clone()
    ref[:, -1] = -math.inf
    old = old.clone()
    old[:, -1] = math.nan
    out = KLPenalty(coef=0.1, mode=mode, reduction="none")(logprobs, ref, mask, old_logprobs=old)
    assert torch.isfinite(out).all()
    if mode == "loss":
        out.sum().backward()
        assert torch.isfinite(logprobs.grad).all()
        assert (logprobs.grad[:, -1] == 0).all()


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_reward_mode_is_detached_negative_and_masked(estimator):
    """Reward mode returns -coef * k per token, without gradient, 0 where masked."""
    logprobs, ref, old, mask = _batch(6)
    penalty = KLPenalty(estimator=estimator, coef=0.05, mode="reward")
    got = penalty(logprobs, ref, mask)
    assert not got.requires_grad
    assert got.grad_fn is None
    k = policy_kl(logprobs, ref, estimator=estimator).detach()
    torch.testing.assert_close(got, torch.where(mask, -0.05 * k, 0.0))
    assert (got[~mask] == 0).all()
    assert not torch.signbit(got[~mask]).any(), "masked entries are +0.0, not -0.0"
    weighted = penalty(logprobs, ref, mask, old_logprobs=old)
    k_weighted = policy_kl(logprobs, ref, estimator=estimator, log_behavior=old).detach()
    torch.testing.assert_close(weighted, torch.where(mask, -0.05 * k_weighted, 0.0))


def test_reward_mode_without_mask():
    """Without a mask every token gets its penalty, shape preserved."""
    logprobs, ref, _, _ = _batch(7)
    got = KLPenalty(estimator="k1", coef=0.1, mode="reward")(logprobs, ref)
    assert got.shape == logprobs.shape
    torch.testing.assert_close(got, -0.1 * (logprobs - ref).detach())


def test_integer_mask_and_broadcast_reference():
    """A 0/1 integer mask works like a boolean one; inputs broadcast."""
    logprobs, _, _, mask = _batch(8)
    ref = torch.full((1, logprobs.shape[1]), -1.0, dtype=torch.float64)
    penalty = KLPenalty(coef=1.0)
    torch.testing.assert_close(
        penalty(logprobs, ref, mask.to(torch.int64)), penalty(logprobs, ref, mask)
    )


def test_zero_coef_is_zero_even_with_infinite_estimates():
    """A zero `coef` switches the penalty off: 0 (with a zero gradient), not 0 * inf = NaN."""
    logprobs = torch.tensor([-0.5, -1.0], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([-math.inf, -0.3], dtype=torch.float64)
    loss = KLPenalty(coef=0.0)(logprobs, ref)
    assert loss.item() == 0.0
    loss.backward()
    assert (logprobs.grad == 0).all()
    reward = KLPenalty(coef=0.0, mode="reward")(logprobs, ref)
    assert (reward == 0).all()


def test_reference_zero_probability_gives_infinite_penalty():
    """An unmasked token the reference can never emit is an infinite penalty, not NaN."""
    logprobs = torch.tensor([[-0.5, -1.0]], dtype=torch.float64)
    ref = torch.tensor([[-math.inf, -0.3]], dtype=torch.float64)
    assert KLPenalty(coef=0.1)(logprobs, ref).item() == math.inf
    reward = KLPenalty(estimator="k1", coef=0.1, mode="reward")(logprobs, ref)
    assert reward[0, 0].item() == -math.inf


def test_module_is_stateless_config_and_repr():
    """No parameters or buffers; repr shows the configuration; coef may be changed."""
    penalty = KLPenalty(estimator="k2", coef=0.2, mode="reward", reduction="sum")
    assert list(penalty.parameters()) == []
    assert list(penalty.buffers()) == []
    assert "estimator='k2', coef=0.2, mode='reward', reduction='sum'" in repr(penalty)
    penalty.coef = 0.4  # an adaptive KL controller
    logprobs, ref, _, _ = _batch(9)
    torch.testing.assert_close(
        penalty(logprobs, ref), -0.4 * policy_kl(logprobs, ref, estimator="k2").detach()
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"estimator": "k4"}, "`estimator` must be one of"),
        ({"mode": "penalty"}, "`mode` must be one of"),
        ({"reduction": "batchmean"}, "`reduction` must be one of"),
        ({"coef": -0.1}, "`coef` must be a finite number >= 0"),
        ({"coef": math.inf}, "`coef` must be a finite number >= 0"),
        ({"coef": math.nan}, "`coef` must be a finite number >= 0"),
        ({"coef": True}, "`coef` must be a finite number >= 0"),
        ({"coef": "0.1"}, "`coef` must be a finite number >= 0"),
    ],
)
def test_config_errors(kwargs, match):
    """Bad configuration fails in __init__ with a KLDivError naming the argument."""
    with pytest.raises(kldiv.KLDivError, match=match):
        KLPenalty(**kwargs)


def test_forward_errors():
    """Bad forward arguments raise KLDivErrors naming the argument."""
    logprobs, ref, _, mask = _batch(10)
    penalty = KLPenalty()
    with pytest.raises(kldiv.KLDivError, match="`mask` must have the shape"):
        penalty(logprobs, ref, mask[:, :2])
    with pytest.raises(kldiv.KLDivError, match="`mask` must hold booleans or integers"):
        penalty(logprobs, ref, mask.to(torch.float64))
    with pytest.raises(kldiv.KLDivError, match=r"`ref_logprobs` must be a torch\.Tensor"):
        penalty(logprobs, ref.tolist())
    with pytest.raises(kldiv.KLDivError, match="do not broadcast"):
        penalty(logprobs, ref[:, :2], mask)
    with pytest.raises(kldiv.KLDivError, match="`ref_logprobs` must hold log-probabilities"):
        penalty(logprobs, torch.full_like(ref, math.nan))
    with pytest.raises(kldiv.KLDivError, match="`old_logprobs` must be > -inf"):
        penalty(logprobs, ref, old_logprobs=torch.full_like(ref, -math.inf))
    with pytest.raises(kldiv.KLDivError, match="`num_items` applies to mode='loss' only"):
        KLPenalty(mode="reward")(logprobs, ref, num_items=3)
    with pytest.raises(kldiv.KLDivError, match="`num_items` must be"):
        penalty(logprobs, ref, num_items=-1)


@pytest.mark.parametrize("estimator", ["k1", "k2", "k3"])
def test_loss_mode_gradcheck(estimator):
    """The module's loss mode passes gradcheck in float64, mask and importance weights on."""
    generator = torch.Generator().manual_seed(7)
    log_p = (-torch.rand(3, 4, generator=generator, dtype=torch.float64) - 0.1).requires_grad_()
    log_ref = (-torch.rand(3, 4, generator=generator, dtype=torch.float64) - 0.1).requires_grad_()
    old = log_p.detach() - 0.05
    mask = torch.tensor([[1, 1, 0, 1], [0, 1, 1, 1], [1, 0, 0, 1]], dtype=torch.bool)
    penalty = KLPenalty(estimator=estimator, coef=0.3)
    assert torch.autograd.gradcheck(
        lambda a, b: penalty(a, b, mask, old_logprobs=old), (log_p, log_ref)
    )


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_torch_compile_smoke():
    """KLPenalty traces and runs under torch.compile (aot_eager: no codegen, fast)."""
    log_p, log_ref = -torch.rand(2, 5) - 0.1, -torch.rand(2, 5) - 0.1
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 0, 1, 1]], dtype=torch.bool)
    penalty = KLPenalty(estimator="k3")
    compiled = torch.compile(penalty, backend="aot_eager")
    torch.testing.assert_close(compiled(log_p, log_ref, mask), penalty(log_p, log_ref, mask))


# --- the fused path against the reference path ----------------------------------------


def _fused_case(seed, shape, ref_shape, padding, weighted, dtype):
    """Log-probabilities down to -20, the reference and behaviour policies within ±5.

    ``padding``: None (no mask), ``"finite"`` (TRL's INVALID_LOGPROB = 1 at masked
    tokens) or ``"nan"`` (NaN and +inf, which the fused path leaves to the reference).
    """
    gen = torch.Generator().manual_seed(seed)
    logprobs = -20 * torch.rand(shape, generator=gen, dtype=torch.float64) ** 2
    ref = (logprobs + 5 * torch.randn(shape, generator=gen, dtype=torch.float64)).clamp_max(0)
    ref = ref[tuple(slice(0, n) for n in ref_shape)] if ref_shape != shape else ref
    old = None
    if weighted:
        old = (logprobs + 2 * torch.randn(shape, generator=gen, dtype=torch.float64)).clamp_max(0)
    mask = None
    if padding is not None:
        mask = torch.rand(shape, generator=gen) < 0.7
        logprobs = torch.where(mask, logprobs, 1.0 if padding == "finite" else math.nan)
        if old is not None:
            old = torch.where(mask, old, 0.0 if padding == "finite" else math.inf)
    leaves = [t if t is None else t.to(dtype).requires_grad_(True) for t in (logprobs, ref, old)]
    return leaves, mask


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**31 - 1),
    shape=st.sampled_from([(1, 1), (3, 5), (2, 17)]),
    broadcast_ref=st.booleans(),
    estimator=st.sampled_from(ESTIMATORS),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    masked=st.sampled_from([None, "bool", "int"]),
    padding=st.sampled_from(["finite", "nan"]),
    weighted=st.booleans(),
    num_items=st.sampled_from([None, 11, "tensor"]),
    dtype=st.sampled_from([torch.float64, torch.float32]),
)
def test_fused_path_equals_reference(
    seed, shape, broadcast_ref, estimator, reduction, masked, padding, weighted, num_items, dtype
):
    """The fused path gives the reference path's value and gradients (every input)."""
    ref_shape = (1, shape[1]) if broadcast_ref else shape
    padding = None if masked is None else padding
    leaves, mask = _fused_case(seed, shape, ref_shape, padding, weighted, dtype)
    if masked == "int":
        mask = mask.to(torch.int64) * 3
    if reduction != "mean":
        num_items = None
    elif num_items == "tensor":
        num_items = torch.tensor(9)
    penalty = KLPenalty(estimator=estimator, coef=0.3, reduction=reduction)
    fused = penalty._fused(leaves[0], leaves[1], leaves[2], mask, num_items)
    nan_padded = padding == "nan" and bool((mask == 0).any())
    assert (fused is None) == nan_padded  # NaN padding: the reference path's
    ours = penalty(leaves[0], leaves[1], mask, old_logprobs=leaves[2], num_items=num_items)
    if fused is not None:
        torch.testing.assert_close(ours, fused, rtol=0, atol=0)
    reference = penalty._reference(leaves[0], leaves[1], mask, leaves[2], num_items)
    present = [t for t in leaves if t is not None]
    upstream = torch.rand(ours.shape, dtype=dtype) if ours.ndim else None
    grads = torch.autograd.grad(ours, present, upstream)
    expected = torch.autograd.grad(reference, present, upstream)
    # float32: autograd through w * k3 cancels (w e - w e) like the textbook line does, and
    # the reference computes importance-weighted float32 penalties in float64
    rtol = 1e-10 if dtype == torch.float64 else 1e-3
    scale = float(reference.detach().abs().max()) + 1e-3
    torch.testing.assert_close(ours, reference, rtol=rtol, atol=rtol * scale)
    for got, want in zip(grads, expected, strict=True):
        scale = float(want.abs().max()) + 1e-3
        torch.testing.assert_close(got, want, rtol=rtol, atol=rtol * scale)
        if mask is not None and got.shape == mask.shape:
            assert (got[mask == 0] == 0).all()


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_fused_path_gradgradcheck(estimator, reduction):
    """Double backward through the fused path (plain autograd ops) is correct."""
    generator = torch.Generator().manual_seed(11)
    log_p = (-torch.rand(3, 4, generator=generator, dtype=torch.float64) - 0.1).requires_grad_()
    log_ref = (-torch.rand(3, 4, generator=generator, dtype=torch.float64) - 0.1).requires_grad_()
    old = (log_p.detach() - 0.05).requires_grad_()
    mask = torch.tensor([[1, 1, 0, 1], [0, 1, 1, 1], [1, 0, 0, 1]], dtype=torch.bool)
    penalty = KLPenalty(estimator=estimator, coef=0.3, reduction=reduction)

    def f(a, b, c):
        return penalty(a, b, mask, old_logprobs=c)

    assert torch.autograd.gradgradcheck(f, (log_p, log_ref, old))


def test_non_finite_inputs_take_the_reference_conventions():
    """-inf log-probabilities follow policy_kl's limits; nothing counted is 0 with 0 gradient."""
    log_p = torch.tensor([[-0.5, -1.0, -2.0]], requires_grad=True)
    ref = torch.tensor([[-math.inf, -0.3, -2.0]])
    mask = torch.tensor([[True, True, False]])
    for estimator in ESTIMATORS:
        assert KLPenalty(estimator=estimator)(log_p, ref, mask).item() == math.inf
    previous = kldiv.set_default_validate(False)
    try:  # without validation the fused result is still checked (free on the CPU)
        assert KLPenalty(estimator="k3")(log_p, ref, mask).item() == math.inf
        nan = KLPenalty(estimator="k3")(log_p, torch.full_like(ref, math.nan))
        assert torch.isnan(nan)
    finally:
        kldiv.set_default_validate(previous)
    nothing = torch.zeros_like(mask)
    for num_items in (None, torch.tensor(0.0)):
        loss = KLPenalty(estimator="k2")(log_p, ref, nothing, num_items=num_items)
        assert loss.item() == 0.0
        (grad,) = torch.autograd.grad(loss, log_p)
        assert (grad == 0).all()


def test_counted_plus_inf_old_logprobs_is_still_an_error():
    """A +inf behaviour log-probability (weight 0) is caught by the fused path's guard."""
    log_p, ref = torch.tensor([[-0.5, -1.0]]), torch.tensor([[-0.4, -1.2]])
    old = torch.tensor([[math.inf, -1.0]])
    with pytest.raises(kldiv.KLDivError, match="`old_logprobs` must hold log-probabilities"):
        KLPenalty()(log_p, ref, old_logprobs=old)
    masked = KLPenalty()(log_p, ref, torch.tensor([[False, True]]), old_logprobs=old)
    assert torch.isfinite(masked)


# --- importance weights beyond float32 (issue 16) ---------------------------------------


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_overflowing_importance_weights_are_not_nan(estimator, dtype, reduction):
    """exp(logprobs - old_logprobs) beyond float32 gives the float64 value, or +inf: never NaN."""
    log_p = torch.tensor([[-1.0, -1.0, -0.5, -2.0]], dtype=dtype)
    ref = torch.tensor([[-1.0, -1.001, -0.5, -2.0]], dtype=dtype)
    # weights e^0.5, e^95 (beyond float32: 1.8e41), e^100 with a zero estimate, e^0
    old = log_p - torch.tensor([[0.5, 95.0, 100.0, 0.0]], dtype=dtype)
    leaf = log_p.clone().requires_grad_(True)
    penalty = KLPenalty(estimator=estimator, coef=1.0, reduction=reduction)
    value = penalty(leaf, ref, old_logprobs=old)
    assert value.dtype == torch.float32
    (grad,) = torch.autograd.grad(value.sum(), leaf)
    assert not torch.isnan(value).any()
    assert not torch.isnan(grad).any()
    exact = policy_kl(
        log_p.double(), ref.double(), estimator=estimator, log_behavior=old.double()
    ).float()
    expected = exact.mean() if reduction == "mean" else exact
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=0)
    reward = KLPenalty(estimator=estimator, coef=1.0, mode="reward")(log_p, ref, old_logprobs=old)
    assert not torch.isnan(reward).any()


def test_torch_func_takes_the_reference_path():
    """torch.func.grad and vmap through KLPenalty give the eager gradients and values."""
    logprobs, ref, old, mask = _batch(12)
    penalty = KLPenalty(estimator="k3", coef=0.2)
    grad = torch.func.grad(lambda lp: penalty(lp, ref, mask, old_logprobs=old))(logprobs.detach())
    (expected,) = torch.autograd.grad(penalty(logprobs, ref, mask, old_logprobs=old), logprobs)
    torch.testing.assert_close(grad, expected)
    rows = torch.func.vmap(lambda lp, lr: KLPenalty(reduction="sum")(lp, lr))(logprobs, ref)
    torch.testing.assert_close(rows, KLPenalty(reduction="none")(logprobs, ref).sum(-1))
