"""The training step's own code (heads, per-head losses, their combination, validation counts)
makes no host sync: indices and weights are device buffers, not Python lists copied each step."""
from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from mtlv.models.module import MultiTaskModule

TINY = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 64}
GROUPS = [[0, 3], [1], [2, 4]]


def make_module(**kwargs) -> MultiTaskModule:
    # $MINILM: the encoder folder the gpu-kit exports (no packaged MiniLM there)
    return MultiTaskModule(os.environ.get("MINILM", "packaged:minilm"), groups=GROUPS, label_names=list("abcde"), random_init=TINY,
                           seed=0, **kwargs)


def test_head_losses_match_list_indexing():
    module = make_module(loss_reduction="weighted", head_weights=[1.0, 2.0, 0.5])
    logits, labels = torch.randn(6, 5), torch.randint(0, 2, (6, 5)).float()
    expected = torch.stack([F.binary_cross_entropy_with_logits(logits[:, g], labels[:, g]) for g in GROUPS])
    losses = module.head_losses(logits, labels)
    torch.testing.assert_close(losses, expected)
    torch.testing.assert_close(module.combine(losses), (expected * torch.tensor([1.0, 2.0, 0.5])).sum())


def test_index_buffers_follow_the_module_and_stay_out_of_checkpoints():
    module = make_module()
    buffers = dict(module.named_buffers())
    assert all(f"_group_index{i}" in buffers for i in range(len(GROUPS)))
    assert not any(k.startswith(("_group_index", "_head_weights")) for k in module.state_dict())
    module.to(torch.float64)  # dtype casts leave integer indices alone
    assert module._group_index0.dtype == torch.long


@pytest.mark.gpu  # host syncs can only be detected on CUDA (skipped without it)
def test_no_host_sync_in_heads_losses_and_validation_counts():
    module = make_module(loss_reduction="weighted", head_weights=[1.0, 2.0, 0.5]).cuda()
    features = torch.randn(8, TINY["hidden_size"], device="cuda", requires_grad=True)
    labels = torch.randint(0, 2, (8, 5), device="cuda").float()
    module.on_validation_epoch_start()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        logits = module.heads(features)
        loss = module.combine(module.head_losses(logits, labels))
        loss.backward()
        target = labels.long()
        preds = (logits.detach() >= 0).long()
        module._val_exact += torch.stack([(preds == target).all(1).sum(), target.new_full((), len(target))])
    finally:
        torch.cuda.set_sync_debug_mode(0)
