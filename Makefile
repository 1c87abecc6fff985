# make install: .venv with pinned dependencies and the offline default model (quick when nothing changed)
# make run:     install, check and index kb/, then serve the API in development mode on 127.0.0.1:8000
# make test:    install, ruff, then every test (fast suite, real-model slow suite, live-server and browser tests)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run test test-fast clean cluster cluster-down

install: $(STAMP)
	@$(BIN)/assist model install
	@# Debian Chromium + a Chinese font for the sidebar's browser tests (instant when present)
	@bash scripts/install-browser.sh
	@# Debian PostgreSQL and nginx for the loopback cluster (make cluster) and its live test (instant when present)
	@bash scripts/install-services.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: the CPU wheel; an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# A no-change build is quick (cached vectors); serve then runs in development mode on 127.0.0.1:8000.
run: install
	$(BIN)/assist kb check kb
	$(BIN)/assist index build --kb kb
	@echo ""
	@echo "assist API on http://127.0.0.1:8000  (docs: /docs)"
	@echo "  development API key:     X-API-Key: dev-key"
	@echo "  development admin token: Authorization: Bearer dev-admin"
	@echo ""
	$(BIN)/assist serve --dev --host 127.0.0.1 --port 8000

# -m "": every marker (slow, browser, live); `pytest` alone runs the fast suite. ruff first: it takes a second.
test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m ""

test-fast: install
	$(BIN)/python -m pytest -q

# A loopback cluster: PostgreSQL + 3 replicas of `assist serve` + nginx in .assist/cluster, on the index
# ASSIST_INDEX_DIR (default .assist/index: `make run` or `assist index build --kb kb` first).
cluster: install
	@bash scripts/cluster.sh up
	@echo "stop it with: make cluster-down   (status: bash scripts/cluster.sh status)"

cluster-down:
	@bash scripts/cluster.sh down

clean:
	rm -rf $(VENV) .assist .pytest_cache
