"""The Markdown report."""
from __future__ import annotations


import torch

from benchlib.common import fmt, fmt_load


def markdown(result: dict) -> str:
    m = result["meta"]
    lines = [f"# MTLV benchmark ({m['date']})", "",
             f"- device: {m['device']}; torch {m['torch']}, transformers {m['transformers']}, "
             f"lightning {m['lightning']}; {m['torch_threads']} torch threads",
             f"- data: {m['data']} ({m['docs']} documents, {m['labels']} labels; train/val/test "
             f"{m['split']['train']}/{m['split']['val']}/{m['split']['test']})",
             f"- model: {m['model']}, batch size {m['batch_size']}, max_length {m['max_length']}, "
             f"precision {m['precision']}, seed {m['seed']}",
             f"- command: `{m['command']}` ({m['wall_s']:.0f} s); load average at start / end: "
             f"{fmt_load(m.get('load_average_start'))} / {fmt_load(m.get('load_average_end'))}", ""]
    tr = result.get("training")
    if tr:
        lines += [f"## Training throughput ({tr['total_steps']} optimizer steps per run, the first "
                  f"{tr['warmup_steps']} left out of the steady-state timing; {tr['repeats_done']} alternating repeats)", "",
                  "| contender | samples/s median (min-max) | real tokens/s | samples per CPU-s | pad waste | "
                  "fit wall-clock (s) | peak RSS (MB) |"
                  + (" peak GPU (MB) | MFU |" if m["gpu"] else "") + " test F1-macro @0.5 | @val threshold |",
                  "|---|---|---|---|---|---|---|" + ("---|---|" if m["gpu"] else "") + "---|---|"]
        for name, c in tr["contenders"].items():
            q = c.get("quality") or {}
            row = (f"| {name} | {fmt(c['samples_per_s']['median'])} ({fmt(c['samples_per_s']['min'])}"
                   f"-{fmt(c['samples_per_s']['max'])}) | {fmt(c['real_tokens_per_s']['median'], 0)} | "
                   f"{fmt((c.get('samples_per_cpu_s') or {}).get('median'))} | "
                   f"{c['pad_waste'] * 100:.0f}% | {fmt(c['total_s']['median'], 1)} | {fmt(c['peak_rss_mb']['median'], 0)} |")
            if m["gpu"]:
                row += f" {fmt(c['peak_gpu_mb']['median'], 0)} | {fmt((c.get('mfu_real_tokens') or {}).get('median'), 3)} |"
            row += f" {fmt(q.get('test_f1_macro_at_0.5'), 3)} | {fmt(q.get('test_f1_macro'), 3)} |"
            lines.append(row)
        lines += ["", "| ratio (MTLV / other, same repeat) | samples/s median (min-max) | real tokens/s | "
                  "samples per CPU-s | fit wall-clock samples/s | goal | test F1-macro@0.5 diff |",
                  "|---|---|---|---|---|---|---|"]
        for key, r in tr["ratios"].items():
            s, t, f, c = r["samples_per_s"], r["real_tokens_per_s"], r["fit_samples_per_s"], r["samples_per_cpu_s"]
            goal = ""
            if "goal" in r:
                ok = lambda met: "met" if met else "NOT met"  # noqa: E731
                goal = f">= {r['goal']}: samples/s {ok(r['goal_met'])}, tokens/s {ok(r['goal_met_real_tokens'])}"
                if r.get("goal_met_cpu_time") is not None:
                    goal += f", per CPU-s {ok(r['goal_met_cpu_time'])}"
            lines.append(f"| {key} | {s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f}) | {t['median']:.2f} | "
                         f"{fmt(c['median'])} | {f['median']:.2f} | {goal} | "
                         f"{fmt(r.get('test_f1_macro_at_0.5_diff'), 3)} |")
        lines += ["", "Contenders:"] + [f"- **{n}**: {c['description']}" for n, c in tr["contenders"].items()] + [""]
    d = result.get("data")
    if d:
        pw = d["pad_waste"]
        lines += ["## Data pipeline", "",
                  "| measure | value |", "|---|---|",
                  f"| tokenization, cold (fast tokenizer, {d['docs']} docs) | {d['tokenize_docs_per_s']:.0f} docs/s "
                  f"({d['tokenize_cold_s']['median']:.2f} s) |",
                  f"| tokenize + write cache | {d['cache_cold_s']['median']:.2f} s |",
                  f"| load from cache | {d['cache_load_s']['median'] * 1000:.1f} ms ({d['cache_load_docs_per_s']:.0f} docs/s) |",
                  f"| STL sweep of {d['sweep_jobs']} jobs: tokenizations | {d['sweep_tokenizations']:.0f} |",
                  f"| tokens per document, median / mean | {d['tokens_median']:.0f} / {d['tokens_mean']:.1f} "
                  f"({d['truncated_share'] * 100:.1f}% truncated at {d['max_length']}) |",
                  f"| padding waste: pad to max_length | {pw['pad_to_max_length'] * 100:.1f}% |",
                  f"| padding waste: dynamic, random batches | {pw['dynamic_random_batches'] * 100:.1f}% |",
                  f"| padding waste: dynamic, length-grouped (MTLV) | {pw['dynamic_length_grouped'] * 100:.1f}% |", ""]
    e = result.get("e2e")
    if e and "skipped" in e:
        lines += ["## End to end", "", f"Skipped: {e['skipped']}.", ""]
    elif e:
        s = e["settings"]
        lines += [f"## End to end (`python -m mtlv.train`, model={s['model']}, {s['limit']} documents, "
                  f"{s['epochs']} epoch(s), MLflow on, sequential jobs)", "",
                  "| arch | jobs | wall-clock (s) | summed job time (s) | test F1-macro | tokenizations |",
                  "|---|---|---|---|---|---|"]
        for arch, a in e["archs"].items():
            r0 = a["runs"][0]
            lines.append(f"| {arch} | {r0['num_jobs']} | {a['wall_s']['median']:.1f} | {r0['sum_job_s']:.1f} | "
                         f"{r0['test_f1_macro']:.3f} | {r0['tokenizations']} |")
        lines += ["", f"STL / GMTL (k={s['gmtl_k']}) wall-clock: {e['stl_over_gmtl']['median']:.2f}x; "
                  f"STL / MTL: {e['stl_over_mtl']['median']:.2f}x", ""]
    return "\n".join(lines)
