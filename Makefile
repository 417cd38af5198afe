# Quick start: `make run` (the main job) and `make test` (the tests). Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test unit

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

run: $(VENV)/.installed
	$(PY) -m recommender run --data ml-100k --api rdd --holdout 0.2 --rank 10 --reg 0.1
	$(PY) -m recommender run --data ml-100k --api df --holdout 0.2 --rank 10 --reg 0.1

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

unit: $(VENV)/.installed
	$(PY) -m pytest -m unit $(PYTEST_ARGS)
