# The two commands of the README: `make book` builds the whole HTML book, `make test` runs the tests.
# Both create the virtual environment .venv on first use (and again when pyproject.toml changes).
PYTHON ?= python3
PROFILE ?= ci
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book test clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[book,test]"
	$(BIN)/python -c "import open_clip, torch, torchvision; print('torch', torch.__version__, 'open_clip', open_clip.__version__)"
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/python -m mdsgap.book --profile $(PROFILE)

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf _build book/executed .cache
