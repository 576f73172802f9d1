# Two commands on a fresh machine: `make run` and `make test`.
# The Python comes from pyenv via .python-version (3.13); everything else is
# installed into .venv from the pinned requirements.

VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test install browser migrate demo worker check lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py seed_demo

# Serves the embedded default (SQLite + in-memory channel layer) with daphne,
# with the background worker beside it; Ctrl-C stops both.
run: demo
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@$(BIN)/python manage.py seed_demo --urls --host $(HOST) --port $(PORT)
	@trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py queue_worker & worker=$$!; \
	$(BIN)/daphne -b $(HOST) -p $(PORT) config.asgi:application

worker: install
	$(BIN)/python manage.py queue_worker

# Debian's Chromium for the browser tests (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's chromium for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "Could not install chromium: browser tests will be skipped"; \
	  else echo "chromium is not installed: browser tests will be skipped (apt-get install chromium)"; fi; }

test: install browser
	$(BIN)/python manage.py makemigrations --check --dry-run >/dev/null || \
	  { echo "Models changed without a migration: run manage.py makemigrations"; exit 1; }
	$(BIN)/lint-imports --no-cache  # the import contract in .importlinter (layers, no cycles)
	@rm -f test_db.sqlite3 test_db.sqlite3-wal test_db.sqlite3-shm  # stale WAL files of a killed run break SQLite
	$(BIN)/pytest $(PYTEST_ARGS)

check: install
	$(BIN)/python manage.py check

clean:
	rm -rf $(VENV) staticfiles db.sqlite3* test_db.sqlite3*
