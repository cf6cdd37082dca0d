"""For tools that still ask for a setup.py, e.g. Apache Beam's `--setup_file=./setup.py`
(data_builders/build.py), which installs fjax, configs and data_builders on Dataflow
workers. Everything is declared in pyproject.toml."""
from setuptools import setup

setup()
