# Two entry points for a fresh machine with Python 3.11+, Java 17+ and Maven:
#   make demo   install everything, then run the whole system on the bundled sample
#   make test   install everything, then run the test suite (it starts its own broker)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test unit-test bench clean

install: $(VENV)/.installed
	@$(BIN)/clinops broker install

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

demo: install
	$(BIN)/clinops demo

test: install
	$(BIN)/pytest

unit-test: install
	$(BIN)/pytest -m "not integration"

bench: install
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf $(VENV) var
