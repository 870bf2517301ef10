# lockhier: every command installs what it needs and skips what is already there.
.PHONY: test demo bench setup install clean

test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

bench:
	bash scripts/bench.sh

setup:
	bash scripts/setup.sh

install:
	LOCKHIER_SETUP_CLIENTS=0 bash scripts/setup.sh
	cargo pgrx install --release --pg-config "$$(command -v pg_config)"

clean:
	cargo clean
