"""Global normalisation: DDP over 2 gloo processes and gradient accumulation equal one big batch.

Ranks hold different numbers of counted tokens, which is exactly where a local
mean (torch's, or a per-rank token count) gives the wrong gradient.
"""

from __future__ import annotations

import os
import socket

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available():  # pragma: no cover - CPU wheels ship gloo
    pytest.skip("torch.distributed is not available", allow_module_level=True)

from kldiv.torch import (  # noqa: E402
    DistillationLoss,
    GaussianKLLoss,
    KLDivLoss,
    KLPenalty,
    TopKTeacher,
    count_items,
)

HIDDEN, VOCAB, STEPS = 4, 7, 5
# Rows 0-2 go to rank 0 (many counted tokens), rows 3-5 to rank 1 (few).
COUNTED = [
    [1, 1, 1, 1, 1],
    [1, 1, 1, 1, 0],
    [1, 1, 1, 0, 0],
    [1, 0, 0, 0, 0],
    [0, 0, 1, 0, 0],
    [0, 0, 0, 0, 0],
]


def _batch():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(6, STEPS, HIDDEN, generator=generator, dtype=torch.float64)
    teacher = 2 * torch.randn(6, STEPS, VOCAB, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, VOCAB, (6, STEPS), generator=generator)
    labels = torch.where(torch.tensor(COUNTED, dtype=torch.bool), labels, -100)
    return features, teacher, labels


def _model():
    torch.manual_seed(1)
    return torch.nn.Linear(HIDDEN, VOCAB).double()


def _losses():
    """Each loss as f(student_logits, teacher_logits, labels, num_items) -> scalar."""
    dense = {
        f"distill-{d}": DistillationLoss(temperature=2.0, direction=d) for d in ("forward", "jsd")
    }
    kl = KLDivLoss(input="logits")
    top_k = DistillationLoss(direction="reverse")

    def sparse(student, teacher, labels, num_items):
        top = torch.log_softmax(teacher, -1).topk(3, dim=-1)
        return top_k(student, TopKTeacher(top.indices, top.values), labels, num_items)

    def kl_masked(student, teacher, labels, num_items):
        return kl(teacher, student, mask=labels != -100, num_items=num_items)

    def token_log_probs(logits, labels):
        tokens = labels.clamp_min(0)[..., None]
        return torch.log_softmax(logits, -1).gather(-1, tokens).squeeze(-1)

    penalty = KLPenalty(estimator="k2", coef=0.5, mode="loss")

    def rl_penalty(student, teacher, labels, num_items):
        log_p, log_ref = token_log_probs(student, labels), token_log_probs(teacher, labels)
        return penalty(log_p, log_ref, labels != -100, num_items=num_items)

    gaussian = GaussianKLLoss(beta=0.7)

    def vae_term(student, teacher, labels, num_items):
        mu, logvar = student[..., :3], student[..., 3:6]
        return gaussian(mu, logvar, teacher[..., :3], mask=labels != -100, num_items=num_items)

    return {
        **dense,
        "distill-top-k": sparse,
        "kl-masked": kl_masked,
        "kl-penalty": rl_penalty,
        "vae-kl": vae_term,
    }


def _gradients(model, loss, features, teacher, labels, num_items=None):
    model.zero_grad()
    loss(model(features), teacher, labels, num_items).backward()
    return [p.grad.detach().clone() for p in model.parameters()]


def _ddp_worker(rank, world_size, port, out_path):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        features, teacher, labels = (t[3 * rank : 3 * rank + 3] for t in _batch())
        model = torch.nn.parallel.DistributedDataParallel(_model())
        results = {}
        for name, loss in _losses().items():
            num_items = count_items(labels != -100)  # all-reduced, divided by world size
            results[name] = _gradients(model, loss, features, teacher, labels, num_items)
        torch.save(results, f"{out_path}.rank{rank}")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_gradients_equal_single_process_gradients(tmp_path):
    """2 gloo ranks with 14 and 1 counted tokens give the one-process gradient of all 15."""
    out_path = str(tmp_path / "grads")
    torch.multiprocessing.spawn(_ddp_worker, args=(2, _free_port(), out_path), nprocs=2, join=True)
    features, teacher, labels = _batch()
    for rank in range(2):
        distributed = torch.load(f"{out_path}.rank{rank}")
        for name, loss in _losses().items():
            expected = _gradients(_model(), loss, features, teacher, labels)
            for got, want in zip(distributed[name], expected, strict=True):
                torch.testing.assert_close(got, want, msg=f"{name}, rank {rank}")


def test_local_mean_under_ddp_would_be_wrong():
    """The trap the test guards against: averaging per-rank means is not the global mean."""
    features, teacher, labels = _batch()
    loss = _losses()["distill-forward"]
    model = _model()
    halves = [slice(0, 3), slice(3, 6)]
    local = [_gradients(model, loss, features[h], teacher[h], labels[h]) for h in halves]
    averaged = [(a + b) / 2 for a, b in zip(*local, strict=True)]
    expected = _gradients(model, loss, features, teacher, labels)
    assert not torch.allclose(averaged[0], expected[0])


def test_gradient_accumulation_over_four_micro_batches_equals_one_batch():
    """4 micro-batches with num_items = count_items(*masks) add up to the full-batch gradient."""
    features, teacher, labels = _batch()
    micro = [slice(0, 1), slice(1, 3), slice(3, 5), slice(5, 6)]  # one holds no counted token
    num_items = count_items(*[labels[m] != -100 for m in micro])
    assert num_items.item() == sum(map(sum, COUNTED))
    for name, loss in _losses().items():
        model = _model()
        model.zero_grad()
        for m in micro:
            loss(model(features[m]), teacher[m], labels[m], num_items).backward()
        accumulated = [p.grad.detach().clone() for p in model.parameters()]
        expected = _gradients(_model(), loss, features, teacher, labels)
        for got, want in zip(accumulated, expected, strict=True):
            torch.testing.assert_close(got, want, msg=name)
