"""The house rules for imports (DEVELOPERS.md, Layout): rooms import only rooms below them, and no
module imports itself back through others. Lazy imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Lowest first. A module may import its own room and the rooms of earlier layers only.
LAYERS = (
    ("bot", "bot.errors", "bot.throttled_log", "bot.metrics"),
    ("bot.deepmoji",),
    ("bot.explain",),
    ("bot.config",),
    ("bot.store",),
    ("bot.rules",),
    ("bot.interactions",),
    ("bot.serving",),
    ("bot.app",),
    ("bot.demo",),
    ("bot.cli", "cogs"),
    ("bot.__main__",),
)
LAYER_OF = {room: depth for depth, rooms in enumerate(LAYERS) for room in rooms}
#: Test oracles: production code never imports them.
ORACLES = ("bot.deepmoji.reference", "bot.deepmoji.seeded")


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def imports(path: Path) -> set[str]:
    """The bot and cogs modules ``path`` imports, as module names (``from bot.x import y`` is ``bot.x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found.update(name for name in names if name.split(".")[0] in ("bot", "cogs"))
    return found


MODULES = {
    module_name(path): imports(path) for folder in ("bot", "cogs") for path in sorted((ROOT / folder).rglob("*.py"))
}


def room(module: str) -> str:
    """``bot.deepmoji.model`` -> ``bot.deepmoji``; ``bot.config`` -> ``bot.config``; ``cogs.why`` -> ``cogs``."""
    parts = module.split(".")
    if parts[0] == "cogs":
        return "cogs"
    return ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def test_every_room_has_a_layer():
    assert {room(module) for module in MODULES} <= set(LAYER_OF)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down(module):
    upward = [
        imported
        for imported in MODULES[module]
        if room(imported) != room(module) and LAYER_OF[room(imported)] >= LAYER_OF[room(module)]
    ]
    assert not upward, f"{module} imports {upward}, which are not below it"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_test_oracle(module):
    assert not MODULES[module] & set(ORACLES) or module in ORACLES


def test_cogs_do_not_import_each_other():
    assert not [(m, i) for m, found in MODULES.items() if m.startswith("cogs.") for i in found if i.startswith("cogs")]


def test_no_import_circles():
    """A depth-first search over module imports (a package import counts as its __init__)."""
    graph = {module: {found for found in imported if found in MODULES} for module, imported in MODULES.items()}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            pytest.fail("import circle: " + " -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        for imported in sorted(graph[module]):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_only_whymoji_demo_imports_the_demo_page():
    """The demo (Gradio, an optional extra) is a leaf: the bot and the other commands never reach it."""
    importers = {m for m, found in MODULES.items() if any(room(i) == "bot.demo" for i in found)}
    assert {m for m in importers if room(m) != "bot.demo"} == {"bot.cli.demo"}
