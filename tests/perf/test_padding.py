"""Padding is per batch: a batch is as wide as its longest sequence, not max_length, and the
padding does not change what the model computes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mtlv.data.datamodule import MultiLabelDataModule, PadCollator
from mtlv.data.sources.demo import load_demo
from mtlv.data.splits import compute_split

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 128}


def test_collator_pads_to_the_longest_in_the_batch():
    items = [(np.arange(1, n + 1, dtype=np.int32), np.array([1, 0], dtype=np.uint8), i)
             for i, n in enumerate((3, 7, 5))]
    batch = PadCollator(pad_id=0)(items)
    assert batch["input_ids"].shape == (3, 7)
    assert batch["attention_mask"].sum(1).tolist() == [3, 7, 5]
    assert batch["input_ids"][0].tolist() == [1, 2, 3, 0, 0, 0, 0]
    assert batch["labels"].dtype == torch.float32 and batch["doc_index"].tolist() == [0, 1, 2]


@pytest.fixture(scope="module")
def datamodule(tmp_path_factory):
    corpus = load_demo()
    split = compute_split(corpus, None, 0, 0.2, 0.15, seed=0)
    dm = MultiLabelDataModule(corpus, split, "packaged:minilm", max_length=128, batch_size=16,
                              cache_dir=tmp_path_factory.mktemp("cache"), seed=0)
    dm.setup()
    return dm


@pytest.mark.parametrize("grouping", [True, False])
def test_loader_batches_are_as_wide_as_their_longest_sequence(datamodule, grouping):
    datamodule.length_grouping = grouping
    try:
        for loader in (datamodule.train_dataloader(), datamodule.val_dataloader()):
            widths = []
            for batch in loader:
                width = batch["input_ids"].shape[1]
                assert width == int(batch["attention_mask"].sum(1).max())
                assert bool((batch["attention_mask"].sum(1) >= 1).all())
                widths.append(width)
            assert max(widths) <= datamodule.max_length
            assert np.mean(widths) < datamodule.max_length  # per batch, not padded to max_length
    finally:
        datamodule.length_grouping = True


def test_grouped_batches_carry_less_padding_than_random_ones(datamodule):
    def waste(loader):
        real = padded = 0
        for batch in loader:
            real += int(batch["attention_mask"].sum())
            padded += batch["attention_mask"].numel()
        return 1 - real / padded

    grouped = waste(datamodule.train_dataloader())
    datamodule.length_grouping = False
    try:
        random = waste(datamodule.train_dataloader())
    finally:
        datamodule.length_grouping = True
    assert grouped < random


@pytest.mark.parametrize("pooling", ["mean", "cls", "pooler"])
def test_dynamic_padding_computes_the_same_logits_as_padding_to_max_length(datamodule, pooling):
    from mtlv.models.module import MultiTaskModule

    module = MultiTaskModule("packaged:minilm", groups=[list(range(8))], label_names=[str(i) for i in range(8)],
                             pooling=pooling, random_init=TINY, seed=0).eval()
    batch = next(iter(datamodule.val_dataloader()))
    ids, mask = batch["input_ids"], batch["attention_mask"]
    full = torch.full((ids.shape[0], datamodule.max_length), datamodule.pad_id, dtype=ids.dtype)
    full_mask = torch.zeros_like(full)
    full[:, : ids.shape[1]], full_mask[:, : ids.shape[1]] = ids, mask
    assert ids.shape[1] < datamodule.max_length
    with torch.no_grad():
        dynamic, padded = module(ids, mask), module(full, full_mask)
    torch.testing.assert_close(dynamic, padded, atol=1e-5, rtol=1e-4)
