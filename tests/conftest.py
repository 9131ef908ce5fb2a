# No tests/__init__.py on purpose: mmsegmentation's wheel installs a top-level `tests` package
# into site-packages, and pytest runs with --import-mode=importlib (see pytest.ini) so our test
# modules are never imported by that package name.
import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield
