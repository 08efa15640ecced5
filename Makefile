# embedhead developer entry points. `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.embedhead-installed
DEMO_OUT ?= demo-out

.PHONY: install test lint format typecheck pytest demo bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# one resolve for everything, then byte-compiled in parallel: pip compiles one file at a
	@# time (~30 s for torch here), and where PYTHONDONTWRITEBYTECODE is set (this machine)
	@# nothing is cached on import, so every process would compile torch again (~1.5 s each)
	$(PY) -m pip install -q --no-compile torch==2.13.0 -e '.[dev]'
	@# (a file only a newer Python parses, like torch's py312_intrinsics.py, is skipped, as
	@# pip skips it)
	$(PY) -m compileall -q -j 0 -x py312_intrinsics $(VENV)/lib embedhead > /dev/null \
		|| echo 'compileall: some files did not compile (pip would skip them too)'
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
