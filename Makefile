# Two commands for a new machine: `make demo` and `make test`. Both build .venv on their own.
# Day to day: `make test-fast` (the in-process tests, under a minute on 2 cores).
# TORCH=cpu (default) installs torch==2.13.0 for the CPU; TORCH=cuda installs the CUDA build
# (set TORCH_INDEX to your PyTorch wheel index if pip's default one serves the wrong build).
PYTHON ?= python3.11
VENV ?= .venv
TORCH ?= cpu
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(TORCH)

.PHONY: venv demo test test-fast lint format package bench clean

venv: $(STAMP)

$(STAMP): requirements.lock backend/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) \
		$(if $(filter cuda,$(TORCH)),--no-cache-dir) torch==$(TORCH_VERSION)
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e backend
	rm -f $(VENV)/.installed-*
	touch $@

demo: venv
	$(PY) scripts/demo.py

package: venv
	$(PY) scripts/package.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Everything (CI runs this through .ci/run): bpy, process-spawning and slow tests included.
test: venv lint
	$(VENV)/bin/python -m pytest -q --durations=15 tests

# No Blender, no spawned process or server, nothing slow.
test-fast: venv
	$(VENV)/bin/python -m pytest -q -m "not slow and not blender and not process" tests

bench: venv
	$(PY) bench/prepare.py
	$(PY) bench/train_throughput.py
	$(PY) bench/extract.py
	$(PY) bench/fidelity.py

clean:
	rm -rf $(VENV) out build dist
