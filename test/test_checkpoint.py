"""Checkpoints on disk: round trip, refusal of mismatches and pickles, atomic saves, conversion."""
import os
import signal
import struct
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
import torch

from fastpolicy_invdyn_ros.core.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    load_enhanced_invdyn_model,
    load_invdyn,
    payload_digest,
    read_checkpoint,
    save_checkpoint,
)
from fastpolicy_invdyn_ros.core.conversion import convert_to_enhanced_invdyn
from fastpolicy_invdyn_ros.core.data import Episodes
from fastpolicy_invdyn_ros.core.invdyn import InvDynConfig, build_invdyn
from fastpolicy_invdyn_ros.core.normalization import Normalizer

S, A = 6, 3


@pytest.fixture
def normalizer() -> Normalizer:
    rng = np.random.default_rng(0)
    episodes = Episodes(states=rng.normal(size=(50, S)) * 3 + 1, actions=rng.normal(size=(50, A)),
                        goals=rng.normal(size=(50, A)), episode_ends=[25, 50], dt=0.01,
                        joint_names=["a", "b", "c"])
    return Normalizer.fit(episodes)


def save_model(path, normalizer, **config_overrides):
    config = InvDynConfig(state_dim=S, action_dim=A, hidden_dim=64, gru_hidden_dim=32, **config_overrides)
    model = build_invdyn(config).eval()
    save_checkpoint(path, kind="invdyn", config=config.to_dict(), state_dict=model.state_dict(),
                    normalizer=normalizer, metadata={"joint_names": ["a", "b", "c"], "dt": 0.01})
    return model


def test_round_trip_gives_the_same_model_and_normalizer(tmp_path, normalizer):
    path = tmp_path / "invdyn_enhanced_final.pth"
    model = save_model(path, normalizer, use_probabilistic=True)
    loaded = load_enhanced_invdyn_model(path, state_dim=S, action_dim=A, device="cpu", use_probabilistic=True)
    history, next_state = torch.randn(4, 3, S), torch.randn(4, S)
    assert torch.equal(model(history, next_state), loaded(history, next_state))
    assert not loaded.training
    for name, tensor in normalizer.state_dict().items():
        assert torch.equal(tensor, loaded.normalizer.state_dict()[name])
    assert read_checkpoint(path)["metadata"]["joint_names"] == ["a", "b", "c"]


@pytest.mark.parametrize("expected, message", [
    ({"state_dim": 7}, "state_dim=6 (expected 7)"),
    ({"action_dim": 2}, "action_dim=3 (expected 2)"),
    ({"seq_length": 5}, "seq_length=3 (expected 5)"),
    ({"model_type": "mlp"}, "model_type='enhanced' (expected 'mlp')"),
    ({"use_probabilistic": True}, "use_probabilistic=False (expected True)"),
])
def test_mismatches_are_refused_with_a_message_naming_them(tmp_path, normalizer, expected, message):
    path = tmp_path / "model.pth"
    save_model(path, normalizer)
    with pytest.raises(CheckpointError) as error:
        load_invdyn(path, **expected)
    assert message in str(error.value) and str(path) in str(error.value)


def test_wrong_kind_and_version_are_refused(tmp_path, normalizer):
    path = tmp_path / "model.pth"
    save_model(path, normalizer)
    with pytest.raises(CheckpointError, match="kind is 'invdyn' but 'planner' was expected"):
        read_checkpoint(path, kind="planner")
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=f"format_version {FORMAT_VERSION + 1} is not supported"):
        load_invdyn(path)


def test_missing_and_truncated_files_are_refused(tmp_path, normalizer):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_invdyn(tmp_path / "absent.pth")
    path = tmp_path / "model.pth"
    save_model(path, normalizer)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_invdyn(path)


class _Payload:
    """Unpickling this runs a command: what a crafted checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_pickle_payload_is_refused_not_executed(tmp_path, normalizer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"format_version": FORMAT_VERSION, "kind": "invdyn", "config": {}, "state_dict": {},
                "normalizer": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="not a checkpoint of this package") as refused:
        load_invdyn(path)
    assert not marker.exists()
    assert "weights_only" not in str(refused.value), "never the advice to load it unsafely"


def data_records(path) -> list[tuple[int, int]]:
    """(offset, size) of every tensor's bytes in a checkpoint (a zip file of stored, uncompressed records)."""
    records = []
    with zipfile.ZipFile(path) as archive, open(path, "rb") as raw:
        for info in archive.infolist():
            if "/data/" in info.filename and info.file_size:
                raw.seek(info.header_offset + 26)
                name_length, extra_length = struct.unpack("<HH", raw.read(4))
                records.append((info.header_offset + 30 + name_length + extra_length, info.file_size))
    return records


def flipped(data: bytes, offset: int, bit: int) -> bytes:
    corrupt = bytearray(data)
    corrupt[offset] ^= 1 << bit
    return bytes(corrupt)


def test_a_flipped_bit_is_refused_or_changes_nothing(tmp_path, normalizer):
    path = tmp_path / "model.pth"
    save_model(path, normalizer)
    original, digest = path.read_bytes(), payload_digest(read_checkpoint(path))
    rng = np.random.default_rng(0)
    records = data_records(path)
    assert sum(size for _, size in records) > 0.8 * len(original), "most of the file is weights"
    corrupt = tmp_path / "corrupt.pth"
    for _ in range(25):  # in the weights: each flip is refused
        offset, size = records[rng.integers(len(records))]
        corrupt.write_bytes(flipped(original, offset + int(rng.integers(size)), int(rng.integers(8))))
        with pytest.raises(CheckpointError, match="corrupt"):
            load_invdyn(corrupt)
    for _ in range(25):  # anywhere: refused, or (zip bookkeeping the reader ignores) the very same contents
        corrupt.write_bytes(flipped(original, int(rng.integers(len(original))), int(rng.integers(8))))
        try:
            assert payload_digest(read_checkpoint(corrupt)) == digest
        except CheckpointError:
            pass


def test_a_checkpoint_of_the_first_format_without_a_checksum_still_loads(tmp_path, normalizer):
    path = tmp_path / "model.pth"
    model = save_model(path, normalizer)
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 1
    del payload["sha256"]
    torch.save(payload, path)
    loaded = load_invdyn(path)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor)


SAVE_LOOP = """
import sys, torch
from pathlib import Path
from fastpolicy_invdyn_ros.core.checkpoint import save_checkpoint
from fastpolicy_invdyn_ros.core.normalization import Normalizer
normalizer = Normalizer(*[torch.ones(3)] * 4)
path, ready = Path(sys.argv[1]), Path(sys.argv[2])
for version in range(1, 10**6):
    big = {"w": torch.full((4_000_000,), float(version))}
    save_checkpoint(path, kind="invdyn", config={"version": version}, state_dict=big, normalizer=normalizer)
    ready.touch()
"""


def test_a_kill_during_save_leaves_the_previous_checkpoint_loadable_and_its_temporary_is_removed_later(
        tmp_path, normalizer):
    path, ready = tmp_path / "model.pth", tmp_path / "ready"
    process = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(path), str(ready)])
    temporary = tmp_path / f".model.pth.{process.pid}.tmp"
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ready.exists(), "the saving process never finished a first save"
        while not temporary.exists() and time.monotonic() < deadline:
            time.sleep(0.001)
    finally:
        process.send_signal(signal.SIGKILL)  # inside a later 16 MB save
        process.wait()
    assert temporary.exists(), "killed while writing its temporary file"
    payload = read_checkpoint(path)
    version = payload["config"]["version"]
    assert version >= 1
    assert torch.all(payload["state_dict"]["w"] == float(version))
    save_model(tmp_path / "other.pth", normalizer)  # the next save in that directory cleans up after the dead
    assert not temporary.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth", "other.pth", "ready"]


@pytest.mark.parametrize("source_type", ["mlp", "seq"])
def test_conversion_copies_what_matches_and_reports_the_rest(tmp_path, normalizer, source_type):
    source_path, output_path = tmp_path / f"{source_type}.pth", tmp_path / "converted.pth"
    source = save_model(source_path, normalizer, model_type=source_type)
    model = convert_to_enhanced_invdyn(source_path, state_dim=S, action_dim=A, use_probabilistic=True,
                                       output_path=output_path)
    report = model.conversion_report
    assert report.copied and not report.skipped
    assert "log_std_head.weight" in report.initialized
    if source_type == "seq":
        assert torch.equal(model.encoder.weight_hh_l0, source.gru.weight_hh_l0)
        assert "trunk.0.linear.weight" in report.initialized
    else:
        assert torch.equal(model.trunk[0].linear.weight[:, : 2 * S], source.net[0].weight)
        assert torch.equal(model.mean_head.weight, source.net[4].weight)
        assert "encoder.weight_ih_l0" in report.initialized
    loaded = load_enhanced_invdyn_model(output_path, S, A, use_probabilistic=True)
    history, next_state = torch.randn(2, 3, S), torch.randn(2, S)
    assert torch.equal(loaded(history, next_state), model(history, next_state))


def test_conversion_refuses_other_dims(tmp_path, normalizer):
    source_path = tmp_path / "mlp.pth"
    save_model(source_path, normalizer, model_type="mlp")
    with pytest.raises(CheckpointError, match="state_dim=6 \\(expected 8\\)"):
        convert_to_enhanced_invdyn(source_path, state_dim=8, action_dim=A)
