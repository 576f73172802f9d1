# Two commands on a fresh machine: `make run` and `make test`.
# The Python comes from pyenv via .python-version (3.13); everything else is
# installed into .venv from the pinned requirements.

VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
LISTEN_BACKLOG ?= 1024
NEEDED_PYTHON := 3.13
# Test processes (pytest-xdist): one per core; each test file runs whole in one of
# them (module-scoped servers and browsers are started once). TEST_WORKERS=0: one process.
TEST_WORKERS ?= auto
# Stamps of what `make run` already did for this checkout (see `run` below).
RUN    := $(VENV)/run
DB     := db.sqlite3

.PHONY: run test install browser migrate demo worker check lint clean translations messages

# Python 3.13 or a plain sentence saying what to install (not a wall of pip errors).
define check_python
	@v=$$($(1) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); \
	if [ "$$v" != "$(NEEDED_PYTHON)" ]; then \
	  echo "This project needs Python $(NEEDED_PYTHON), but $(1) is $${v:-not installed}."; \
	  echo "Install it, e.g. 'pyenv install $(NEEDED_PYTHON)' (.python-version selects it) or"; \
	  echo "'apt-get install python$(NEEDED_PYTHON) python$(NEEDED_PYTHON)-venv', then run make again"; \
	  echo "(or point at it: make PYTHON=/path/to/python$(NEEDED_PYTHON) ...; 'make clean' drops an old .venv)."; \
	  exit 1; \
	fi
endef

$(BIN)/python:
	$(call check_python,$(PYTHON))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(call check_python,$(BIN)/python)
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py seed_demo

# `make run` on an unchanged checkout goes straight to serving: migrating,
# seeding and collecting static files happen again only when their inputs
# changed (stamps under $(RUN)); a deleted database is set up again.
ifeq ($(wildcard $(DB)),)
$(shell rm -f $(RUN)/db)
endif

$(RUN)/db: $(VENV)/.installed $(wildcard queueapp/migrations/*.py queueapp/*/migrations/*.py) \
           queueapp/management/commands/seed_demo.py queueapp/management/demo_history.py
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@mkdir -p $(RUN) && touch $@

$(RUN)/static: $(VENV)/.installed $(shell find static -type f 2>/dev/null)
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@mkdir -p $(RUN) && touch $@

# The .mo catalogs Django reads, built from the committed .po files with Babel
# (no GNU gettext needed); only out-of-date ones are rebuilt.
translations: install
	$(BIN)/python manage.py compile_translations

# After adding or changing a user-visible string: the new messages appear in
# every locale/*/LC_MESSAGES/*.po with an empty msgstr to translate (needs GNU gettext).
messages: install
	$(BIN)/python manage.py update_messages

$(RUN)/urls-$(HOST)-$(PORT).txt: $(RUN)/db
	@$(BIN)/python manage.py seed_demo --urls --host $(HOST) --port $(PORT) > $@

# Serves the embedded default (SQLite + in-memory channel layer) with daphne,
# with the background worker beside it (niced: daphne starts first on a busy
# machine); Ctrl-C stops both. The listen queue holds LISTEN_BACKLOG connections
# (Twisted's default is 50: a burst of reconnecting phones beyond it is dropped,
# and, as far as we read it, retried by TCP seconds later); daphne takes at most LIVE_ACCEPTS_PER_TURN
# of them per loop turn (config/settings.py). docs/benchmarks.md, session 6.
run: $(RUN)/db $(RUN)/static $(RUN)/urls-$(HOST)-$(PORT).txt translations
	@cat $(RUN)/urls-$(HOST)-$(PORT).txt
	@trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	nice -n 10 $(BIN)/python manage.py queue_worker & worker=$$!; \
	$(BIN)/daphne -e tcp:port=$(PORT):interface=$(HOST):backlog=$(LISTEN_BACKLOG) config.asgi:application

worker: install
	$(BIN)/python manage.py queue_worker

# A Debian package the tests use, installed when we may (root with apt-get),
# else a sentence saying which tests will be skipped: $(1) command, $(2) package, $(3) what needs it.
define debian_tool
	@command -v $(1) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's $(2) for $(3)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null) \
	      || echo "Could not install $(2): $(3) will be skipped"; \
	  else echo "$(2) is not installed: $(3) will be skipped (apt-get install $(2))"; fi; }
endef

# Debian's Chromium for the browser tests (never a downloaded browser build),
# GNU gettext's xgettext (tests/test_translations.py extracts the code's messages),
# and nginx, the proxy docker-compose puts in front of daphne (tests/test_proxy_split.py).
browser:
	$(call debian_tool,chromium,chromium,the browser tests)
	$(call debian_tool,xgettext,gettext,the message extraction test)
	$(call debian_tool,nginx,nginx,the tests through the proxy)

test: install browser translations
	$(BIN)/python manage.py makemigrations --check --dry-run >/dev/null || \
	  { echo "Models changed without a migration: run manage.py makemigrations"; exit 1; }
	$(BIN)/lint-imports --no-cache  # the import contract in .importlinter (layers, no cycles)
	@rm -f test_db.sqlite3*  # stale WAL files of a killed run break SQLite (one database per worker: _gw0, ...)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

check: install
	$(BIN)/python manage.py check

clean:
	rm -rf $(VENV) staticfiles db.sqlite3* test_db.sqlite3*
