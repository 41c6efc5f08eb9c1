"""A report table (display strings, the numbers behind them, bold marks, notes) and its three renderings:
Markdown (bold as **x**), LaTeX (booktabs, \\textbf{x}) and CSV (the numbers, unformatted, for your own plots)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mtlv.io import write_text

DASH = "—"


@dataclass
class Table:
    key: str                  # file stem, e.g. table1_main
    dataset: str
    title: str
    frame: pd.DataFrame       # display strings
    raw: pd.DataFrame         # numbers behind it (CSV)
    bold: pd.DataFrame | None = None   # same shape as frame: which cells are bold
    notes: list[str] = field(default_factory=list)

    def is_bold(self, i: int, j: int) -> bool:
        return bool(self.bold is not None and self.bold.iat[i, j])

    def write(self, folder: str | Path) -> dict[str, Path]:
        folder = Path(folder)
        paths = {"md": folder / f"{self.key}.md", "tex": folder / f"{self.key}.tex", "csv": folder / f"{self.key}.csv"}
        write_text(paths["md"], f"### {self.title}\n\n{to_markdown(self)}\n")
        write_text(paths["tex"], to_latex(self))
        write_text(paths["csv"], self.raw.to_csv(index=False, float_format="%.6g"))
        return paths


def fmt(mean: float, std: float = np.nan, digits: int = 3) -> str:
    if mean is None or not np.isfinite(mean):
        return DASH
    text = f"{mean:.{digits}f}"
    return text + (f" ± {std:.{digits}f}" if std is not None and np.isfinite(std) else "")


def fmt_ref(ref: tuple[float, float] | None, ours: float, digits: int = 3) -> str:
    """' [ref 0.830 ± 0.010, Δ -0.012]' beside a reproduced number (ref = (value, std) or None: empty)."""
    if ref is None:
        return ""
    value, std = ref
    diff = ours - value if ours is not None and np.isfinite(ours) else np.nan
    shown = fmt(value, std, digits)
    return f" [ref {shown}, Δ {diff:+.{digits}f}]" if np.isfinite(diff) else f" [ref {shown}]"


def fmt_diff(ours: float, ref: tuple[float, float] | None, digits: int = 3) -> str:
    """ours − published, or a dash."""
    if ref is None or ours is None or not np.isfinite(ours):
        return DASH
    return f"{ours - ref[0]:+.{digits}f}"


# What Markdown reads as markup inside a line: emphasis, code, links and images, autolinks and raw HTML, entities,
# strikethrough, the table's own column separator, and the backslash itself.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>&~|])")


def md_text(text: str) -> str:
    """`text` (a label name, a setting, a number) as literal text in Markdown: every character that would be
    markup backslash-escaped (CommonMark: any ASCII punctuation may be), a line break as a space. A label named
    `` `tick` *star* `` or `<http://x/a.png>` then shows as written, never as code, emphasis, a link or an image."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\r", " ").replace("\n", " ")


def to_markdown(table: Table) -> str:
    cols = [str(c) for c in table.frame.columns]
    lines = ["| " + " | ".join(md_text(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for i in range(len(table.frame)):
        cells = []
        for j in range(len(cols)):
            text = md_text(table.frame.iat[i, j])
            cells.append(f"**{text}**" if table.is_bold(i, j) and text != DASH else text)
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + [f"{note}  " for note in table.notes]
    return "\n".join(lines).rstrip() + "\n"


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "Δ": r"$\Delta$",
          "⚠": r"$\triangle$", "—": "--", "×": r"$\times$", "≥": r"$\geq$", "<": r"$<$", ">": r"$>$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in str(text))


def to_latex(table: Table) -> str:
    cols = list(table.frame.columns)
    lines = [f"% {latex_escape(table.title)}", r"\begin{tabular}{" + "l" * len(cols) + "}", r"\toprule",
             " & ".join(latex_escape(c) for c in cols) + r" \\", r"\midrule"]
    for i in range(len(table.frame)):
        cells = [latex_escape(table.frame.iat[i, j]) for j in range(len(cols))]
        cells = [rf"\textbf{{{c}}}" if table.is_bold(i, j) and c != "--" else c for j, c in enumerate(cells)]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"] + [f"% {latex_escape(n)}" for n in table.notes]
    return "\n".join(lines) + "\n"
