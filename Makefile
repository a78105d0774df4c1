# The two commands of the README's quick start:
#   make lab    set up a virtual environment and open the labs in JupyterLab
#   make test   set up the same environment (with test tools) and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlscale-installed

.PHONY: lab test test-fast wheel-check install lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lab: $(STAMP)
	$(BIN)/mlscale-lab start workspace

# A pytest-xdist worker per CPU (at most 4); the labs' runs and gradings go to one worker, one
# at a time, then the browser's renderings of them; the many short tests fill the rest (tests/lab_runs.py).
PARALLEL := -n auto --dist loadgroup --no-loadscope-reorder

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PARALLEL)

# The inner loop: everything but executing whole notebooks, clusters and browsers.
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PARALLEL) -m "not slow"

# The learner's install: the built wheel, no extras, a fresh venv, labs 00 and 04 from elsewhere.
wheel-check: $(STAMP)
	PYTHON=$(BIN)/python ./.ci/wheel-check

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
