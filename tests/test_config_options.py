"""Every option of every config group builds what a training job builds from it, through the job's own
steps (mtlv/run/job.py): the checks, the corpus, the grouping, the split, the data module, the module
with its weighting, the trainer with its callbacks, and the logger; then one batch goes through the
module. Composing alone would not catch a `_target_` with a wrong argument.

Offline stand-ins, and why: `model=bert|biobert|bluebert` name hub encoders that cannot be downloaded
here, so their encoder is a tiny random BERT on the packaged tokenizer (every other setting of the
option is built as it is); `dataset=openi|ohsumed` read small synthetic files in their real layouts;
without CUDA, `trainer=gpu|ddp` are built on the CPU (precision, strategy and the rest as they are).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mtlv.config import CONF_DIR, compose

GROUPS = ["model", "dataset", "arch", "clustering", "weighting", "trainer", "logger", "callbacks", "experiment"]
HUB_MODELS = {"bert": "bert-base-uncased", "biobert": "dmis-lab/biobert-base-cased-v1.1",
              "bluebert": "bionlp/bluebert_pubmed_mimic_uncased_L-12_H-768_A-12"}
TINY_ENCODER = ["model.name_or_path=packaged:minilm", "model.module.random_init={hidden_size: 32, num_hidden_layers: 1, "
                "num_attention_heads: 2, intermediate_size: 64, max_position_embeddings: 512}"]
GIVEN = ["clustering=given", "clustering.groups=[[0,3],[1,2,4],[5,6,7]]"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))


@pytest.fixture(scope="module")
def data_files(tmp_path_factory) -> dict[str, Path]:
    """A CSV of your own, an Open-I CSV and an OHSUMED folder (training/test) with enough documents to split."""
    from mtlv.data.sources.openi import OPENI_LABELS

    root, rng = tmp_path_factory.mktemp("data"), np.random.default_rng(0)
    names = ["fever", "cough", "rash", "ache"]
    pd.DataFrame([{"text": f"note {i} " + " ".join(on), "labels": ";".join(on)}
                  for i in range(80) for on in [[n for n in names if rng.random() < 0.4] or ["fever"]]]
                 ).to_csv(root / "mine.csv", index=False)
    mesh = list(OPENI_LABELS.values())
    pd.DataFrame([{"uid": str(i), "MeSH": ";".join(rng.choice(mesh, size=2, replace=False)), "findings": f"Finding {i}.",
                   "impression": f"Impression {i} " + " ".join(rng.choice(["clear", "opacity", "small"], 3))}
                  for i in range(120)]).to_csv(root / "indiana_reports.csv", index=False)
    ohsumed = root / "ohsumed-first-20000-docs"
    for i in range(300):
        for cat in {f"C{c:02d}" for c in rng.integers(1, 24, size=2)}:
            folder = ohsumed / ("training" if i % 4 else "test") / cat
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i:07d}").write_text(f"Abstract {i} about {cat}.\n Methods and results.\n")
    return {"csv": root / "mine.csv", "openi": root / "indiana_reports.csv", "ohsumed": ohsumed}


def overrides_for(group: str, option: str, files: dict[str, Path], out: Path) -> list[str]:
    """The option, on tiny settings where the option does not set them itself."""
    args = [f"{group}={option}", f"paths.output_dir={out}", "dataset.limit=60", "logger=none"]
    if group not in ("model", "experiment"):  # an experiment builds its own model
        args.insert(0, "model=tiny")
    if (group == "model" and option in HUB_MODELS) or (group, option) == ("experiment", "ohsumed_paper"):
        args += ["model=bert", *TINY_ENCODER] if group == "experiment" else TINY_ENCODER  # a BERT: 256 tokens
    dataset = option if group == "dataset" else {"openi_paper": "openi", "openi_cpu": "openi",
                                                 "ohsumed_paper": "ohsumed"}.get(option if group == "experiment" else "")
    if dataset in files:
        args.append(f"dataset.path={files[dataset]}")
    if dataset == "ohsumed" and group == "experiment":
        args.remove("dataset.limit=60")  # dataset.fraction=0.2 of 300 documents: 60
    if group == "clustering":
        args.insert(0, "arch=mtl" if option == "none" else "arch=gmhl")
        args += {"given": GIVEN[1:], "affinity": ["clustering.steps=2"]}.get(option, [])
    if group == "weighting":
        args = ["arch=gmhl", *GIVEN, *args, *(["weighting.weights=[1,2,3]"] if option == "static" else [])]
    if group == "logger":
        args.remove("logger=none")
    if group == "trainer" and not torch.cuda.is_available() and option in ("gpu", "ddp"):
        args += ["trainer.accelerator=cpu", "trainer.devices=1"]
    return args


def build(cfg, out: Path) -> dict:
    """What run_job builds, by the same functions, up to (not including) fit."""
    from mtlv.data.splits import load_or_make_split
    import dataclasses

    from mtlv.data.load import load_corpus
    from mtlv.run.cell import build_grouping
    from mtlv.run.nodes import build_datamodule, build_module, build_trainer, make_logger
    from mtlv.run.spec import JobSpec
    from mtlv.layout import JobLayout

    spec = JobSpec.resolve(cfg)
    corpus = load_corpus(cfg)
    grouping = build_grouping(spec, corpus, out / "cell")
    cols, heads = grouping.job_labels(0 if grouping.placement == "models" else None)
    split = load_or_make_split(corpus, cfg.paths.cache_dir, seed=int(cfg.seed), **cfg.split)
    dm = build_datamodule(cfg.data, cfg.model, corpus, split, cols, cfg.paths.cache_dir, int(cfg.seed))
    module = build_module(cfg.model.module, heads, [corpus.label_names[j] for j in cols])
    job = JobLayout(out / "job")
    logger, _ = make_logger(cfg.get("logger"), dataclasses.replace(spec, job=job), spec.cell.run_name,
                            {"test": "config"})
    trainer, checkpoint = build_trainer(cfg.trainer, cfg.get("callbacks"), job, logger)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    features = module.features(batch["input_ids"], batch["attention_mask"])
    logits = module.heads(features)
    losses = module.head_losses(logits, batch["labels"])
    loss = module.combine(losses, features)  # as training_step: gradient-based weightings need the features
    return {"corpus": corpus, "grouping": grouping, "cols": cols, "module": module, "dm": dm, "trainer": trainer,
            "checkpoint": checkpoint, "logger": logger, "batch": batch, "logits": logits, "losses": losses,
            "loss": loss}


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_builds_a_job(group, option, data_files, tmp_path):
    from mtlv.models.module import MultiTaskModule

    cfg = compose(overrides_for(group, option, data_files, tmp_path))
    assert cfg.model.trust_remote_code is False  # never on unless a config says so
    built = build(cfg, tmp_path)
    corpus, grouping, module, trainer = built["corpus"], built["grouping"], built["module"], built["trainer"]
    # The pieces fit together: one batch of the job's labels gives one logit per label, a finite loss.
    assert isinstance(module, MultiTaskModule)
    assert built["logits"].shape == (len(built["batch"]["labels"]), len(built["cols"]))
    assert built["losses"].shape == (len(module.groups),) and torch.isfinite(built["loss"])
    assert built["dm"].label_names == [corpus.label_names[j] for j in built["cols"]]
    assert trainer.max_epochs == cfg.trainer.max_epochs
    assert module.hparams.pooling == cfg.model.module.pooling and module.hparams.lr == cfg.model.module.lr
    expected = {"model": check_model, "dataset": check_dataset, "arch": check_arch, "clustering": check_clustering,
                "weighting": check_weighting, "trainer": check_trainer, "logger": check_logger,
                "callbacks": check_callbacks, "experiment": check_experiment}[group]
    expected(option, cfg, built)


def check_model(option, cfg, built):
    module = built["module"]
    size = {"minilm": 384, "tiny": 32}.get(option, 32)  # hub encoders: the tiny stand-in (module docstring)
    assert module.encoder.config.hidden_size == size
    if option in HUB_MODELS:
        assert compose([f"model={option}"]).model.name_or_path == HUB_MODELS[option]
    assert module.hparams.pooling == {"minilm": "mean"}.get(option, "cls")


def check_dataset(option, cfg, built):
    corpus = built["corpus"]
    assert corpus.num_labels == {"demo": 8, "openi": 19, "ohsumed": 23, "csv": 4}[option]
    assert len(corpus) == 60  # dataset.limit


def check_arch(option, cfg, built):
    grouping, module = built["grouping"], built["module"]
    placement, groups = {"mtl": ("heads", 1), "gmhl": ("heads", 3), "stl": ("models", 8), "gmtl": ("models", 3)}[option]
    assert (grouping.placement, grouping.num_groups) == (placement, groups)
    assert len(module.groups) == (groups if placement == "heads" else 1)
    assert len(built["cols"]) == (8 if placement == "heads" else len(grouping.groups[0]))


def check_clustering(option, cfg, built):
    grouping = built["grouping"]
    expected = {"none": 1, "given": 3}[option] if option in ("none", "given") else int(cfg.clustering.k)  # none: one group
    assert grouping.num_groups == expected and sorted(j for g in grouping.groups for j in g) == list(range(8))
    if option == "given":
        assert [list(g) for g in grouping.groups] == [[0, 3], [1, 2, 4], [5, 6, 7]]


def check_weighting(option, cfg, built):
    import mtlv.weighting as weighting

    module = built["module"]
    assert type(module.weighting) is getattr(weighting, cfg.weighting._target_.rsplit(".", 1)[1])
    losses = torch.tensor([1.0, 2.0, 4.0])
    combined = module.combine(losses, None) if not module.weighting.needs_features else None
    if combined is not None:
        assert torch.isfinite(combined)
        if option == "sum":
            assert combined.item() == pytest.approx(7.0)
        if option == "mean":
            assert combined.item() == pytest.approx(7.0 / 3)
        if option == "labelmean":  # heads of 2, 3 and 3 labels: each label weighs the same
            assert combined.item() == pytest.approx((2 * 1 + 3 * 2 + 3 * 4) / 8)
        if option == "static":  # weighting.weights=[1,2,3]
            assert combined.item() == pytest.approx(1 * 1 + 2 * 2 + 3 * 4)


def check_trainer(option, cfg, built):
    trainer = built["trainer"]
    precision = {"gpu": "bf16-mixed", "ddp": "bf16-mixed"}.get(option, "32-true")
    assert trainer.precision == precision
    if option == "ddp":
        from lightning.pytorch.strategies import DDPStrategy

        assert isinstance(trainer.strategy, DDPStrategy)
    if option == "cpu":
        assert trainer.accelerator.__class__.__name__ == "CPUAccelerator"


def check_logger(option, cfg, built):
    logger = built["logger"]
    if option == "none":
        assert logger is None
        return
    from mlflow.tracking import MlflowClient

    run = MlflowClient(cfg.tracking.uri).get_run(logger.run_id)
    assert run.data.tags["test"] == "config" and logger.experiment_id == run.info.experiment_id


def check_callbacks(option, cfg, built):
    names = {type(c).__name__ for c in built["trainer"].callbacks}
    assert {"ModelCheckpoint", "PreemptionCheckpoint"} <= names
    # the bar in a terminal, lines in a log file (which one: tests/run/test_progress.py)
    assert len(names & {"TQDMProgressBar", "LineProgressBar"}) == 1
    assert ("EarlyStopping" in names) == (option == "early_stopping")
    assert built["checkpoint"].dirpath.endswith("checkpoints")


def check_experiment(option, cfg, built):
    dataset = {"openi_paper": "openi", "openi_cpu": "openi", "ohsumed_paper": "ohsumed"}.get(option, "demo")
    assert built["corpus"].name == dataset
    folds = {"openi_paper": 4, "openi_cpu": 4, "ohsumed_paper": 3, "smoke": 2, "smoke_ci": 2}[option]
    assert cfg.split.folds == folds
    assert (built["checkpoint"] is None) == (option in ("openi_cpu", "smoke"))
