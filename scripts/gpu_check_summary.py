#!/usr/bin/env python
"""The one summary table of scripts/gpu_check.sh: step wall-clocks, cells' test F1, bench ratios and MFU."""
from __future__ import annotations

import json
import sys
from pathlib import Path

# The GPU table of issue 9 (one H200, before this work): wall-clock s, test F1-macro
BEFORE = {"mtl": (64, 0.9239), "gmtl": (59, 0.9133), "stl": (145, 0.9109)}
GOALS_S = {"mtl": 20, "stl": 60}


def cell_result(folder: Path) -> tuple[float | None, int | None, float | None]:
    """(test F1-macro, jobs, summed job seconds) of the cell under `folder`."""
    agg = sorted(folder.glob("runs/*/*/aggregate.json"))
    if agg:
        a = json.loads(agg[0].read_text())
        return a["test"]["f1_macro"], a["num_jobs"], a["sum_job_s"]
    res = sorted(folder.glob("runs/*/*/model/result.json"))
    if res:
        r = json.loads(res[0].read_text())
        return r["test"]["f1_macro"], 1, r["elapsed_s"]
    return None, None, None


def main(out: Path) -> None:
    steps = {}
    for line in (out / "steps.txt").read_text().splitlines():
        name, rc, wall = line.split()
        steps[name] = (rc, float(wall))
    rows = ["| step | exit | wall-clock (s) | jobs | summed job s | test F1-macro | before (issue 9, H200) | goal |",
            "|---|---|---|---|---|---|---|---|"]
    for name, (rc, wall) in steps.items():
        f1 = jobs = summed = None
        if (out / name).is_dir() and name not in ("bench",):
            f1, jobs, summed = cell_result(out / name)
        before = BEFORE.get(name)
        rows.append(f"| {name} | {rc} | {wall:.1f} | {jobs or ''} | {'' if summed is None else f'{summed:.1f}'} | "
                    f"{'' if f1 is None else f'{f1:.4f}'} | {f'{before[0]} s, F1 {before[1]}' if before else ''} | "
                    f"{f'<= {GOALS_S[name]} s' if name in GOALS_S else ''} |")
    bench = out / "bench" / "bench.json"
    if bench.exists():
        b = json.loads(bench.read_text())
        rows += ["", f"bench ({b['meta']['device']}, {b['meta']['precision']}, {b['meta']['steps']} steps):", "",
                 "| contender | samples/s | real tokens/s | MFU (real tokens) | peak GPU MB |", "|---|---|---|---|---|"]
        for name, c in b.get("training", {}).get("contenders", {}).items():
            mfu = (c.get("mfu_real_tokens") or {}).get("median")
            gpu = (c.get("peak_gpu_mb") or {}).get("median")
            rows.append(f"| {name} | {c['samples_per_s']['median']:.1f} | {c['real_tokens_per_s']['median']:.0f} | "
                        f"{'' if mfu is None else f'{100 * mfu:.1f}%'} | {'' if gpu is None else f'{gpu:.0f}'} |")
        for key, r in b.get("training", {}).get("ratios", {}).items():
            rows.append(f"\n{key}: samples/s ratio {r['samples_per_s']['median']:.2f}"
                        + (f" (goal >= {r['goal']}: {'met' if r['goal_met'] else 'NOT met'})" if "goal" in r else ""))
    print("\n".join(rows))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
