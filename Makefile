# Two commands: `make run` (set up, then serve the app with an in-process worker and demo data)
# and `make test` (set up, then run the whole suite). `make stop` stops what a run left behind.
# Everything else here is what they call.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test stop setup pango vendor browser redis poppler migrate migration bench lint clean

run: setup
	$(BIN)/coursewright serve

# The suite runs under coverage, app subprocesses included (settings in pyproject.toml). The total is
# printed even when a test failed; the run fails when a test fails or the total is under fail_under.
# Three pytest-xdist workers on two cores: most of a test's time is spent waiting on the server, worker,
# database or browser it drives (1,159 tests: 20 min with three here, about 25 with two). Each worker is its
# own pytest process with its own database (coursewright_test_<pid>) and live servers on the one embedded
# PostgreSQL (app/embedded.py raises its max_connections to 300 for them).
# --dist loadfile keeps each test module on one worker: its module-scoped world is built once, and tests that
# read what an earlier test of their module wrote see it.
TEST_WORKERS ?= 3
test: setup browser redis poppler
	@$(BIN)/coverage erase
	@$(BIN)/coverage run -m pytest -n $(TEST_WORKERS) --dist loadfile; tests=$$?; \
	  $(BIN)/coverage combine --quiet && $(BIN)/coverage report; coverage=$$?; \
	  if [ $$tests -ne 0 ]; then exit $$tests; fi; exit $$coverage

# Stops what `make run` or `coursewright worker` left running on DATA_DIR (default .data): those
# processes, then the embedded PostgreSQL; and the test suite's server unless a test run still uses it.
# No `setup` prerequisite: stopping must never start an install.
stop:
	@[ ! -x $(BIN)/coursewright ] || $(BIN)/coursewright stop
	@[ ! -x $(BIN)/coursewright ] || DATA_DIR=.data/test $(BIN)/coursewright stop --if-unused

setup: pango $(VENV)/.installed static/vendor/.installed

# WeasyPrint (the PDF export) loads Pango at run time; a fresh Debian machine gets the libraries here
# (checked with dpkg -s, as libraries have no command). Only this target and its `setup` prerequisite are new.
pango:
	@scripts/install-debian-package.sh libpango-1.0-0 libpangoft2-1.0-0

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

vendor: static/vendor/.installed

# --ignore-scripts: no package needs a build step, and swagger-ui-dist's telemetry dependency would
# otherwise run at install time. npm ci also installs the devDependencies: axe-core stays in
# node_modules, where tests/browser/test_accessibility.py reads it (it is never served).
static/vendor/.installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p static/vendor/swagger-ui
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js
	cp node_modules/@picocss/pico/css/pico.min.css static/vendor/pico.min.css
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css \
		static/vendor/swagger-ui/
	touch $@

# Browser tests drive Debian's chromium; install it when the machine lacks it.
browser:
	@command -v chromium >/dev/null 2>&1 || scripts/install-debian-package.sh chromium

# tests/exports/test_pdf.py renders the exported PDF's first pages to PNG with pdftoppm (poppler-utils).
poppler:
	@command -v pdftoppm >/dev/null 2>&1 || scripts/install-debian-package.sh poppler-utils

# The Redis-broker tests start their own Debian redis-server on a free port.
redis:
	@command -v redis-server >/dev/null 2>&1 || scripts/install-debian-package.sh redis-server

migrate: setup
	$(BIN)/coursewright migrate

# New auto migration after changing tables: make migration
migration: setup
	PICCOLO_CONF=app.piccolo_conf $(BIN)/piccolo migrations new coursewright --auto

bench: setup
	@command -v wrk >/dev/null 2>&1 || scripts/install-debian-package.sh wrk
	@for f in bench/*.py; do [ -e "$$f" ] || continue; echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) node_modules static/vendor .coverage .coverage.* htmlcov

lint: setup
	$(BIN)/ruff check app tasks tests bench
