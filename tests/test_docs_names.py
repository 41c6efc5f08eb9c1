"""The user docs (README.md, docs/*.md) name only code that exists, and their links lead somewhere.

Docs drift when code moves: a module path, a `mtlv.x.y` name or a constant that a refactoring removed
keeps being read as if it were true. These tests read the docs as text and check every name against the
source tree as it is at test time (read with `ast`, nothing imported), so a move that forgets its docs
fails here, naming the doc, the line and the name. The lab notes (docs/notes/) are history and may name
code that is gone; only their links are checked.
"""
from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
USER_DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOTES = sorted((ROOT / "docs" / "notes").glob("*.md"))

# Names that were removed from the code; a user doc that names one describes code that no longer exists.
REMOVED = ("LEGACY_TARGETS", "COMMAND_MACHINERY")

# A path into the repository: `mtlv/run/job.py`, `tests/report/`, `docs/study.md`, `conf/study/thesis*.yaml`.
# Paths inside mtlv/ are also written without their `mtlv/` (`run/cell.py`, `grouping/preview.py`).
# (`docs/` only before a .md file or a folder: "8,500 docs/s" is a speed.)
TOP = ("mtlv", "tests", "scripts", "conf", "hydra_plugins")
PATH = re.compile(r"(?<![\w./-])((?:%s)/[\w./*<>-]*|docs/(?:[\w./-]*\.md|[\w/-]*/))" % "|".join(TOP))
SUBPACKAGES = tuple(p.name for p in (ROOT / "mtlv").iterdir() if (p / "__init__.py").is_file())
SHORT_PATH = re.compile(r"(?<![\w./-])((?:%s)/[\w/]*\w\.py)\b" % "|".join(SUBPACKAGES))
# A dotted name in the package: `mtlv.grouping.base.GroupingMethod`, `python -m mtlv.study`.
DOTTED = re.compile(r"(?<![\w.])(mtlv(?:\.[A-Za-z_]\w*)+)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _lines(doc: Path):
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        yield number, line


def _path_exists(text: str) -> bool:
    text = text.rstrip(".,;:")
    if "<" in text:                   # a placeholder: `conf/clustering/<name>.yaml` -> its folder must exist
        text = text.split("<", 1)[0].rpartition("/")[0]
    if "*" in text:                   # a pattern: `conf/study/thesis*.yaml`
        return any(ROOT.glob(text))
    return (ROOT / text).exists()


def missing_paths(doc: Path) -> list[str]:
    found = []
    for number, line in _lines(doc):
        for match in PATH.finditer(line):
            if not _path_exists(match.group(1)):
                found.append(f"{doc.name}:{number}: {match.group(1)}")
        for match in SHORT_PATH.finditer(line):
            if not (ROOT / "mtlv" / match.group(1)).is_file():
                found.append(f"{doc.name}:{number}: {match.group(1)} (mtlv/{match.group(1)})")
    return found


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _defined(body: list[ast.stmt]) -> set[str]:
    """The names a module or class body binds: functions, classes, assignments and imports."""
    names = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.If, ast.Try)):
            names |= _defined(node.body) | _defined(getattr(node, "orelse", []))
    return names


@cache
def _string_literals() -> frozenset[str]:
    """Every string constant in the package (MLflow tag names such as `mtlv.role` are written as strings)."""
    found = set()
    for path in (ROOT / "mtlv").rglob("*.py"):
        found.update(n.value for n in ast.walk(_tree(path)) if isinstance(n, ast.Constant)
                     and isinstance(n.value, str))
    return frozenset(found)


def dotted_exists(name: str) -> bool:
    """`mtlv.a.b` is a module or package, and what follows it is defined there (a class, then its method);
    a name that is no module at all must be a string the code writes (an MLflow tag, `mtlv.role`)."""
    parts = name.split(".")
    path, module = ROOT / parts[0], None
    index = 1
    while index < len(parts):
        if (path / parts[index] / "__init__.py").is_file():
            path, module = path / parts[index], path / parts[index] / "__init__.py"
        elif (path / f"{parts[index]}.py").is_file():
            path, module = path / parts[index], path / f"{parts[index]}.py"
            index += 1
            break
        else:
            break
        index += 1
    if module is None:
        return name in _string_literals()
    attributes = parts[index:]
    if not attributes:
        return True
    body = _tree(module).body
    if attributes[0] not in _defined(body):
        return False
    if len(attributes) > 1:           # `Clusterer.fit`: a name bound in the class's body
        classes = [n for n in body if isinstance(n, ast.ClassDef) and n.name == attributes[0]]
        return not classes or attributes[1] in _defined(classes[0].body)
    return True


def missing_dotted(doc: Path) -> list[str]:
    return [f"{doc.name}:{number}: {match.group(1)}" for number, line in _lines(doc)
            for match in DOTTED.finditer(line) if not dotted_exists(match.group(1))]


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@cache
def _anchors(doc: Path) -> frozenset[str]:
    headings = [line.lstrip("#") for line in doc.read_text(encoding="utf-8").splitlines()
                if re.match(r"#{1,6} ", line)]
    return frozenset(_slug(h) for h in headings)


def broken_links(doc: Path) -> list[str]:
    found = []
    for number, line in _lines(doc):
        for target in LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):      # http:, https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            path = (doc.parent / file).resolve() if file else doc
            if not path.exists():
                found.append(f"{doc.name}:{number}: {target} (no such file)")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                found.append(f"{doc.name}:{number}: {target} (no heading #{anchor} in {path.name})")
    return found


@pytest.mark.parametrize("doc", USER_DOCS, ids=lambda p: p.name)
def test_paths_named_by_the_docs_exist(doc):
    assert missing_paths(doc) == []


@pytest.mark.parametrize("doc", USER_DOCS, ids=lambda p: p.name)
def test_mtlv_names_in_the_docs_exist(doc):
    assert missing_dotted(doc) == []


@pytest.mark.parametrize("doc", USER_DOCS, ids=lambda p: p.name)
def test_removed_names_are_not_in_the_docs(doc):
    text = doc.read_text(encoding="utf-8")
    assert [name for name in REMOVED if name in text] == []


@pytest.mark.parametrize("doc", USER_DOCS + NOTES, ids=lambda p: p.name)
def test_links_lead_to_files_and_headings(doc):
    assert broken_links(doc) == []


def test_every_note_is_linked_from_a_user_doc():
    """A note nobody links to is never read: each docs/notes/*.md is linked from README or docs/*.md."""
    linked = {(doc.parent / target.partition("#")[0]).resolve()
              for doc in USER_DOCS for _, line in _lines(doc) for target in LINK.findall(line)}
    assert [note.name for note in NOTES if note.resolve() not in linked] == []


def test_readme_keeps_its_commands():
    """The README gives the install, the main job and the test command CI runs (.ci/run's `make` lines)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = re.findall(r"^make [\w-]+", (ROOT / ".ci" / "run").read_text(encoding="utf-8"), re.MULTILINE)
    assert ci, ".ci/run runs no make target"
    assert [command for command in ["make install", "make train", *ci] if command not in readme] == []


# The checks themselves: a made-up name must be reported, or the tests above could pass by seeing nothing.
def test_the_checks_find_what_does_not_exist(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("`mtlv/run/nothing.py`, `run/nothing.py`, `mtlv.run.nothing`, `mtlv.grouping.base.Nothing`,\n"
                   "`mtlv.grouping.clusterers.Clusterer.nothing`, `mtlv.no_such_tag`, [x](missing.md),\n"
                   "[y](#no-heading)\n# A heading\n`mtlv/run/job.py` `mtlv.grouping.clusterers.Clusterer.fit`"
                   " `mtlv.role` `conf/study/thesis*.yaml` `conf/clustering/<name>.yaml` [z](#a-heading)\n"
                   "docs/nothing.md, 8,500 docs/s, docs/study.md\n",
                   encoding="utf-8")
    assert missing_paths(doc) == ["doc.md:1: mtlv/run/nothing.py", "doc.md:1: run/nothing.py (mtlv/run/nothing.py)",
                                  "doc.md:6: docs/nothing.md"]
    assert missing_dotted(doc) == ["doc.md:1: mtlv.run.nothing", "doc.md:1: mtlv.grouping.base.Nothing",
                                   "doc.md:2: mtlv.grouping.clusterers.Clusterer.nothing",
                                   "doc.md:2: mtlv.no_such_tag"]
    assert broken_links(doc) == ["doc.md:2: missing.md (no such file)",
                                 "doc.md:3: #no-heading (no heading #no-heading in doc.md)"]
