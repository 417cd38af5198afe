# Quick start: `make run` (the benchmark grid and its report) and `make test` (the tests). Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
GRID ?= local

.PHONY: run test unit torch

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# Optional: the PyTorch engines (impl torch, torch-spark).
$(VENV)/.torch: requirements-torch.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-torch.txt
	touch $@

torch: $(VENV)/.torch

run: $(VENV)/.installed
	$(PY) -m experiments --grid $(GRID)

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

unit: $(VENV)/.installed
	$(PY) -m pytest -m unit $(PYTEST_ARGS)
