# Two commands on a fresh machine: `make demo` and `make test` (README).
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_HOME ?= $(CURDIR)/.mhladr/demo

.PHONY: setup demo test bench clean-demo oq-reference release-manifest

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ needed"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	DO_NOT_TRACK=1 MHLADR_HOME=$(DEMO_HOME) $(BIN)/mhladr run data_samples \
		--registry data_samples/registry.csv --lots data_samples/lots.csv
	@echo
	@echo "Open it in a browser:"
	@echo "  Prefect UI (running now): $$($(BIN)/python -c 'import json, sys; print(json.load(open(sys.argv[1]))["url"].removesuffix("/api"))' $(DEMO_HOME)/prefect/server.json)"
	@echo "    (locked: sign in with the string in $(DEMO_HOME)/prefect/auth)"
	@echo "  Lab console: register yourself once (the first user must be an admin), then serve it (Ctrl-C stops it):"
	@echo "    MHLADR_HOME=$(DEMO_HOME) $(BIN)/mhladr users add $$(id -un) --role admin --password-stdin"
	@echo "    MHLADR_HOME=$(DEMO_HOME) $(BIN)/mhladr serve"
	@echo "  and open the console URL it prints (http://127.0.0.1:8470 by default; also in $(DEMO_HOME)/serve.json)."

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_calibration.py
	$(BIN)/python benchmarks/bench_analyze.py
	$(BIN)/python benchmarks/bench_flows.py
	$(BIN)/python benchmarks/bench_serve_inbox.py
	$(BIN)/python benchmarks/bench_backlog.py
	$(BIN)/python benchmarks/bench_audit.py

# At release: the OQ reference tubes (generator, seeded), then the manifest of every installed file.
oq-reference: $(STAMP)
	$(BIN)/python -m data_samples.oq_reference

release-manifest: $(STAMP)
	$(BIN)/python -m pipeline.validation.manifest

clean-demo:
	-MHLADR_HOME=$(DEMO_HOME) $(BIN)/mhladr serve --stop-server
	rm -rf $(DEMO_HOME)
