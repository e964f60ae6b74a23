# One entry point for people and CI. Every target sets up .venv by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1

.PHONY: setup demo test compare models clean

setup: $(STAMP)

# COLCON_IGNORE keeps `colcon build --base-paths .` from scanning the venv.
$(STAMP): requirements.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	touch $(VENV)/COLCON_IGNORE
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

## The main job: collect demonstrations, train the four variants briefly, print the comparison.
demo: $(STAMP)
	$(BIN)/collect --output data/demos.npz --episodes 200
	$(BIN)/compare --data data/demos.npz --output_dir outputs/compare --steps 1500

## The test suite (what CI runs).
test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build install log outputs data *.egg-info
