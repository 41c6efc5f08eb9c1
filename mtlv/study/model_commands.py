"""From a study's recommendation to a model: the two commands that end recommendation.md.

1. `python -m mtlv.train -m <the recommended cell's own overrides> eval.save_weights=true`: the setting the
   report chose, on the study's data and split (the dataset options, architecture, grouping, model, budget and
   seed of its first (fold, seed) sample, as the study's sweep ran it), with its weights exported and the best
   checkpoint kept. A study's budget may have turned both off (`quick`: no checkpoint, no weights, to save
   disk and time), so those two options are left out of the command, and so are injected faults.
2. `python -m mtlv.predict run=<the cell folder that command writes> input=...`: the folder is content-
   addressed, so it is known before the training runs (the same composition the sweep makes).

Every override is shell-quoted (shlex), so that the lines run as printed.
"""
from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from mtlv.study.plan import Plan
from mtlv.study.spec import key_of

# Options of the study's cells that the model's command must not copy: the budget's "no checkpoint, no
# weights" (the command exists to save them) and fault drills (tests, scripts/fault_drill.py).
LEFT_OUT = ("eval.save_weights", "callbacks.model_checkpoint", "callbacks.fault")


@dataclass
class ModelCommands:
    section: str
    setting: str               # the recommended setting's name (as the recommendation says it)
    train: list[str]           # argv after `python`
    predict: list[str]
    folder: str                # the cell folder the training writes and predict reads
    example_input: bool        # True: predict reads the study's own CSV (replace it with new texts)

    @staticmethod
    def line(argv: list[str]) -> str:
        return "python " + " ".join(shlex.quote(a) for a in argv)

    def to_json(self) -> dict:
        return {**asdict(self), "train_line": self.line(self.train), "predict_line": self.line(self.predict)}


def model_overrides(overrides: tuple[str, ...] | list[str]) -> list[str]:
    """A study cell's overrides as the model's training command takes them (LEFT_OUT dropped), with weights
    exported."""
    keep = [o for o in overrides if not key_of(o).startswith(LEFT_OUT)]
    return keep + ["eval.save_weights=true"]


def _chosen_cell(plan: Plan, runs: pd.DataFrame, section: dict) -> Path | None:
    """The cell of the chosen setting's first (seed, fold) sample among this study's own cells."""
    chosen = section.get("chosen") or {}
    if not chosen:
        return None
    setting = runs.setting.fillna("").astype(str)
    mine = runs[(runs.dataset.astype(str) == str(section["dataset"])) & (runs.arch == chosen["arch"])
                & (runs.model.astype(str) == str(chosen["model"])) & (setting == str(chosen.get("setting") or ""))]
    cells = {str(c) for c in plan.cells}
    mine = mine[mine.cell_dir.astype(str).isin(cells)].sort_values(["seed", "fold"], na_position="first")
    return Path(str(mine.cell_dir.iloc[0])) if len(mine) else None


def commands_for(plan: Plan, runs: pd.DataFrame, section: dict, out_dir: Path) -> ModelCommands | None:
    """The commands for one report section's recommendation (None: nothing chosen, or not a cell of this plan)."""
    from mtlv.config import compose
    from mtlv.run.spec import JobSpec

    cell = _chosen_cell(plan, runs, section)
    job = next((j for j in plan.jobs if j.cell == cell), None)
    if job is None or not job.overrides:
        return None
    overrides = model_overrides(job.overrides)
    cfg = compose(overrides, config_name="train", return_hydra=True)
    folder = JobSpec.of(cfg).cell.folder
    source = cfg.dataset.get("source") or {}
    path = cfg.dataset.get("path")
    texts = list(source.get("text_columns") or []) if "table" in str(source.get("_target_", "")) else []
    predictions = str(out_dir / f"predictions-{section['section']}.csv")
    if texts and path and Path(str(path)).suffix in (".csv", ".tsv", ".jsonl", ".json"):
        read = [f"input={path}", f"text_column={texts[0]}"]
        example = True
    else:  # not a table of texts: a file of the user's texts, one per line
        read = ["input=new_texts.txt"]
        example = False
    return ModelCommands(section["section"], section["chosen"]["name"],
                         ["-m", "mtlv.train", "-m", *overrides],
                         ["-m", "mtlv.predict", f"run={folder}", *read, f"output={predictions}"],
                         str(folder), example)


def markdown(commands: list[ModelCommands], budget_saves: bool) -> list[str]:
    """The section that ends recommendation.md."""
    lines = ["", "## From recommendation to model", ""]
    if not commands:
        return lines + ["No command: no section of this study has a recommended encoder setting."]
    lines.append("Train the recommended setting again with its weights saved (the study's data, split, budget "
                 "and seed; best checkpoint kept), then predict with it:"
                 + ("" if budget_saves else " the study's own budget saved no weights (`eval.save_weights=false`), "
                    "so its jobs cannot predict."))
    for item in commands:
        where = ("the study's own texts as an example: replace `input=` with your file (CSV/TSV/JSONL with that "
                 "column, or a .txt file with one text per line)" if item.example_input else
                 "put your texts in `new_texts.txt`, one per line (or a CSV/JSONL file with a `text` column)")
        lines += ["", f"### {item.section}: {item.setting}", "", "```bash", item.line(item.train),
                  item.line(item.predict), "```", "",
                  f"The model is written to `{item.folder}`; predict reads {where}."]
    return lines


def add_to_recommendation(report_dir: Path, plan: Plan, budget_saves: bool) -> list[ModelCommands]:
    """Append the commands to recommendation.md and recommendation.json (written by the report)."""
    from mtlv.io import read_json, write_json, write_text

    md, js, csv = (report_dir / n for n in ("recommendation.md", "recommendation.json", "runs.csv"))
    if not md.exists() or not js.exists():
        return []
    data = read_json(js)
    runs = pd.read_csv(csv) if csv.exists() else pd.DataFrame()
    made = [c for s in data.get("sections", []) if not runs.empty
            for c in [commands_for(plan, runs, s, report_dir.parent)] if c is not None]
    text = md.read_text(encoding="utf-8").rstrip("\n").split("\n")
    write_text(md, "\n".join(text + markdown(made, budget_saves)) + "\n")
    data["model_commands"] = [c.to_json() for c in made]
    write_json(js, data)
    return made


def budget_saves(plan: Plan) -> bool:
    """Whether the study's trainings export their weights (`quick`'s budget does not)."""
    return any(bool(c.get("eval", {}).get("save_weights")) for c in plan.configs.values()
               if c.get("task_name") != "baseline")
