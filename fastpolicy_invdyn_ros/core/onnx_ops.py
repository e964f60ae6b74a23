"""ONNX translations the exporter uses instead of its defaults (``runtime.export_model``), for speed in ONNX Runtime.

Each computes what PyTorch does (within float rounding); measured on the shipped planner's denoiser at 8
samples, one thread, on the 2-core CPU:

* ``mish``: ONNX Runtime runs the standard ``Mish`` as Softplus, Tanh and Mul, and its CPU Softplus is slow
  (28% of the denoiser). This computes the same function from one Exp: tanh(softplus(x)) = n / (n + 2) with
  n = e^x (e^x + 2) (the denoiser 3.2 -> 2.3 ms).
* ``conv1d``, ``conv_transpose1d``: a 1-D convolution as a 2-D one over a height of 1. ONNX Runtime's CPU
  provider runs 1-D convolutions through im2col and a GEMM per sample; 2-D ones get its blocked-channel
  (NCHWc) kernels (2.3 -> 1.9 ms).
* ``group_norm``: the per-channel affine of GroupNorm as a ``BatchNormalization`` (mean 0, variance 1,
  epsilon 0: exactly weight * x + bias) instead of Mul and Add broadcast over time, which ONNX Runtime runs
  one short row at a time (1.9 -> 1.7 ms).

and one rewrite of the exported graph, ``film_as_batch_norm``: FiLM's ``scale * h + bias`` (per sample and
channel, broadcast over time) as one ``BatchNormalization`` over h seen as (1, N * C, L), for the same reason.

Imported only to export, so running exports needs no onnxscript.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
import onnxscript
import torch
from onnx import helper, numpy_helper
from onnxscript import FLOAT
from onnxscript import opset18 as op


@onnxscript.script()
def mish(x: FLOAT) -> FLOAT:
    # Above 20, n / (n + 2) is 1 in float32; the clamp keeps e^x (e^x + 2) finite.
    e = op.Exp(op.Min(x, op.CastLike(20.0, x)))
    n = e * (e + op.CastLike(2.0, x))
    return x * n / (n + op.CastLike(2.0, x))


def _one(value: int | Sequence[int]) -> int:
    """A 1-D convolution's stride, padding, dilation or output padding: an int or a 1-element list."""
    if isinstance(value, int):
        return value
    (only,) = value
    return int(only)


_HEIGHT = [2]
"""The axis a 1-D convolution's (N, C, L) gains to become (N, C, 1, L)."""


def conv1d(input, weight, bias=None, stride=(1,), padding=(0,), dilation=(1,), groups=1):  # noqa: A002 - aten's names
    """aten.conv1d as a 2-D Conv over (N, C, 1, L) (traced: the attributes are Python values)."""
    axis = op.Constant(value_ints=_HEIGHT)
    pad = _one(padding)
    output = op.Conv(op.Unsqueeze(input, axis), op.Unsqueeze(weight, axis), *([] if bias is None else [bias]),
                     pads=[0, pad, 0, pad], strides=[1, _one(stride)], dilations=[1, _one(dilation)], group=groups)
    return op.Squeeze(output, axis)


def conv_transpose1d(input, weight, bias=None, stride=(1,), padding=(0,), output_padding=(0,), groups=1,  # noqa: A002
                     dilation=(1,)):
    """aten.conv_transpose1d as a 2-D ConvTranspose over (N, C, 1, L)."""
    axis = op.Constant(value_ints=_HEIGHT)
    pad = _one(padding)
    output = op.ConvTranspose(op.Unsqueeze(input, axis), op.Unsqueeze(weight, axis),
                              *([] if bias is None else [bias]), pads=[0, pad, 0, pad], strides=[1, _one(stride)],
                              dilations=[1, _one(dilation)], output_padding=[0, _one(output_padding)], group=groups)
    return op.Squeeze(output, axis)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-05, cudnn_enabled=True):  # noqa: A002, ARG001
    """aten.group_norm: the statistics of each group from InstanceNormalization over (N, groups, -1), then the
    per-channel affine as BatchNormalization with mean 0, variance 1 and epsilon 0 (weight * x + bias)."""
    groups = op.Constant(value_ints=[num_groups])
    channels = op.Shape(input, start=1, end=2)
    weight = op.Expand(op.CastLike(1.0, input), channels) if weight is None else weight
    bias = op.Expand(op.CastLike(0.0, input), channels) if bias is None else bias
    grouped = op.Reshape(input, op.Constant(value_ints=[0, num_groups, -1]))
    normalized = op.InstanceNormalization(grouped, op.Expand(op.CastLike(1.0, input), groups),
                                          op.Expand(op.CastLike(0.0, input), groups), epsilon=eps)
    return op.BatchNormalization(op.Reshape(normalized, op.Shape(input)), weight, bias,
                                 op.Expand(op.CastLike(0.0, input), channels),
                                 op.Expand(op.CastLike(1.0, input), channels), epsilon=0.0)


TRANSLATIONS = {torch.ops.aten.mish.default: mish, torch.ops.aten.conv1d.default: conv1d,
                torch.ops.aten.conv_transpose1d.default: conv_transpose1d,
                torch.ops.aten.group_norm.default: group_norm}
"""What ``torch.onnx.export(..., custom_translation_table=...)`` takes."""


def film_as_batch_norm(model: onnx.ModelProto) -> int:
    """Rewrite in place each ``Add(Mul(scale, h), bias)`` whose scale and bias are the two outputs of one Split
    (FiLM: ``scale, bias = film(cond).unsqueeze(-1).chunk(2, dim=1)``, each (N, C, 1), against h (N, C, L)) into
    a BatchNormalization over h reshaped to (1, N * C, L) with the flattened scale and bias, mean 0, variance 1
    and epsilon 0: scale * h + bias, one pass over h. Returns how many were rewritten."""
    graph = model.graph
    producer = {output: node for node in graph.node for output in node.output}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    shapes = {"film_flat": [-1], "film_rows": [1, -1, 0]}  # 0: the time axis kept
    replaced: dict[int, list[onnx.NodeProto]] = {}
    dropped: set[int] = set()
    for index, add in enumerate(graph.node):
        mul = producer.get(add.input[0]) if add.op_type == "Add" else None
        if mul is None or mul.op_type != "Mul" or uses.get(mul.output[0]) != 1:
            continue
        split = producer.get(mul.input[0])
        if split is None or split.op_type != "Split" or list(split.output) != [mul.input[0], add.input[1]]:
            continue
        h, scale, bias, name = mul.input[1], split.output[0], split.output[1], add.output[0]
        replaced[index] = [
            helper.make_node("Reshape", [h, "film_rows"], [f"{name}_rows"]),
            helper.make_node("Reshape", [scale, "film_flat"], [f"{name}_scale"]),
            helper.make_node("Reshape", [bias, "film_flat"], [f"{name}_bias"]),
            helper.make_node("Shape", [f"{name}_scale"], [f"{name}_count"]),
            *(helper.make_node("ConstantOfShape", [f"{name}_count"], [f"{name}_{what}"],
                               value=numpy_helper.from_array(np.array([value], np.float32)))
              for what, value in (("mean", 0.0), ("variance", 1.0))),
            helper.make_node("BatchNormalization", [f"{name}_rows", f"{name}_scale", f"{name}_bias", f"{name}_mean",
                                                    f"{name}_variance"], [f"{name}_normalized"], epsilon=0.0),
            helper.make_node("Shape", [h], [f"{name}_shape"]),
            helper.make_node("Reshape", [f"{name}_normalized", f"{name}_shape"], [name]),
        ]
        dropped.add(next(i for i, node in enumerate(graph.node) if node is mul))
    if replaced:
        nodes = [new for index, node in enumerate(graph.node) if index not in dropped
                 for new in replaced.get(index, [node])]
        del graph.node[:]
        graph.node.extend(nodes)
        graph.initializer.extend(numpy_helper.from_array(np.array(value, np.int64), key) for key, value in shapes.items())
    return len(replaced)
