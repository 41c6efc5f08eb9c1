"""model.module.pos_weight: a rare label's positives weigh more in BCE, by its training prevalence."""
import math

import numpy as np
import pytest
import torch

from mtlv.models.module import MultiTaskModule, positive_weights

TINY = {"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16}


def test_weights_follow_the_training_prevalence():
    # columns: 1 positive in 10 rows, 5 in 10, 9 in 10, none
    labels = np.zeros((10, 4))
    labels[3, 0] = 1
    labels[[0, 2, 4, 6, 8], 1] = 1
    labels[1:, 2] = 1
    balanced = positive_weights(labels, "balanced", cap=30.0)
    # 9 negatives per positive; even; a common label is not weighted down; no positive: capped at 10 / 1
    assert balanced.tolist() == pytest.approx([9.0, 1.0, 1.0, 10.0])
    assert positive_weights(labels, "sqrt", cap=30.0).tolist() == pytest.approx([3.0, 1.0, 1.0, math.sqrt(10)])
    assert positive_weights(labels, "balanced", cap=4.0).tolist() == pytest.approx([4.0, 1.0, 1.0, 4.0])


def test_the_loss_weighs_positives_of_the_non_contiguous_head_labels():
    # two heads over interleaved columns; column weights 9, 1, 2, 5
    module = MultiTaskModule("packaged:minilm", groups=[[0, 2], [1, 3]], label_names=list("abcd"), random_init=TINY,
                             seed=0, pos_weight="balanced")
    module._pos_weight = torch.tensor([9.0, 1.0, 2.0, 5.0])
    logits = torch.tensor([[0.5, -1.0, 2.0, 0.0], [-0.3, 0.7, -2.0, 1.5]])
    labels = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    w = [9.0, 1.0, 2.0, 5.0]

    def bce(x, y, weight):  # written out: -(w y log s(x) + (1 - y) log(1 - s(x)))
        s = 1 / (1 + math.exp(-x))
        return -(weight * y * math.log(s) + (1 - y) * math.log(1 - s))

    expected = [np.mean([bce(logits[r, c].item(), labels[r, c].item(), w[c]) for r in range(2) for c in head])
                for head in ([0, 2], [1, 3])]
    assert module.head_losses(logits, labels).tolist() == pytest.approx(expected, rel=1e-5)
    module._pos_weight = None  # pos_weight=none: plain BCE
    plain = [np.mean([bce(logits[r, c].item(), labels[r, c].item(), 1.0) for r in range(2) for c in head])
             for head in ([0, 2], [1, 3])]
    assert module.head_losses(logits, labels).tolist() == pytest.approx(plain, rel=1e-5)


def test_an_unknown_pos_weight_is_refused():
    with pytest.raises(ValueError, match="model.module.pos_weight='often'"):
        MultiTaskModule("packaged:minilm", groups=[[0]], label_names=["a"], random_init=TINY, pos_weight="often")
