# embedhead developer entry points. `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.embedhead-installed
DEMO_OUT ?= demo-out

.PHONY: install test lint format typecheck pytest demo bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# one resolve for everything; --no-compile: Python compiles only the modules that are
	@# imported, on first import (byte-compiling all of torch at install took ~30 s here)
	$(PY) -m pip install -q --no-compile torch==2.13.0 -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

pytest: $(STAMP)
	$(PY) -m pytest -n 2 -q

test: lint pytest

demo: $(STAMP)
	PATH="$(abspath $(VENV))/bin:$$PATH" bash data/demo.sh $(DEMO_OUT)

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(DEMO_OUT) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
