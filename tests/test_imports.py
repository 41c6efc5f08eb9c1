"""The import structure of the mtlv package: no module imports itself back through others (an import cycle
works or fails depending on which module Python happens to load first), and the lower floors never reach
up into the machinery that runs them. Read from the source with `ast`, so imports inside functions count
too: they only postpone a cycle to the first call."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mtlv"

# Floors that everything else builds on, and what they must never import (the code that runs a study,
# and the commands). No exception: what a floor needs lives on that floor or below it. The commands'
# machinery on the floors (mtlv.predict's models/inference.py, mtlv.cluster's grouping/preview.py) reads a
# cell's corpus from mtlv/data/load.py and its files from mtlv/layout.py, not from mtlv/run/.
LOWER = ("mtlv.errors", "mtlv.io", "mtlv.launch", "mtlv.layout", "mtlv.config", "mtlv.options", "mtlv.checks",
         "mtlv.cli", "mtlv.provenance", "mtlv.data", "mtlv.tracking", "mtlv.evaluation", "mtlv.weighting", "mtlv.grouping", "mtlv.models")
UPPER = ("mtlv.run", "mtlv.study", "mtlv.baselines", "mtlv.report", "mtlv.train", "mtlv.predict", "mtlv.cluster",
         "mtlv.baseline", "mtlv.aggregate", "mtlv.track")


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _within(name: str, known: dict[str, Path]) -> str | None:
    """The module `name` is, or the package it is an attribute of (`from mtlv.io import write_json`)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the mtlv modules it imports anywhere in its source (top level or inside functions)."""
    known = modules(package)
    graph = {}
    for name, path in known.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {_within(a.name, known) for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[:len(here) - node.level + 1] + [node.module or ""]).strip(".") \
                    if node.level else (node.module or "")
                targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else _within(base, known)
                            for a in node.names}
        graph[name] = {t for t in targets if t and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_no_import_cycle_among_mtlv_modules():
    assert cycles(import_graph()) == []


def test_lower_floors_never_import_the_machinery_that_runs_them():
    graph = import_graph()
    wrong = sorted(f"{module} imports {target}" for module, targets in graph.items() if _under(module, LOWER)
                   for target in targets if _under(target, UPPER))
    assert wrong == []


def test_the_graph_sees_every_kind_of_import(tmp_path):
    """The checks above can fail: a cycle made only of a function-level, a relative and a
    `from package import name` import is found, and so is a lower floor importing an upper one."""
    pkg = tmp_path / "mtlv"
    (pkg / "data").mkdir(parents=True)
    (pkg / "run").mkdir()
    for init in (pkg, pkg / "data", pkg / "run"):
        (init / "__init__.py").write_text("")
    (pkg / "checks.py").write_text("def f():\n    from mtlv.run.cell import g\n")
    (pkg / "run" / "cell.py").write_text("from .layout import X\nfrom mtlv.data import splits\n")
    (pkg / "run" / "layout.py").write_text("X = 1\n")
    (pkg / "data" / "splits.py").write_text("import mtlv.checks\n")
    graph = import_graph(pkg)
    assert graph["mtlv.run.cell"] == {"mtlv.run.layout", "mtlv.data.splits"}
    assert cycles(graph) == [["mtlv.checks", "mtlv.data.splits", "mtlv.run.cell"]]
    (pkg / "checks.py").write_text("X = 1\n")
    assert cycles(import_graph(pkg)) == []

