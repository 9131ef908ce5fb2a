# No tests/__init__.py on purpose: mmsegmentation's wheel installs a top-level `tests` package
# into site-packages, and pytest runs with --import-mode=importlib (see pytest.ini) so our test
# modules are never imported by that package name.
import importlib.util
import os
import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

if os.environ.get('PYTEST_XDIST_WORKER_COUNT'):  # `-n N`: the cores shared, not oversubscribed
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ[
        'PYTEST_XDIST_WORKER_COUNT'])))


# fixtures that decide a test's tier: marked by the fixture it uses, so the marker cannot fall
# out of step with the test (run_checked starts a tool; labelme_coco fetches the labelme sdist)
MARKER_OF_FIXTURE = {'run_checked': 'subprocess', 'labelme_coco': 'network'}


def pytest_collection_modifyitems(items):
    for item in items:
        for fixture in getattr(item, 'fixturenames', ()):
            if fixture in MARKER_OF_FIXTURE:
                item.add_marker(MARKER_OF_FIXTURE[fixture])


@pytest.fixture(autouse=True)
def _deterministic():
    """Seeded, and the thread count a test may set (tools' --threads) restored after it."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# ---- the repository's command lines (tools/) ----------------------------------------------------
@pytest.fixture(scope='session')
def load_tool():
    """`load_tool(NAME)`: tools/NAME.py as a module, so a test runs its command line in-process
    with `.main(argv)` (a subprocess would import torch again)."""

    def load(name):
        spec = importlib.util.spec_from_file_location(f'mmrf_tool_{name}',
                                                      ROOT / 'tools' / f'{name}.py')
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope='session')
def run_checked():
    """`run_checked(*args, env=None, check=True, timeout=900)`: a command run from the repository
    root; on failure, an AssertionError with the tail of its output."""

    def run(*args, env=None, check=True, timeout=900):
        result = subprocess.run([*map(str, args)], cwd=ROOT, capture_output=True, text=True,
                                env={**os.environ, **(env or {})}, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f'{args} failed:\n{result.stdout[-3000:]}\n'
                                 f'{result.stderr[-5000:]}')
        return result

    return run


# ---- data --------------------------------------------------------------------------------------
@pytest.fixture(scope='session')
def fashion_mnist():
    """The Fashion-MNIST files (tools/setup.sh installs them); a test that needs them is skipped
    without them."""
    from mmresfamily.datasets import find_fashion_mnist
    try:
        return find_fashion_mnist()
    except FileNotFoundError as err:  # pragma: no cover - setup installs the package
        pytest.skip(f'Fashion-MNIST missing: {err}')


@pytest.fixture(scope='session')
def make_quickstart_data(tmp_path_factory, fashion_mnist):
    """`make_quickstart_data(train, val)`: a quickstart COCO set with that many canvases, built
    once per session (mmresfamily.datasets.quickstart: what tools/make_quickstart_data.py runs)."""
    from mmresfamily.datasets.quickstart import main as make
    built = {}

    def get(train, val):
        if (train, val) not in built:
            out = tmp_path_factory.mktemp(f'quickstart_{train}_{val}')
            make(['--out', str(out), '--train', str(train), '--val', str(val)])
            built[train, val] = out
        return built[train, val]

    return get
