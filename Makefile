# One entry point for people and CI. Every target sets up .venv by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1

.PHONY: setup demo test compare evaluate bench onnx models models-ur5e clean

setup: $(STAMP)

# COLCON_IGNORE keeps `colcon build --base-paths .` from scanning the venv.
$(STAMP): requirements.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	touch $(VENV)/COLCON_IGNORE
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

## The main job: the closed-loop demo over ROS 2 (arm_sim and invdyn_policy as separate processes).
demo: $(STAMP)
	$(BIN)/demo

data/demos.npz: $(STAMP)
	$(BIN)/collect --output data/demos.npz --episodes 400 --seed 0

## The four inverse dynamics variants on the same demonstrations (table, CSV, PNG).
compare: data/demos.npz
	$(BIN)/compare --data data/demos.npz --output_dir outputs/compare --steps 3000

## Closed loop on the simulated arm and the speed benchmark, with the committed models.
evaluate: $(STAMP)
	$(BIN)/evaluate --episodes 50 --output_dir outputs/evaluate
bench: $(STAMP)
	$(BIN)/bench

## The ONNX exports of the committed models (committed too; the ONNX Runtime runtime reads them).
onnx: $(STAMP)
	$(BIN)/export_onnx --checkpoints models/invdyn_enhanced_final.pth models/planner_final.pth \
		models/ur5e/invdyn_enhanced_final.pth models/ur5e/planner_final.pth

## Reproduce the committed default models in models/, and their ONNX exports.
models: data/demos.npz
	OMP_NUM_THREADS=1 $(BIN)/trainer --data data/demos.npz --model_type planner --output_dir outputs/models \
		--steps 5000 --batch_size 256 --lr 1e-3 --no-progress
	OMP_NUM_THREADS=1 $(BIN)/trainer --data data/demos.npz --model_type enhanced --output_dir outputs/models \
		--steps 20000 --batch_size 256 --lr 3e-4 --hidden_dim 256 --num_layers 2 --gru_hidden_dim 64 --no-progress
	cp outputs/models/planner_final.pth outputs/models/invdyn_enhanced_final.pth models/
	$(MAKE) onnx

data/ur5e.npz: $(STAMP)
	$(BIN)/collect --robot ur5e --output data/ur5e.npz --episodes 400 --seed 0

## The same recipe for the second robot, the 6-joint position-controlled UR5e, into models/ur5e/.
models-ur5e: data/ur5e.npz
	OMP_NUM_THREADS=1 $(BIN)/trainer --data data/ur5e.npz --model_type planner --output_dir outputs/models_ur5e \
		--steps 5000 --batch_size 256 --lr 1e-3 --no-progress
	OMP_NUM_THREADS=1 $(BIN)/trainer --data data/ur5e.npz --model_type enhanced --output_dir outputs/models_ur5e \
		--steps 20000 --batch_size 256 --lr 3e-4 --hidden_dim 256 --num_layers 2 --gru_hidden_dim 64 --no-progress
	mkdir -p models/ur5e
	cp outputs/models_ur5e/planner_final.pth outputs/models_ur5e/invdyn_enhanced_final.pth models/ur5e/
	$(MAKE) onnx

## The test suite (what CI runs). Two workers: most tests wait on child processes and DDS, so two at a
## time keep both cores busy (about 9 min instead of 14.5 on a 2-core machine); then the recordings, alone.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "not alone"
	$(BIN)/python -m pytest -q -m alone

clean:
	rm -rf $(VENV) build install log outputs data *.egg-info
