# shieldwall — the two commands a newcomer needs are `make demo` and `make test`.
# Both bootstrap .venv on a fresh machine; `make test` also installs the Debian tools
# the integration tests drive (slowhttptest, ...) when they are missing.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

TEST_DEBS  := slowhttptest chromium nodejs nginx redis-server nftables iproute2
BENCH_DEBS := nginx wrk

.PHONY: demo test lint bench venv clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/shieldwall demo

test: $(STAMP)
	@scripts/ensure-debs $(TEST_DEBS)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

bench: $(STAMP)
	@scripts/ensure-debs $(BENCH_DEBS)
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
