# Two commands: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every library and service is its own package; libraries first so services resolve them.
PACKAGES := $(sort $(dir $(wildcard libs/*/pyproject.toml))) $(sort $(dir $(wildcard services/*/pyproject.toml)))
# Client SDKs stand alone (no Argus imports); the Python one with pandas for its to_dataframe() tests.
CLIENTS := ./clients/python[pandas]

# Every variable given to make reaches the stack as an environment variable:
# make run MOCK_RATE=10 MOCK_UNIVERSE=1000, make run DATASOURCE_TYPE=tdx TDX_HOSTS=10.0.0.5:7709
.EXPORT_ALL_VARIABLES:

.PHONY: run test bench lint format install clean browser

install: $(STAMP)

$(STAMP): requirements-dev.txt $(addsuffix pyproject.toml,$(PACKAGES)) clients/python/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt $(addprefix -e ./,$(PACKAGES)) -e '$(CLIENTS)'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python scripts/run_local_stack.py

# The QMT contract test reads the real xtquant wheel's Python files (never its Windows binaries).
XTQUANT_PIN := xtquant==250807.1.2
XTQ := .run/xtquant

$(XTQ)/.unpacked: | $(STAMP)
	@mkdir -p $(XTQ)
	$(BIN)/python -m pip download -q --no-deps $(XTQUANT_PIN) -d $(XTQ)
	$(BIN)/python -m zipfile -e $(XTQ)/xtquant-*.whl $(XTQ)
	@touch $@

# The board's tests drive Debian's Chromium headless (DevTools protocol), with a CJK font for its
# screenshots (分时); installed when missing. apt-get needs root (CI is root); elsewhere this says
# what to run and the board tests skip.
BROWSER_PKGS := chromium fonts-wqy-microhei
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! test -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PKGS) >/dev/null; \
	  else \
	    echo "make: the board tests need 'sudo apt-get install $(BROWSER_PKGS)' (skipped without chromium)"; \
	  fi; \
	fi


# promtool (checks and unit-tests deploy/observability's alert rules) has no PyPI wheel: it comes
# from Debian's prometheus package, unpacked, not installed. Without apt the test says NOT CHECKED.
PROMTOOL := .run/prometheus/usr/bin/promtool

$(PROMTOOL): | $(STAMP)
	@mkdir -p .run/prometheus
	@if command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then \
	  (cd .run/prometheus && { apt-get download -q prometheus || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get download -q prometheus; }; } >/dev/null 2>&1 \
	    && dpkg-deb -x prometheus_*.deb . && rm -f prometheus_*.deb) \
	  || echo "promtool: apt-get download prometheus failed; alert rules get parsed but not unit-tested"; \
	else echo "promtool: no apt-get here; alert rules get parsed but not unit-tested"; fi


# Two pytest workers: most tests wait on processes and sockets (one worker keeps ~1 core of 2 busy),
# and each picks its own ports. TEST_WORKERS=0 runs them in this process, one at a time.
TEST_WORKERS ?= 2
test: $(STAMP) $(XTQ)/.unpacked $(PROMTOOL) browser
	XTQUANT_DIR=$(CURDIR)/$(XTQ) PROMTOOL=$(CURDIR)/$(PROMTOOL) $(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(if $(SCENARIO),--scenario $(SCENARIO),) $(if $(DURATION),--duration $(DURATION),) $(if $(ABLATE),--ablate $(ABLATE),) $(if $(PROFILE),--profile $(PROFILE),)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(wildcard libs/*/src) $(wildcard services/*/src) clients/python/src

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .run logs
