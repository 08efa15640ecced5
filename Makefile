# embedhead developer entry points. `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.embedhead-installed
DEMO_OUT ?= demo-out

.PHONY: install test lint format typecheck pytest demo bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
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
