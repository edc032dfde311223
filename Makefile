# Two entry points that work on a fresh machine with only Python 3.10+ and make:
#   make example   set up .venv, install headwater, run examples/hello.py on the embedded defaults
#   make test      set up .venv with the dev extras and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: example test venv dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python
	$(BIN)/python -m pip install -q -e .

dev: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'

example: venv
	cd examples && ../$(BIN)/python hello.py run

test: dev
	$(BIN)/python -m pytest -q

bench: dev
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .headwater examples/.headwater
