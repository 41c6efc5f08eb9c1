"""What a training job costs: its work (documents trained and scored) and its speed class, recorded in its
result.json so that a study can estimate later jobs from the ones this machine already ran
(mtlv/study/estimate.py)."""
from __future__ import annotations

import socket

from mtlv.io import stable_hash

# Scoring a document costs about a third of training on it (a forward pass against forward + backward).
EVAL_WEIGHT = 1 / 3


def units(work: dict, eval_weight: float = EVAL_WEIGHT) -> float:
    """Training-document epochs plus the weighted documents scored (validation every epoch and at the end,
    test at the end, and after every epoch with data.test_curve)."""
    epochs = int(work.get("epochs", 1))
    scored = work["val"] * (epochs + 1) + work["test"] * (1 + (epochs if work.get("test_curve") else 0))
    return work["train"] * epochs + eval_weight * scored


def work_of(config: dict, split) -> dict:
    """The sizes that make a job's cost: its split's parts and epochs (`config`: the job's resolved config)."""
    return {**split.sizes(), "epochs": int(config["trainer"]["max_epochs"]),
            "test_curve": bool(config["data"].get("test_curve"))}


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
