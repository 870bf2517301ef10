#!/usr/bin/env python3
"""Every code block of README.md and docs/*.md is one the tests run.

Each fenced block must follow a `<!-- tested: PATH -->` line, and its lines must appear, in
order and together, in PATH: a test, an expected output or the script that runs it. Indented
code blocks (four spaces after a blank line) are refused: they would escape the check. Prints
one `ok`/`not ok` line per block (TAP style) and exits non-zero if any block is not found.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MARKER = re.compile(r"<!--\s*tested:\s*(\S+)\s*-->")


def blocks(text):
    """Yield (line number, marker path or None, block lines) for each fenced block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            start = i
            previous = next((l for l in reversed(lines[:start]) if l.strip()), "")
            marker = MARKER.search(previous)
            i += 1
            body = []
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            yield start + 1, marker.group(1) if marker else None, body
        i += 1


def indented_blocks(text):
    """Yield the line number of each indented code block outside fences."""
    fenced = False
    previous = ""
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and previous.strip() == "" and (line.startswith("    ") or line.startswith("\t")):
            yield number
        previous = line


def contains(haystack, needle):
    # Indentation and trailing blanks may differ (a command inside a shell function).
    hay = [l.strip() for l in haystack]
    need = [l.strip() for l in needle]
    return any(hay[i:i + len(need)] == need for i in range(len(hay) - len(need) + 1))


def main():
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    failures = 0
    number = 0
    for document in documents:
        name = document.relative_to(ROOT)
        for line, path, body in blocks(document.read_text()):
            number += 1
            if path is None:
                ok, why = False, "no <!-- tested: PATH --> marker"
            elif not (ROOT / path).is_file():
                ok, why = False, f"{path} does not exist"
            else:
                ok = contains((ROOT / path).read_text().splitlines(), body)
                why = f"not found in {path}"
            failures += not ok
            status = "ok" if ok else "not ok"
            print(f"{status} {number} - {name} block at line {line}" + ("" if ok else f": {why}"))
        for line in indented_blocks(document.read_text()):
            number += 1
            failures += 1
            print(f"not ok {number} - {name} line {line}: an indented code block; fence it and mark it tested")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
