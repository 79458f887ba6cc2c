# Everything installs into a local virtual environment (.venv); nothing global.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The environment is brought to the newest releases once a day (the stamps carry the date),
# so `make test` tests what a fresh machine, and CI, installs today; nothing is pinned.
TODAY := $(shell date -u +%Y-%m-%d)
STAMP := $(VENV)/.installed-$(TODAY)
INSTALL := $(BIN)/python -m pip install --quiet --upgrade --upgrade-strategy eager

.PHONY: demo curves experiment test lint format bench reproduce clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	rm -f $(VENV)/.installed* $(VENV)/.demo-installed* $(VENV)/.bench-installed*
	$(INSTALL) -e ".[test]"
	touch $(STAMP)

$(VENV)/.demo-installed-$(TODAY): $(STAMP)
	$(INSTALL) -e ".[test,demo]"
	touch $@

$(VENV)/.bench-installed-$(TODAY): $(STAMP)
	$(INSTALL) -e ".[test,bench]"
	touch $@

## demo: set up, then go from a CSV (Palmer penguins) to a ranked labeling queue
demo: $(VENV)/.demo-installed-$(TODAY)
	$(BIN)/python examples/demo.py --serve

## curves: simulate active learning on digits and print each strategy's learning curve
curves: $(STAMP)
	$(BIN)/python examples/learning_curves.py

## experiment: compare four strategies on digits over 20 seeds (resumable), then write the report
EXPERIMENT_DIR := bench/.cache/experiment-digits
experiment: $(STAMP)
	if [ -d $(EXPERIMENT_DIR) ]; then $(BIN)/active-labeling experiment resume $(EXPERIMENT_DIR); \
	else $(BIN)/active-labeling experiment run examples/experiments/digits.toml --out $(EXPERIMENT_DIR); fi
	$(BIN)/active-labeling experiment report $(EXPERIMENT_DIR)

## test: set up, then lint and run the whole test pass
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: set up with the peers, then run every benchmark and rewrite docs/benchmarks.md
bench: $(VENV)/.bench-installed-$(TODAY)
	$(BIN)/python bench/run_all.py

## reproduce: rerun the tutorial's Table 1 (120 runs, cached in bench/.cache/table1) and rewrite docs/reproduction.md
reproduce: $(STAMP)
	$(BIN)/python bench/seed_table1.py --jobs 2

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info python-lib/*.egg-info
