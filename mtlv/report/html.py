"""report.html: the report page as one self-contained HTML file, converted from the Markdown the report writes
(markdown-it-py, CommonMark with tables), every figure embedded as a base64 data: URI, the style inline; it
loads nothing from anywhere, so it can be mailed or opened from any folder. Links to the tables' Markdown,
LaTeX and CSV files stay relative: they work beside report.md."""
from __future__ import annotations

import base64
import html
import mimetypes
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from mtlv.io import write_text

STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       max-width: 1180px; margin: 2em auto; padding: 0 1.5em; }
h1 { font-size: 1.7em; border-bottom: 2px solid #d0d7de; padding-bottom: .3em; }
h2 { font-size: 1.4em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em; margin-top: 2.2em; }
h3 { font-size: 1.1em; margin-top: 1.8em; }
table { border-collapse: collapse; display: block; overflow-x: auto; font-size: 13px; margin: .6em 0; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; white-space: nowrap; }
th { background: #f6f8fa; }
tr:nth-child(even) td { background: #fbfcfd; }
blockquote { margin: .8em 0; padding: .3em 1em; border-left: 4px solid #d4a72c; background: #fff8e5; }
img { max-width: 100%; height: auto; display: block; margin: .8em 0; }
code { background: #f6f8fa; padding: 0 .25em; border-radius: 4px; }
a { color: #0969da; }
"""


def data_uri(path: Path) -> str | None:
    """The file as a data: URI, None when it does not exist."""
    if not path.is_file():
        return None
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def to_html(markdown: str, base: Path, title: str = "MTLV report") -> str:
    """The page for `markdown`, whose image paths are relative to `base`."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(markdown)
    for token in tokens:
        for child in token.children or []:
            if child.type == "image":
                src = str(child.attrGet("src") or "")
                embedded = None if src.startswith(("http:", "https:", "//")) else data_uri(base / src)
                child.attrSet("src", embedded or "")
                if embedded is None:  # nothing external is ever loaded: say what is missing instead
                    child.children = [Token("text", "", 0, content=f"(figure not found: {src})")]
    body = md.renderer.render(tokens, md.options, {})
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n")


def write_html(page: Path) -> Path:
    """report.html beside the Markdown page `page`."""
    text = page.read_text(encoding="utf-8")
    title = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("# ")), "MTLV report")
    return write_text(page.with_suffix(".html"), to_html(text, page.parent, title))
