# lockhier: every command installs what it needs and skips what is already there.
#   make demo PG=16, make bench PG=18: another PostgreSQL major (default 15).
.PHONY: test demo bench setup install package clean

PG ?= 15

test:
	bash scripts/test.sh

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
