# The few commands a newcomer needs. Each installs what it needs first (once).
VENV ?= .venv
STAMP := $(VENV)/.amc-installed

.PHONY: install demo test test-slow lint typecheck bench clean

install: $(STAMP)

$(STAMP): pyproject.toml .ci/install
	bash .ci/install $(VENV)
	touch $(STAMP)

demo: install  ## a real AMC search on built-in defaults (resnet20 / Fashion-MNIST, 50% latency budget)
	$(VENV)/bin/amc demo

test: install  ## the default suite: fast unit tests on tiny models
	$(VENV)/bin/pytest -q

test-slow: install  ## real runs on real data (minutes to hours)
	$(VENV)/bin/pytest -q -m slow

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
