"""The lock model's oracle, written from docs/lock-model.md and nothing else.

Two requests of different sessions conflict exactly when
  1. their scopes overlap: one id path is a prefix of (or equal to) the other; a path of names
     (lock_path & co.) likewise with another path of names, and with a path of ids only when one
     of them is the global scope (the two trees share only their root),
  2. their classes overlap: equal, or either is 'all',
  3. at least one of them is exclusive.
A request naming several classes is the union of its single-class requests. Class names match
case-insensitively; 'all' among several classes means 'all'. Modes are case-insensitive too.
"""

from typing import NamedTuple, Optional, FrozenSet

ALL = None  # the classes of an 'all' request


class Req(NamedTuple):
    path: tuple                          # () global, (a,), (a, t), (a, t, f); or names ('r', 's')
    classes: Optional[FrozenSet[str]]    # None = all classes
    exclusive: bool

    def __str__(self):
        names = ["global", "application", "table", "field"]
        if self.path and isinstance(self.path[0], str):
            where = "path " + "/".join(self.path)
        else:
            where = names[len(self.path)] + ("" if not self.path else " " + "/".join(map(str, self.path)))
        what = "all" if self.classes is None else "{" + ",".join(sorted(self.classes)) + "}"
        return f"({where}, {what}, {'exclusive' if self.exclusive else 'share'})"


def make(path, classes, mode):
    """classes: a class name (str) or a list of names, as passed to lockhier."""
    names = [classes] if isinstance(classes, str) else list(classes)
    lowered = {c.lower() for c in names}
    if not lowered:
        raise ValueError("a request names at least one class")
    cls = ALL if "all" in lowered else frozenset(lowered)
    mode = mode.lower()
    if mode not in ("share", "exclusive"):
        raise ValueError(mode)
    return Req(tuple(path), cls, mode == "exclusive")


def scopes_overlap(a, b):
    if a.path and b.path and isinstance(a.path[0], str) != isinstance(b.path[0], str):
        return False   # a path of names and a path of ids meet only at the global scope
    n = min(len(a.path), len(b.path))
    return a.path[:n] == b.path[:n]


def classes_overlap(a, b):
    return a.classes is ALL or b.classes is ALL or bool(a.classes & b.classes)


def conflicts(a, b):
    return scopes_overlap(a, b) and classes_overlap(a, b) and (a.exclusive or b.exclusive)


# Hand-checked cases from the design doc and its examples: (a, b, conflict?). They pin the
# oracle itself, so that a mistake in it cannot silently weaken the load test's checker.
def _r(path, classes, mode):
    return make(path, classes, mode)


KNOWN_CASES = [
    # two snapshots of application 7 run together
    (_r((7,), "all", "share"), _r((7,), "all", "share"), False),
    # a snapshot blocks a field update inside the application
    (_r((7,), "all", "share"), _r((7, 12, 99), "field__update", "exclusive"), True),
    # an import blocks deleting a field of its table, not renaming (updating) it
    (_r((7, 12), ["field__deletion", "field__type_update", "field__incompatible_update"], "share"),
     _r((7, 12, 99), "field__deletion", "exclusive"), True),
    (_r((7, 12), ["field__deletion", "field__type_update", "field__incompatible_update"], "share"),
     _r((7, 12, 99), "field__update", "exclusive"), False),
    # two imports (share) of the same table run together
    (_r((7, 12), ["field__deletion"], "share"), _r((7, 12), "FIELD__DELETION", "share"), False),
    # ids are not unique across parents: table 12 of application 8 is another node
    (_r((7, 12), "all", "exclusive"), _r((8, 12), "all", "exclusive"), False),
    (_r((7, 12, 99), "all", "exclusive"), _r((7, 13, 99), "all", "exclusive"), False),
    # the marker example: a coarse share on one class meets a fine exclusive on all classes
    (_r((), "a", "share"), _r((1, 1, 2), "all", "exclusive"), True),
    (_r((), "a", "share"), _r((1, 1, 2), "b", "exclusive"), False),
    # one full backup at a time, anywhere; a platform update blocks app tasks and app backups
    (_r((), "full_backup", "exclusive"), _r((), "full_backup", "exclusive"), True),
    (_r((), ["app_task", "app_backup"], "exclusive"), _r((3,), "app_task", "share"), True),
    (_r((), ["app_task", "app_backup"], "exclusive"), _r((3,), "snapshot", "exclusive"), False),
    # 'all' inside an array means all; duplicates merge
    (_r((1,), ["x", "all"], "share"), _r((1, 1), "y", "exclusive"), True),
    (_r((1,), ["x", "X"], "exclusive"), _r((1,), "y", "exclusive"), False),
    # siblings never overlap, whatever the classes and modes
    (_r((1, 1, 1), "all", "exclusive"), _r((1, 1, 2), "all", "exclusive"), False),
    # paths of names (docs/paths.md): a path covers what is under it, at any depth
    (_r(("sites", "c0a8", "backups"), "backup", "exclusive"), _r(("sites", "c0a8"), "all", "exclusive"), True),
    (_r(("a", "b", "c", "d", "e"), "x", "share"), _r(("a",), "x", "exclusive"), True),
    (_r(("sites", "c0a8"), "backup", "exclusive"), _r(("sites", "c0a9"), "backup", "exclusive"), False),
    # names compare whole and exactly: a slash inside a name is not a separator, case counts
    (_r(("a/b",), "all", "exclusive"), _r(("a", "b"), "all", "exclusive"), False),
    (_r(("Room",), "all", "exclusive"), _r(("room",), "all", "exclusive"), False),
    # the global scope covers paths; a path and a numeric scope never meet below it
    (_r((), "all", "exclusive"), _r(("sites",), "x", "share"), True),
    (_r((7,), "all", "exclusive"), _r(("7",), "all", "exclusive"), False),
]
