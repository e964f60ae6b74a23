"""One source per parameter: the config dataclasses (``core.settings``) against the YAML files, the ROS
descriptors and the command lines made from them."""
from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rcl_interfaces.msg import ParameterType

from fastpolicy_invdyn_ros.core.policy import PolicyConfig
from fastpolicy_invdyn_ros.core.settings import Setting, build, check, flatten, setting, settings
from fastpolicy_invdyn_ros.ros.arm_node import ArmSimConfig
from fastpolicy_invdyn_ros.ros.parameters import ParametersFile, descriptor
from fastpolicy_invdyn_ros.ros.policy_node import NODE_SETTINGS, PolicyNodeConfig
from fastpolicy_invdyn_ros.tools import cli

ROOT = Path(__file__).resolve().parents[1]
FILES = {"invdyn_policy.yaml": PolicyNodeConfig, "arm_sim.yaml": ArmSimConfig}


def _type_ok(item: Setting, value: object) -> bool:
    expected = item.value_type
    if typing.get_origin(expected) is list:
        element = typing.get_args(expected)[0]
        return isinstance(value, list) and all(isinstance(v, element) and not isinstance(v, bool) or element is bool
                                               and isinstance(v, bool) for v in value)
    return isinstance(value, expected) and (expected is bool or not isinstance(value, bool))


def file_problems(path: Path, cls: type) -> list[str]:
    """Why a parameters file disagrees with its config class: missing, extra, mistyped or out-of-range
    parameters, or descriptions that are not the fields' docstrings."""
    items = settings(cls)
    file = ParametersFile.read(path, items)
    by_name = {item.name: item for item in items}
    shown = set(file.values) | set(file.examples)
    problems = [f"missing: {name}" for name in by_name if name not in shown]
    problems += [f"not a parameter: {name}" for name in shown if name not in by_name]
    for name, value in {**file.examples, **file.values}.items():
        if name in by_name:
            item = by_name[name]
            if not _type_ok(item, value):
                problems.append(f"{name}: {value!r} is not a {item.value_type}")
            elif item.problem(value):
                problems.append(item.problem(value))
    if not problems:
        try:
            build(cls, file.values)
        except ValueError as error:
            problems.append(str(error))
        if path.read_text() != file.render(items):
            problems.append("descriptions or order differ from the fields' docstrings")
    return problems


@pytest.mark.parametrize("name", FILES)
def test_the_parameters_files_are_the_config_dataclasses(name: str) -> None:
    problems = file_problems(ROOT / "config" / name, FILES[name])
    assert not problems, (f"{name} disagrees with {FILES[name].__name__}: {problems}; rewrite it with "
                          f"ParametersFile.read(path, settings(cls)).render(settings(cls))")


@pytest.mark.parametrize("edit, problem", [
    (lambda text: text.replace("    safe_mode: hold\n", ""), "missing: safe_mode"),
    (lambda text: text + "    wobble: 3\n", "not a parameter: wobble"),
    (lambda text: text.replace("slew_rate: 2000.0", "slew_rate: -1.0"), "slew_rate must be in [0, 1e+09]"),
    (lambda text: text.replace("replan_every: 4", "replan_every: 4.5"), "replan_every: 4.5 is not"),
    (lambda text: text.replace("safe_mode: hold", "safe_mode: panic"), "safe_mode must be one of"),
    (lambda text: text.replace("# Seconds without a valid", "# Seconds with a valid"), "docstrings"),
])
def test_a_file_that_disagrees_is_caught(tmp_path: Path, edit, problem: str) -> None:
    path = tmp_path / "invdyn_policy.yaml"
    path.write_text(edit((ROOT / "config" / "invdyn_policy.yaml").read_text()))
    assert any(problem in found for found in file_problems(path, PolicyNodeConfig)), file_problems(path, PolicyNodeConfig)


def test_every_parameter_has_a_description_and_a_descriptor_that_carries_its_range() -> None:
    for item in NODE_SETTINGS:
        assert item.description, f"{item.name} has no docstring"
        result = descriptor(item)
        assert result.description.startswith(item.description) and result.read_only == item.read_only
        if item.low is not None and item.value_type is float:
            assert result.floating_point_range[0].from_value == item.low
        if item.low is not None and item.value_type is int:
            assert result.integer_range[0].from_value == item.low
    by_name = {item.name: item for item in NODE_SETTINGS}
    assert descriptor(by_name["joint_names"]).type == ParameterType.PARAMETER_STRING_ARRAY
    assert descriptor(by_name["safe_mode"]).additional_constraints == "one of ['hold', 'zero']"
    live = {item.name for item in NODE_SETTINGS if not item.read_only}
    assert live == set(flatten(PolicyConfig())), "the live parameters are exactly the policy's settings"


@dataclass
class Inner:
    """A nested config."""

    rate: float = setting(1.0, low=0.0, high=10.0)
    """How fast."""

    def __post_init__(self) -> None:
        check(self)


@dataclass
class Outer:
    """A config with a nested one."""

    names: list[str] = setting(["a"])
    """Some names."""
    mode: str = setting("x", choices=("x", "y"))
    """The mode."""
    limit: int | None = setting(None, low=1)
    """A limit; unset: none."""
    inner: Inner = field(default_factory=Inner)
    """The nested settings."""

    def __post_init__(self) -> None:
        check(self)


def test_settings_flatten_nested_configs_and_validate_them() -> None:
    assert [item.name for item in settings(Outer)] == ["names", "mode", "limit", "rate"]
    assert [item.description for item in settings(Outer)] == ["Some names.", "The mode.", "A limit; unset: none.",
                                                               "How fast."]
    config = build(Outer, {"rate": 2.0, "names": ("b", "c")})
    assert config.inner.rate == 2.0 and config.names == ["b", "c"] and flatten(config)["rate"] == 2.0
    assert Outer().names is not Outer().names, "list defaults are copied"
    for values, words in [({"rate": 11.0}, "rate must be in [0, 10]"), ({"mode": "z"}, "mode must be one of"),
                          ({"limit": 0}, "limit must be in [1, inf]"), ({"rate": float("nan")}, "finite"),
                          ({"wobble": 1}, "not settings of Outer")]:
        with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
            build(Outer, values)


def test_the_command_line_is_made_from_the_same_fields(capsys) -> None:
    parser = cli.build_parser(Outer, "doc")
    assert parser.parse_args(["--rate", "3", "--names", "p", "q"]).names == ["p", "q"]
    assert "How fast." in parser.format_help()
    with pytest.raises(SystemExit) as exit_info:
        cli.parse(Outer, ["--rate", "12"], "doc")
    assert exit_info.value.code == 2 and "rate must be in [0, 10]" in capsys.readouterr().err
