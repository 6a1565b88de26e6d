# retroportal — two commands set up a fresh machine:
#   make demo   the site on http://127.0.0.1:8000 with a demo account, a worker and a default model
#   make test   the test suite against real PostgreSQL and Redis (DATABASE_URL / REDIS_URL or 127.0.0.1 defaults)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE ?= 1

.PHONY: install install-dev browser demo serve test test-fast bench bench-gallery loadtest clean

$(VENV)/.installed: requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch and torchvision first, in their own call, pinned: nothing may let pip look for a newer torch.
	$(PIP) install -q -c constraints.txt torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -c constraints.txt -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PIP) install -q -c constraints.txt -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# Debian's Chromium for the Playwright tests (never `playwright install`: it downloads a browser).
browser:
	@command -v chromium >/dev/null || { \
	  echo "Installing Debian's chromium for browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

demo: install
	$(PY) scripts/demo.py

# Production serving: gunicorn on 127.0.0.1:8000 (BIND=host:port, WEB_CONCURRENCY workers, default 2) with
# whitenoise static files. Needs SECRET_KEY, DATABASE_URL, REDIS_URL (and ALLOWED_HOSTS) in the environment;
# DEBUG stays off. Put a TLS proxy (nginx) in front: it must set X-Forwarded-Proto.
BIND ?= 127.0.0.1:8000
WEB_CONCURRENCY ?= 2
serve: install
	$(PY) manage.py check --deploy --fail-level WARNING
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput
	$(VENV)/bin/gunicorn retroportal.wsgi:application --bind $(BIND) --workers $(WEB_CONCURRENCY) \
	  --threads $${WEB_THREADS:-4} --timeout 60 --graceful-timeout 20 --access-logfile -

# lint-imports: the layers in .importlinter (engines import no Django/RQ/Redis, generator never imports training).
# TEST_WORKERS processes (pytest-xdist; default one per core: getconf, as nproc obeys OMP_NUM_THREADS; 1 = no
# xdist), each with its own test database, Redis db and MEDIA_ROOT (retroportal/settings_test.py).
TEST_WORKERS ?= $(shell getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
test: install-dev browser
	$(VENV)/bin/lint-imports
	$(PY) -m pytest $(if $(filter-out 1,$(TEST_WORKERS)),-n $(TEST_WORKERS)) $(PYTEST_ARGS)

test-fast: install-dev
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -m "not browser and not slow" $(PYTEST_ARGS)

bench: install-dev
	$(PY) benchmarks/worker_vs_direct.py

# Gallery pages at 100,000 pictures: seeds its own database once (BENCH_GALLERY_DATABASE_URL, default
# .../retroportal_gallery_bench), then Explore search / gallery / profile p95s, queries per page, EXPLAIN.
bench-gallery: install-dev
	$(PY) benchmarks/gallery.py $(BENCH_ARGS)

loadtest: install-dev
	$(PY) benchmarks/loadtest.py

clean:
	rm -rf $(VENV) media staticfiles var demo test-artifacts
