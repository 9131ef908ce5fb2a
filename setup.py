# The metadata lives in pyproject.toml; this file keeps `python setup.py develop` and the
# layout OpenMMLab users expect working.
from setuptools import setup

setup()
