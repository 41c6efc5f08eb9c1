"""What a training job costs: its work (documents trained and scored) and its speed class, recorded in its
result.json so that a study can estimate later jobs from the ones this machine already ran
(mtlv/study/estimate.py)."""
from __future__ import annotations

import math
import socket

from mtlv.io import stable_hash

# Scoring a document costs about a third of training on it (a forward pass against forward + backward).
EVAL_WEIGHT = 1 / 3


def units(work: dict, eval_weight: float = EVAL_WEIGHT) -> float:
    """Training-document epochs plus the weighted documents scored (validation every epoch and at the end,
    test at the end, and after every epoch with data.test_curve)."""
    epochs = float(work.get("epochs", 1))  # a fraction when trainer.max_steps ends training within an epoch
    evals = math.floor(epochs)  # validation runs at the end of every whole epoch, and once more at the end
    scored = work["val"] * (evals + 1) + work["test"] * (1 + (evals if work.get("test_curve") else 0))
    return work["train"] * epochs + eval_weight * scored


def work_of(config: dict, split) -> dict:
    """The sizes that make a job's cost: its split's parts and epochs (trainer.max_steps can end it sooner;
    `config`: the job's resolved config)."""
    sizes = split.sizes()
    return {**sizes, "epochs": epochs_of(config["trainer"], sizes["train"], int(config["data"]["batch_size"])),
            "test_curve": bool(config["data"].get("test_curve"))}


def epochs_of(trainer, train: int, batch_size: int) -> int | float:
    """The epochs a job trains: trainer.max_epochs, or fewer when trainer.max_steps (> 0, optimizer steps)
    comes first: a fraction when it ends within an epoch. An optimizer step takes accumulate_grad_batches
    batches, and the last (partial) batch of an epoch also steps. `trainer`: the trainer node (a mapping)."""
    epochs = int(trainer["max_epochs"])
    steps = int(trainer.get("max_steps") or -1)
    if steps <= 0 or train <= 0:
        return epochs
    accumulate = int(trainer.get("accumulate_grad_batches") or 1)
    batches = math.ceil(train / max(batch_size, 1))
    per_epoch = math.ceil(batches / accumulate)
    if steps >= per_epoch * epochs:
        return epochs
    whole, rest = divmod(steps, per_epoch)
    return whole + min(rest * accumulate * batch_size, train) / train


def speed_key(config: dict, threads: int) -> str:
    """Equal for jobs that train at the same speed on one machine: encoder, its size, tokens, batch, device,
    precision, CPU threads (`threads`: what the job uses, `LaunchSpec.torch_threads()`); `config`: the job's
    resolved config."""
    model = config["model"]
    return stable_hash([str(model["name_or_path"]), model["module"].get("random_init"), int(model["max_length"]),
                        int(config["data"]["batch_size"]), str(config["trainer"]["accelerator"]),
                        str(config["trainer"]["precision"]), int(threads), bool(model["module"].get("freeze_encoder"))])


def host() -> str:
    return socket.gethostname()
