"""KLDivLoss and DistillationLoss against naive float64 formulas: values and gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import kldiv  # noqa: E402
from kldiv.torch import DistillationLoss, KLDivLoss, TopKTeacher  # noqa: E402
from kldiv.torch._reduction import item_weights, reduce_items, weighted_total  # noqa: E402

DTYPE = torch.float64


def _logits(*shape, seed=0, scale=2.0):
    generator = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=generator, dtype=DTYPE)).requires_grad_()


def _naive_kl(log_p, log_q):
    """Σ p (log p − log q) per row, float64, the textbook formula."""
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def _naive_distillation(student, teacher, labels, *, t, direction, beta=0.5, ignore=-100):
    log_q = F.log_softmax(student / t, -1)
    log_p = F.log_softmax(teacher / t, -1)
    if direction == "forward":
        per_token = _naive_kl(log_p, log_q)
    elif direction == "reverse":
        per_token = _naive_kl(log_q, log_p)
    else:  # TRL's generalized_jsd_loss mixture, in log space
        log_m = torch.logsumexp(torch.stack([log_p + math.log(beta), log_q + math.log1p(-beta)]), 0)
        per_token = beta * _naive_kl(log_p, log_m) + (1 - beta) * _naive_kl(log_q, log_m)
    mask = labels != ignore
    return t**2 * per_token[mask].sum() / mask.sum().clamp_min(1)


@pytest.mark.parametrize("form", ["probs", "log_probs", "logits"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_kl_loss_matches_naive_formula(form, reduction):
    """KLDivLoss(p, q) = D(P‖Q) per (B, T) row, reduced over both leading dims."""
    z_p, z_q = _logits(3, 4, 7, seed=1), _logits(3, 4, 7, seed=2)
    mask = torch.rand(3, 4, generator=torch.Generator().manual_seed(3)) > 0.3
    log_p, log_q = F.log_softmax(z_p, -1), F.log_softmax(z_q, -1)
    inputs = {
        "probs": (log_p.exp(), log_q.exp()),
        "log_probs": (log_p, log_q),
        "logits": (z_p, z_q),
    }
    got = KLDivLoss(input=form, reduction=reduction)(*inputs[form], mask=mask)
    per_row = torch.where(mask, _naive_kl(log_p, log_q), 0.0)
    expected = {"mean": per_row.sum() / mask.sum(), "sum": per_row.sum(), "none": per_row}
    torch.testing.assert_close(got, expected[reduction])
    (g_got,) = torch.autograd.grad(got.sum(), z_q, retain_graph=True)
    (g_expected,) = torch.autograd.grad(expected[reduction].sum(), z_q)
    torch.testing.assert_close(g_got, g_expected)


def test_kl_loss_is_torch_batchmean_in_math_order_for_2d():
    """For (B, V) log-probs, "mean" equals F.kl_div(log q, log p, batchmean), arguments swapped."""
    log_p, log_q = F.log_softmax(_logits(5, 6), -1), F.log_softmax(_logits(5, 6, seed=9), -1)
    ours = KLDivLoss(input="log_probs")(log_p, log_q)
    theirs = F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
    torch.testing.assert_close(ours, theirs)


def test_kl_loss_mean_counts_every_leading_dim():
    """For (B, T, V), torch's batchmean divides by B; kldiv's mean divides by B·T."""
    log_p, log_q = F.log_softmax(_logits(2, 8, 6), -1), F.log_softmax(_logits(2, 8, 6, seed=4), -1)
    ours = KLDivLoss(input="log_probs")(log_p, log_q)
    torch_batchmean = F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
    torch.testing.assert_close(ours * 8, torch_batchmean)


def test_kl_loss_bits_and_temperature():
    """base=2 divides by log 2; the temperature divides both logits."""
    z_p, z_q = _logits(4, 5), _logits(4, 5, seed=6)
    nats = KLDivLoss(input="logits", temperature=3.0)(z_p, z_q)
    bits = KLDivLoss(input="logits", temperature=3.0, base=2)(z_p, z_q)
    torch.testing.assert_close(bits, nats / math.log(2))
    expected = _naive_kl(F.log_softmax(z_p / 3, -1), F.log_softmax(z_q / 3, -1)).mean()
    torch.testing.assert_close(nats, expected)


@pytest.mark.parametrize("direction", ["forward", "reverse", "jsd"])
@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_distillation_matches_naive_formula(direction, temperature):
    """Value and student/teacher gradients equal the naive float64 formula, mask included."""
    student, teacher = _logits(2, 5, 11, seed=7), _logits(2, 5, 11, seed=8)
    labels = torch.tensor([[1, 2, -100, 4, 5], [-100, -100, 3, 3, 0]])
    loss = DistillationLoss(temperature=temperature, direction=direction, beta=0.3)
    got = loss(student, teacher, labels)
    expected = _naive_distillation(
        student, teacher, labels, t=temperature, direction=direction, beta=0.3
    )
    torch.testing.assert_close(got, expected)
    grads_got = torch.autograd.grad(got, (student, teacher))
    grads_expected = torch.autograd.grad(expected, (student, teacher))
    for g, e in zip(grads_got, grads_expected, strict=True):
        torch.testing.assert_close(g, e)


def test_distillation_teacher_log_probs_equal_teacher_logits():
    """The teacher may be given as logits or log-probabilities: same loss."""
    student, teacher = _logits(3, 9), _logits(3, 9, seed=10)
    loss = DistillationLoss(temperature=2.0)
    torch.testing.assert_close(loss(student, teacher), loss(student, F.log_softmax(teacher, -1)))


def test_distillation_without_t_squared():
    """scale_by_temperature_squared=False drops the Hinton factor."""
    student, teacher = _logits(3, 9), _logits(3, 9, seed=11)
    scaled = DistillationLoss(temperature=4.0)(student, teacher)
    plain = DistillationLoss(temperature=4.0, scale_by_temperature_squared=False)(student, teacher)
    torch.testing.assert_close(scaled, 16 * plain)


@pytest.mark.parametrize("teacher_kind", ["dense", "top_k"])
def test_all_tokens_ignored_gives_zero_and_zero_gradient(teacher_kind):
    """Nothing counted: the loss is 0 and the gradient is 0, not NaN."""
    student = _logits(2, 3, 6)
    teacher = _logits(2, 3, 6, seed=12).detach()
    if teacher_kind == "top_k":
        top = F.log_softmax(teacher, -1).topk(2, dim=-1)
        teacher = TopKTeacher(top.indices, top.values)
    labels = torch.full((2, 3), -100)
    value = DistillationLoss()(student, teacher, labels)
    assert value.item() == 0.0
    (grad,) = torch.autograd.grad(value, student)
    assert torch.equal(grad, torch.zeros_like(grad))


def test_num_items_replaces_the_local_count():
    """With num_items given (a global count), the mean is sum / num_items."""
    student, teacher = _logits(4, 7), _logits(4, 7, seed=13)
    total = DistillationLoss(reduction="sum")(student, teacher)
    torch.testing.assert_close(DistillationLoss()(student, teacher, num_items=10), total / 10)
    torch.testing.assert_close(
        DistillationLoss()(student, teacher, num_items=torch.tensor(10)), total / 10
    )


def test_half_precision_logits_are_computed_in_float32():
    """bf16/fp16 logits give float32 per-token losses within 4e-6 nats of float64 (V = 32000).

    The float64 reference uses the same rounded inputs, so this is the error of
    the computation alone: the float32 rounding of the log-normaliser. A naive
    computation in the input dtype is off by 1e-3 to 3e-2 nats per token.
    """
    generator = torch.Generator().manual_seed(14)
    student = 3 * torch.randn(32, 32000, generator=generator)
    teacher = student + 0.3 * torch.randn(32, 32000, generator=generator)
    loss = DistillationLoss(reduction="none")
    for dtype in (torch.bfloat16, torch.float16):
        s, t = student.to(dtype), teacher.to(dtype)
        got = loss(s, t)
        reference = loss(s.double(), t.double())
        assert got.dtype == torch.float32
        assert (got.double() - reference).abs().max().item() <= 4e-6
        naive = F.kl_div(
            F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="none"
        )
        assert (naive.sum(-1).double() - reference).abs().max().item() > 1e-3


def _naive_top_k(student, indices, top_log_p, *, t, direction, beta=0.5):
    """Buckets built the obvious way in float64: gather, and 1 − Σ for the tails."""
    log_q = F.log_softmax(student / t, -1)
    q_top = log_q.gather(-1, indices).exp()
    p_top = top_log_p.exp()
    p = torch.cat([p_top, (1 - p_top.sum(-1, keepdim=True)).clamp_min(0)], -1)
    q = torch.cat([q_top, (1 - q_top.sum(-1, keepdim=True)).clamp_min(0)], -1)
    if direction == "forward":
        per = kldiv.kl_from_probs(p, q, validate=False)
    elif direction == "reverse":
        per = kldiv.kl_from_probs(q, p, validate=False)
    else:
        per = kldiv.js_from_probs(p, q, beta=beta, validate=False)
    return t**2 * per.mean()


@pytest.mark.parametrize("direction", ["forward", "reverse", "jsd"])
def test_top_k_teacher_matches_naive_buckets(direction):
    """The top-k loss is the divergence of the (k + 1)-bucket distributions, value and gradient."""
    student, teacher = _logits(3, 4, 13, seed=16), _logits(3, 4, 13, seed=17).detach()
    top = F.log_softmax(teacher / 1.0, -1).topk(4, dim=-1)
    loss = DistillationLoss(temperature=1.5, direction=direction, beta=0.4)
    got = loss(student, TopKTeacher(top.indices, top.values))
    expected = _naive_top_k(student, top.indices, top.values, t=1.5, direction=direction, beta=0.4)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(
        torch.autograd.grad(got, student)[0], torch.autograd.grad(expected, student)[0]
    )


@pytest.mark.parametrize("direction", ["forward", "reverse", "jsd"])
def test_top_k_with_whole_vocabulary_equals_dense(direction):
    """With k = V the tail buckets are empty and the top-k loss is the dense loss."""
    student, teacher = _logits(2, 3, 6, seed=18), _logits(2, 3, 6, seed=19).detach()
    top = F.log_softmax(teacher, -1).topk(6, dim=-1)
    loss = DistillationLoss(temperature=1.0, direction=direction)
    torch.testing.assert_close(
        loss(student, TopKTeacher(top.indices, top.values)), loss(student, teacher)
    )


def test_top_k_never_negative_and_below_full_kl():
    """0 ≤ top-k forward KL ≤ full forward KL (data processing), unlike truncated top-k."""
    for seed in range(20):
        student, teacher = _logits(8, 50, seed=100 + seed), _logits(8, 50, seed=200 + seed)
        top = F.log_softmax(teacher, -1).topk(5, dim=-1)
        loss = DistillationLoss(reduction="none")
        sparse = loss(student, TopKTeacher(top.indices, top.values))
        dense = loss(student, teacher)
        assert (sparse >= 0).all()
        assert (sparse <= dense + 1e-12).all()


def test_top_k_student_tail_is_accurate_in_float32():
    """A tiny student tail (≈1e-9) is summed directly, not as 1 − Σ top (which is 0 in float32)."""
    student = torch.zeros(1, 1000)
    student[0, :3] = 30.0  # the tail outside the top 3 holds ≈ 997·e^-30 ≈ 9e-11 of the mass
    teacher_log_p = torch.log(torch.tensor([[0.3, 0.3, 0.3]]))
    teacher = TopKTeacher(torch.tensor([[0, 1, 2]]), teacher_log_p)
    got = DistillationLoss()(student, teacher)
    reference = DistillationLoss()(
        student.double(), TopKTeacher(teacher.indices, teacher_log_p.double())
    )
    assert math.isfinite(got.item())
    assert abs(got.item() - reference.item()) < 1e-4 * reference.item()


def test_top_k_errors():
    """Bad top-k teachers raise KLDivError naming what is wrong."""
    student = torch.zeros(2, 5)
    good = torch.log(torch.full((2, 2), 0.25))
    loss = DistillationLoss()
    with pytest.raises(kldiv.KLDivError, match=r"must be in \[0, 5\)"):
        loss(student, TopKTeacher(torch.tensor([[0, 5], [1, 2]]), good))
    with pytest.raises(kldiv.KLDivError, match="same shape"):
        loss(student, TopKTeacher(torch.tensor([[0, 1, 2], [1, 2, 3]]), good))
    with pytest.raises(kldiv.KLDivError, match="at most mass 1"):
        loss(
            student, TopKTeacher(torch.tensor([[0, 1], [1, 2]]), torch.log(torch.full((2, 2), 0.6)))
        )
    with pytest.raises(kldiv.KLDivError, match="must be integers"):
        loss(student, TopKTeacher(torch.zeros(2, 2), good))
    with pytest.raises(kldiv.KLDivError, match="k = 6 entries"):
        loss(student, TopKTeacher(torch.zeros(2, 6, dtype=torch.long), torch.full((2, 6), -3.0)))


def test_configuration_errors():
    """Bad configuration raises at construction, naming the argument."""
    with pytest.raises(kldiv.KLDivError, match="`direction` must be one of"):
        DistillationLoss(direction="both")
    with pytest.raises(kldiv.KLDivError, match="`reduction` must be one of"):
        DistillationLoss(reduction="batchmean")
    with pytest.raises(kldiv.KLDivError, match="`temperature` must be a positive"):
        DistillationLoss(temperature=0.0)
    with pytest.raises(kldiv.KLDivError, match="`beta` must be"):
        DistillationLoss(beta=2.0)
    with pytest.raises(kldiv.KLDivError, match="`ignore_index` must be an integer"):
        DistillationLoss(ignore_index=None)
    with pytest.raises(kldiv.KLDivError, match="`input` must be one of"):
        KLDivLoss(input="log")
    with pytest.raises(kldiv.KLDivError, match="applies to input='logits' only"):
        KLDivLoss(input="probs", temperature=2.0)
    with pytest.raises(kldiv.KLDivError, match="`labels` must have"):
        DistillationLoss()(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), torch.zeros(2, 4))
    with pytest.raises(kldiv.KLDivError, match="`num_items` must be"):
        DistillationLoss()(torch.zeros(2, 4), torch.zeros(2, 4), num_items=-1)
    with pytest.raises(kldiv.KLDivError, match="`mask` must have"):
        KLDivLoss(input="logits")(
            torch.zeros(2, 4), torch.zeros(2, 4), mask=torch.ones(3, dtype=bool)
        )


@pytest.mark.parametrize("direction", ["forward", "reverse", "jsd"])
def test_gradcheck(direction):
    """torch.autograd.gradcheck in float64, dense and top-k teachers."""
    student, teacher = _logits(2, 5, seed=20), _logits(2, 5, seed=21)
    labels = torch.tensor([0, -100])
    loss = DistillationLoss(temperature=1.7, direction=direction)
    assert torch.autograd.gradcheck(lambda s, t: loss(s, t, labels), (student, teacher))
    top = F.log_softmax(teacher.detach(), -1).topk(3, dim=-1)
    sparse = TopKTeacher(top.indices, top.values)
    assert torch.autograd.gradcheck(lambda s: loss(s, sparse), (student,))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_torch_compile_smoke():
    """The losses trace and run under torch.compile (aot_eager: no codegen, fast)."""
    student, teacher = torch.randn(2, 3, 8), torch.randn(2, 3, 8)
    labels = torch.tensor([[1, -100, 2], [3, 4, -100]])
    loss = DistillationLoss(temperature=2.0, direction="jsd")
    compiled = torch.compile(loss, backend="aot_eager")
    torch.testing.assert_close(compiled(student, teacher, labels), loss(student, teacher, labels))
    kl = KLDivLoss(input="logits")
    torch.testing.assert_close(
        torch.compile(kl, backend="aot_eager")(student, teacher), kl(student, teacher)
    )
    assert np.isfinite(compiled(student, teacher, labels).item())


@pytest.mark.parametrize("form", ["probs", "log_probs", "logits"])
def test_kl_loss_gradcheck(form):
    """Gradcheck of KLDivLoss in float64, masked mean over (B, T), both arguments."""
    z_p, z_q = _logits(2, 3, 5, seed=40), _logits(2, 3, 5, seed=41)
    mask = torch.tensor([[True, False, True], [True, True, False]])
    loss = KLDivLoss(input=form, validate=False)
    transform = {
        "probs": lambda z: torch.softmax(z, -1),
        "log_probs": lambda z: torch.log_softmax(z, -1),
        "logits": lambda z: z,
    }[form]
    assert torch.autograd.gradcheck(
        lambda a, b: loss(transform(a), transform(b), mask=mask), (z_p, z_q)
    )


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("num_items", [None, 7.0, "tensor"])
@pytest.mark.parametrize("masked", [False, True])
def test_item_weights_fold_the_reduction(reduction, num_items, masked):
    """Σ w_i ℓ_i with item_weights equals scale · reduce_items, masked infinities included."""
    values = _logits(3, 4, seed=50).detach().abs()
    mask = (torch.arange(12).reshape(3, 4) % 3 != 0) if masked else None
    if masked:
        values[0, 0] = float("inf")  # a masked item
    if num_items == "tensor":
        num_items = torch.tensor(9)
    options = {"reduction": reduction, "num_items": num_items}
    weights = item_weights(mask, 12, scale=4.0, dtype=DTYPE, device=values.device, **options)
    want = reduce_items(values, mask=mask, scale=4.0, **options)
    torch.testing.assert_close(weighted_total(values.reshape(-1), weights), want)
    torch.testing.assert_close(want, 4.0 * reduce_items(values, mask=mask, **options))


def test_reduce_items_leaves_a_num_items_tensor_alone():
    """The denominator is a new tensor: the caller's num_items is never clamped or scaled."""
    num_items = torch.tensor(0.5, dtype=DTYPE)
    reduce_items(_logits(4, seed=51), reduction="mean", num_items=num_items, scale=4.0)
    assert num_items.item() == 0.5


def test_distillation_configuration_is_readable():
    """The divergence's fields read back from the module, and its repr names them."""
    loss = DistillationLoss(temperature=2.0, direction="jsd", beta=0.25)
    assert (loss.temperature, loss.direction, loss.beta, loss.scale) == (2.0, "jsd", 0.25, 4.0)
    assert "direction='jsd'" in repr(loss)
    assert "scale=4" in repr(loss)
