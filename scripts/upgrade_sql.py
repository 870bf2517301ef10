#!/usr/bin/env python3
"""Print the CREATE FUNCTION statements of functions a new install script has and an old
one lacks (by SQL name and C symbol), as pgrx generated them, qualified with the schema.

    cargo pgrx schema pg15 -o /tmp/new.sql
    python3 scripts/upgrade_sql.py sql/archive/lockhier--0.1.0.sql /tmp/new.sql

For writing sql/lockhier--OLD--NEW.sql; pg_test/upgrade/run.sh then proves the result equal
to a fresh install.
"""
import re
import sys

FUNCTION = re.compile(r'CREATE\s+FUNCTION\s+"?(\w+)"?\s*\((?:.|\n)*?AS \'MODULE_PATHNAME\', \'(\w+)\';', re.M)


def functions(text):
    return {m.group(2): m.group(0) for m in FUNCTION.finditer(text)}


def main(old_path, new_path):
    old = functions(open(old_path).read())
    new = functions(open(new_path).read())
    for symbol, statement in sorted(new.items()):
        if symbol not in old:
            print(re.sub(r'CREATE\s+FUNCTION\s+"?(\w+)"?', r'CREATE FUNCTION lockhier."\1"', statement, count=1))
            print()


if __name__ == "__main__":
    main(*sys.argv[1:3])
