"""Finds the packages under each root of pyproject's `package-dir`, so that a new
backend package needs no line in pyproject.toml. Everything else is in pyproject.toml."""

import tomllib

from setuptools import find_packages, setup

with open("pyproject.toml", "rb") as handle:
    ROOTS = tomllib.load(handle)["tool"]["setuptools"]["package-dir"]

setup(packages=[f"{name}.{sub}" if sub else name
                for name, directory in ROOTS.items() for sub in ["", *find_packages(directory)]])
