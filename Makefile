# The two README commands: `make demo` (main job on the demo data) and
# `make test`; `make lint` checks the tree (.ci/run runs it too).
VENV ?= .venv
PY := $(VENV)/bin/python
# setuptools<82 (needed for pkg_resources) warns on every import of it.
export PYTHONWARNINGS ?= ignore:pkg_resources is deprecated as an API:UserWarning

LINT_PATHS := mmohem tools tests configs setup.py

.PHONY: env demo test lint

env:
	@bash tools/setup_env.sh

# The demo's configs train 800 iterations (the schedule the baselines were
# tuned at); `make demo` runs every arm at 500 to stay within 15 minutes on
# a 2-core CPU (README: the three-seed table at 800).
DEMO_ITERS ?= 500
demo: env
	$(PY) tools/benchmark.py --demo --iters $(DEMO_ITERS)

# pytest exits 5 when it collects no test: that is a failure here.
test: env
	@$(PY) -m pytest --import-mode=importlib -q tests $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

# flake8, isort, yapf and codespell as setup.cfg configures them; each
# fails on what it finds (yapf and isort show the diff to apply).
lint: env
	$(PY) -m flake8 $(LINT_PATHS)
	$(PY) -m isort --check-only --diff $(LINT_PATHS)
	$(PY) -m yapf --diff --recursive $(LINT_PATHS)
	$(VENV)/bin/codespell $(LINT_PATHS) docs README.md Makefile
