# liqlab: two commands. `make demo` and `make test` both set up .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.liqlab-installed
SAMPLE := data/sample
SAMPLE_ETH := data/sample-eth

.PHONY: demo test setup browser sample bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Debian's chromium + chromedriver for the browser tests (installed once, as root or via sudo).
browser:
	@bash .ci/install-browser

# The embedded sample markets: simulated on demand (deterministic, seed 0), never downloaded, labelled
# synthetic. data/sample is BTC (the default of every notebook); data/sample-eth is the ETH preset.
sample: $(STAMP)
	$(PY) -m liqlab simulate --days 30 --seed 0 --venues binanceusdm,bybit,okx --out $(SAMPLE) --reuse
	$(PY) -m liqlab simulate --days 30 --seed 0 --venues binanceusdm,bybit,okx --symbols ETH --out $(SAMPLE_ETH) --reuse

demo: sample
	$(PY) -m liqlab demo --dataset $(SAMPLE) --dataset $(SAMPLE_ETH) --reports reports

test: sample browser
	$(PY) -m pytest -q tests notebooks --nbval-lax -p no:cacheprovider

bench: $(STAMP)
	$(PY) -m liqlab bench

clean:
	rm -rf reports $(SAMPLE) $(SAMPLE_ETH)
