# The two README commands: `make demo` (main job on the demo data) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# setuptools<82 (needed for pkg_resources) warns on every import of it.
export PYTHONWARNINGS ?= ignore:pkg_resources is deprecated as an API:UserWarning

.PHONY: env demo test

env:
	@bash tools/setup_env.sh

demo: env
	$(PY) tools/benchmark.py --demo

# pytest exits 5 when it collects no test: that is a failure here.
test: env
	@$(PY) -m pytest --import-mode=importlib -q tests $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc
