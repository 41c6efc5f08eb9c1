"""What a study asked for and has no result of: jobs that failed, jobs that never ran, cells its plan dropped.
The report and the recommendation say so in their first lines, so an incomplete study never reads as complete
(the study passes the list as the report's `incomplete`; a report of a whole store has none)."""
from __future__ import annotations

STATUS = {"failed": "failed", "missing": "did not run", "dropped": "dropped by the plan, never launched"}


def incomplete_lines(items: list[dict] | None, shown: int = 20) -> list[str]:
    """Markdown lines: one warning, then one bullet per setting ({setting, status, error}), or nothing."""
    if not items:
        return []
    counts = {s: sum(1 for i in items if i["status"] == s) for s in STATUS}
    said = ", ".join(f"{n} {STATUS[s].split(',')[0]}" for s, n in counts.items() if n)
    lines = [f"**⚠ Incomplete study: {len(items)} of its settings have no result ({said}).** Only what finished "
             "is compared and recommended below; the missing settings are:", ""]
    for item in items[:shown]:
        error = str(item.get("error") or "").strip().replace("\n", " ")
        lines.append(f"- `{item['setting']}`: {STATUS.get(item['status'], item['status'])}"
                     + (f": {error}" if error else ""))
    if len(items) > shown:
        lines.append(f"- ... and {len(items) - shown} more (plan.json and the study's logs/ list them all)")
    return lines + [""]
