#!/usr/bin/env python3
"""The layers of src/ depend one way, and only src/pg/ holds `unsafe`.

    api    -> rows, engine    (the SQL functions: never the pg layer itself)
    rows   -> engine, pg
    engine -> pg
    pg     -> nothing but core
    every layer -> core       (src/core, lockhier-core, a crate of its own: it uses no layer)

Reads every `crate::...`, `super::...`, `self::...` and `lockhier_core::...` path in src/ (use
declarations and inline paths) and a module's paths to its own children, maps each file and
each path to its module (a name the core crate's root re-exports, to the module it comes
from), and checks that (1) no module uses a layer it may not, (2) the dependencies among the
modules of src/, src/core included, have no cycle (a child module's use of its own ancestors
does not count: it is their code split into files), (3) `unsafe` appears in no file outside
src/pg/, and (4) src/core has no pgrx. Prints one `ok`/`not ok` line per rule, TAP style;
exits non-zero if any rule is broken. Tests (src/pg_tests, and every file's unit tests) and
the crate roots, which only declare and re-export the modules, may use anything.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
# What each layer may use besides itself and core.
ALLOWED = {
    "api": {"rows", "engine"},
    "rows": {"engine", "pg"},
    "engine": {"pg"},
    "pg": set(),
    "core": set(),
}
FREE = {"pg_tests", "lib", "benches"}  # the crate root wires the layers; tests may use anything
ROOTS = {"lib", "core"}  # the crate roots: they declare and re-export modules, nothing more

IDENT = r"[a-z_][a-z0-9_]*"
NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# A path that starts at the crate, the parent module, this one or lockhier-core, with
# `{a, b::c}` groups.
PATH = re.compile(rf"\b(crate|super|self|lockhier_core)((?:::{IDENT})*)(?:::\{{([^}}]*)\}}|::({NAME}))?")


def module_of(path):
    """src/engine/lock.rs -> ('engine', 'engine::lock'); src/rows/mod.rs -> ('rows', 'rows');
    src/core/lib.rs -> ('core', 'core'); src/core/benches/x.rs -> ('benches', ...)."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "mod" or parts[-2:] == ["core", "lib"]:
        parts.pop()
    if parts == ["lib"]:
        return "lib", "lib"
    if parts[:2] == ["core", "benches"]:
        return "benches", "::".join(parts)
    return parts[0], "::".join(parts)


def reexports(modules):
    """The names lockhier-core's root re-exports, each with the module it comes from:
    `pub use class::{ClassName, Classes};` -> {'core::ClassName': 'core::class', ...}."""
    found = {}
    for m in re.finditer(rf"pub use ({IDENT})::(?:\{{([^}}]*)\}}|({NAME}));", code_of(modules["core"].read_text())):
        for item in (m.group(2) or m.group(3)).split(","):
            if item.strip():
                found[f"core::{item.strip()}"] = f"core::{m.group(1)}"
    return found


def code_of(text):
    """The text without comments, string literals (which may mention paths freely) and the
    unit-test module at the end of a file (whose `super` is the file's own module)."""
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests\b", text)[0]
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'r#"(?:.|\n)*?"#', '""', text)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def dependencies(path, modules, renamed):
    """The modules `path` uses, each by its longest known prefix."""
    code = code_of(path.read_text())
    _, name = module_of(path)
    # A module's children are in mod.rs or lib.rs beside them, or in x.rs beside the folder x/.
    owns_children = path.name in ("mod.rs", "lib.rs") or path.with_suffix("").is_dir()
    here = "" if name == "lib" else name
    crate = "core" if name.split("::")[0] == "core" else ""
    anchors = {"crate": crate, "lockhier_core": "core", "self": here, "super": here.rpartition("::")[0]}
    targets = []
    for m in PATH.finditer(code):
        prefix = "::".join(x for x in [anchors[m.group(1)], m.group(2).strip(":")] if x)
        items = [i.strip().split(" ")[0] for i in (m.group(3) or m.group(4) or "").split(",") if i.strip()]
        targets += [prefix if item == "self" else f"{prefix}::{item}".strip(":") for item in items] or [prefix]
    targets = [renamed.get(t, t) for t in targets]
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
    files = sorted(SRC.rglob("*.rs"))
    modules = {module_of(p)[1]: p for p in files}
    renamed = reexports(modules)
    graph = {name: dependencies(path, modules, renamed) for name, path in modules.items()}
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
            if used_layer in {layer, "core"} or used_layer in FREE:
                continue
            if used_layer not in ALLOWED[layer]:
                wrong_way.append(f"{name} uses {used}")
    rule = ", ".join(f"{layer} -> {'/'.join(sorted(uses)) or 'core only'}" for layer, uses in ALLOWED.items())
    check(not wrong_way, f"each layer uses only what it may: {rule}", wrong_way)

    cycles = []
    state = {}

    def visit(node, stack):
        state[node] = "open"
        # A child may use its ancestors: a module split into files (`impl Area` in
        # pg/lease_area/asks.rs) is one module; its parent's use of it is still an edge.
        for nxt in sorted(n for n in graph[node] - ROOTS if not node.startswith(n + "::")):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state and node.split("::")[0] not in FREE and node not in ROOTS:
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
