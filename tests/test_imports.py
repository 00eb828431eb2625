"""The import graph of src/reverie: no circles, and nothing below the command layer imports the
training entry point (``reverie.train``).

    .venv/bin/python -m pytest tests/test_imports.py -q

Every import counts, at module level or inside a function, except those under an
``if __name__ == "__main__":`` guard (a ``python -m`` entry point hands its argv to ``reverie.cli``;
that code never runs on import) and the package root's lazy ``__getattr__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1] / "src" / "reverie"
#: The command layer: what may import reverie.train.
COMMANDS = {"reverie.cli", "reverie.demo"}


def import_graph() -> dict[str, set[str]]:
    modules: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        name = ".".join(("reverie", *path.relative_to(ROOT).with_suffix("").parts))
        name = name.removesuffix(".__init__")
        tree = ast.parse(path.read_text())
        tree.body = [
            n
            for n in tree.body
            if not (isinstance(n, ast.If) and "__main__" in ast.unparse(n.test))
        ]
        deps: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("reverie"):
                deps.add(node.module or "")
                deps |= {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("reverie")}
        modules[name] = deps

    def owner(dep: str) -> str | None:
        while dep not in modules and "." in dep:
            dep = dep.rsplit(".", 1)[0]
        return dep if dep in modules else None

    return {
        m: {o for d in deps if (o := owner(d)) not in (None, m, "reverie")}
        for m, deps in modules.items()
        if m != "reverie"
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, done = [], set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                found.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in done:
                visit(nxt, path + [nxt])
        done.add(node)

    for m in sorted(graph):
        if m not in done:
            visit(m, [m])
    return found


def test_the_import_graph_has_no_circle() -> None:
    graph = import_graph()
    assert len(graph) > 40  # the walk really saw the package
    assert cycles(graph) == []


def test_cycle_finder_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_nothing_below_the_command_layer_imports_train() -> None:
    graph = import_graph()
    importers = {m for m, deps in graph.items() if "reverie.train" in deps}
    assert importers <= COMMANDS, importers - COMMANDS
    # The trainer and the losses it runs sit below train.py.
    assert "reverie.train" not in graph["reverie.trainer"] | graph["reverie.simreal.adapt"]
