# Quick start: `make run` (the benchmark grid and its report) and `make test` (the tests). Both set up .venv first,
# with the PyTorch engines (CPU build where this machine has one on disk) and the peer libraries.
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

# The peer libraries (impl implicit, lenskit), resolved with the suite's own pins. Where they do not install,
# their cases and tests are skipped with the reason, and the next make tries again.
$(VENV)/.peers: requirements-peers.txt $(VENV)/.torch
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-peers.txt -r requirements.txt \
		-r requirements-torch.txt && touch $@ || echo "note: the peer libraries did not install here (see above)"

$(VENV)/.lint: requirements-lint.txt $(VENV)/.peers  # mypy reads the engines against torch and the peers
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-lint.txt
	touch $@

run: $(VENV)/.peers
	$(PY) -m experiments --grid $(GRID)

test: $(VENV)/.peers  # every tier but `slow`
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

slow: $(VENV)/.peers  # the cases of over a minute: the standalone-cluster harness and EMR step runs
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

unit: $(VENV)/.installed
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

lint: $(VENV)/.lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
