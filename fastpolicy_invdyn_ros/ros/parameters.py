"""ROS parameters made from config dataclasses (``core.settings``): one description per parameter.

Each leaf setting of a config becomes a parameter of the same name, type and default, with a
descriptor that carries its docstring, its range (which rclpy enforces on every set) and whether
it is read-only. Values are validated by building the config, the same code that validates a
config made in Python, so a parameter file, ``-p`` and ``ros2 param set`` are refused for the same
reasons.
"""
from __future__ import annotations

import array
import itertools
import re
import textwrap
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from ..core.settings import Setting

INT64_RANGE = (-(2**63), 2**63 - 1)
FLOAT_RANGE = (-1.7976931348623157e308, 1.7976931348623157e308)

PARAMETER_TYPES: dict[Any, Parameter.Type] = {
    bool: Parameter.Type.BOOL,
    int: Parameter.Type.INTEGER,
    float: Parameter.Type.DOUBLE,
    str: Parameter.Type.STRING,
    list[str]: Parameter.Type.STRING_ARRAY,
    list[float]: Parameter.Type.DOUBLE_ARRAY,
    list[int]: Parameter.Type.INTEGER_ARRAY,
    list[bool]: Parameter.Type.BOOL_ARRAY,
}


def descriptor(item: Setting) -> ParameterDescriptor:
    """The descriptor of a setting: description, type, read-only flag, range or choices."""
    kind = PARAMETER_TYPES[item.value_type]
    text = item.description
    if item.choices:
        text += f" One of: {', '.join(item.choices)}."
    result = ParameterDescriptor(description=text, type=kind.value, read_only=item.read_only)
    if item.choices:
        result.additional_constraints = f"one of {list(item.choices)}"
    if item.low is not None or item.high is not None:
        if kind is Parameter.Type.INTEGER:
            low, high = INT64_RANGE
            result.integer_range = [IntegerRange(from_value=int(item.low if item.low is not None else low),
                                                 to_value=int(item.high if item.high is not None else high), step=1)]
        elif kind is Parameter.Type.DOUBLE:
            low, high = FLOAT_RANGE
            result.floating_point_range = [FloatingPointRange(
                from_value=float(item.low if item.low is not None else low),
                to_value=float(item.high if item.high is not None else high), step=0.0)]
    return result


def declare_settings(node: Node, items: Iterable[Setting], unset: Collection[str] = ()) -> None:
    """Declare a parameter per setting. A setting without a default (None) or named in ``unset`` is
    declared typed but unset unless the parameter file or ``-p`` gives it (its value is then None)."""
    for item in items:
        empty = item.default is None or item.name in unset
        default = PARAMETER_TYPES[item.value_type] if empty else item.default
        node.declare_parameter(item.name, default, descriptor(item))


def value_of(node: Node, name: str) -> Any:
    """A declared parameter's value; None when it is typed but unset."""
    try:
        return node.get_parameter(name).value
    except ParameterUninitializedException:
        return None


def current_values(node: Node, items: Iterable[Setting], changes: Iterable[Parameter] = ()) -> dict[str, Any]:
    """The settings' parameter values (unset ones left out), with ``changes`` applied over them."""
    values = {item.name: value_of(node, item.name) for item in items}
    values.update({parameter.name: parameter.value for parameter in changes if parameter.name in values})
    return {name: list(value) if isinstance(value, (list, tuple, array.array)) else value
            for name, value in values.items() if value is not None}


@dataclass
class ParametersFile:
    """A node's parameters file (``ros__parameters`` form) as the settings describe it."""

    node_name: str
    """The node the parameters are for (the file's top-level key)."""
    header: list[str]
    """Comment lines before the node's key: how the file is used."""
    values: dict[str, Any]
    """The parameters the file sets."""
    examples: dict[str, Any]
    """Parameters left unset, shown commented out with an example value."""

    def render(self, items: Iterable[Setting]) -> str:
        """The file's text: each parameter under its description (the setting's docstring), in field order."""
        lines = [*self.header, f"{self.node_name}:", "  ros__parameters:"]
        for item in items:
            if item.name not in self.values and item.name not in self.examples:
                continue
            lines += textwrap.wrap(item.description, COMMENT_WIDTH, initial_indent="    # ",
                                   subsequent_indent="    # ")
            if item.name in self.values:
                lines.append(f"    {item.name}: {_yaml_value(self.values[item.name])}")
            else:
                lines.append(f"    # {item.name}: {_yaml_value(self.examples[item.name])}")
        return "\n".join(lines) + "\n"

    @classmethod
    def read(cls, path: Path, items: Iterable[Setting]) -> ParametersFile:
        """A parameters file in ``render``'s form; commented-out lines ``# name: value`` of the settings are
        its examples."""
        text = path.read_text()
        document = yaml.safe_load(text)
        [node_name] = document
        header = list(itertools.takewhile(lambda line: line.startswith("#"), text.splitlines()))
        names = {item.name for item in items}
        examples = {match["name"]: yaml.safe_load(match["value"]) for match in _EXAMPLE.finditer(text)
                    if match["name"] in names}
        return cls(node_name, header, dict(document[node_name]["ros__parameters"]), examples)


COMMENT_WIDTH = 110
_EXAMPLE = re.compile(r"^    # (?P<name>\w+): (?P<value>.+)$", re.MULTILINE)
"""A commented-out parameter: ``    # name: value`` (a description line has words after its first one)."""


def _yaml_value(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("\n...").strip()
