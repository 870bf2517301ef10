#!/usr/bin/env python3
"""Print the CREATE FUNCTION statements of functions a new install script has and an old
one lacks (by SQL name and C symbol), and of those it declares differently (their result
type, arguments, defaults or attributes changed), as pgrx generated them, qualified with the
schema; and name the functions the new one no longer has.

    cargo pgrx schema pg15 -o /tmp/new.sql
    python3 scripts/upgrade_sql.py sql/archive/lockhier--0.2.0.sql /tmp/new.sql

For writing sql/lockhier--OLD--NEW.sql; pg_test/upgrade/run.sh then proves the result equal
to a fresh install. A function declared differently needs DROP FUNCTION first when its
result type or arguments changed (and the views on it dropped and created again, with their
grants and comments), as sql/lockhier--0.2.0--0.3.0.sql does for lease_list().
"""
import re
import sys

FUNCTION = re.compile(r'CREATE\s+FUNCTION\s+"?(\w+)"?\s*\((?:.|\n)*?AS \'MODULE_PATHNAME\', \'(\w+)\';', re.M)


def functions(text):
    return {m.group(2): m.group(0) for m in FUNCTION.finditer(text)}


def qualified(statement):
    return re.sub(r'CREATE\s+FUNCTION\s+"?(\w+)"?', r'CREATE FUNCTION lockhier."\1"', statement, count=1)


def declaration(statement):
    """The statement without its comments and with white space collapsed: what it declares."""
    return " ".join(re.sub(r"/\*.*?\*/", " ", statement).split())


def main(old_path, new_path):
    old = functions(open(old_path).read())
    new = functions(open(new_path).read())
    for symbol, statement in sorted(new.items()):
        if symbol not in old:
            print(qualified(statement))
            print()
        elif declaration(statement) != declaration(old[symbol]):
            print(f"-- declared differently than in {old_path}: drop it first if its result or arguments changed")
            print(qualified(statement))
            print()
    for symbol in sorted(set(old) - set(new)):
        print(f"-- no longer in the new script: {FUNCTION.match(old[symbol]).group(1)} (C symbol {symbol})")


if __name__ == "__main__":
    main(*sys.argv[1:3])
