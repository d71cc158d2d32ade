# Two entry points a new user needs:  `make run` (default study, 2 cores) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= 2

.PHONY: run test lint dryrun-paper report clean seeds-check

$(BIN)/snakemake: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU build from local disk; clusters with GPUs install their CUDA build first (README).
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

run: $(BIN)/snakemake
	$(BIN)/snakemake --cores $(CORES)

test: $(BIN)/snakemake
	$(BIN)/pytest -q

lint: $(BIN)/snakemake
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint

# Do the verdicts survive new seeds? The laptop config under seed offsets 0 and 1000 (offset 0
# reuses a finished `make run`), then results/seed_agreement.{csv,md}: per claim, agree or not.
seeds-check: $(BIN)/snakemake
	$(BIN)/python -m depthlab.seed_robustness --offsets 0 1000 --cores $(CORES)

dryrun-paper: $(BIN)/snakemake
	$(BIN)/snakemake -n --configfile config/paper.yaml

# The report: every figure with its caption by study, the claims scorecard of every study
# on its landing page. Builds whatever it shows first (nothing when `make run` is done).
report: $(BIN)/snakemake
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html

clean:
	rm -rf results .snakemake
