# Two commands on a fresh clone: `make run` (the main job on the embedded DuckDB) and `make test`.
# Everything else is installed by the targets below: a virtual environment, uv, and the pinned lock (compiled to
# bytecode once at install, so the many Python processes of a run and of the tests do not each recompile imports).
VENV ?= .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
# Two pytest workers, one test module each (module fixtures build warehouses and start servers once per module).
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: install browser run test lint format bench clean lock

install: $(VENV)/.installed browser

# Headless Chromium and its driver (Debian packages) for the HTML report's browser test. Installed when missing;
# needs root or passwordless sudo, as on CI and in the dev container.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver; \
	fi

$(VENV)/.installed: pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet uv==$(UV_VERSION)
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -r requirements.lock
	$(VENV)/bin/uv pip install --quiet --python $(PY) --no-deps -e .
	touch $@

# The main job: the whole pipeline (land the initial batch once, load, raw gate, dbt build, snapshots, marts gate,
# dbt docs, publish) on the embedded DuckDB through Prefect (a temporary local server unless PREFECT_API_URL is set).
run: install
	$(VENV)/bin/hospital run

# Prefect's ephemeral API (a task called outside a flow) gets 20 s to start by default: too short on a busy 2-core runner.
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=180 $(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) benchmarks/generate_bench.py --workers 2 --repeat 5
	$(PY) benchmarks/dbt_bench.py
	$(PY) benchmarks/gx_bench.py
	$(PY) benchmarks/run_bench.py

# Re-pin after changing dependencies in pyproject.toml.
lock: install
	$(VENV)/bin/uv pip compile --python-version 3.11 --extra dev pyproject.toml -o requirements.lock --no-header

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
