# The two commands a new user needs: `make run` and `make test`. Every install step lives here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
PORT ?= 8501
# Loopback unless asked: `make run HOST=0.0.0.0` (or WORKBENCH_HOST) exposes the app, with a warning.
HOST ?=

.PHONY: install install-test run demo test lint bench browser clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[train,test]"
	touch $@ $(STAMP)

install: $(STAMP)

install-test: $(TEST_STAMP)

demo: install
	$(BIN)/workbench demo load --if-empty

run: demo
	$(PY) -m workbench.serving --port $(PORT) $(if $(HOST),--host $(HOST))

# Chromium comes from Debian (never `playwright install`); the browser test skips without it,
# so the step is best-effort where apt is not available.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		(sudo -n apt-get update -qq && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "warning: could not install chromium; the browser test will be skipped"; }

test: install-test browser
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: install-test
	$(BIN)/ruff check .

bench: install-test
	$(PY) benchmarks/import_bench.py
	$(PY) benchmarks/search_bench.py
	$(PY) benchmarks/train_bench.py
	$(PY) benchmarks/watch_bench.py
	$(PY) benchmarks/scale_bench.py
	$(PY) benchmarks/compare_bench.py
	$(PY) benchmarks/ingest_bench.py
	$(PY) benchmarks/dashboard_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
