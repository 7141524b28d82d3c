"""The package's shape: every import points down the layers, and no modules import each other."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "molting"
# Lowest first. A module may import its own package and any lower layer, never a higher one
# (CONTRIBUTING.md says what each owns).
LAYERS = [
    {"errors"},
    {"io"},
    {"text", "data"},
    {"persona"},
    {"models"},
    {"metrics"},
    {"curate", "train"},
    {"gate"},
    {"augment", "persona_init"},
    {"demo", "cli"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        name = ".".join(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module → the molting modules it imports (at any depth of the file, lazy imports included)."""
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                while name and name not in mods:
                    name = name.rpartition(".")[0]
                if name and name != m and not m.startswith(name + "."):
                    edges[m].add(name)
    return edges


def part(module: str) -> str:
    """molting.metrics.scorer → 'metrics'; molting.cli → 'cli'; molting → '' (the package)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_part_of_the_package_has_a_layer():
    assert {part(m) for m in modules()} - {""} <= set(RANK)


def test_imports_point_down_the_layers():
    up = []
    for m, targets in imports(modules()).items():
        for t in targets:
            a, b = part(m), part(t)
            if b and a != b and RANK[b] > RANK[a]:
                up.append(f"{m} imports {t}")
    assert not up, "\n".join(sorted(up))


def test_no_modules_import_each_other():
    edges = imports(modules())
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                cycles.append(" → ".join(path[path.index(t) :] + [t]))
            elif t not in state:
                visit(t, [*path, t])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)
