"""Settings: dataclass fields that carry their valid range, described once.

A config is a dataclass whose fields are made with ``setting(...)`` (the range, the choices, whether
it may change at run time) and documented by the docstring under each field. Everything else is
made from that one description: ``check`` validates an instance (call it in ``__post_init__``), the
ROS node declares its parameters from ``settings`` (``ros.parameters``), the tools build their
command lines from it (``tools.cli``), and a test checks the YAML against it. Nested config fields
are flattened under their own names, so every name is the same in the dataclass, the ROS
parameter, the YAML and the command line.
"""
from __future__ import annotations

import ast
import copy
import dataclasses
import functools
import inspect
import math
import textwrap
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def setting(default: Any = dataclasses.MISSING, *, low: float | None = None, high: float | None = None,
            choices: Sequence[str] | None = None, read_only: bool = False,
            default_factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field with its inclusive range or its choices; ``read_only``: fixed once a node started.

    Lists are copied per instance. The description is the docstring written under the field.
    """
    metadata = {"low": low, "high": high, "choices": tuple(choices) if choices else None, "read_only": read_only}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=functools.partial(copy.copy, default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Setting:
    """One leaf field of a config, as the ROS parameters and command lines see it."""

    name: str
    """The field's name: the parameter name, the YAML key and the ``--option``."""
    type: Any
    """The value type: bool, int, float, str, list[str], list[float] (``X | None``: may be unset)."""
    default: Any
    """The default value (a fresh copy for lists)."""
    description: str
    """The docstring under the field, on one line."""
    low: float | None = None
    """Smallest valid value (inclusive), if any."""
    high: float | None = None
    """Largest valid value (inclusive), if any."""
    choices: tuple[str, ...] | None = None
    """The valid values of a string, if limited."""
    read_only: bool = False
    """Fixed once a node has started; the others may change between ticks."""

    @property
    def optional(self) -> bool:
        """The value may be None (unset)."""
        return type(None) in typing.get_args(self.type)

    @property
    def value_type(self) -> Any:
        """The type without ``| None``."""
        args = [arg for arg in typing.get_args(self.type) if arg is not type(None)]
        is_union = typing.get_origin(self.type) in (typing.Union, types.UnionType)
        return args[0] if is_union else self.type

    def problem(self, value: Any) -> str:
        """Why ``value`` is not valid for this setting ('' when it is)."""
        if value is None:
            return "" if self.optional else f"{self.name} must be set"
        if self.choices is not None and value not in self.choices:
            return f"{self.name} must be one of {list(self.choices)}, got {value!r}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                return f"{self.name} must be finite, got {value}"
            low = -math.inf if self.low is None else self.low
            high = math.inf if self.high is None else self.high
            if not low <= value <= high:
                return f"{self.name} must be in [{_number(low)}, {_number(high)}], got {value}"
        return ""


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _is_config(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass, on one line (from its source)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):  # no source (built in a session): no descriptions
            continue
        body = tree.body[0].body
        for statement, following in zip(body, body[1:]):
            if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                    and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)):
                docs[statement.target.id] = " ".join(following.value.value.split())
    return docs


def _leaf_fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return [(field, hints[field.name]) for field in dataclasses.fields(cls) if field.init]


@functools.cache
def settings(cls: type) -> tuple[Setting, ...]:
    """Every leaf setting of a config class, nested configs flattened in field order.

    Raises TypeError when two leaves share a name (the flat names must be unique).
    """
    found: list[Setting] = []
    docs = field_docs(cls)
    for field, hint in _leaf_fields(cls):
        if _is_config(hint):
            found.extend(settings(hint))
            continue
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        metadata = field.metadata
        found.append(Setting(field.name, hint, default, docs.get(field.name, ""), metadata.get("low"),
                             metadata.get("high"), metadata.get("choices"), metadata.get("read_only", False)))
    names = [item.name for item in found]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise TypeError(f"{cls.__name__}: settings {repeated} appear more than once among its nested configs")
    return tuple(found)


def check(config: Any) -> None:
    """Raise ValueError naming the first field of ``config`` (not nested ones) outside its range or choices."""
    by_name = {item.name: item for item in settings(type(config))}
    for field, hint in _leaf_fields(type(config)):
        if _is_config(hint):
            continue
        problem = by_name[field.name].problem(getattr(config, field.name))
        if problem:
            raise ValueError(problem)


def flatten(config: Any) -> dict[str, Any]:
    """The leaf values of a config by their flat names."""
    values: dict[str, Any] = {}
    for field, hint in _leaf_fields(type(config)):
        value = getattr(config, field.name)
        values.update(flatten(value) if _is_config(hint) else {field.name: value})
    return values


def build(cls: type[T], values: Mapping[str, Any]) -> T:
    """A config from flat values; leaves not given keep their defaults. Raises ValueError naming a value
    outside its range or choices (whether or not the class checks itself), or the values that are not
    settings of ``cls``."""
    unknown = set(values) - {item.name for item in settings(cls)}
    if unknown:
        raise ValueError(f"not settings of {cls.__name__}: {sorted(unknown)}")
    return _build(cls, values)


def _build(cls: type[T], values: Mapping[str, Any]) -> T:
    arguments = {}
    for field, hint in _leaf_fields(cls):
        if _is_config(hint):
            arguments[field.name] = _build(hint, values)
        elif field.name in values:
            value = values[field.name]
            arguments[field.name] = list(value) if isinstance(value, (tuple, list)) else value
    config = cls(**arguments)
    check(config)
    return config
