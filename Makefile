# lockhier: every command installs what it needs and skips what is already there.
#   PG=NN picks the PostgreSQL major (15, 16, 17 or 18) of the targets that run on one:
#   make demo PG=16, make sql PG=17, make bench PG=18 (default 15).
# The test targets end with one line, `N passed, N failed` (scripts/test.sh says what each runs).
.PHONY: test check pgtest sql clients reliability soak demo bench setup install package clean

PG ?= 15

# Everything, on every major: setup, check, then pgtest and sql on each major, clients and
# reliability on 15 and 18, the demo and the Debian package on 15.
test:
	bash scripts/test.sh

# fmt, clippy on every major, the layers of src/, lockhier-core's tests, the docs' code blocks.
check:
	bash scripts/test.sh check

# cargo pgrx test: the Rust unit tests and #[pg_test]s.
pgtest:
	bash scripts/test.sh pgtest $(PG)

# pg_regress, isolation specs, the upgrades from 0.1.0 and 0.2.0, a dump and restore, a standby.
sql:
	bash scripts/test.sh sql $(PG)

clients:
	bash scripts/test.sh clients $(PG)

reliability:
	bash scripts/test.sh reliability $(PG)

# Not in make test: the load and the mixed-nemesis run of the reliability suite for longer
# (LOCKHIER_SOAK_SECONDS each, default 600), in a fresh private cluster.
soak:
	bash scripts/test.sh soak $(PG)

demo:
	PG=$(PG) bash scripts/demo.sh

bench:
	PG=$(PG) bash scripts/bench.sh

setup:
	bash scripts/setup.sh

# Builds for the PostgreSQL found by pg_config and installs into it.
install:
	LOCKHIER_SETUP_CLIENTS=0 LOCKHIER_PG_VERSIONS= bash scripts/setup.sh
	bash scripts/install.sh

# One Debian package per major: target/packages/postgresql-NN-lockhier_<version>_amd64.deb
package:
	LOCKHIER_SETUP_CLIENTS=0 bash scripts/setup.sh
	for v in 15 16 17 18; do bash scripts/package.sh $$v || exit 1; done

clean:
	cargo clean
