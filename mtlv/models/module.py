"""The LightningModule: shared encoder -> pooled representation -> grouped heads -> BCE per head."""
from __future__ import annotations

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from transformers import get_linear_schedule_with_warmup

from mtlv.errors import ConfigError
from mtlv.evaluation.metrics import f1_from_counts
from mtlv.models.encoder import load_encoder
from mtlv.models.heads import GroupedHeads, pool
from mtlv.models.options import LOSS_REDUCTIONS, POS_WEIGHTS, SCHEDULES
from mtlv.models.optim import adamw, clip_gradients, is_fused, uses_loss_scaler
from mtlv.tracking import label_key
from mtlv.weighting import Weighting, from_reduction




def check_head_options(heads: int, loss_reduction: str = "sum", head_weights=None, head_lrs=None) -> None:
    """Options given per head must have one value per head. Here and in a study's plan, which knows each
    job's number of heads from its grouping before anything trains."""
    if loss_reduction == "weighted" and (head_weights is None or len(head_weights) != heads):
        raise ConfigError(f"model.loss_reduction=weighted needs model.head_weights with one weight per head "
                          f"({heads} heads), got {head_weights}")
    if head_lrs is not None and len(head_lrs) != heads:
        raise ConfigError(f"model.module.head_lrs needs one learning rate per head ({heads} heads), got {head_lrs}")


def positive_weights(train_labels: np.ndarray, kind: str, cap: float) -> torch.Tensor:
    """BCE's `pos_weight` per label from its training prevalence: negatives/positives ("balanced": a rare
    label's positives count as much as its negatives) or its square root ("sqrt": half way), capped at
    `cap` and never below 1 (a common label is not down-weighted). With one epoch of a short budget, a
    label with 1% positives otherwise learns "always 0" first and its F1 is 0: which rare labels escape
    that depends on the seed (docs/study.md, "A recipe for quick")."""
    labels = np.asarray(train_labels, dtype=np.float64)
    pos = labels.sum(0)
    ratio = (len(labels) - pos) / np.maximum(pos, 1.0)
    ratio = np.sqrt(ratio) if kind == "sqrt" else ratio
    return torch.tensor(np.clip(ratio, 1.0, cap), dtype=torch.float32)


class MultiTaskModule(L.LightningModule):
    """MTL = one group of all labels; GMHL = several groups; a GMTL/STL job = the labels of one group.

    `groups` are column indices into this job's label matrix; `label_names` follow its columns.
    """

    def __init__(self, encoder: str, groups: list[list[int]], label_names: list[str], pooling: str = "cls",
                 dropout: float = 0.1, lr: float = 2e-5, head_lr: float | None = None, weight_decay: float = 0.01,
                 warmup_ratio: float = 0.0, schedule: str = "constant", loss_reduction: str = "sum",
                 head_weights: list[float] | None = None, freeze_encoder: bool = False,
                 random_init: dict | None = None, trust_remote_code: bool = False, seed: int = 0,
                 fused_adamw: bool | None = None, compile: bool = False, weighting=None,
                 head_lrs: list[float] | None = None, head_hidden: int | None = None,
                 pos_weight: str = "none", pos_weight_max: float = 30.0) -> None:
        super().__init__()
        if pos_weight not in POS_WEIGHTS:
            raise ValueError(f"model.module.pos_weight={pos_weight!r}: use one of {POS_WEIGHTS}")
        if loss_reduction not in LOSS_REDUCTIONS:
            raise ValueError(f"model.loss_reduction={loss_reduction!r}: use one of {LOSS_REDUCTIONS}")
        if schedule not in SCHEDULES:
            raise ValueError(f"model.schedule={schedule!r}: use one of {SCHEDULES}")
        check_head_options(len(groups), loss_reduction, head_weights, head_lrs)
        # `weighting` is a factory (conf/weighting/*.yaml, _partial_) that takes the number of heads;
        # without one, loss_reduction (+ head_weights) picks sum, mean or static weights.
        self.save_hyperparameters(ignore=["weighting"])
        self.encoder = load_encoder(encoder, trust_remote_code, dict(random_init) if random_init else None, seed)
        self.encoder.train()  # from_pretrained returns eval mode, and Lightning keeps modules' modes
        if pooling != "pooler" and getattr(self.encoder, "pooler", None) is not None:
            # Unused by cls/mean pooling: frozen, DDP does not wait for its gradients (it stops with
            # "parameters that were not used" otherwise); kept in the state dict for compatibility.
            self.encoder.pooler.requires_grad_(False)
        if freeze_encoder:
            self.encoder.requires_grad_(False)
        self.heads = GroupedHeads(self.encoder.config.hidden_size, groups, dropout, hidden=head_hidden)
        self.groups = self.heads.groups
        # Column indices and head weights live on the device: indexing a CUDA tensor with a Python
        # list (or new_tensor(list)) copies it there with a blocking copy, a host sync every step.
        for i, g in enumerate(self.groups):
            self.register_buffer(f"_group_index{i}", torch.tensor(g, dtype=torch.long), persistent=False)
        sizes = [len(g) for g in self.groups]  # labels per head, for weightings that weigh heads by size
        self.weighting: Weighting = (weighting(len(self.groups), head_sizes=sizes) if weighting is not None
                                     else from_reduction(loss_reduction, head_weights, len(self.groups)))
        self.label_names = list(label_names)
        # Set in setup("fit") from the training labels; a buffer, so it moves with the module to its device.
        self.register_buffer("_pos_weight", None, persistent=False)
        self._val_counts: torch.Tensor | None = None
        self._val_exact = None

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.hparams.get("pos_weight", "none") != "none":
            dm = self.trainer.datamodule
            dm.setup(stage)
            self._pos_weight = positive_weights(dm.labels[dm.split.train], self.hparams.pos_weight,
                                                self.hparams.pos_weight_max).to(self.device)

    def configure_model(self) -> None:
        if self.hparams.compile and not getattr(self, "_compiled", False):
            # In place (state-dict keys unchanged); dynamic: padding per batch changes the length.
            self.encoder.compile(dynamic=True)
            self._compiled = True

    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        # Dropout draws from a seed fixed per (seed, epoch, batch), so a run resumed from a checkpoint
        # continues exactly as an uninterrupted run would. (Seeding once per epoch is not enough: a
        # DataLoader draws its base seed from the global generator when its iterator is created,
        # which Lightning does after on_train_epoch_start in a fresh epoch, but before it in the
        # first epoch after a resume, so the dropout masks of that epoch would differ.)
        seed = np.random.SeedSequence([int(self.hparams.seed), int(self.current_epoch), int(batch_idx)])
        seed = int(seed.generate_state(1, np.uint64)[0] >> 1)
        # Only the generator dropout draws from: torch.manual_seed also seeds every other backend
        # (profiled on CPU: 2.1 ms -> 0.2 ms per step; docs/performance.md).
        if self.device.type == "cuda":
            torch.cuda.manual_seed(seed)
        torch.default_generator.manual_seed(seed)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        return pool(outputs, attention_mask, self.hparams.pooling)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.heads(self.features(input_ids, attention_mask))

    def head_losses(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        index = (getattr(self, f"_group_index{i}") for i in range(len(self.groups)))
        w = self._pos_weight
        return torch.stack([F.binary_cross_entropy_with_logits(logits[:, g], labels[:, g],
                                                               pos_weight=None if w is None else w[g])
                            for g in index])

    def combine(self, losses: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        return self.weighting(losses, features)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        features = self.features(batch["input_ids"], batch["attention_mask"])
        losses = self.head_losses(self.heads(features), batch["labels"])
        loss = self.combine(losses, features)
        size = batch["labels"].shape[0]
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        if len(self.groups) > 1:
            for i, head_loss in enumerate(losses):
                self.log(f"train/loss_head{i}", head_loss, on_step=False, on_epoch=True, batch_size=size)
        return loss

    # Validation metrics accumulate as confusion counts on the device; nothing leaves it until epoch end.
    def on_validation_epoch_start(self) -> None:
        m = len(self.label_names)
        self._val_counts = torch.zeros((m, 4), dtype=torch.long, device=self.device)
        self._curve_counts = torch.zeros((m, 4), dtype=torch.long, device=self.device)  # test, curves only
        self._val_exact = torch.zeros(2, dtype=torch.long, device=self.device)
        self._val_loss = torch.zeros(2, dtype=torch.float64, device=self.device)

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        logits = self(batch["input_ids"], batch["attention_mask"])
        target = batch["labels"].long()
        preds = (logits >= 0).long()  # sigmoid(x) >= 0.5
        tp = (preds * target).sum(0)
        fp = (preds * (1 - target)).sum(0)
        fn = ((1 - preds) * target).sum(0)
        if dataloader_idx == 1:  # the test set (data.test_curve): counted for the curve, nothing else
            self._curve_counts += torch.stack([tp, fp, fn, target.sum(0)], dim=1)
            return
        self._val_counts += torch.stack([tp, fp, fn, target.sum(0)], dim=1)
        self._val_exact += torch.stack([(preds == target).all(1).sum(), target.new_full((), len(target))])
        loss = self.combine(self.head_losses(logits, batch["labels"]))
        self._val_loss += torch.stack([loss.double() * len(target), loss.new_full((), len(target), dtype=torch.float64)])

    def on_validation_epoch_end(self) -> None:
        counts, exact, loss = self._val_counts, self._val_exact, self._val_loss
        if self.trainer.world_size > 1:
            counts, exact, loss = (self.all_gather(t).sum(0) for t in (counts, exact, loss))
        full = torch.stack([counts[:, 0], counts[:, 1], torch.zeros_like(counts[:, 0]), counts[:, 2], counts[:, 3]], 1)
        stats = f1_from_counts(full)
        metrics = {"val/f1_macro": stats["f1_macro"], "val/f1_micro": stats["f1_micro"],
                   "val/subset_accuracy": exact[0].double() / exact[1].clamp(min=1), "val/loss": loss[0] / loss[1].clamp(min=1)}
        for j, name in enumerate(self.label_names):
            if not torch.isnan(stats["f1"][j]):
                metrics[f"val/f1/{label_key(name)}"] = stats["f1"][j]
        if len(self.groups) > 1:
            for i, g in enumerate(self.groups):
                head = f1_from_counts(full[g])
                metrics[f"val/head{i}/f1_macro"] = head["f1_macro"]
                metrics[f"val/head{i}/f1_micro"] = head["f1_micro"]
        if len(self.trainer.num_val_batches) > 1:  # same on every rank: all_gather below is collective
            metrics.update(self._curve_metrics(full))
        metrics = {k: torch.nan_to_num(v.float(), nan=0.0) for k, v in metrics.items()}
        shown = metrics.pop("val/f1_macro")
        self.log_dict(metrics, prog_bar=False)
        self.log("val/f1_macro", shown, prog_bar=True)

    def _curve_metrics(self, val_full: torch.Tensor) -> dict:
        """Test F1-macro per epoch (threshold 0.5) and, for joining group jobs into their cell's curve, how
        many labels each F1-macro averages: the cell's value is the label-weighted mean of its jobs'."""
        counts = self._curve_counts
        if self.trainer.world_size > 1:
            counts = self.all_gather(counts).sum(0)
        full = torch.stack([counts[:, 0], counts[:, 1], torch.zeros_like(counts[:, 0]), counts[:, 2], counts[:, 3]], 1)
        test = f1_from_counts(full)
        return {"curve/test_f1_macro": test["f1_macro"], "curve/test_n_labels": (full[:, 4] > 0).sum().double(),
                "curve/val_n_labels": (val_full[:, 4] > 0).sum().double(),
                "curve/epoch": torch.tensor(float(self.current_epoch + 1))}  # on the CPU: no host-device copy

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict:
        probs = torch.sigmoid(self(batch["input_ids"], batch["attention_mask"]).float())
        return {"probs": probs, "doc_index": batch["doc_index"]}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        if gradient_clip_val and is_fused(optimizer) and not uses_loss_scaler(self.trainer):
            clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)  # Lightning refuses fused
        else:
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def head_param_groups(self, head_lr: float) -> list[dict]:
        """The heads (one lr each with head_lrs) and the weighting's own parameters, if it has any."""
        lrs = self.hparams.get("head_lrs") or [head_lr] * len(self.heads.heads)
        groups = [{"params": list(h.parameters()), "lr": float(lr), "weight_decay": self.hparams.weight_decay}
                  for h, lr in zip(self.heads.heads, lrs)]
        return groups + [{"params": list(self.weighting.parameters()), "lr": head_lr, "weight_decay": 0.0}]

    def configure_optimizers(self):
        hp = self.hparams
        head_lr = hp.head_lr or hp.lr
        no_decay = ("bias", "LayerNorm.weight", "layer_norm", "norm.weight")
        enc = [(n, p) for n, p in self.encoder.named_parameters() if p.requires_grad]
        groups = [
            {"params": [p for n, p in enc if not any(k in n for k in no_decay)], "lr": hp.lr, "weight_decay": hp.weight_decay},
            {"params": [p for n, p in enc if any(k in n for k in no_decay)], "lr": hp.lr, "weight_decay": 0.0},
            *self.head_param_groups(head_lr),
        ]
        groups = [g for g in groups if g["params"]]
        optimizer = adamw(groups, hp.lr, hp.fused_adamw, self._trainer, self.device)
        if hp.schedule == "constant" and not hp.warmup_ratio:
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(hp.warmup_ratio * total),
                                                    total if hp.schedule == "linear" else 10**12)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
