# Every target sets up .venv itself, so a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench sim lint fuzz clean example-web browser

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check swimactors sims tests benchmarks examples fuzz
	$(VENV)/bin/ruff format --check swimactors sims tests benchmarks examples fuzz
	$(VENV)/bin/mypy --strict swimactors sims benchmarks examples fuzz
	$(VENV)/bin/lint-imports

# The dashboard's browser test drives Debian's chromium with its chromedriver; install them
# when missing and we may (root with apt-get), else that one test skips and says why.
browser:
	@command -v chromedriver >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
	  >/dev/null 2>&1; } || echo "no chromium: the dashboard's browser test will be skipped"

test: lint browser
	$(PY) -m pytest

demo: $(STAMP)
	$(PY) -m swimactors.demo

example-web: $(STAMP)
	$(PY) -m examples.web

fuzz: $(STAMP)
	$(PY) -m fuzz --seconds $(or $(FUZZ_SECONDS),60)

sim: $(STAMP)
	$(PY) -m sims suite --large

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
