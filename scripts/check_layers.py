#!/usr/bin/env python3
"""The layers of src/ depend one way, and only src/pg/ holds `unsafe`.

    api -> rows -> engine -> pg        (a layer may use those to its right)
    every layer -> lockhier_core       (src/core, a crate of its own: it cannot see the others)

Reads every `crate::...` path in src/ (use declarations and inline paths), maps each file
and each path to its module, and checks that (1) no module uses a layer it may not, (2) the
modules' dependencies have no cycle, (3) `unsafe` appears in no file outside src/pg/, and
(4) src/core has no pgrx. Prints one `ok`/`not ok` line per rule, TAP style; exits non-zero
if any rule is broken. Tests (src/pg_tests) may use anything.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
# The layers, each allowed to use the ones after it.
ORDER = ["api", "rows", "engine", "pg"]
FREE = {"pg_tests", "lib"}  # the crate root wires the layers; tests may use anything

IDENT = r"[a-z_][a-z0-9_]*"
# A path that starts at the crate, the parent module or this one, with `{a, b::c}` groups.
PATH = re.compile(rf"\b(crate|super|self)((?:::{IDENT})*)(?:::\{{([^}}]*)\}})?")


def module_of(path):
    """src/engine/lock.rs -> ('engine', 'engine::lock'); src/rows/mod.rs -> ('rows', 'rows')."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    if parts == ["lib"]:
        return "lib", "lib"
    return parts[0], "::".join(parts)


def code_of(text):
    """The text without comments, string literals (which may mention paths freely) and the
    unit-test module at the end of a file (whose `super` is the file's own module)."""
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests\b", text)[0]
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'r#"(?:.|\n)*?"#', '""', text)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def dependencies(path, modules):
    """The modules `path` uses, each by its longest known prefix."""
    code = code_of(path.read_text())
    _, name = module_of(path)
    owns_children = path.name in ("mod.rs", "lib.rs")
    here = "" if name == "lib" else name
    anchors = {"crate": "", "self": here, "super": here.rpartition("::")[0]}
    targets = []
    for m in PATH.finditer(code):
        prefix = "::".join(x for x in [anchors[m.group(1)], m.group(2).strip(":")] if x)
        items = [i.strip().split(" ")[0] for i in (m.group(3) or "").split(",") if i.strip()]
        targets += [prefix if item == "self" else f"{prefix}::{item}".strip(":") for item in items] or [prefix]
    if owns_children:  # relative paths to its own child modules: `lockers::lockers(...)`
        children = {m.rpartition("::")[2] for m in modules if m.rpartition("::")[0] == here and m != here}
        targets += [f"{here}::{m.group(1)}".strip(":") for m in re.finditer(rf"\b({IDENT})::", code)
                    if m.group(1) in children]
    found = set()
    for target in targets:
        parts = target.split("::")
        for end in range(len(parts), 0, -1):
            candidate = "::".join(parts[:end])
            if candidate in modules:
                if candidate != name:
                    found.add(candidate)
                break
    return found


def main():
    files = sorted(p for p in SRC.rglob("*.rs") if SRC / "core" not in p.parents)
    modules = {module_of(p)[1]: p for p in files}
    graph = {name: dependencies(path, modules) for name, path in modules.items()}
    failures = 0

    def check(ok, what, problems):
        nonlocal failures
        failures += not ok
        print(f"{'ok' if ok else 'not ok'} - {what}" + ("" if ok else ": " + "; ".join(problems)))

    wrong_way = []
    for name, uses in graph.items():
        layer = name.split("::")[0]
        if layer in FREE:
            continue
        for used in uses:
            used_layer = used.split("::")[0]
            if used_layer == layer or used_layer in FREE:
                continue
            if ORDER.index(used_layer) < ORDER.index(layer):
                wrong_way.append(f"{name} uses {used}")
    check(not wrong_way, "layers are used one way: " + " -> ".join(ORDER), wrong_way)

    cycles = []
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state and node.split("::")[0] not in FREE:
            visit(node, [node])
    check(not cycles, f"no cycle among the {len(graph)} modules of src/", cycles)

    unsafe_outside = [str(p.relative_to(ROOT)) for p in SRC.rglob("*.rs")
                      if SRC / "pg" not in p.parents and re.search(r"\bunsafe\b", code_of(p.read_text()))]
    check(not unsafe_outside, "no `unsafe` outside src/pg/", unsafe_outside)

    core_pgrx = [str(p.relative_to(ROOT)) for p in (SRC / "core").rglob("*") if p.is_file()
                 and re.search(r"\bpgrx\b", code_of(p.read_text()))]
    check(not core_pgrx, "src/core (lockhier-core) uses no pgrx", core_pgrx)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
