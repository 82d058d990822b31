# The README's commands: `make book` builds the whole HTML book, `make test` runs the fast tests,
# `make test-slow` the slow ones (chapters at the tiny profile, torchrun, trainings).
# They create the virtual environment .venv on first use (and again when pyproject.toml changes).
#
# TORCH=cpu installs PyTorch's CPU build first (a laptop without a GPU: about 1 GB instead of several);
# the default takes the ordinary PyPI build.
PYTHON ?= python3
PROFILE ?= ci
TORCH ?=
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book test test-slow test-all clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
ifeq ($(TORCH),cpu)
	$(BIN)/python -m pip install --index-url $(TORCH_CPU_INDEX) "torch>=2.14,<2.15" "torchvision>=0.29,<0.30"
else ifneq ($(TORCH),)
	$(error TORCH must be empty (PyPI's build) or cpu (PyTorch's CPU build), got '$(TORCH)')
endif
	$(BIN)/python -m pip install -e ".[book,test]"
	$(BIN)/python -c "import open_clip, torch, torchvision; print('torch', torch.__version__, 'open_clip', open_clip.__version__)"
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/python -m mdsgap.book --profile $(PROFILE)

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not browser"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow and not browser"

test-all: test test-slow

clean:
	rm -rf _build book/executed .cache
