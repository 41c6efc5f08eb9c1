"""AdamW for the module, and gradient clipping that also works with the fused AdamW kernel.

Lightning's mixed-precision plugin refuses `gradient_clip_val` with any optimizer that unscales
gradients inside `step()` (fused AdamW), even under bf16, where there is no loss scaler and
nothing to unscale. Without a scaler the gradients are the true ones, so clipping them before the
step is exactly what Lightning does for every other optimizer: `clip_gradients` below does that.
With a loss scaler (16-mixed) the fused step would see clipped *scaled* gradients, so there the
module falls back to the `foreach` implementation and says so once.
"""
from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def uses_loss_scaler(trainer) -> bool:
    return getattr(getattr(trainer, "precision_plugin", None), "scaler", None) is not None


def adamw(groups: list[dict], lr: float, fused: bool | None, trainer, device: torch.device) -> torch.optim.AdamW:
    """`fused=None` (the default): the fused kernel on CUDA (one launch for all parameters), foreach elsewhere."""
    if fused is None:
        fused = device.type == "cuda"
    if fused and trainer is not None and (trainer.gradient_clip_val or 0) > 0 and uses_loss_scaler(trainer):
        log.warning("model.module.fused_adamw=true with gradient clipping under %s (a loss scaler): using the "
                    "foreach AdamW instead, which clips correctly (bf16-mixed or 32-true keep the fused kernel)",
                    trainer.precision)
        fused = False
    return torch.optim.AdamW(groups, lr=lr, fused=True if fused else None)


def is_fused(optimizer) -> bool:
    return bool(getattr(optimizer, "defaults", {}).get("fused"))


def clip_gradients(optimizer, clip_val: float, algorithm: str | None) -> None:
    """What Lightning's `Precision.clip_gradients` does (norm over the optimizer's parameters)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if algorithm == "value":
        torch.nn.utils.clip_grad_value_(params, clip_val)
    else:
        torch.nn.utils.clip_grad_norm_(params, clip_val)
