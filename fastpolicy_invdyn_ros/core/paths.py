"""Where the package's data files (models/, config/, launch/) are, installed or in a source tree."""
from __future__ import annotations

from pathlib import Path

PACKAGE = "fastpolicy_invdyn_ros"
SOURCE_ROOT = Path(__file__).resolve().parents[2]
"""The repository root when running from a source tree or an editable install."""


def share_directory() -> Path:
    """The package's share directory when colcon installed it (found via the ament index), else the repo root.

    Both hold the same layout: ``models/``, ``config/``, ``launch/``.
    """
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:  # not a ROS environment at all
        return SOURCE_ROOT
    try:
        return Path(get_package_share_directory(PACKAGE))
    except (PackageNotFoundError, OSError):  # OSError: AMENT_PREFIX_PATH unset (no ROS workspace sourced)
        return SOURCE_ROOT


def share_path(*parts: str) -> Path:
    """A data file of the package, e.g. ``share_path("models", "planner_final.pth")``."""
    return share_directory().joinpath(*parts)
