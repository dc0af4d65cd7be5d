# make demo: virtual boards, showing the system working.  make test: the whole suite.
# Both set up what they need first (a venv with pinned Python packages, the virtual board's npm
# packages) and skip that when it is already done.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.meterlab-installed
NODE_STAMP := boards/virtual/node_modules/.meterlab-installed

.PHONY: setup test demo clean

setup: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): pyproject.toml requirements/constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "meterlab needs Python 3.11 or later"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e '.[test]'
	touch $@

$(NODE_STAMP): boards/virtual/package.json boards/virtual/package-lock.json
	@command -v node >/dev/null || { echo "virtual boards need Node.js 20 or later (node not found)"; exit 1; }
	cd boards/virtual && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: setup
	$(PY) -m pytest

demo: setup
	$(PY) -m meterlab demo

clean:
	rm -rf $(VENV) boards/virtual/node_modules .pytest_cache .hypothesis
