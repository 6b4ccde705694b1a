"""No import loops among our modules, type-only imports (`if TYPE_CHECKING:`) included: a loop means two
modules that can only be read together, and one moved function away from an ImportError at start-up."""

from __future__ import annotations

import grimp

PACKAGES = ("core", "worker", "web", "bots", "mediabot")


def loops(graph: grimp.ImportGraph) -> list[list[str]]:
    """The import graph's strongly connected components of more than one module (Tarjan's algorithm,
    iterative), each sorted; a module importing itself counts too."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            module, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[module] = min(low[module], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1 or module in graph.find_modules_directly_imported_by(module):
                        found.append(sorted(component))
    return sorted(found)


def test_no_import_loops() -> None:
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=False)
    found = loops(graph)
    described = [
        " <-> ".join(component)
        + ": "
        + "; ".join(
            f"{a} -> {b}"
            for a in component
            for b in sorted(graph.find_modules_directly_imported_by(a))
            if b in component
        )
        for component in found
    ]
    assert not found, "import loops:\n" + "\n".join(described)


def test_the_loop_finder_finds_a_loop() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "a.b", "a.c", "a.d"):
        graph.add_module(module)
    graph.add_import(importer="a.b", imported="a.c")
    graph.add_import(importer="a.c", imported="a.b")
    graph.add_import(importer="a.c", imported="a.d")
    assert loops(graph) == [["a.b", "a.c"]]
