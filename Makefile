# Quick start: `make run` (the benchmark grid and its report) and `make test` (the tests). Both set up .venv first,
# with the PyTorch engines (CPU build where this machine has one on disk).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
GRID ?= local

.PHONY: run test slow unit lint

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# The PyTorch engines (impl torch, torch-spark).
$(VENV)/.torch: requirements-torch.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-torch.txt
	touch $@

$(VENV)/.lint: requirements-lint.txt $(VENV)/.torch  # mypy reads the torch engines against torch itself
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-lint.txt
	touch $@

run: $(VENV)/.torch
	$(PY) -m experiments --grid $(GRID)

test: $(VENV)/.torch  # every tier but `slow`
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

slow: $(VENV)/.torch  # the cases of over a minute: the standalone-cluster harness and EMR step runs
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

unit: $(VENV)/.installed
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

lint: $(VENV)/.lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
