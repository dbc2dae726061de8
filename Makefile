# Every target sets up .venv itself, so a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench sim lint clean example-web

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check swimactors sims tests benchmarks examples
	$(VENV)/bin/ruff format --check swimactors sims tests benchmarks examples
	$(VENV)/bin/mypy --strict swimactors

test: lint
	$(PY) -m pytest

demo: $(STAMP)
	$(PY) -m swimactors.demo

example-web: $(STAMP)
	$(PY) -m examples.web

sim: $(STAMP)
	$(PY) -m sims suite --large

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
