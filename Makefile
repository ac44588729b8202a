# Two commands: `make run` (set up, then serve the app with an in-process worker and demo data)
# and `make test` (set up, then run the whole suite). Everything else here is what they call.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test setup vendor browser migrate migration bench lint clean

run: setup
	$(BIN)/coursewright serve

test: setup browser
	$(BIN)/pytest

setup: $(VENV)/.installed static/vendor/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

vendor: static/vendor/.installed

static/vendor/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js
	cp node_modules/@picocss/pico/css/pico.min.css static/vendor/pico.min.css
	touch $@

# Browser tests drive Debian's chromium; install it when the machine lacks it.
browser:
	@command -v chromium >/dev/null 2>&1 || scripts/install-debian-package.sh chromium

migrate: setup
	$(BIN)/coursewright migrate

# New auto migration after changing tables: make migration
migration: setup
	PICCOLO_CONF=app.piccolo_conf $(BIN)/piccolo migrations new coursewright --auto

bench: setup
	@command -v wrk >/dev/null 2>&1 || scripts/install-debian-package.sh wrk
	@for f in bench/*.py; do [ -e "$$f" ] || continue; echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) node_modules static/vendor

lint: setup
	$(BIN)/ruff check app tasks tests bench
