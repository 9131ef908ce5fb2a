"""The source checkout around the package: its configs (templates the workflows start from) and
the folders they write into by default. An installed package without a checkout has none."""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = REPO_ROOT / 'configs'
