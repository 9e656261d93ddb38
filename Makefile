# The two commands: `make demo` and `make test`. Both create .venv from the system Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A DuckDB 1.x, as bundled in BI tools, to test that published marts open there (never imported by the project).
DUCKDB1 := $(VENV)/duckdb1

.PHONY: demo test lint bench bench-deps sample clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,export,dask]'
	$(BIN)/pip install --quiet --target $(DUCKDB1) 'duckdb>=1.4,<1.5'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cjm run --config data/sample/cjm.yaml

# `cjm run` sets its temporary Prefect server's settings itself (docs/operations.md, Orchestration), so `make demo`
# runs as a user would. The tests' own Prefect server (prefect_test_harness) is Prefect's: no usage reports from it.
test: export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Throughput and peak memory of the pipeline, `cjm run` as one process, the sort floor, a pandas baseline and
# Retentioneering on the same data, with a 1% next night, ending with issue 16's ratios (benchmarks/README.md);
# EVENTS=10000000 for the 10M figures in docs/performance.md, SHAPE=one-file|anonymous for the other data shapes.
EVENTS ?= 1000000
SHAPE ?= nightly-files
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --events $(EVENTS) --shape $(SHAPE) --incremental 0.01 $(BENCH_ARGS)

# Retentioneering 5 for the benchmark, in a virtualenv of its own (it pins its own pandas and DuckDB); bench also
# creates it on first use, and reports Retentioneering as skipped, with the reason, when it cannot.
bench-deps: $(STAMP)
	$(BIN)/python -m benchmarks.retentioneering_baseline --setup

sample: $(STAMP)
	$(BIN)/cjm sample --out data/sample

clean:
	rm -rf $(VENV) .venv-retentioneering .venv-retentioneering.log data/sample/warehouse data/sample/reports
