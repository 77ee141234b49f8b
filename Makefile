# Fresh machine (Debian, Python 3.11, Node 20, root): `make serve` or `make test`.
PY      ?= 3.11
VENV    := .venv
PYTHON  := $(VENV)/bin/python
UV      := python3 -m uv
WEB     := client/web

.PHONY: setup venv web chromium serve test test-aiohttp-latest bench

venv:
	$(UV) --version >/dev/null 2>&1 || python3 -m pip install -q --root-user-action=ignore uv
	$(UV) venv -q --allow-existing $(VENV) -p $(PY)
	$(UV) pip install -q -p $(PYTHON) -e ".[test]"
	# Byte-compile the venv: with PYTHONDONTWRITEBYTECODE=1 every run would compile from source.
	$(PYTHON) -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1 || true

web:
	npm --prefix $(WEB) ci --no-audit --no-fund --loglevel=error
	npm --prefix $(WEB) run build --silent

chromium:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

setup: venv web

# The server on the embedded default: local Ray, SQLite under ./data. Extra flags: ARGS="--port 9000".
serve: setup
	$(VENV)/bin/starhold serve $(ARGS)

# The whole test suite (Python: unit, gateway, Ray, browser; JS: node:test units).
test: setup chromium
	$(PYTHON) -m pytest -q --durations=25 $(ARGS)
	npm --prefix $(WEB) test --silent

# starhold.wsdirect against the newest aiohttp on PyPI: a throwaway venv (removed after) with
# the project and the newest aiohttp, then the wsdirect and gateway tests there. The first line
# says which aiohttp ran and whether wsdirect's self-check passed (direct path) or not (public
# path, with the tests of the direct path skipped). Not part of `make test`: ~3 min, mostly install.
WS_TESTS := tests/test_wsdirect.py tests/test_wsdirect_fallback.py tests/test_wsinput.py tests/test_gateway.py tests/test_limits.py tests/test_fuzz.py
test-aiohttp-latest:
	$(UV) --version >/dev/null 2>&1 || python3 -m pip install -q --root-user-action=ignore uv
	set -e; d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; \
	$(UV) venv -q $$d/venv -p $(PY); \
	$(UV) pip install -q -p $$d/venv/bin/python --upgrade-package aiohttp -e ".[test]"; \
	$$d/venv/bin/python -c "import aiohttp, starhold.wsdirect as w; print('aiohttp', aiohttp.__version__, \
	  '(tested:', w.TESTED_AIOHTTP + ')', 'wsdirect:', 'public path: ' + '; '.join(w.PROBLEMS) if w.PROBLEMS else 'direct path', \
	  '- frame reader:', 'on' if w.frame_reader_enabled() else 'off: ' + '; '.join(w.FRAME_READER_PROBLEMS))"; \
	$$d/venv/bin/python -m pytest -q -p no:cacheprovider -rs $(WS_TESTS) $(ARGS)

bench: setup
	$(PYTHON) benchmarks/join_latency.py
