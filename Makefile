# Two entry points (README): `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export TIERWISE_HOME ?= $(CURDIR)/.tierwise
DEMO_DATA := $(TIERWISE_HOME)/demo-data
DEMO_CUSTOMERS ?= 20000

.PHONY: install demo test lint format bench clean

install: $(VENV)/.installed

# The lock pins every package; the project itself installs editable without deps.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "uv==0.13.9"
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

demo: install
	$(BIN)/tierwise demo-data --out $(DEMO_DATA) --customers $(DEMO_CUSTOMERS)
	$(BIN)/tierwise validate --data $(DEMO_DATA)

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/demo_data.py

clean:
	rm -rf $(VENV) $(TIERWISE_HOME) .pytest_cache .ruff_cache
