"""The CSV files of result tables: read back so an interrupted run resumes, rewritten whole after
every row (through a temporary file) so that nothing measured is lost on a crash."""
import csv
from pathlib import Path
from typing import Dict, List, Sequence


def read_csv(path) -> List[Dict[str, str]]:
    """The rows of `path`, or none when it does not exist yet."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline='') as f:
        return list(csv.DictReader(f))


def write_csv(path, rows: Sequence[dict], columns: Sequence[str] = None):
    """Write `rows` (keys outside `columns` left out; default: the first row's keys)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + '.tmp')
    with tmp.open('w', newline='') as f:
        writer = csv.DictWriter(f, list(columns or rows[0]), extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
