#!/usr/bin/env python3
"""The documentation cannot go stale: README.md, docs/*.md and every README*.md under the tree.

Every code block is one the tests run: each fenced block must follow a `<!-- tested: PATH -->`
line, and its lines must appear, in order and together, in PATH: a test, an expected output or
the script that runs it; or PATH reads the blocks marked for it and runs them as they are written
(it calls `scripts/check_docs.py block DOCUMENT PATH`, which prints them). Indented code blocks
(four spaces after a blank line) are refused: they would escape the check.

Every path of the repository the documents name in backticks exists (see is_repository_path for
what counts as one).

Prints one `ok`/`not ok` line per block and per document's paths (TAP style) and exits non-zero
if any is not.
"""
import os
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MARKER = re.compile(r"<!--\s*tested:\s*(\S+)\s*-->")
# Directories that hold no documentation of ours: build output, virtualenvs, vendored packages.
NOT_OURS = {".git", "target", ".venv", "node_modules", "vendor", "__pycache__"}
# The kinds of file the repository holds; a relative path ending so names one of them.
SOURCE_SUFFIXES = {".rs", ".py", ".sh", ".sql", ".spec", ".out", ".md", ".toml", ".js", ".rb",
                   ".psql", ".control", ".txt", ".csv", ".json"}
BACKTICKED = re.compile(r"`([^`\s]+)`")


def fence(line):
    """The indentation of a fence line (``` after at most 3 spaces, as in a list item), or None."""
    stripped = line.lstrip(" ")
    indent = len(line) - len(stripped)
    return indent if indent <= 3 and stripped.startswith("```") else None


def blocks(text):
    """Yield (line number, marker path or None, block lines) for each fenced block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        indent = fence(lines[i])
        if indent is not None:
            start = i
            previous = next((l for l in reversed(lines[:start]) if l.strip()), "")
            marker = MARKER.search(previous)
            i += 1
            body = []
            while i < len(lines) and fence(lines[i]) is None:
                body.append(lines[i][indent:] if lines[i][:indent].isspace() else lines[i])
                i += 1
            yield start + 1, marker.group(1) if marker else None, body
        i += 1


def indented_blocks(text):
    """Yield the line number of each indented code block outside fences."""
    fenced = False
    previous = ""
    for number, line in enumerate(text.splitlines(), 1):
        if fence(line) is not None:
            fenced = not fenced
        elif not fenced and previous.strip() == "" and (line.startswith("    ") or line.startswith("\t")):
            yield number
        previous = line


def contains(haystack, needle):
    # Indentation and trailing blanks may differ (a command inside a shell function).
    hay = [l.strip() for l in haystack]
    need = [l.strip() for l in needle]
    return any(hay[i:i + len(need)] == need for i in range(len(hay) - len(need) + 1))


def our_files():
    """Every file of the tree outside NOT_OURS, as paths relative to ROOT."""
    for directory, subdirectories, files in os.walk(ROOT):
        subdirectories[:] = sorted(d for d in subdirectories if d not in NOT_OURS)
        for file in files:
            yield (pathlib.Path(directory) / file).relative_to(ROOT)


def is_repository_path(text, document):
    """Whether a backticked word names a file or directory of the repository, which must exist.

    The rule: a word without spaces that contains a `/` and is not a URL, an absolute path, a
    placeholder (`<data>/lockhier`) or a glob, and either
    - starts with an entry of the repository's root (`src/core/plan.rs`, `docs/`) or of the
      document's own directory (`rel/oracle.py` in reliability/README.md), or
    - ends in `/` or in the suffix of a source file (`keeper/locks.rs`, named inside the
      section about its directory): it must then be the tail of a path of the repository.
    Build output, virtualenvs and vendored directories (`target/packages/`, `reliability/.venv`)
    are not the repository's. So an SQL name (`lockhier.leases`), a GitHub project
    (`cespare/xxhash`) or a file of the server's data directory (`lockhier/leases.journal`)
    does not count.
    """
    if "/" not in text or text.startswith("/") or "://" in text or any(c in text for c in "<>*?$"):
        return False
    if NOT_OURS & set(text.split("/")):
        return False
    first = text.split("/")[0]
    if (ROOT / first).exists() or (document.parent / first).exists():
        return True
    return text.endswith("/") or pathlib.PurePath(text).suffix in SOURCE_SUFFIXES


def path_exists(text, document, files):
    path = text.rstrip("/")
    if (ROOT / path).exists() or (document.parent / path).exists():
        return True
    tail = tuple(pathlib.PurePath(path).parts)
    directories = {parent for file in files for parent in file.parents}
    return any(candidate.parts[-len(tail):] == tail for candidate in [*files, *directories])


def missing_paths(text, document, files):
    """The backticked repository paths of a document (outside code blocks) that do not exist."""
    prose = re.sub(r"^ {0,3}```.*?^ {0,3}```", "", text, flags=re.S | re.M)
    words = dict.fromkeys(BACKTICKED.findall(prose))
    return [w for w in words if is_repository_path(w, document) and not path_exists(w, document, files)]


def main():
    files = list(our_files())
    readmes = sorted(f for f in files if f.name.startswith("README") and f.suffix == ".md")
    docs = sorted(f for f in files if f.parent == pathlib.Path("docs") and f.suffix == ".md")
    documents = [ROOT / f for f in [*readmes, *docs]]
    failures = 0
    number = 0
    for document in documents:
        name = document.relative_to(ROOT)
        number += 1
        missing = missing_paths(document.read_text(), document, files)
        failures += bool(missing)
        print(f"{'not ok' if missing else 'ok'} {number} - {name}: the repository paths it names exist"
              + (f"; missing: {', '.join(missing)}" if missing else ""))
        for line, path, body in blocks(document.read_text()):
            number += 1
            if path is None:
                ok, why = False, "no <!-- tested: PATH --> marker"
            elif not (ROOT / path).is_file():
                ok, why = False, f"{path} does not exist"
            else:
                test = (ROOT / path).read_text()
                ok = contains(test.splitlines(), body) or f"scripts/check_docs.py block {name} {path}" in test
                why = f"not found in {path}, nor read by it"
            failures += not ok
            status = "ok" if ok else "not ok"
            print(f"{status} {number} - {name} block at line {line}" + ("" if ok else f": {why}"))
        for line in indented_blocks(document.read_text()):
            number += 1
            failures += 1
            print(f"not ok {number} - {name} line {line}: an indented code block; fence it and mark it tested")
    return 1 if failures else 0


def print_blocks(document, path):
    """`block DOCUMENT PATH`: print the lines of DOCUMENT's blocks marked tested by PATH."""
    found = [body for _, marker, body in blocks((ROOT / document).read_text()) if marker == path]
    for body in found:
        print("\n".join(body))
    return 0 if found else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["block"] and len(sys.argv) == 4:
        sys.exit(print_blocks(sys.argv[2], sys.argv[3]))
    sys.exit(main())
