# The whole set-up is two targets: `make checkup` and `make test`.
# PyTorch comes in as the CPU build: torch==2.13.0 is pinned before the package is installed,
# so pip never resolves a (multi-GB) CUDA build.  The environment is rebuilt only when
# pyproject.toml or this Makefile change (stamp files), so a re-run takes seconds.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH  := torch==2.13.0

.PHONY: checkup test lint typecheck pytest browser clean bench

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.stamp-base: pyproject.toml Makefile | $(VENV)/bin/python
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.stamp-dev: pyproject.toml Makefile $(VENV)/.stamp-base
	$(PIP) install --quiet $(TORCH) -e '.[dev]'
	touch $@

checkup: $(VENV)/.stamp-base
	$(VENV)/bin/nndoctor checkup

# The headline comparisons against the peers (alibi-detect, evidently, wandb-style hooks,
# set_detect_anomaly, Cockpit), interleaved rounds; writes benchmarks/headline.md (+ .json) and
# quotes its summary in benchmarks/README.md. The peers' venvs (benchmarks/.venv-*) are built
# when missing. `make bench ONLY=monitor,cockpit ROUNDS=5`, `make bench QUICK=1` (smoke test),
# `make bench ONLY=features FEATURE_ROWS=89000` (a smaller table than the headline 356,000).
ROUNDS ?= 3
ONLY   ?= mmd,features,monitor,cockpit
bench: $(VENV)/.stamp-base
	PYTHONPATH=src $(PY) benchmarks/headline.py --rounds $(ROUNDS) --only $(ONLY) $(if $(QUICK),--quick) \
	  $(if $(FEATURE_ROWS),--feature-rows $(FEATURE_ROWS))

# Debian's chromium for the report's browser tests (tests/report/test_report_browser.py), installed
# only when missing: as root directly, otherwise through passwordless sudo. The tests fail with a
# clear message when it cannot be installed (they are never skipped).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the report's browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  ($$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	     --no-install-recommends chromium fonts-liberation >/dev/null) \
	  || echo "chromium could not be installed; the browser tests will fail"; }

lint: $(VENV)/.stamp-dev
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/lint-imports  # the layer contracts in pyproject.toml ([tool.importlinter])

typecheck: $(VENV)/.stamp-dev
	$(VENV)/bin/mypy

pytest: $(VENV)/.stamp-dev browser
	$(VENV)/bin/pytest -q -n 2 --dist loadgroup

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache checkup-report
