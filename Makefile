# Two entry points (README): `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export TIERWISE_HOME ?= $(CURDIR)/.tierwise
DEMO_DATA := $(TIERWISE_HOME)/demo-data
DEMO_CUSTOMERS ?= 20000
DEMO_AS_OF := 2026-06-30
KEY_FILE := $(TIERWISE_HOME)/api-key
ADMIN_KEY_FILE := $(TIERWISE_HOME)/admin-key
PORT ?= 3000

.PHONY: install demo test lint format bench clean

install: $(VENV)/.installed

# The lock pins every package; the project itself installs editable without deps.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "uv==0.13.9"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

# The main job on embedded defaults: demo data -> validate -> train -> promote -> score (and
# the online store) -> monitor; then the service, in the foreground, with a request to paste.
demo: install
	$(BIN)/tierwise demo-data --out $(DEMO_DATA) --customers $(DEMO_CUSTOMERS)
	$(BIN)/tierwise validate --data $(DEMO_DATA)
	$(BIN)/tierwise train --data $(DEMO_DATA)
	$(BIN)/tierwise promote
	$(BIN)/tierwise score --data $(DEMO_DATA) --as-of $(DEMO_AS_OF) --out $(TIERWISE_HOME)/scores
	$(BIN)/tierwise monitor --data $(DEMO_DATA) --as-of $(DEMO_AS_OF) --out $(TIERWISE_HOME)/report.html \
		|| echo "(monitor raised alerts: see the top of the report)"
	@test -s $(KEY_FILE) || (umask 077 && $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(24))" > $(KEY_FILE))
	@test -s $(ADMIN_KEY_FILE) || (umask 077 && $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(24))" > $(ADMIN_KEY_FILE))
	@echo
	@echo "Monitoring report: $(TIERWISE_HOME)/report.html   Notebooks: notebooks/*.py (jupytext; open with jupyter)"
	@echo "MLflow UI:         $(BIN)/mlflow ui --backend-store-uri sqlite:///$(TIERWISE_HOME)/mlflow.db"
	@echo "API key:           $$(cat $(KEY_FILE))   (in $(KEY_FILE); reload and /metrics: $(ADMIN_KEY_FILE))"
	@c=$$($(BIN)/python -c "import pandas as pd; s = pd.read_parquet('$(TIERWISE_HOME)/scores'); \
		print(s.sort_values(['churn_probability', 'customer_id']).customer_id.iloc[-1])"); \
	echo "Once it is ready, try (the riskiest demo customer):"; \
	echo "  curl -s -X POST http://127.0.0.1:$(PORT)/v1/suggestions -H 'Authorization: Bearer $$(cat $(KEY_FILE))' -H 'Content-Type: application/json' -d '{\"customer_id\": \"$$c\", \"context\": {\"channel\": \"phone\", \"agent_id\": \"a-1\"}}'"
	TIERWISE_API_KEYS=$$(cat $(KEY_FILE)) TIERWISE_ADMIN_KEYS=$$(cat $(ADMIN_KEY_FILE)) $(BIN)/tierwise serve --port $(PORT)

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/demo_data.py

clean:
	rm -rf $(VENV) $(TIERWISE_HOME) .pytest_cache .ruff_cache
