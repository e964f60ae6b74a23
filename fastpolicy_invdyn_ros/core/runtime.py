"""The deployment runtime: the models' forward passes exported to ONNX and run in ONNX Runtime.

For networks this small a PyTorch call is mostly per-operation overhead, which ONNX Runtime does not
pay. ``export_checkpoint`` writes, next to a checkpoint (``export_onnx``):

* an inverse dynamics checkpoint ``X.pth``: ``X.onnx``, the control tick's step (``InvDynTick``: raw
  recent states and N raw next states, the temperature and the standard normal noise in; the raw mean
  action out), so ``temperature`` stays live and a sampled action is checkable against PyTorch;
* a planner checkpoint ``X.pth``: ``X.condition.onnx`` (the condition encoder) and ``X.denoiser.onnx``
  (the U-Net); the DDIM loop stays in ``planner.DiffusionPlanner.sample`` with the diffusers scheduler's
  update (``planner.DdimStep``), run in NumPy on buffers bound to the denoiser (``OnnxPlannerNetworks``).

Each file carries the SHA-256 of its checkpoint (``checkpoint.checkpoint_identity``) in its metadata,
and one made from another checkpoint is refused. Loading (``load_action_step``,
``load_planner_networks``) also runs a probe batch through both runtimes; a difference of
``PARITY_TOLERANCE`` or more falls back to PyTorch. The runtime setting: ``torch``; ``onnxruntime``
(refused without ONNX Runtime or a matching export); ``auto``, ONNX Runtime when both are there, else
PyTorch. What was chosen and why is the returned ``RuntimeChoice``, for the caller to log.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .actions import ActionStep, InvDynTick, TorchActionStep
from .checkpoint import checkpoint_identity, load_invdyn, load_planner, read_checkpoint
from .errors import InputError
from .files import atomic_file
from .invdyn import InvDynamic
from .planner import DdimSchedule, DiffusionPlanner, PlannerNetworks
from .settings import check, setting

RUNTIMES = ("auto", "torch", "onnxruntime")
IDENTITY_KEY = "fastpolicy.checkpoint_sha256"
"""ONNX metadata key of the SHA-256 of the checkpoint an export was made from."""
PARITY_TOLERANCE = 1e-4
"""Largest accepted absolute difference between an export and PyTorch on the probe batch."""
PROBE_SAMPLES = 8
"""Samples of the probe batch (and of the export's example inputs; the sample count stays a dynamic axis)."""
PROBE_SEED = 0
"""Seed of the probe numbers, drawn on the CPU: the same probe on every machine."""
MAX_SAMPLES = 256
"""Largest sample count an export takes (``num_inference_samples``' range)."""


@dataclass
class RuntimeConfig:
    """The ``runtime`` setting: of the node (read-only there), ``evaluate`` and ``ros_bench``."""

    runtime: str = setting("auto", choices=RUNTIMES, read_only=True)
    """What runs the models: onnxruntime (their ONNX exports, made by export_onnx), torch, or auto (ONNX Runtime
    when installed and the exports match the checkpoints, else PyTorch; the log says which and why)."""

    def __post_init__(self) -> None:
        check(self)


class ExportError(InputError):
    """An ONNX export that cannot be used (missing, made from another checkpoint, no ONNX Runtime)."""


class StaleExportError(ExportError):
    """An ONNX export made from another checkpoint than the one next to it."""


@dataclass(frozen=True)
class RuntimeChoice:
    """Which runtime a model runs in, and why."""

    runtime: str
    """torch or onnxruntime."""
    reason: str
    """Why, in one line."""
    fallback: bool = False
    """ONNX Runtime was wanted or found but PyTorch is used (an export that failed its check): a warning."""

    def describe(self, model: str) -> str:
        """The line to log: what runs ``model`` and why."""
        return f"{model} runs in {self.runtime}: {self.reason}"


def export_paths(checkpoint: str | Path) -> dict[str, Path]:
    """The ONNX files of a checkpoint by graph name, next to it (its kind decides which)."""
    path = Path(checkpoint)
    if read_checkpoint(path)["kind"] == "invdyn":
        return {"tick": path.with_suffix(".onnx")}
    return {name: path.with_suffix(f".{name}.onnx") for name in ("condition", "denoiser")}


# ---- the graphs ----------------------------------------------------------------------------------------
class _Condition(nn.Module):
    """The condition encoder with the goal as an input the export can name (absent for a planner without goals)."""

    def __init__(self, planner: DiffusionPlanner) -> None:
        super().__init__()
        self.encoder = planner.condition_encoder

    def forward(self, history: Tensor, goal: Tensor | None = None) -> Tensor:
        return self.encoder(history, goal)


def _probe(shape: tuple[int, ...], generator: torch.Generator, model: nn.Module) -> Tensor:
    """Standard normal numbers drawn on the CPU (the same on every machine), on the model's device."""
    return torch.randn(shape, generator=generator).to(next(model.parameters()).device)


def _tick_inputs(model: InvDynamic, samples: int, generator: torch.Generator) -> dict[str, Tensor]:
    """In-distribution raw states, a temperature above 0 and fixed noise: what the export traces and the
    parity check runs."""
    c, normalizer = model.config, model.normalizer
    def states(count: int) -> Tensor:
        return normalizer.unnormalize_state(_probe((1, count, c.state_dim), generator, model))
    return {"history": states(c.seq_length), "next_states": states(samples),
            "temperature": torch.tensor(0.5, device=normalizer.state_mean.device),
            "noise": _probe((1, samples, c.action_dim), generator, model)}


def _planner_inputs(planner: DiffusionPlanner, samples: int,
                    generator: torch.Generator) -> dict[str, dict[str, Tensor]]:
    """Normalized probe inputs of the condition encoder and of the denoiser, by graph name."""
    c = planner.config
    condition = {"history": _probe((1, c.n_obs_steps, c.state_dim), generator, planner)}
    if c.goal_dim:
        condition["goal"] = _probe((1, c.goal_dim), generator, planner)
    denoiser = {"x": _probe((samples, c.horizon, c.state_dim), generator, planner),
                "timestep": torch.tensor(c.num_train_timesteps // 2, device=condition["history"].device),
                "cond": _probe((samples, c.cond_dim), generator, planner)}
    return {"condition": condition, "denoiser": denoiser}


def _graphs(model: InvDynamic | DiffusionPlanner) -> dict[str, tuple[nn.Module, dict[str, Tensor], dict[str, Any]]]:
    """Per graph name: the module, example inputs by name, and their dynamic axes (the sample or batch count)."""
    generator = torch.Generator().manual_seed(PROBE_SEED)
    if isinstance(model, InvDynamic):
        samples = torch.export.Dim("samples", min=1, max=MAX_SAMPLES)
        return {"tick": (InvDynTick(model), _tick_inputs(model, PROBE_SAMPLES, generator),
                         {"history": {}, "next_states": {1: samples}, "temperature": {}, "noise": {1: samples}})}
    batch = torch.export.Dim("batch", min=1, max=MAX_SAMPLES)
    inputs = _planner_inputs(model, PROBE_SAMPLES, generator)
    return {"condition": (_Condition(model), inputs["condition"], {name: {0: batch} for name in inputs["condition"]}),
            "denoiser": (model.unet, inputs["denoiser"], {"x": {0: batch}, "timestep": {}, "cond": {0: batch}})}


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The dynamo exporter's warnings and log lines say nothing a user of ``export_onnx`` can act on."""
    loggers = [logging.getLogger(name) for name in ("torch", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def export_model(model: InvDynamic | DiffusionPlanner, checkpoint: str | Path) -> list[Path]:
    """Export a loaded model's graphs next to its checkpoint, each stamped with the checkpoint's identity."""
    from .onnx_ops import TRANSLATIONS, film_as_batch_norm  # onnxscript: needed to export, not to run an export

    identity = checkpoint_identity(checkpoint)
    written = []
    graphs = _graphs(model)
    for name, path in export_paths(checkpoint).items():
        module, inputs, axes = graphs[name]
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(module, tuple(inputs.values()), dynamo=True, input_names=list(inputs),
                                        output_names=["output"], dynamic_shapes=tuple(axes[k] for k in inputs),
                                        custom_translation_table=TRANSLATIONS, verbose=False)
        program.model.metadata_props[IDENTITY_KEY] = identity
        program.model.metadata_props["fastpolicy.graph"] = name
        proto = program.model_proto
        film_as_batch_norm(proto)
        with atomic_file(path) as handle:
            handle.write(proto.SerializeToString())
        written.append(path)
    return written


def export_checkpoint(checkpoint: str | Path) -> list[Path]:
    """Load a checkpoint (either kind) on the CPU and export its graphs next to it."""
    kind = read_checkpoint(checkpoint)["kind"]
    model = load_invdyn(checkpoint) if kind == "invdyn" else load_planner(checkpoint)
    return export_model(model, checkpoint)


# ---- sessions ------------------------------------------------------------------------------------------
def onnxruntime_installed() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def providers(device: torch.device) -> list[str]:
    """TensorRT and CUDA first when the models run on a GPU and this ONNX Runtime has them; the CPU last."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider"] if device.type == "cuda" else []
    return [name for name in gpu if name in available] + ["CPUExecutionProvider"]


def open_export(path: Path, identity: str, device: torch.device) -> Any:
    """An ``onnxruntime.InferenceSession`` of an export made from the checkpoint of ``identity``, one intra-op
    thread (the tick and the planner each have a core). Raises ExportError when it cannot be used."""
    if not onnxruntime_installed():
        raise ExportError("ONNX Runtime is not installed (pip install onnxruntime)")
    if not path.is_file():
        raise ExportError(f"{path}: no ONNX export of the checkpoint (export_onnx --checkpoints makes it)")
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: its warnings about provider placement are expected
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=providers(device))
    except Exception as error:  # noqa: BLE001 - ONNX Runtime raises its own exception types for a bad file
        raise ExportError(f"{path}: not a usable ONNX model ({error})") from None
    made_from = session.get_modelmeta().custom_metadata_map.get(IDENTITY_KEY)
    if made_from != identity:
        raise StaleExportError(f"{path}: stale ONNX export, made from another checkpoint (sha256 {made_from} "
                               f"against {identity}); refused: export it again with export_onnx")
    return session


def bind(session: Any, inputs: dict[str, np.ndarray], output: np.ndarray) -> Any:
    """An IO binding of ``session``'s inputs (those it has of ``inputs``) and its output to OrtValues over the
    arrays' own memory: writing into the arrays is the next ``run_with_iobinding``'s input, which writes
    ``output``; no array or ONNX value is made per run."""
    from onnxruntime import OrtValue

    names = {node.name for node in session.get_inputs()}
    binding = session.io_binding()
    for name, array in inputs.items():
        if name in names:
            binding.bind_ortvalue_input(name, OrtValue.ortvalue_from_numpy(array))
    binding.bind_ortvalue_output("output", OrtValue.ortvalue_from_numpy(output))
    return binding


@dataclass
class _BoundArrays:
    """A session's IO binding and the arrays bound to its inputs (by name) and output, for one batch size."""

    binding: Any
    inputs: dict[str, np.ndarray]
    output: np.ndarray

    @classmethod
    def of(cls, session: Any, inputs: dict[str, np.ndarray], output: np.ndarray) -> _BoundArrays:
        return cls(bind(session, inputs, output), inputs, output)


# ---- the tick's inverse dynamics step ------------------------------------------------------------------
class OnnxActionStep:
    """``ActionStep`` in ONNX Runtime: inputs and output live in buffers bound once per sample count (IO
    binding), so a tick copies its states in and runs, without allocating arrays or ONNX values."""

    def __init__(self, session: Any, seq_length: int, state_dim: int, action_dim: int) -> None:
        self._session = session
        self._shape = (seq_length, state_dim, action_dim)
        self._names = {node.name for node in session.get_inputs()}  # a deterministic head has no noise input
        self._bound: dict[int, _BoundArrays] = {}
        self._rng = np.random.default_rng()

    def _bind(self, samples: int) -> _BoundArrays:
        seq_length, state_dim, action_dim = self._shape
        buffers = {"history": np.zeros((1, seq_length, state_dim), np.float32),
                   "next_states": np.zeros((1, samples, state_dim), np.float32),
                   "temperature": np.zeros((), np.float32), "noise": np.zeros((1, samples, action_dim), np.float32)}
        self._bound[samples] = _BoundArrays.of(self._session, buffers, np.zeros((1, action_dim), np.float32))
        return self._bound[samples]

    def __call__(self, history: np.ndarray, next_states: np.ndarray, temperature: float) -> np.ndarray:
        bound = self._bound.get(len(next_states)) or self._bind(len(next_states))
        inputs = bound.inputs
        np.copyto(inputs["history"][0], history)
        np.copyto(inputs["next_states"][0], next_states)
        inputs["temperature"][()] = temperature
        if temperature:
            self._rng.standard_normal(out=inputs["noise"], dtype=np.float32)
        self._session.run_with_iobinding(bound.binding)
        return bound.output[0]

    def run_with_noise(self, inputs: dict[str, Tensor]) -> np.ndarray:
        """The raw (1, A) action for ``InvDynTick``'s inputs as given, noise included (the parity check)."""
        feeds = {name: value.cpu().numpy() for name, value in inputs.items() if name in self._names}
        return self._session.run(None, feeds)[0]


# ---- the planner's networks ----------------------------------------------------------------------------
class OnnxPlannerNetworks:
    """``planner.PlannerNetworks`` in ONNX Runtime, on buffers bound to each graph once per batch size (IO
    binding). A plan's DDIM loop (``denoise_ddim``) runs in NumPy: each step writes the timestep and the sample
    in place, runs, and updates the sample from the bound output (``planner.DdimStep``)."""

    def __init__(self, condition: Any, denoiser: Any) -> None:
        self._condition, self._denoiser = condition, denoiser
        self._cond_dim = condition.get_outputs()[0].shape[-1]
        self._bound: dict[tuple[str, int], _BoundArrays] = {}

    def _buffers(self, graph: str, inputs: dict[str, np.ndarray], output_shape: tuple[int, ...]) -> _BoundArrays:
        """The arrays bound to ``graph`` for the batch of ``inputs`` (bound on first use, shaped like them)."""
        key = (graph, output_shape[0])
        if key not in self._bound:
            session = self._condition if graph == "condition" else self._denoiser
            # C order whatever the inputs' strides (a condition expanded to the samples has a stride of 0).
            buffers = {name: np.zeros(array.shape, array.dtype) for name, array in inputs.items()}
            self._bound[key] = _BoundArrays.of(session, buffers, np.zeros(output_shape, np.float32))
        return self._bound[key]

    def encode_condition(self, history: Tensor, goal: Tensor | None) -> Tensor:
        inputs = {"history": history.cpu().numpy()}
        if goal is not None:
            inputs["goal"] = goal.cpu().numpy()
        bound = self._buffers("condition", inputs, (len(history), self._cond_dim))
        for name, array in inputs.items():
            np.copyto(bound.inputs[name], array)
        self._condition.run_with_iobinding(bound.binding)
        return torch.from_numpy(bound.output.copy()).to(history.device)

    def denoise(self, x: Tensor, timestep: Tensor, cond: Tensor) -> Tensor:
        feeds = {"x": x.cpu().numpy(), "timestep": timestep.cpu().numpy(), "cond": cond.cpu().numpy()}
        return torch.from_numpy(self._denoiser.run(None, feeds)[0]).to(x.device)

    def denoise_ddim(self, noise: Tensor, cond: Tensor, schedule: DdimSchedule, prior: Tensor | None = None) -> Tensor:
        sample = noise.cpu().numpy()
        if prior is not None:
            sample = schedule.add_noise(prior.cpu().numpy(), sample)
        condition = cond.cpu().numpy()
        bound = self._buffers("denoiser", {"x": sample, "timestep": np.zeros((), np.int64), "cond": condition},
                              sample.shape)
        inputs = bound.inputs
        np.copyto(inputs["x"], sample)
        np.copyto(inputs["cond"], condition)
        for step in schedule.steps:
            inputs["timestep"][()] = step.timestep
            self._denoiser.run_with_iobinding(bound.binding)
            previous, original = step(bound.output, inputs["x"])
            np.copyto(inputs["x"], previous)
        return torch.from_numpy(original.copy()).to(noise.device)  # original may be the bound output itself


# ---- choosing ------------------------------------------------------------------------------------------
def _difference(a: np.ndarray | Tensor, b: np.ndarray | Tensor) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def _tick_parity(model: InvDynamic, step: OnnxActionStep) -> float:
    """Largest difference on the probe batch, 1 and 8 samples: at temperature 0.5 with fixed noise, and as the
    tick calls it (bound buffers, temperature 0; which binds the buffers of those sample counts now)."""
    generator = torch.Generator().manual_seed(PROBE_SEED + 1)
    tick = InvDynTick(model)
    differences = []
    for samples in (1, PROBE_SAMPLES):
        inputs = _tick_inputs(model, samples, generator)
        history, next_states = inputs["history"], inputs["next_states"]
        differences += [_difference(tick(**inputs), step.run_with_noise(inputs)),
                        _difference(tick(history, next_states, 0.0)[0],
                                    step(history[0].cpu().numpy(), next_states[0].cpu().numpy(), 0.0))]
    return max(differences)


def _planner_parity(planner: DiffusionPlanner, networks: OnnxPlannerNetworks) -> float:
    generator = torch.Generator().manual_seed(PROBE_SEED + 1)
    inputs = _planner_inputs(planner, PROBE_SAMPLES, generator)
    condition, denoiser = inputs["condition"], inputs["denoiser"]
    goal = condition.get("goal")
    return max(_difference(planner.encode_condition(condition["history"], goal),
                           networks.encode_condition(condition["history"], goal)),
               _difference(planner.denoise(**denoiser), networks.denoise(**denoiser)))


def _choose(runtime: str, checkpoint: str | Path, device: torch.device, make: Callable[[dict[str, Any]], Any],
            parity: Callable[[Any], float]) -> tuple[Any | None, RuntimeChoice]:
    """The ONNX Runtime version of the checkpoint's model (None: PyTorch) and why; ``make`` builds it from the
    sessions by graph name, ``parity`` measures it against PyTorch."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {list(RUNTIMES)}, got {runtime!r}")
    if runtime == "torch":
        return None, RuntimeChoice("torch", "runtime torch requested")
    try:
        identity = checkpoint_identity(checkpoint)
        sessions = {name: open_export(path, identity, device) for name, path in export_paths(checkpoint).items()}
    except ExportError as error:
        if runtime == "onnxruntime":
            raise
        return None, RuntimeChoice("torch", f"auto: {error}", fallback=isinstance(error, StaleExportError))
    candidate = make(sessions)
    with torch.inference_mode():
        difference = parity(candidate)
    first = next(iter(sessions.values()))
    if not difference < PARITY_TOLERANCE:  # also NaN
        return None, RuntimeChoice("torch", f"{runtime}: the ONNX export of {checkpoint} differs from PyTorch by "
                                   f"{difference:.3g} (limit {PARITY_TOLERANCE:g}) on a probe batch: PyTorch is used",
                                   fallback=True)
    return candidate, RuntimeChoice("onnxruntime", f"{runtime}: the ONNX export matches {Path(checkpoint).name} "
                                    f"(identity and probe difference {difference:.1g}); providers "
                                    f"{first.get_providers()}")


def load_action_step(model: InvDynamic, checkpoint: str | Path, runtime: str,
                     device: torch.device | str = "cpu") -> tuple[ActionStep, RuntimeChoice]:
    """The tick's inverse dynamics step of a loaded model in ``runtime``, and why it runs where it does.

    Raises ExportError with ``onnxruntime`` when the runtime or a matching export is missing."""
    config = model.config
    step, choice = _choose(runtime, checkpoint, torch.device(device),
                           lambda sessions: OnnxActionStep(sessions["tick"], config.seq_length, config.state_dim,
                                                           config.action_dim),
                           lambda candidate: _tick_parity(model, candidate))
    return (TorchActionStep(model) if step is None else step), choice


def load_planner_networks(planner: DiffusionPlanner, checkpoint: str | Path, runtime: str,
                          device: torch.device | str = "cpu") -> tuple[PlannerNetworks, RuntimeChoice]:
    """The planner's networks in ``runtime`` (the planner itself for PyTorch), and why."""
    networks, choice = _choose(runtime, checkpoint, torch.device(device),
                               lambda sessions: OnnxPlannerNetworks(sessions["condition"], sessions["denoiser"]),
                               lambda candidate: _planner_parity(planner, candidate))
    return (planner if networks is None else networks), choice
