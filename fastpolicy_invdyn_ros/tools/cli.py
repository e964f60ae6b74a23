"""Command lines made from config dataclasses (``core.settings``): the dataclass is the whole interface.

Every leaf field becomes ``--name`` with the field's docstring as its help, its choices and its
default; booleans get ``--name/--no-name``, lists take one or more values, ``X | None`` may stay
unset. Nested configs (a ``PolicyConfig`` inside a tool's options) appear under their own flat
names, the same names as the node's ROS parameters. One convention for every tool: a bad or
missing argument, or an input the tool cannot use (a file that is not a checkpoint, a bag without
the topics), prints the usage and one error line and exits 2; never a traceback.
"""
from __future__ import annotations

import argparse
import sys
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from ..core.errors import InputError, one_line
from ..core.runtime import RuntimeChoice
from ..core.settings import Setting, build, settings

T = TypeVar("T")

USER_ERRORS = (InputError, ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError)
"""What a tool reports as a usage error: its arguments or the files they name cannot be used."""


def _argument(item: Setting) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"default": item.default, "help": item.description}
    value_type = item.value_type
    if item.choices:
        kwargs["choices"] = item.choices
    if value_type is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif typing.get_origin(value_type) is list:
        kwargs.update(nargs="+", type=typing.get_args(value_type)[0])
    else:
        kwargs["type"] = value_type
    return kwargs


def build_parser(cls: type, description: str, exclude: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """An argparse parser with an option per setting of ``cls`` (except those in ``exclude``)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for item in settings(cls):
        if item.name not in exclude:
            parser.add_argument(f"--{item.name}", **_argument(item))
    return parser


def parse(cls: type[T], argv: list[str] | None, description: str, exclude: tuple[str, ...] = ()) -> T:
    """Parse ``argv`` (``sys.argv[1:]`` when None) into a ``cls``; invalid values are a usage error (exit 2)."""
    parser = build_parser(cls, description, exclude)
    values = vars(parser.parse_args(argv))
    try:
        return build(cls, values)
    except ValueError as error:
        parser.error(one_line(error))


def run(cls: type[T], tool: Callable[[T], Any], argv: list[str] | None, description: str,
        exclude: tuple[str, ...] = ()) -> int:
    """A tool's ``main``: parse its options, run it, and turn what a user can fix into a usage error (exit 2).

    Returns the tool's exit code when it returns an int (else 0). Ctrl-C ends it with 130 and one line.
    """
    options = parse(cls, argv, description, exclude)
    try:
        code = tool(options)
    except USER_ERRORS as error:
        build_parser(cls, description, exclude).error(one_line(error))
    except KeyboardInterrupt:
        print(f"{_prog()}: interrupted", file=sys.stderr)
        return 130
    return code if isinstance(code, int) else 0


def report_runtime(model: str, choice: RuntimeChoice) -> None:
    """One line on stderr: what runs ``model`` and why (a fallback to PyTorch as a warning)."""
    print(f"{_prog()}: {'warning: ' if choice.fallback else ''}{choice.describe(model)}", file=sys.stderr)


def _prog() -> str:
    return argparse.ArgumentParser().prog
