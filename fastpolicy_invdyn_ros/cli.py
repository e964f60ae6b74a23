"""Command lines generated from option dataclasses: the dataclass is the whole interface.

Declare each field with ``option(default, "help text")``; ``parse(OptionsClass, argv)`` builds
the argparse parser (``--name`` per field, ``--flag/--no-flag`` for booleans, ``nargs='+'`` for
tuples and lists) and returns a filled instance.
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def option(default: Any, help: str, choices: tuple | None = None) -> Any:
    """A dataclass field that carries its command-line help (and optional choices)."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


def build_parser(cls: type, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        kwargs: dict[str, Any] = {"default": default, "help": field.metadata.get("help", "")}
        if field.metadata.get("choices"):
            kwargs["choices"] = field.metadata["choices"]
        origin = typing.get_origin(hint)
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin in (list, tuple):
            kwargs["nargs"] = "+"
            kwargs["type"] = typing.get_args(hint)[0]
        elif origin in (typing.Union, types.UnionType):
            kwargs["type"] = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        else:
            kwargs["type"] = hint
        parser.add_argument(f"--{field.name}", **kwargs)
    return parser


def parse(cls: type[T], argv: list[str] | None, description: str) -> T:
    """Parse ``argv`` (``sys.argv[1:]`` when None) into an instance of the options dataclass."""
    namespace = build_parser(cls, description).parse_args(argv)
    values = {
        name: tuple(value) if typing.get_origin(typing.get_type_hints(cls)[name]) is tuple else value
        for name, value in vars(namespace).items()
    }
    return cls(**values)
