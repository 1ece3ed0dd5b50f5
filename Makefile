# make demo: set up .venv and run the whole job on generated CAPTCHA images.
# make test: set up .venv and run ruff, mypy and the tests (what CI runs).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test lint typecheck bench clean

setup: $(STAMP)

# torch is pinned first and explicitly: a loose requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[all]"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/crnn demo

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks

typecheck: setup
	$(VENV)/bin/mypy

test: lint typecheck
	$(PY) -m pytest

clean:
	rm -rf $(VENV) demo .pytest_cache
