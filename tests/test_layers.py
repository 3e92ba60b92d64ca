"""The import-layer contract: lookalike's modules only import downwards.

The layers, lowest first (a module may import its own layer and the ones below it)::

    foundation   errors, types, _json, _registry, paths, results, knn_graph
    images       images/*, walk
    embeddings   embeddings/*, rerank/*
    schema       schema, vectors/*
    storage      cache, filters, engines/*
    session      session
    operations   ingest, builder, search, text_search, examples, duplicates, fusion, hybrid, tags, metadata
    table        table
    client       client, aio
    jobs         copy, folders
    apps         cli, server/*, lookalike/__init__

Imports under ``if TYPE_CHECKING:`` are exempt from the layer order (they never run), but not from the
rule against private names. Imports inside functions count: a lazy import is still an import.
Exactly one upward import is allowed, and it is listed in ``ALLOWED_UPWARD`` with the reason.

Also checked: no module imports another module's ``_private`` name, and nothing outside
``lookalike/engines/`` reaches for SQLite's ``rowid``, the engine's private matrix cache, or a
SQL dialect by name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lookalike"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation",
        (
            "lookalike.errors",
            "lookalike.types",
            "lookalike._json",
            "lookalike._registry",
            "lookalike.paths",
            "lookalike.results",
            "lookalike.knn_graph",
        ),
    ),
    ("images", ("lookalike.images", "lookalike.walk")),
    ("embeddings", ("lookalike.embeddings", "lookalike.rerank")),
    ("schema", ("lookalike.schema", "lookalike.vectors")),
    ("storage", ("lookalike.cache", "lookalike.filters", "lookalike.engines")),
    ("session", ("lookalike.session",)),
    (
        "operations",
        (
            "lookalike.ingest",
            "lookalike.builder",
            "lookalike.search",
            "lookalike.text_search",
            "lookalike.examples",
            "lookalike.duplicates",
            "lookalike.fusion",
            "lookalike.hybrid",
            "lookalike.tags",
            "lookalike.metadata",
        ),
    ),
    ("table", ("lookalike.table",)),
    ("client", ("lookalike.client", "lookalike.aio")),
    ("jobs", ("lookalike.copy", "lookalike.folders")),
    ("apps", ("lookalike.cli", "lookalike.server", "lookalike")),
]

ALLOWED_UPWARD = {
    # pytidb's convenience ``embed_fn.VectorField(source_field=...)`` builds a schema field from an
    # embedder: the one place the embedding layer reaches up, lazily, inside that method.
    ("lookalike.embeddings.base", "lookalike.schema"),
}

ENGINE_PRIVATE_WORDS = ("rowid", "_matrix")
DIALECT_NAMES = ("sqlite", "postgresql", "mysql", "tidb")


@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    names: tuple[str, ...]
    line: int
    type_only: bool


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    best, rank = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    if rank < 0:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return rank


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def collect_imports() -> list[Import]:
    out: list[Import] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        type_only_nodes: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                for child in node.body:
                    for sub in ast.walk(child):
                        type_only_nodes.add(id(sub))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("lookalike"):
                        out.append(Import(importer, alias.name, (), node.lineno, id(node) in type_only_nodes))
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(importer, path.name == "__init__.py", node)
                if not target.startswith("lookalike"):
                    continue
                names = tuple(a.name for a in node.names)
                out.append(Import(importer, target, names, node.lineno, id(node) in type_only_nodes))
    return out


IMPORTS = collect_imports()


def test_the_contract_sees_the_package() -> None:
    """The scan found the modules and imports it must judge (so an empty scan cannot pass)."""
    importers = {i.importer for i in IMPORTS}
    for expected in ("lookalike.table", "lookalike.client", "lookalike.engines.sqlite", "lookalike.cli"):
        assert expected in importers
    assert len(IMPORTS) > 100


def test_every_module_has_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        layer_of(module_name(path))  # raises for a module the contract does not place


def test_imports_point_down() -> None:
    upward = []
    for imp in IMPORTS:
        if imp.type_only:
            continue
        if layer_of(imp.target) > layer_of(imp.importer) and (imp.importer, imp.target) not in ALLOWED_UPWARD:
            upward.append(
                f"{imp.importer}:{imp.line} imports {imp.target} "
                f"({LAYERS[layer_of(imp.importer)][0]} → {LAYERS[layer_of(imp.target)][0]})"
            )
    assert upward == []


def test_allowed_upward_imports_still_exist() -> None:
    """An exemption whose import is gone must be deleted from the list, not left to excuse a new one."""
    found = {(i.importer, i.target) for i in IMPORTS if not i.type_only}
    assert ALLOWED_UPWARD <= found


def _related(a: str, b: str) -> bool:
    """A package and its own submodule: ``__init__`` re-exporting a submodule is not a layering cycle."""
    return a.startswith(b + ".") or b.startswith(a + ".")


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that import each other, directly or not."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [g for g in groups if len(g) > 1]


def runtime_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for imp in IMPORTS:
        if imp.type_only or _related(imp.importer, imp.target) or imp.target == imp.importer:
            continue
        if (imp.importer, imp.target) in ALLOWED_UPWARD:
            continue
        graph.setdefault(imp.importer, set()).add(imp.target)
    return graph


def test_no_runtime_import_cycles_between_modules() -> None:
    assert strongly_connected(runtime_graph()) == []


def test_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_private_names_from_other_modules() -> None:
    leaks = []
    for imp in IMPORTS:
        if imp.target == imp.importer:
            continue
        for name in imp.names:
            if name.startswith("_") and not name.startswith("__"):
                leaks.append(f"{imp.importer}:{imp.line} imports {name} from {imp.target}")
    assert leaks == []


@pytest.mark.parametrize("word", ENGINE_PRIVATE_WORDS)
def test_engine_internals_stay_in_engines(word: str) -> None:
    """Only engines know SQLite's rowid and the matrix cache (schema may *reserve* the name rowid)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        if module.startswith("lookalike.engines"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            own = (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
            )
            if isinstance(node, ast.Attribute) and node.attr == word and not own:
                found.append(f"{module}:{node.lineno} .{word}")
            elif isinstance(node, ast.Constant) and node.value == word:
                if module == "lookalike.schema" and word == "rowid":
                    continue  # RESERVED_COLUMNS: the name users may not give a column
                found.append(f"{module}:{node.lineno} {word!r}")
    assert found == []


def test_no_dialect_checks_outside_engines() -> None:
    """``dialect.name == "sqlite"`` and the like belong to engines; the layers above ask the engine."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        if module.startswith("lookalike.engines"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                names_dialect = any(
                    isinstance(s, ast.Attribute)
                    and s.attr == "name"
                    and isinstance(s.value, ast.Attribute)
                    and s.value.attr == "dialect"
                    for s in sides
                )
                if names_dialect:
                    found.append(f"{module}:{node.lineno}")
            if isinstance(node, ast.Attribute) and node.attr == "dialect" and module != "lookalike.table":
                found.append(f"{module}:{node.lineno} .dialect")
    assert found == []


def test_layer_order_matches_the_architecture() -> None:
    """Spot checks of the order, so a reshuffled LAYERS list cannot quietly allow an upward import."""
    order = [
        "lookalike.errors",
        "lookalike.images.decode",
        "lookalike.embeddings.base",
        "lookalike.schema",
        "lookalike.engines.sqlite",
        "lookalike.session",
        "lookalike.ingest",
        "lookalike.table",
        "lookalike.client",
        "lookalike.folders",
        "lookalike.cli",
    ]
    ranks = [layer_of(m) for m in order]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
