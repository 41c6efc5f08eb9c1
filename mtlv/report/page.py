"""Build every table, figure and recommendation for every dataset in the store, and one page (Markdown and a
self-contained HTML copy) linking them."""
from __future__ import annotations

import datetime
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from mtlv.errors import ConfigError
from mtlv.io import write_json, write_text
from mtlv.report import plots
from mtlv.report.artifacts import elbow_curves, label_counts
from mtlv.report.beyond import beyond_table
from mtlv.report.collect import Runs, collect
from mtlv.report.cost import cost_table
from mtlv.report.curves import advantage_sentence, mean_curves, result_curves
from mtlv.report.html import write_html
from mtlv.report.incomplete import incomplete_lines
from mtlv.report.label_gains import gains_matrix, label_gains_table
from mtlv.report.per_label import constant_labels_warning, label_table
from mtlv.report.recommend import MARGIN, Recommendation, check_margin, recommend
from mtlv.report.reference import CAVEAT, Reference
from mtlv.report.render import Table, to_markdown
from mtlv.report.significance import significance_table
from mtlv.report.stats import unranked
from mtlv.report.study_tables import CLUSTERED, arch_order, grid_table, main_table, model_order, wilcoxon_table
from mtlv.report.timing import time_table

CRITERIA = {"val": "val_f1_macro", "test": "f1_macro"}
CRITERIA_TEXT = {"val": "validation F1-macro", "test": "test F1-macro"}


def sections(runs: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(dataset, study, folder name) per report section; a dataset's main study (most results) first."""
    out = []
    for dataset, group in runs.groupby("dataset"):
        studies = group.study.value_counts()
        studies = sorted(studies.index, key=lambda s: (-studies[s], s))
        out += [(dataset, study, dataset if i == 0 else f"{dataset}-study{i + 1}") for i, study in enumerate(studies)]
    return out


def dataset_tables(data: Runs, runs: pd.DataFrame, dataset: str, ref: Reference, criterion: str,
                   counts: pd.DataFrame | None) -> tuple[list[Table], list[str]]:
    """The section's tables, and one line for each table that cannot be built from its runs, saying why."""
    archs = ", ".join(arch_order(runs.arch))
    tables, skipped = [main_table(runs, dataset, ref, criterion)], []
    if runs.arch.isin(CLUSTERED).any():
        tables.append(grid_table(runs, dataset, ref, criterion))
    else:
        skipped.append(f"Table 2 (clustering grid): no GMHL or GMTL results (this section has {archs}).")
    if {"mtl", "gmtl"} <= set(runs.arch):
        tables.append(wilcoxon_table(runs, dataset, ref, criterion))
        tables.append(label_table(runs, data.labels, counts, dataset, ref, criterion,
                                  list(counts.index) if counts is not None else None))
    else:
        skipped.append(f"Tables 3 and 4 (GMTL vs MTL): they need both MTL and GMTL results (this section has "
                       f"{archs}).")
    tables.append(time_table(runs, dataset, ref, criterion))
    if (beyond := beyond_table(runs, dataset, criterion)) is not None:
        tables.append(beyond)
    tables.append(cost_table(runs, dataset))
    if (tests := significance_table(runs, dataset)) is not None:
        tables.append(tests)
    else:
        skipped.append("Table 8 (tests against STL and MTL): no setting has an STL or MTL result of its model to be "
                       f"compared with (this section has {archs}).")
    order = list(counts.index) if counts is not None else None
    if (gains := label_gains_table(runs, data.labels, dataset, criterion, order)) is not None:
        tables.append(gains)
    else:
        skipped.append("Table 9 (per-label gains vs STL): no STL result shares a (fold, seed) sample and per-label "
                       f"test F1 with another architecture (this section has {archs}).")
    return tables, skipped


def table_figures(tables: list[Table], name: str, folder: Path) -> dict[str, Path]:
    """Figures drawn beside their table: cost vs quality with the Pareto frontier, per-label gains."""
    by_key, made = {t.key: t for t in tables}, {}
    if "table7_cost" in by_key:
        made["table7_cost"] = plots.cost_plot(by_key["table7_cost"].raw, folder / f"{name}_cost.png",
                                              f"{name}: cost vs test F1-macro")
    if "table9_label_gains" in by_key:
        frame = by_key["table9_label_gains"].frame
        made["table9_label_gains"] = plots.gains_heatmap(
            gains_matrix(by_key["table9_label_gains"].raw, list(frame.Label)), folder / f"{name}_label_gains.png",
            f"{name}: test F1 per label minus STL")
    return {key: path for key, path in made.items() if path is not None}


def dataset_plots(data: Runs, runs: pd.DataFrame, name: str, tables: list[Table], folder: Path) -> list[Path]:
    made = [plots.elbow_plot(elbow_curves(data.uri, runs), sorted({int(k) for k in runs.k.dropna()}),
                             folder / f"{name}_elbow.png", f"{name}: k-medoids elbow")]
    by_key = {t.key: t for t in tables}
    if "table4_per_label" in by_key:
        for model in model_order(runs[runs.arch == "gmtl"].model):
            made.append(plots.label_bars(by_key["table4_per_label"].raw, model,
                                         folder / f"{name}_per_label_{model}.png", f"{name}, {model}: test F1"))
    made.append(plots.time_bars(by_key["table5_wallclock"].raw, folder / f"{name}_wallclock.png",
                                f"{name}: wall-clock per result"))
    return [p for p in made if p is not None]


def budget_section(data: Runs, runs: pd.DataFrame, name: str, criterion: str, out: Path, plot: bool) -> list[str]:
    """F1-macro vs epoch (STL/MTL/GMHL/GMTL) and where GMTL's advantage over MTL appears or vanishes."""
    per_run = result_curves(data.uri, runs, criterion)
    if per_run.empty:
        return []
    means = mean_curves(per_run)
    write_text(out / name / "curves.csv", means.to_csv(index=False, float_format="%.6g"))
    lines = ["", f"### F1-macro vs epoch ({name})", "",
             "Mean over (fold, seed) after every epoch at threshold 0.5: test (solid) and validation (dashed). The "
             "test curve is recorded for this plot only: checkpoint, threshold and clustering setting are chosen "
             "on validation. STL/GMTL: F1-macro over the joined label matrix (label-weighted mean of the group "
             f"jobs). Numbers: [curves.csv]({name}/curves.csv).", ""]
    for model in model_order(means.model):
        sentence = advantage_sentence(means, model)
        lines += [f"- {sentence}"] if sentence else []
        if plot:
            path = plots.epoch_curves(means, model, out / "plots" / f"{name}_epochs_{model}.png",
                                      f"{name}, {model}: F1-macro vs epoch")
            lines += ["", f"![{path.stem}](plots/{path.name})", ""] if path else []
    return lines


def mixed_training(runs: pd.DataFrame) -> list[str]:
    """Rows of table 1 whose runs were trained with different settings (epochs, lr, ...)."""
    return [f"{arch}/{model}: runs with different training settings are averaged together: "
            f"{' | '.join(sorted(group.train_cfg.unique()))}"
            for (arch, model), group in runs.groupby(["arch", "model"]) if group.train_cfg.nunique() > 1]


def cited(sources: list[str]) -> str:
    """'Rahimi 2021, ..., Tables 4.3, 4.4, C.1' from one source string per table."""
    by_work: dict[str, list[str]] = {}
    for source in sources:
        work, _, table = source.partition(", Table ")
        by_work.setdefault(work, []).append(table.split(" ")[0]) if table else by_work.setdefault(source, [])
    return "; ".join(f"{w}, Tables {', '.join(sorted(set(t)))}" if t else w for w, t in by_work.items())


def header(data: Runs, ref: Reference, cfg: DictConfig) -> list[str]:
    runs = data.runs
    datasets = sorted(runs.dataset.unique())
    compared = [d for d in datasets if d in ref.datasets()]
    lines = [f"# MTLV report{': ' + ', '.join(datasets) if datasets else ''}", "",
             f"Generated {datetime.datetime.now():%Y-%m-%d %H:%M} from `{data.uri}`: {len(runs)} results "
             f"({', '.join(f'{d}: {n}' for d, n in runs.groupby('dataset').size().items()) or 'none'}). "
             "Each section starts with its recommendation ([recommendation.md](recommendation.md)).", ""]
    lines += incomplete_lines(OmegaConf.to_container(cfg.incomplete) if cfg.get("incomplete") else None)
    if compared:
        lines.append(f"{', '.join(compared)}: compared with the reference study, F. Rahimi, *MTLV: a library for "
                     "building deep multi-task learning architectures*, thesis, Dalhousie University, 2021 "
                     "(http://hdl.handle.net/10222/80424).")
        lines.append(f"Published numbers ({len(ref)}) are shown as *(ref)* columns or `[ref x ± std, Δ d]` with "
                     f"Δ = ours − published; sources: {cited(ref.sources())}.")
        lines.append(f"**Caveat:** {CAVEAT}")
    uncompared = [d for d in datasets if d not in compared]
    if uncompared:
        where = f"the reference table `{cfg.reference or 'mtlv/report/reference.csv'}`"
        lines.append(f"{', '.join(uncompared)}: no published numbers to compare with ({where} has "
                     f"{'none for ' + ('it' if len(uncompared) == 1 else 'them') if len(ref) else 'no rows'}).")
    lines.append("GMHL/GMTL rows use the clustering setting with the best mean "
                 + ("validation F1-macro." if cfg.select_on == "val" else "test F1-macro (optimistic)."))
    if cfg.filter or cfg.experiments:
        lines.append(f"Selection: experiments={cfg.experiments}, filter={cfg.filter!r}.")
    for warning in data.warnings:
        lines.append(f"\n> note: {warning}")
    return lines


def write_recommendations(out: Path, data: Runs, recs: list[Recommendation], incomplete: list | None = None) -> None:
    """recommendation.md (every section's sentences, after what the study lacks) and recommendation.json."""
    lines = ["# MTLV recommendation", "", f"From `{data.uri}`; details in [report.md](report.md)."]
    lines += [""] + incomplete_lines(incomplete) if incomplete else []
    for rec in recs:
        lines += ["", f"## {rec.section}", "", *rec.markdown()[2:]]
    if not recs:
        lines += ["", "No finished runs in this store yet: nothing to recommend."]
    write_text(out / "recommendation.md", "\n".join(lines) + "\n")
    write_json(out / "recommendation.json", {"store": data.uri, "sections": [r.to_json() for r in recs],
                                              "incomplete": list(incomplete or [])})


def build_report(cfg: DictConfig) -> Path:
    """Every section's tables, figures and recommendation; report.md (and report.html unless html=false),
    recommendation.md/.json and runs.csv in `cfg.out`. Returns report.md."""
    if cfg.select_on not in CRITERIA:
        raise ConfigError(f"select_on={cfg.select_on}: use select_on=val or select_on=test")
    margin = check_margin(cfg.get("margin", MARGIN))
    out = Path(cfg.out)
    ref = Reference.load(cfg.reference, cfg.get("reference_model"))
    experiments = list(cfg.experiments) if cfg.experiments else None
    cells = list(cfg.cells) if cfg.get("cells") is not None else None
    data = collect(str(cfg.tracking_uri), experiments, cfg.filter or "", cells)
    from mtlv.io import check_writable

    # after the store is found (a missing store creates nothing), before any table or figure is made
    check_writable(out, "out", "set out=/a/writable/folder")
    lines, recs = header(data, ref, cfg), []
    if data.runs.empty:
        lines.append("\nNo finished runs in this store yet: run `python -m mtlv.train` (or a study).")
    else:  # the tidy runs, for your own analysis
        write_text(out / "runs.csv", data.runs.drop(columns=["start_time"]).to_csv(index=False))
    for dataset, study, name in sections(data.runs):
        runs = data.runs[(data.runs.dataset == dataset) & (data.runs.study == study)]
        recs.append(recommend(runs, name, dataset, margin, data.uri))
        lines += ["", f"## {name}", "", f"Data protocol: {study or 'defaults'}; {len(runs)} results.", "",
                  *recs[-1].markdown()]
        counts = label_counts(data.uri, runs)
        tables, skipped = dataset_tables(data, runs, dataset, ref, CRITERIA[cfg.select_on], counts)
        if warning := constant_labels_warning(counts):
            lines.append(f"\n> **warning:** {warning}")
        flagged = int(tables[0].raw.below_baseline.sum())
        if flagged:
            lines.append(f"\n**⚠ {flagged} encoder result(s) below the best classical baseline: see Table 1.**")
        lines += [f"\n> note: {w}" for w in mixed_training(runs)]
        lines += [f"\n> **warning:** no {CRITERIA_TEXT[cfg.select_on]} for {w}: those runs rank no setting "
                  "(never chosen on test instead); rerun them, or pass select_on=test knowingly."
                  for w in unranked(runs[runs.arch.isin(CLUSTERED)], CRITERIA[cfg.select_on])]
        figures = table_figures(tables, name, out / "plots") if cfg.plots else {}
        for table in tables:
            files = table.write(out / name)
            links = " · ".join(f"[{kind}]({name}/{path.name})" for kind, path in files.items())
            lines += ["", f"### {table.title}", "", to_markdown(table), f"Files: {links}"]
            if table.key in figures:
                lines += ["", f"![{figures[table.key].stem}](plots/{figures[table.key].name})"]
        if skipped:
            lines += ["", "### Not built for this section", ""] + [f"- {line}" for line in skipped]
        lines += budget_section(data, runs, name, CRITERIA[cfg.select_on], out, cfg.plots)
        if cfg.plots:
            made = dataset_plots(data, runs, name, tables, out / "plots")
            lines += ["", "### Figures", ""] + [f"![{p.stem}](plots/{p.name})" for p in made]
    incomplete = OmegaConf.to_container(cfg.incomplete) if cfg.get("incomplete") else None
    write_recommendations(out, data, recs, incomplete)
    page = write_text(out / "report.md", "\n".join(lines) + "\n")
    if cfg.get("html", True):
        write_html(page)
    return page
