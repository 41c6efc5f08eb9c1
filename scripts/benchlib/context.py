"""The shared setup every contender gets (data, config, tokens), and the quality evaluation."""
from __future__ import annotations

import argparse
import contextlib
import math
from pathlib import Path

import numpy as np
import torch

class Context:
    """Data, config and tokens shared by every contender (built once, outside any timing)."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        from mtlv.data.load import load_corpus
        from mtlv.config import compose
        from mtlv.data.splits import load_or_make_split
        from mtlv.data.tokenize import tokenize_cached
        from mtlv.models.encoder import load_tokenizer

        self.args, self.workdir = args, workdir
        self.full_quality = bool(args.full_quality or args.epochs)
        self.device = torch.device("cuda" if args.gpu else "cpu")
        self.gpu = bool(args.gpu)
        overrides = [f"model={args.model}", "arch=mtl", "logger=none", f"seed={args.seed}",
                     f"data.batch_size={args.batch_size}", f"paths.output_dir={workdir}",
                     "trainer=gpu" if args.gpu else "trainer=cpu"]
        if args.gpu:
            overrides.append("model.module.fused_adamw=true")
        if args.max_length:
            overrides.append(f"model.max_length={args.max_length}")
        if args.data == "demo":
            overrides.append("dataset=demo")
        else:
            overrides += ["dataset=openi", f"dataset.source.path={args.data}", "dataset.source.download=false"]
        if args.limit:
            overrides.append(f"dataset.limit={args.limit}")
        overrides += [o for o in args.overrides.split() if o]
        self.overrides = overrides
        self.cfg = cfg = compose(overrides)
        self.corpus = load_corpus(cfg)
        self.split = load_or_make_split(self.corpus, cfg.paths.cache_dir, seed=int(cfg.seed), **cfg.split)
        self.tokenizer = load_tokenizer(cfg.model.name_or_path)
        self.max_length = int(cfg.model.max_length)
        self.tokens = tokenize_cached(self.corpus.texts, self.tokenizer, self.max_length, cfg.paths.cache_dir)
        self.labels = self.corpus.labels
        self.label_names = list(self.corpus.label_names)
        self.num_labels = len(self.label_names)
        self.hp = cfg.model.module
        self.batch_size = int(cfg.data.batch_size)
        n_train = len(self.split.train)
        self.steps_per_epoch = math.ceil(n_train / self.batch_size)
        if args.epochs:
            self.total_steps = max(1, int(round(args.epochs * self.steps_per_epoch)))
        else:
            self.total_steps = int(args.steps)
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        warm = args.warmup_steps if args.warmup_steps is not None else min(3, self.total_steps // 4)
        self.warmup = max(0, min(int(warm), self.total_steps - 1))

    # -- models -------------------------------------------------------------------------------
    def encoder(self) -> torch.nn.Module:
        from mtlv.models.encoder import load_encoder

        ri = self.hp.random_init
        return load_encoder(self.cfg.model.name_or_path, False, dict(ri) if ri else None, int(self.cfg.seed))

    def hf_classifier(self) -> torch.nn.Module:
        from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

        from mtlv.models.encoder import resolve_name

        kwargs = dict(num_labels=self.num_labels, problem_type="multi_label_classification")
        if self.hp.random_init:
            config = BertConfig(vocab_size=len(self.tokenizer), **dict(self.hp.random_init), **kwargs)
            return BertForSequenceClassification(config)
        return AutoModelForSequenceClassification.from_pretrained(resolve_name(self.cfg.model.name_or_path), **kwargs)

    def datamodule(self):
        from mtlv.run.nodes import build_datamodule  # as a training job builds it

        cfg = self.cfg
        return build_datamodule(cfg.data, cfg.model, self.corpus, self.split, list(range(self.num_labels)),
                                cfg.paths.cache_dir, int(cfg.seed))

    def mtlv_step_counts(self) -> list[tuple[int, int, int]]:
        """(samples, real tokens, padded tokens) of each optimizer step of MTLV's (and the plain
        loop's) training batches: the sampler is seeded, so the batches are known in advance."""
        dm = self.datamodule()
        lengths = dm.dataset("train").lengths
        sampler = dm.train_dataloader().sampler
        counts = []
        for epoch in range(self.epochs):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            order = np.fromiter(iter(sampler), dtype=np.int64)
            for start in range(0, len(order), self.batch_size):
                chunk = lengths[order[start:start + self.batch_size]]
                counts.append((len(chunk), int(chunk.sum()), int(len(chunk) * chunk.max())))
        return counts[: self.total_steps]

    def hf_dataset(self, part: str, pad_to_max: bool) -> list[dict]:
        index = getattr(self.split, part)
        pad_id = self.tokenizer.pad_token_id or 0
        items = []
        for doc in index:
            ids = self.tokens[int(doc)].tolist()
            mask = [1] * len(ids)
            if pad_to_max:
                extra = self.max_length - len(ids)
                ids, mask = ids + [pad_id] * extra, mask + [0] * extra
            items.append({"input_ids": ids, "attention_mask": mask,
                          "labels": self.labels[int(doc)].astype(np.float32).tolist()})
        return items

    def param_groups(self, encoder: torch.nn.Module, head: torch.nn.Module) -> list[dict]:
        """MTLV's AdamW parameter groups (see MultiTaskModule.configure_optimizers)."""
        hp = self.hp
        no_decay = ("bias", "LayerNorm.weight", "layer_norm", "norm.weight")
        enc = [(n, p) for n, p in encoder.named_parameters() if p.requires_grad]
        groups = [
            {"params": [p for n, p in enc if not any(k in n for k in no_decay)], "lr": hp.lr, "weight_decay": hp.weight_decay},
            {"params": [p for n, p in enc if any(k in n for k in no_decay)], "lr": hp.lr, "weight_decay": 0.0},
            {"params": list(head.parameters()), "lr": hp.head_lr or hp.lr, "weight_decay": hp.weight_decay},
        ]
        return [g for g in groups if g["params"]]

    def scheduler(self, optimizer):
        from transformers import get_linear_schedule_with_warmup

        hp, total = self.hp, self.total_steps
        if hp.schedule == "constant" and not hp.warmup_ratio:
            return None
        return get_linear_schedule_with_warmup(optimizer, int(hp.warmup_ratio * total),
                                               total if hp.schedule == "linear" else 10**12)

    def autocast(self):
        if self.gpu:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def quality(ctx: Context, val: tuple[np.ndarray, np.ndarray] | None, test: tuple[np.ndarray, np.ndarray]) -> dict:
    """Test F1 by one rule for all contenders: at 0.5, and (with validation predictions) at MTLV's
    validation-chosen threshold."""
    from mtlv.evaluation.evaluate import evaluate
    from mtlv.evaluation.metrics import multilabel_metrics
    from mtlv.evaluation.predictions import Predictions

    if val is None:
        m = multilabel_metrics(np.asarray(test[0], dtype=np.float64), np.asarray(test[1]).astype(np.uint8), 0.5,
                               ctx.label_names)
        return {"test_f1_macro_at_0.5": m["f1_macro"], "test_f1_micro_at_0.5": m["f1_micro"],
                "test_docs": int(len(test[0]))}

    def preds(pair):
        probs, targets = pair
        return Predictions([str(i) for i in range(len(probs))], np.asarray(probs, dtype=np.float64),
                           np.asarray(targets).astype(np.uint8), ctx.label_names)

    report = evaluate(preds(val), preds(test))
    return {"test_f1_macro_at_0.5": report["test_at_0.5"]["f1_macro"],
            "test_f1_micro_at_0.5": report["test_at_0.5"]["f1_micro"],
            "test_f1_macro": report["test"]["f1_macro"], "val_threshold": report["threshold"],
            "test_docs": int(len(test[0]))}


@torch.no_grad()
def predict_loader(ctx: Context, forward, loader) -> tuple[np.ndarray, np.ndarray]:
    probs, targets = [], []
    for batch in loader:
        with ctx.autocast():
            logits = forward(batch["input_ids"].to(ctx.device), batch["attention_mask"].to(ctx.device))
        probs.append(torch.sigmoid(logits.float()).cpu())
        targets.append(batch["labels"])
    return torch.cat(probs).numpy(), torch.cat(targets).numpy()
