"""ament_python package: installs the library, its console scripts and share/ data."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "fastpolicy_invdyn_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={f"{PACKAGE}.sim": ["*.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/models", glob("models/*.pth") + glob("models/*.onnx")),
        (f"share/{PACKAGE}/models/ur5e", glob("models/ur5e/*.pth") + glob("models/ur5e/*.onnx")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="fastpolicy maintainers",
    maintainer_email="maintainers@fastpolicy.dev",
    description="Diffusion planner + enhanced inverse dynamics policy for ROS 2 arms.",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            f"trainer = {PACKAGE}.tools.trainer:main",
            f"collect = {PACKAGE}.tools.collect:main",
            f"compare = {PACKAGE}.tools.compare:main",
            f"evaluate = {PACKAGE}.tools.evaluate:main",
            f"bench = {PACKAGE}.tools.bench:main",
            f"export_onnx = {PACKAGE}.tools.export_onnx:main",
            f"demo = {PACKAGE}.tools.demo:main",
            f"ros_bench = {PACKAGE}.tools.ros_bench:main",
            f"bag_export = {PACKAGE}.tools.bag_export:main",
            f"record = {PACKAGE}.tools.record:main",
            f"invdyn_policy = {PACKAGE}.ros.policy_node:main",
            f"arm_sim = {PACKAGE}.ros.arm_node:main",
        ],
    },
)
