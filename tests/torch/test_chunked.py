"""The chunked and fused-linear distillation paths equal the plain formula in float64."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import kldiv  # noqa: E402
from kldiv.torch import (  # noqa: E402
    DistillationLoss,
    FusedLinearDistillationLoss,
    TeacherHead,
    TopKTeacher,
)

B, T, V, D = 3, 5, 101, 6  # 15 tokens, a prime vocabulary
LABELS = torch.tensor([[1, -100, 3, 4, 5], [-100, -100, 2, 2, 0], [7, 8, 9, -100, 1]])


def _tensor(*shape, seed, scale=1.0, dtype=torch.float64, grad=True):
    generator = torch.Generator().manual_seed(seed)
    value = scale * torch.randn(*shape, generator=generator, dtype=torch.float64)
    return value.to(dtype).requires_grad_(grad)


def _top_k(teacher_logits, k=4):
    top = F.log_softmax(teacher_logits.detach(), -1).topk(k, dim=-1)
    return TopKTeacher(top.indices, top.values)


def _assert_same_loss_and_grads(chunked, plain, inputs):
    torch.testing.assert_close(chunked, plain)
    for got, want in zip(
        torch.autograd.grad(chunked, inputs), torch.autograd.grad(plain, inputs), strict=True
    ):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("direction", ["forward", "reverse", "jsd"])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
@pytest.mark.parametrize("teacher_kind", ["dense", "top_k"])
@pytest.mark.parametrize("chunk_size", [1, 4, 7, 64])
def test_chunked_logits_equal_plain(direction, temperature, teacher_kind, chunk_size):
    """Loss and student gradient equal the plain path, for chunks that do not divide N."""
    student = _tensor(B, T, V, seed=1, scale=2.0)
    teacher = _tensor(B, T, V, seed=2, scale=2.0, grad=False)
    if teacher_kind == "top_k":
        teacher = _top_k(teacher)
    options = {"temperature": temperature, "direction": direction, "beta": 0.3}
    chunked = DistillationLoss(chunk_size=chunk_size, **options)(student, teacher, LABELS)
    plain = DistillationLoss(chunk_size=None, **options)(student, teacher, LABELS)
    _assert_same_loss_and_grads(chunked, plain, (student,))


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_chunked_logits_other_reductions(reduction):
    """Per-token outputs ("none") backpropagate their own weights through the stored gradient."""
    student = _tensor(B, T, V, seed=3)
    teacher = _tensor(B, T, V, seed=4, grad=False)
    chunked = DistillationLoss(chunk_size=4, reduction=reduction)(student, teacher, LABELS)
    plain = DistillationLoss(chunk_size=None, reduction=reduction)(student, teacher, LABELS)
    weights = torch.linspace(0.5, 2.0, chunked.numel(), dtype=torch.float64).reshape(chunked.shape)
    _assert_same_loss_and_grads((chunked * weights).sum(), (plain * weights).sum(), (student,))


def test_chunked_logits_bf16_against_fp32_reference():
    """bf16 logits: loss within 4e-6 of float64 on the same inputs, gradient within bf16 rounding.

    The stored gradient is bf16 (like the logits), so it is compared at 0.8%.
    """
    student = _tensor(4, 64, 4099, seed=5, scale=3.0, dtype=torch.bfloat16)
    teacher = _tensor(4, 64, 4099, seed=6, scale=3.0, dtype=torch.bfloat16, grad=False)
    chunked = DistillationLoss(chunk_size=16, temperature=2.0)(student, teacher)
    (grad,) = torch.autograd.grad(chunked, student)
    reference_student = student.detach().double().requires_grad_()
    reference = DistillationLoss(chunk_size=None, temperature=2.0)(
        reference_student, teacher.double()
    )
    (reference_grad,) = torch.autograd.grad(reference, reference_student)
    assert chunked.dtype == torch.float32
    assert grad.dtype == torch.bfloat16
    assert abs(chunked.item() - reference.item()) <= 4e-6
    torch.testing.assert_close(grad.double(), reference_grad, rtol=8e-3, atol=1e-9)


def test_auto_chunking_only_for_large_inputs_needing_a_gradient():
    """'auto' leaves small inputs and no-grad inputs on the plain path (same values anyway)."""
    loss = DistillationLoss()
    small = _tensor(2, 7, seed=7)
    assert loss._chunk_rows(small, small.detach()) is None
    large = torch.zeros(64, 1 << 16, requires_grad=True)
    assert loss._chunk_rows(large, large.detach()) == 8  # 2 MiB of float32 rows at V = 65536
    assert loss._chunk_rows(large.detach(), large.detach()) is None


def test_teacher_needing_a_gradient_uses_the_plain_path():
    """A trainable teacher still gets its gradient (the chunked path is student-only)."""
    student, teacher = _tensor(B, T, V, seed=8), _tensor(B, T, V, seed=9)
    value = DistillationLoss(chunk_size=4)(student, teacher, LABELS)
    value.backward()
    assert teacher.grad is not None
    assert torch.isfinite(teacher.grad).all()


def test_chunked_gradient_cannot_be_used_twice():
    """The stored gradient is scaled in place: a second backward raises instead of lying."""
    student = _tensor(B, T, V, seed=10)
    value = DistillationLoss(chunk_size=4)(student, _tensor(B, T, V, seed=11, grad=False))
    value.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="cannot be backpropagated twice"):
        value.backward()


def test_chunked_path_validates_once():
    """Bad logits raise the plain path's error before any chunk runs."""
    student = _tensor(B, T, V, seed=12)
    teacher = _tensor(B, T, V, seed=13, grad=False).clone()
    teacher[0, 0, 0] = float("nan")
    with pytest.raises(kldiv.KLDivError, match="`teacher` must hold logits"):
        DistillationLoss(chunk_size=4)(student, teacher)
    with pytest.raises(kldiv.KLDivError, match="`chunk_size` must be"):
        DistillationLoss(chunk_size=0)


def _naive_fused(hidden, weight, bias, teacher, labels, **options):
    logits = hidden @ weight.T + (0 if bias is None else bias)
    if isinstance(teacher, TeacherHead):
        teacher = teacher.hidden @ teacher.weight.T + (0 if teacher.bias is None else teacher.bias)
    return DistillationLoss(chunk_size=None, **options)(logits, teacher, labels)


@pytest.mark.parametrize("direction", ["forward", "reverse", "jsd"])
@pytest.mark.parametrize("teacher_kind", ["dense", "top_k", "head"])
@pytest.mark.parametrize("chunk_size", [4, 64])
def test_fused_linear_equals_plain(direction, teacher_kind, chunk_size):
    """Loss and the gradients of hidden states, weight and bias equal the plain formula."""
    hidden, weight, bias = _tensor(B, T, D, seed=14), _tensor(V, D, seed=15), _tensor(V, seed=16)
    teacher_head = TeacherHead(
        _tensor(B, T, 4, seed=17, grad=False), _tensor(V, 4, seed=18, grad=False), None
    )
    teacher_logits = teacher_head.hidden @ teacher_head.weight.T
    teacher = {
        "dense": teacher_logits,
        "top_k": _top_k(teacher_logits),
        "head": teacher_head,
    }[teacher_kind]
    options = {"temperature": 1.5, "direction": direction, "beta": 0.6}
    fused = FusedLinearDistillationLoss(chunk_size=chunk_size, **options)(
        hidden, weight, teacher, LABELS, bias=bias
    )
    plain = _naive_fused(hidden, weight, bias, teacher, LABELS, **options)
    _assert_same_loss_and_grads(fused, plain, (hidden, weight, bias))


def test_fused_linear_sum_and_num_items():
    """reduction='sum', and 'mean' with a global num_items, equal the plain path."""
    hidden, weight = _tensor(B, T, D, seed=19), _tensor(V, D, seed=20)
    teacher = _tensor(B, T, V, seed=21, grad=False)
    for options, call in [({"reduction": "sum"}, {}), ({}, {"num_items": 40})]:
        fused = FusedLinearDistillationLoss(chunk_size=4, **options)(
            hidden, weight, teacher, LABELS, **call
        )
        plain = DistillationLoss(chunk_size=None, **options)(
            hidden @ weight.T, teacher, LABELS, **call
        )
        _assert_same_loss_and_grads(fused, plain, (hidden, weight))


def test_fused_linear_all_ignored_is_zero_with_zero_gradients():
    """No counted token: loss 0, gradients 0, no NaN."""
    hidden, weight = _tensor(2, D, seed=22), _tensor(V, D, seed=23)
    value = FusedLinearDistillationLoss()(
        hidden, weight, _tensor(2, V, seed=24, grad=False), torch.tensor([-100, -100])
    )
    assert value.item() == 0.0
    for grad in torch.autograd.grad(value, (hidden, weight)):
        assert torch.equal(grad, torch.zeros_like(grad))


def test_fused_linear_bf16_against_fp32_reference():
    """bf16 hidden states and weight: the loss is within 1e-5 of float64 math on the same values."""
    hidden = _tensor(2, 40, 32, seed=25, dtype=torch.bfloat16)
    weight = _tensor(1009, 32, seed=26, scale=0.3, dtype=torch.bfloat16)
    teacher = _tensor(2, 40, 1009, seed=27, grad=False)
    fused = FusedLinearDistillationLoss(chunk_size=16)(hidden, weight, teacher)
    grads = torch.autograd.grad(fused, (hidden, weight))
    h64 = hidden.detach().double().requires_grad_()
    w64 = weight.detach().double().requires_grad_()
    reference = DistillationLoss(chunk_size=None)(h64 @ w64.T, teacher)
    reference_grads = torch.autograd.grad(reference, (h64, w64))
    assert fused.dtype == torch.float32
    assert abs(fused.item() - reference.item()) <= 1e-5 * max(1.0, reference.item())
    for got, want in zip(grads, reference_grads, strict=True):
        assert got.dtype == torch.bfloat16
        torch.testing.assert_close(got.double(), want, rtol=1e-2, atol=1e-4)


def test_fused_linear_without_tokens_is_zero_with_zero_gradients():
    """An empty batch: loss 0 and zero gradients (the weight's is written by no chunk)."""
    hidden, weight = _tensor(0, D, seed=61), _tensor(V, D, seed=62)
    value = FusedLinearDistillationLoss()(hidden, weight, _tensor(0, V, seed=63, grad=False))
    assert value.item() == 0.0
    (grad,) = torch.autograd.grad(value, weight)
    assert torch.equal(grad, torch.zeros_like(grad))


def test_fused_linear_errors():
    """Shapes that do not fit raise KLDivError naming what is wrong."""
    hidden, weight = _tensor(2, 3, D, seed=28), _tensor(V, D, seed=29)
    teacher = _tensor(2, 3, V, seed=30, grad=False)
    loss = FusedLinearDistillationLoss()
    with pytest.raises(kldiv.KLDivError, match="'mean' or 'sum'"):
        FusedLinearDistillationLoss(reduction="none")
    with pytest.raises(kldiv.KLDivError, match="`chunk_size` must be 'auto'"):
        FusedLinearDistillationLoss(chunk_size=None)
    with pytest.raises(kldiv.KLDivError, match=r"`weight` must be \[V, d\]"):
        loss(hidden, weight.T, teacher)
    with pytest.raises(kldiv.KLDivError, match="`labels` must have"):
        loss(hidden, weight, teacher, torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(kldiv.KLDivError, match="student's vocabulary"):
        loss(hidden, weight, teacher[..., :-1])
    with pytest.raises(kldiv.KLDivError, match="the teacher has 3 tokens"):
        loss(hidden, weight, teacher[0])


@pytest.mark.parametrize("direction", ["forward", "reverse", "jsd"])
def test_masked_vocabulary_entries_match_plain(direction):
    """-inf logits (padded vocabulary): the same value and gradient as the plain path.

    Even for the reverse KL, infinite where the teacher rules out tokens the
    student allows, the gradient of the finite part agrees.
    """
    student = _tensor(B, T, V, seed=31).detach().clone()
    teacher = _tensor(B, T, V, seed=32, grad=False).clone()
    student[..., -5:] = float("-inf")
    teacher[..., -5:] = float("-inf")
    teacher[0, 0, :3] = float("-inf")  # the teacher also rules out a few real tokens
    student.requires_grad_()
    options = {"direction": direction, "temperature": 1.3}
    chunked = DistillationLoss(chunk_size=4, **options)(student, teacher, LABELS)
    plain = DistillationLoss(chunk_size=None, **options)(student, teacher, LABELS)
    _assert_same_loss_and_grads(chunked, plain, (student,))
    # The student gives mass where the teacher has none: only the reverse KL is infinite.
    assert torch.isfinite(chunked) == (direction != "reverse")


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_jsd_degenerate_beta_is_zero_with_zero_gradient(beta):
    """Beta 0 or 1 makes the JSD identically 0; the chunked gradient is 0, not NaN."""
    student = _tensor(B, T, V, seed=33)
    value = DistillationLoss(chunk_size=4, direction="jsd", beta=beta)(
        student, _tensor(B, T, V, seed=34, grad=False)
    )
    (grad,) = torch.autograd.grad(value, student)
    assert value.item() == 0.0
    assert torch.equal(grad, torch.zeros_like(grad))


def test_fused_gradients_cannot_be_used_twice():
    """The fused gradients are scaled in place: a second backward raises instead of lying."""
    hidden, weight = _tensor(4, D, seed=35), _tensor(V, D, seed=36)
    value = FusedLinearDistillationLoss()(hidden, weight, _tensor(4, V, seed=37, grad=False))
    value.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="cannot be backpropagated twice"):
        value.backward()


# --------------------------------------------------------------------------- in-place kernels

from kldiv.torch import _chunked  # noqa: E402
from kldiv.torch._distill_kernels import (  # noqa: E402
    Divergence,
    Workspace,
    loss_and_gradient,
    rows_into,
)


def _rows_into(student, teacher, divergence, weights=None, *, in_place=False, check=None):
    """rows_into on a fresh workspace; returns (values, out, workspace)."""
    dtype = torch.promote_types(student.dtype, torch.float32)
    workspace = Workspace(student.shape[0], student.shape[-1], dtype, student.device, check)
    out = student if in_place else torch.empty_like(student)
    values = rows_into(student, teacher, out, divergence, workspace, weights)
    return values, out, workspace


@pytest.mark.parametrize("direction", ["forward", "reverse", "jsd"])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("in_place", [False, True])
def test_fast_kernel_equals_reference(direction, temperature, in_place):
    """The in-place CPU kernel: the reference's values and weighted gradient, out may alias."""
    student = _tensor(9, V, seed=40, scale=3.0, grad=False)
    teacher = _tensor(9, V, seed=41, scale=3.0, grad=False)
    weights = torch.linspace(0.0, 2.0, 9, dtype=torch.float64)[:, None]
    divergence = Divergence(direction, temperature, beta=0.3)
    want_values, want_gradient = loss_and_gradient(student, teacher, divergence)
    values, out, workspace = _rows_into(
        student.clone(), teacher, divergence, weights, in_place=in_place
    )
    assert not workspace.use_reference  # finite rows: the fast kernel ran
    torch.testing.assert_close(values, want_values)
    torch.testing.assert_close(out, want_gradient * weights)


@pytest.mark.parametrize("direction", ["forward", "reverse", "jsd"])
def test_fast_kernel_float32_close_to_float64(direction):
    """float32 rows at a large vocabulary: values and gradient within float32 rounding."""
    student = _tensor(4, 32000, seed=42, scale=4.0, dtype=torch.float32, grad=False)
    teacher = _tensor(4, 32000, seed=43, scale=4.0, dtype=torch.float32, grad=False)
    divergence = Divergence(direction, 2.0, beta=0.6)
    values, out, _ = _rows_into(student, teacher, divergence)
    want_values, want_gradient = loss_and_gradient(student.double(), teacher.double(), divergence)
    torch.testing.assert_close(values.double(), want_values, rtol=1e-5, atol=2e-6)
    torch.testing.assert_close(out.double(), want_gradient, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("direction", ["forward", "reverse", "jsd"])
@pytest.mark.parametrize("masked_rows", ["all", "some"])
@pytest.mark.parametrize("in_place", [False, True])
def test_fast_kernel_falls_back_on_non_finite_rows(direction, masked_rows, in_place):
    """-inf logits make the fast loss non-finite: the reference recomputes, exactly.

    Some rows: only those are retried. Every row (a padded vocabulary): the
    workspace sends the rest of the call to the reference at once.
    """
    student = _tensor(6, V, seed=44, grad=False).clone()
    teacher = _tensor(6, V, seed=45, grad=False).clone()
    rows = slice(None) if masked_rows == "all" else slice(1, 3)
    student[rows, -3:] = float("-inf")
    teacher[rows, -3:] = float("-inf")
    teacher[2, :4] = float("-inf")
    weights = torch.tensor([[1.0], [0.0], [2.0], [1.0], [0.5], [0.0]], dtype=torch.float64)
    divergence = Divergence(direction, 1.3, beta=0.4)
    want_values, want_gradient = loss_and_gradient(student, teacher, divergence)
    values, out, workspace = _rows_into(
        student.clone(), teacher, divergence, weights, in_place=in_place
    )
    assert workspace.use_reference == (masked_rows == "all")
    torch.testing.assert_close(values, want_values)
    torch.testing.assert_close(out, want_gradient * weights)


def test_zero_weight_rows_get_exact_zero_gradient_even_when_nan():
    """A row of weight 0 (masked) gets 0, not NaN, even if its logits are NaN."""
    student = _tensor(3, V, seed=46, grad=False).clone()
    student[1, 5] = float("nan")
    weights = torch.tensor([[1.0], [0.0], [1.0]], dtype=torch.float64)
    values, out, _ = _rows_into(student, _tensor(3, V, seed=47, grad=False), Divergence(), weights)
    assert torch.isnan(values[1])
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    assert torch.isfinite(out).all()


def test_value_checks_run_only_when_a_chunk_is_not_finite():
    """Finite losses prove finite logits: the whole-batch check runs once, and only if needed."""
    calls = []
    student = _tensor(4, V, seed=48, grad=False).clone()
    teacher = _tensor(4, V, seed=49, grad=False)
    _rows_into(student, teacher, Divergence(), check=lambda: calls.append(1))
    assert calls == []
    student[0, 0] = float("-inf")
    dtype = torch.float64
    workspace = Workspace(2, V, dtype, student.device, lambda: calls.append(1))
    for rows in (slice(0, 2), slice(2, 4)):
        rows_into(
            student[rows], teacher[rows], torch.empty(2, V, dtype=dtype), Divergence(), workspace
        )
    assert calls == [1]


def test_chunked_total_scales_by_the_incoming_gradient():
    """backward(g) with g != 1 scales the stored gradient (g = 1 skips the pass)."""
    student = _tensor(B, T, V, seed=50)
    teacher = _tensor(B, T, V, seed=51, grad=False)
    options = {"temperature": 1.5}
    chunked = DistillationLoss(chunk_size=4, **options)(student, teacher, LABELS)
    plain = DistillationLoss(chunk_size=None, **options)(student, teacher, LABELS)
    factor = torch.tensor(-2.5, dtype=torch.float64)
    _assert_same_loss_and_grads(chunked * factor, plain * factor, (student,))


def test_fused_linear_sub_chunks_teacher_head_with_bias(monkeypatch):
    """Fused chunks split into kernel sub-chunks, a TeacherHead with a bias: the plain formula."""
    monkeypatch.setattr(_chunked, "FUSED_KERNEL_BYTES", 4 * V * 3)  # 3-row sub-chunks
    hidden, weight, bias = _tensor(B, T, D, seed=52), _tensor(V, D, seed=53), _tensor(V, seed=54)
    head = TeacherHead(
        _tensor(B, T, 4, seed=55, grad=False),
        _tensor(V, 4, seed=56, grad=False),
        _tensor(V, seed=57, grad=False),
    )
    options = {"temperature": 2.0, "direction": "reverse"}
    fused = FusedLinearDistillationLoss(chunk_size=7, **options)(
        hidden, weight, head, LABELS, bias=bias
    )
    plain = _naive_fused(hidden, weight, bias, head, LABELS, **options)
    _assert_same_loss_and_grads(fused, plain, (hidden, weight, bias))


def test_fused_linear_validates_the_teacher():
    """A NaN in a dense teacher raises (validate on); with validate=False the loss is NaN."""
    hidden, weight = _tensor(4, D, seed=58), _tensor(V, D, seed=59)
    teacher = _tensor(4, V, seed=60, grad=False).clone()
    teacher[1, 3] = float("nan")
    with pytest.raises(kldiv.KLDivError, match="`teacher` must hold logits"):
        FusedLinearDistillationLoss()(hidden, weight, teacher)
    value = FusedLinearDistillationLoss(validate=False)(hidden, weight, teacher)
    assert torch.isnan(value)


def test_no_import_cycle_between_chunked_and_losses():
    """_losses imports _chunked and the kernels; neither of them imports _losses."""
    import ast
    import importlib
    from pathlib import Path

    def imported(name):
        tree = ast.parse(Path(importlib.import_module(name).__file__).read_text())
        return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}

    assert "kldiv.torch._losses" not in imported("kldiv.torch._chunked")
    assert "kldiv.torch._losses" not in imported("kldiv.torch._distill_kernels")
    assert "kldiv.torch._chunked" not in imported("kldiv.torch._distill_kernels")
    assert "kldiv.torch._chunked" in imported("kldiv.torch._losses")
