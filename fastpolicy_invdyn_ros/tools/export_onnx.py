"""``export_onnx``: checkpoints to ONNX models next to them, for the ONNX Runtime runtime (``core.runtime``).

    export_onnx --checkpoints models/invdyn_enhanced_final.pth models/planner_final.pth

An inverse dynamics checkpoint ``X.pth`` gives ``X.onnx`` (the control tick's step, temperature and
noise as inputs); a planner ``X.pth`` gives ``X.condition.onnx`` and ``X.denoiser.onnx``. Each carries
the checkpoint's SHA-256, so an export left behind by a retrained checkpoint is refused, never run.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from ..core.runtime import export_checkpoint
from ..core.settings import setting
from . import cli


@dataclass
class ExportOnnxOptions:
    """Which checkpoints to export."""

    checkpoints: list[str] = setting([])
    """Checkpoints (.pth, inverse dynamics or planner) to export; the ONNX files go next to each."""

    def __post_init__(self) -> None:
        if not self.checkpoints:
            raise ValueError("give the checkpoints to export with --checkpoints")


def export_onnx(options: ExportOnnxOptions) -> None:
    for checkpoint in options.checkpoints:
        written = export_checkpoint(checkpoint)
        print(f"{checkpoint}: wrote {', '.join(str(path) for path in written)}")


def main(argv: list[str] | None = None) -> int:
    return cli.run(ExportOnnxOptions, export_onnx, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
