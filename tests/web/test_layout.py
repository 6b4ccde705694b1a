"""The web package's shape: no import loops (type-only imports included), web.keys a leaf; the page's modules
without loops, each served and preloaded."""

from __future__ import annotations

import re
from pathlib import Path

import grimp

from web.routes.page import ASSETS


def test_web_has_no_import_loops_and_keys_is_a_leaf() -> None:
    """No import loops inside web, type-only imports included; web.keys names only plain classes from
    modules that import nothing from web (so every web module can import the keys)."""
    graph = grimp.build_graph("web", exclude_type_checking_imports=False)
    imports = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}

    loops = []
    for module in sorted(imports):
        for imported in imports[module]:
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain is not None:
                loops.append(" -> ".join((module, *chain)))
    assert loops == [], "\n".join(loops)

    assert imports["web.keys"] <= {"web.state", "web.telemetry"}, imports["web.keys"]
    for plain in imports["web.keys"]:
        assert imports[plain] == set(), f"{plain} imports {imports[plain]}"


STATIC = Path(__file__).parents[2] / "web" / "static"
_IMPORT = re.compile(r'^import [^;]*? from "\./([\w.]+)";', re.M)


def test_page_modules_have_no_import_loops_and_are_each_served_and_preloaded() -> None:
    """The page's ES modules (app.js and what it imports): no import loops, each served under /static and
    fetched beside app.js (a modulepreload link) rather than one after another."""
    imports = {path.name: set(_IMPORT.findall(path.read_text())) for path in STATIC.glob("*.js")}
    reached, todo = set(), ["app.js"]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(imports[name])

    def reaches(start: str, target: str) -> bool:
        seen, todo = set(), list(imports[start])
        while todo:
            name = todo.pop()
            if name == target:
                return True
            if name not in seen:
                seen.add(name)
                todo.extend(imports[name])
        return False

    assert [name for name in sorted(reached) if reaches(name, name)] == []
    assert reached == set(imports), "a script in web/static that the page never loads"
    assert reached <= set(ASSETS), reached - set(ASSETS)
    preloaded = set(
        re.findall(r'<link rel="modulepreload" href="/static/([\w.]+)">', (STATIC / "index.html").read_text())
    )
    assert preloaded == reached - {"app.js"}
