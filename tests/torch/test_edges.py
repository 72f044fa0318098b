"""Honest at the edges: the torch losses where float32 rounds, overflows, or the input is bad.

References are independent of the code under test: dense float64 torch
formulas written out here, and hand-computed values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import kldiv  # noqa: E402
from kldiv.estimators import policy_kl  # noqa: E402
from kldiv.torch import (  # noqa: E402
    DistillationLoss,
    FullCovarianceGaussianKLLoss,
    FusedLinearDistillationLoss,
    GaussianKLLoss,
    KLDivLoss,
    KLPenalty,
    TopKTeacher,
)

DIRECTIONS = ("forward", "reverse", "jsd")


# --------------------------------------------------------------------------- references


def _kl64(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Σ p log(p/q) per row in float64, 0 where p = 0."""
    p, q = p.double(), q.double()
    terms = torch.where(p > 0, p * (torch.log(p) - torch.log(q)), torch.zeros_like(p))
    return terms.sum(-1)


def _divergence64(p: torch.Tensor, q: torch.Tensor, direction: str, beta: float = 0.5):
    if direction == "forward":
        return _kl64(p, q)
    if direction == "reverse":
        return _kl64(q, p)
    m = beta * p + (1 - beta) * q
    return beta * _kl64(p, m) + (1 - beta) * _kl64(q, m)


def _dense64(student, teacher, direction):
    """The dense per-token loss at T = 1, from float64 softmaxes."""
    p = torch.softmax(teacher.double(), -1)
    q = torch.softmax(student.double(), -1)
    return _divergence64(p, q, direction)


def _coarsened64(student, teacher_logits, k, direction):
    """The top-k + tail bucket loss, computed from the full teacher in float64."""
    p = torch.softmax(teacher_logits.double(), -1)
    q = torch.softmax(student.double(), -1)
    top = p.topk(k, -1).indices
    keep = torch.zeros_like(p, dtype=torch.bool).scatter(-1, top, True)
    p_tail = torch.where(keep, 0.0, p).sum(-1, keepdim=True)
    q_tail = torch.where(keep, 0.0, q).sum(-1, keepdim=True)
    p_b = torch.cat([p.gather(-1, top), p_tail], -1)
    q_b = torch.cat([q.gather(-1, top), q_tail], -1)
    return _divergence64(p_b, q_b, direction)


def _confident(rows, vocabulary, gap, dtype, seed=0):
    """Teacher logits whose first token is ``gap`` above the others (N(0, 1) noise)."""
    generator = torch.Generator().manual_seed(seed)
    teacher = torch.randn(rows, vocabulary, generator=generator, dtype=torch.float64)
    teacher[:, 0] += gap
    student = torch.randn(rows, vocabulary, generator=generator, dtype=torch.float64)
    return student.to(dtype), teacher.to(dtype)


def _server_top_k(teacher, k):
    """What an inference server returns: top-k of a log_softmax in the teacher's own dtype."""
    top = torch.log_softmax(teacher, -1).topk(k, -1)
    return TopKTeacher(top.indices, top.values)


# --------------------------------------------------------------------------- top-k teachers


def test_confident_float32_teacher_reverse_is_finite_and_below_dense():
    """The audit's case: top-1 logit 28 above the rest, V = 32000, k = 20, float32."""
    student, teacher = _confident(4, 32000, 28.0, torch.float32)
    loss = DistillationLoss(direction="reverse", reduction="none")
    sparse = loss(student, _server_top_k(teacher, 20))
    dense = _dense64(student, teacher, "reverse")
    assert torch.isfinite(sparse).all()
    # coarsening never exceeds the dense value (data processing)
    assert (sparse.double() <= dense + 1e-4).all()


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_from_logits_keeps_the_tail_of_a_confident_teacher(direction):
    """Built in float64 from the full logits, the tail is exact: the float64 coarsened value."""
    student, teacher = _confident(4, 32000, 28.0, torch.float32)
    top = TopKTeacher.from_logits(teacher, 20)
    assert top.log_probs.dtype == torch.float32
    assert (top.log_probs[:, 0] < 0).all()  # a float32 log_softmax rounds it to exactly 0
    got = DistillationLoss(direction=direction, reduction="none")(student, top)
    expected = _coarsened64(student, teacher, 20, direction)
    torch.testing.assert_close(got.double(), expected, rtol=2e-5, atol=1e-6)


def test_from_logits_tail_is_the_float64_rest():
    logits = torch.tensor([[28.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    top = TopKTeacher.from_logits(logits, 2)
    p = torch.softmax(logits.double(), -1)
    rest = [2 * p[0, 1].item(), p[1, 0].item() + p[1, 1].item()]
    expected = torch.log(torch.tensor(rest, dtype=torch.float64))
    torch.testing.assert_close(top.tail_log_prob.double(), expected, rtol=1e-6, atol=0)
    full = TopKTeacher.from_logits(logits, 4)
    assert torch.isneginf(full.tail_log_prob).all()


def test_from_logits_errors():
    with pytest.raises(kldiv.KLDivError, match="`k` must be an integer in"):
        TopKTeacher.from_logits(torch.zeros(2, 5), 6)
    with pytest.raises(kldiv.KLDivError, match="`logits` must be a floating-point"):
        TopKTeacher.from_logits(torch.zeros(2, 5, dtype=torch.long), 2)
    with pytest.raises(kldiv.KLDivError, match="`logits` must hold logits"):
        TopKTeacher.from_logits(torch.tensor([[0.0, math.nan]]), 1)
    with pytest.raises(kldiv.KLDivError, match="`temperature`"):
        TopKTeacher.from_logits(torch.zeros(2, 5), 2, temperature=0.0)


def test_bad_tail_log_prob_is_named():
    student = torch.zeros(2, 5)
    indices = torch.tensor([[0, 1], [1, 2]])
    log_probs = torch.log(torch.full((2, 2), 0.25))
    loss = DistillationLoss()
    with pytest.raises(kldiv.KLDivError, match=r"`tail_log_prob` .* must have the shape"):
        loss(student, TopKTeacher(indices, log_probs, torch.zeros(3)))
    with pytest.raises(kldiv.KLDivError, match=r"`tail_log_prob` .* log-probabilities"):
        loss(student, TopKTeacher(indices, log_probs, torch.tensor([math.nan, 0.0])))
    with pytest.raises(kldiv.KLDivError, match="must hold mass 1 per token"):
        loss(student, TopKTeacher(indices, log_probs, torch.log(torch.full((2,), 0.9))))


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_k_equal_to_v_is_the_dense_loss(direction, scale):
    """K = V: the buckets are the distributions (the float32 sum of all p may miss 1)."""
    generator = torch.Generator().manual_seed(1)
    teacher = scale * torch.randn(8, 32000, generator=generator)
    student = torch.randn(8, 32000, generator=generator)
    loss = DistillationLoss(direction=direction, reduction="none")
    sparse = loss(student, _server_top_k(teacher, 32000))
    torch.testing.assert_close(
        sparse.double(), _dense64(student, teacher, direction), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_top_k_chunked_equals_plain_for_a_confident_teacher(direction):
    student, teacher = _confident(6, 512, 40.0, torch.float32)
    top = _server_top_k(teacher, 8)
    plain = DistillationLoss(direction=direction, chunk_size=None)
    chunked = DistillationLoss(direction=direction, chunk_size=4)
    a = student.clone().requires_grad_()
    b = student.clone().requires_grad_()
    value_plain, value_chunked = plain(a, top), chunked(b, top)
    value_plain.backward()
    value_chunked.backward()
    assert torch.isfinite(value_plain)
    torch.testing.assert_close(value_chunked, value_plain)
    torch.testing.assert_close(b.grad, a.grad)
    assert torch.isfinite(a.grad).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    vocabulary=st.integers(2, 48),
    rows=st.integers(1, 4),
    scale=st.floats(0.0, 30.0),
    seed=st.integers(0, 2**31 - 1),
    direction=st.sampled_from(DIRECTIONS),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_property_k_equal_to_v_equals_dense(vocabulary, rows, scale, seed, direction, dtype):
    generator = torch.Generator().manual_seed(seed)
    teacher = (scale * torch.randn(rows, vocabulary, generator=generator)).to(dtype)
    student = torch.randn(rows, vocabulary, generator=generator).to(dtype)
    loss = DistillationLoss(direction=direction, reduction="none")
    sparse = loss(student, _server_top_k(teacher, vocabulary))
    tolerance = 1e-4 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(
        sparse.double(), _dense64(student, teacher, direction), rtol=tolerance, atol=tolerance
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gap=st.floats(0.0, 100.0),
    vocabulary=st.integers(3, 400),
    k_fraction=st.floats(0.0, 0.99),
    seed=st.integers(0, 2**31 - 1),
    direction=st.sampled_from(DIRECTIONS),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_property_top_k_of_a_confident_teacher_is_finite(
    gap, vocabulary, k_fraction, seed, direction, dtype
):
    """Logit gaps 0..100, k < V: finite, >= 0 (up to rounding) and at most the dense loss."""
    k = max(1, min(vocabulary - 1, int(k_fraction * vocabulary)))
    student, teacher = _confident(2, vocabulary, gap, dtype, seed)
    loss = DistillationLoss(direction=direction, reduction="none")
    dense = _dense64(student, teacher, direction)
    # A server's float32 log_softmax rounds log(1 - tail) with an absolute error of ~eps,
    # so a tail t reaches kldiv with a relative error of ~eps / t (2% at t = 3e-6): the
    # coarsened loss built on it may then exceed the dense one by q_tail · log(1 + eps/t).
    eps = torch.finfo(dtype).eps
    p = torch.softmax(teacher.double(), -1)
    q = torch.softmax(student.double(), -1)
    top_ids = p.topk(k, -1).indices
    p_tail = (1 - p.gather(-1, top_ids).sum(-1)).clamp_min(1e-300)
    q_tail = 1 - q.gather(-1, top_ids).sum(-1)
    rounding = q_tail * torch.log1p(4 * eps / p_tail) + p_tail * 4 * eps / q_tail.clamp_min(eps)
    exact_tail = TopKTeacher.from_logits(teacher, k)
    for top, allowance in ((_server_top_k(teacher, k), rounding), (exact_tail, 0)):
        sparse = loss(student, top)
        assert torch.isfinite(sparse).all(), (sparse, top)
        assert (sparse >= -1e-5).all()
        assert (sparse.double() <= dense + 1e-3 + allowance).all(), (sparse, dense, allowance)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_sweep_gaps_at_a_large_vocabulary(dtype, direction):
    """The audit's shape swept over gaps 0..100: finite and never above the dense loss."""
    for gap in np.linspace(0.0, 100.0, 21):
        student, teacher = _confident(2, 32000, float(gap), dtype)
        for k in (1, 20, 1000):
            sparse = DistillationLoss(direction=direction, reduction="none")(
                student, _server_top_k(teacher, k)
            )
            assert torch.isfinite(sparse).all(), (gap, k)
            assert (sparse.double() <= _dense64(student, teacher, direction) + 1e-3).all()


# --------------------------------------------------------------------------- vocabulary sizes


@pytest.mark.parametrize("chunk_size", [None, 1, "auto"])
def test_vocabulary_mismatch_is_named_on_every_logits_path(chunk_size):
    student = torch.randn(2, 32768, requires_grad=True)
    teacher = torch.randn(2, 32000)
    loss = DistillationLoss(chunk_size=chunk_size)
    with pytest.raises(kldiv.KLDivError, match=r"`teacher`.*V = 32768.*got 32000"):
        loss(student, teacher)


def test_vocabulary_mismatch_is_named_on_the_fused_path():
    hidden = torch.randn(2, 4, requires_grad=True)
    weight = torch.randn(32768, 4, requires_grad=True)
    with pytest.raises(kldiv.KLDivError, match=r"`teacher`.*V = 32768.*`weight`.*got 32000"):
        FusedLinearDistillationLoss()(hidden, weight, torch.randn(2, 32000))


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_token_axes_mismatch_and_k_above_v_are_named(chunk_size):
    student = torch.randn(3, 5, requires_grad=True)
    loss = DistillationLoss(chunk_size=chunk_size)
    with pytest.raises(kldiv.KLDivError, match=r"`teacher` \(4,\) must match .* \(3,\)"):
        loss(student, torch.randn(4, 5))
    with pytest.raises(kldiv.KLDivError, match=r"k = 6 entries, more than .* V = 5"):
        loss(student, TopKTeacher(torch.zeros(3, 6, dtype=torch.long), torch.full((3, 6), -3.0)))
    with pytest.raises(kldiv.KLDivError, match=r"`teacher` must be a torch\.Tensor"):
        loss(student, [[0.0] * 5] * 3)


def test_a_broadcast_teacher_gives_the_same_loss_chunked_and_plain():
    student = torch.randn(3, 4, 7, requires_grad=True)
    teacher = torch.randn(1, 4, 7)
    plain = DistillationLoss(chunk_size=None)(student, teacher)
    chunked = DistillationLoss(chunk_size=2)(student, teacher)
    torch.testing.assert_close(chunked, plain)


# --------------------------------------------------------------------------- one validation path


def test_distillation_errors_name_the_module_arguments():
    student = torch.randn(2, 5)
    bad = student.clone()
    bad[1, 2] = math.nan
    for chunk_size in (None, 1):
        loss = DistillationLoss(chunk_size=chunk_size)
        with pytest.raises(kldiv.KLDivError, match="`student_logits` must hold logits"):
            loss(bad.clone().requires_grad_(), student)
        with pytest.raises(kldiv.KLDivError, match="`teacher` must hold logits"):
            loss(student.clone().requires_grad_(), bad)


@pytest.mark.parametrize("name", ["hidden", "weight", "bias"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_fused_loss_names_a_non_finite_student_part(name, value):
    generator = torch.Generator().manual_seed(0)
    parts = {
        "hidden": torch.randn(6, 4, generator=generator),
        "weight": torch.randn(9, 4, generator=generator),
        "bias": torch.randn(9, generator=generator),
    }
    parts[name].view(-1)[1] = value
    teacher = torch.randn(6, 9, generator=generator)
    args = (parts["hidden"], parts["weight"], teacher)
    with pytest.raises(kldiv.KLDivError, match=f"`{name}` must be finite"):
        FusedLinearDistillationLoss()(*args, bias=parts["bias"])
    unchecked = FusedLinearDistillationLoss(validate=False)(*args, bias=parts["bias"])
    assert not torch.isfinite(unchecked)  # validate=False: no checks, no error


def test_fused_loss_reports_overflowing_logits():
    hidden = torch.full((2, 3), 1e20)
    weight = torch.full((5, 3), 1e20)
    weight[0] = -1e20
    with pytest.raises(kldiv.KLDivError, match="overflow"):
        FusedLinearDistillationLoss()(hidden, weight, torch.zeros(2, 5))


def test_full_covariance_loss_raises_instead_of_nan():
    mu = torch.tensor([[math.nan, 0.0]])
    eye = torch.eye(2)[None]
    with pytest.raises(kldiv.KLDivError, match="`mu` must be finite"):
        FullCovarianceGaussianKLLoss()(mu, eye)
    assert torch.isnan(FullCovarianceGaussianKLLoss(validate=False)(mu, eye))
    masked = FullCovarianceGaussianKLLoss()(mu, eye, mask=torch.tensor([False]))
    assert masked.item() == 0.0


@pytest.mark.parametrize(
    "module",
    [
        KLDivLoss,
        DistillationLoss,
        FusedLinearDistillationLoss,
        GaussianKLLoss,
        FullCovarianceGaussianKLLoss,
        KLPenalty,
    ],
)
def test_every_module_takes_validate(module):
    for flag in (None, True, False):
        assert module(validate=flag).validate is flag
    with pytest.raises(kldiv.KLDivError, match="`validate` must be True, False or None"):
        module(validate="yes")


def test_penalty_validate_false_skips_the_checks():
    logprobs = torch.tensor([-1.0, math.nan])
    with pytest.raises(kldiv.KLDivError, match="`logprobs` must hold log-probabilities"):
        KLPenalty()(logprobs, torch.tensor([-1.0, -1.0]))
    value = KLPenalty(validate=False)(logprobs, torch.tensor([-1.0, -1.0]))
    assert torch.isnan(value)


# --------------------------------------------------------------------------- importance weights


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("estimator", ["k1", "k2", "k3"])
def test_penalty_with_overflowing_weights_is_never_nan(dtype, estimator):
    """Log w = 800 overflows float64 too; a zero estimate still weighs exactly 0."""
    logprobs = torch.tensor([-1.0, -2.0, -3.0], dtype=dtype, requires_grad=True)
    ref = torch.tensor([-1.0, -2.5, -3.5], dtype=dtype)
    old = torch.tensor([-801.0, -802.0, -3.0], dtype=dtype)
    values = KLPenalty(estimator=estimator, reduction="none", coef=1.0)(
        logprobs, ref, old_logprobs=old
    )
    assert not torch.isnan(values).any()
    assert values[0].item() == 0.0  # log r = 0: estimate 0, whatever the weight
    assert values[1].item() == math.inf  # e^800 · k beyond every float
    log_r = -0.5
    k = {"k1": -log_r, "k2": 0.5 * log_r**2, "k3": math.expm1(log_r) - log_r}[estimator]
    assert values[2].item() == pytest.approx(k, rel=1e-6)  # weight 1
    mean = KLPenalty(estimator=estimator, coef=1.0)(logprobs, ref, old_logprobs=old)
    assert mean.item() == math.inf


def test_penalty_weight_beyond_float32_but_product_within_is_finite():
    """float32: e^90 overflows but e^90 · k3(log r = -0.0045) ≈ 1.23e34 does not."""
    logprobs = torch.tensor([-1.0], requires_grad=True)
    ref = logprobs.detach() - 0.0045
    old = logprobs.detach() - 90.0
    value = KLPenalty(estimator="k3", reduction="sum", coef=1.0)(logprobs, ref, old_logprobs=old)
    log_r = float(ref.double() - logprobs.detach().double())
    expected = math.exp(90.0) * (math.expm1(log_r) - log_r)
    assert value.item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(
    ("dtype", "log_w"), [(np.float32, 90.0), (np.float64, 705.0), (np.float64, 800.0)]
)
def test_policy_kl_importance_weights_in_log_space(dtype, log_w):
    log_p = np.array([-1.0, -1.0, -2.0], dtype=dtype)
    log_ref = np.array([-1.0, -1.001, -2.0], dtype=dtype)
    log_b = log_p - dtype(log_w)
    for estimator in ("k1", "k2", "k3"):
        got = policy_kl(log_p, log_ref, estimator=estimator, log_behavior=log_b)
        assert got.dtype == dtype
        assert not np.isnan(got).any()
        assert got[0] == 0.0
        assert got[2] == 0.0
        log_r = float(np.float64(log_ref[1]) - np.float64(log_p[1]))
        k = {"k1": -log_r, "k2": 0.5 * log_r**2, "k3": math.expm1(log_r) - log_r}[estimator]
        true = sign = math.copysign(1.0, k)
        magnitude = log_w + math.log(abs(k))
        if magnitude > math.log(float(np.finfo(dtype).max)):
            assert got[1] == sign * math.inf
        else:
            true = sign * math.exp(magnitude)
            assert float(got[1]) == pytest.approx(true, rel=1e-4)


def test_policy_kl_big_weight_gradients_are_not_nan():
    log_p = torch.tensor([-1.0, -1.0], dtype=torch.float64, requires_grad=True)
    log_ref = torch.tensor([-1.0, -1.001], dtype=torch.float64)
    values = policy_kl(log_p, log_ref, estimator="k2", log_behavior=log_p.detach() - 800.0)
    values.sum().backward()
    assert not torch.isnan(log_p.grad).any()
    assert log_p.grad[0].item() == 0.0
