"""The web package's shape: no import loops (type-only imports included), and web.keys a leaf."""

from __future__ import annotations

import grimp


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
