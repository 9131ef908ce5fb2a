#!/usr/bin/env python
"""Write the detection / segmentation configs and the metafiles from the model table.

    python tools/make_configs.py [--check]

Generated: configs/_base_/backbones/ROW.py, configs/mmdet/FAMILY/*.py, configs/mmseg/FAMILY/*.py,
configs/metafiles/FAMILY.yml and model-index.yml (see mmresfamily/configgen.py). To add configs
for a model, add its row to mmresfamily/zoo.py and its config name to zoo.CONFIG_NAMES, then run
this. Stale generated files are removed. --check writes nothing and fails if a file differs.
"""
import argparse
import sys
from pathlib import Path

from mmresfamily.configgen import generate, generated_on_disk

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--check', action='store_true',
                        help='compare with the files on disk, write nothing')
    args = parser.parse_args(argv)
    files = generate(ROOT)
    stale = [p for p in generated_on_disk(ROOT) if p not in files]
    changed = [p for p, text in files.items()
               if not (ROOT / p).is_file() or (ROOT / p).read_text() != text]
    if args.check:
        for path in stale + changed:
            print(f'{path}: {"stale" if path in stale else "differs from the model table"}')
        if stale or changed:
            sys.exit('generated files drifted: run python tools/make_configs.py')
        return
    for path in stale:
        (ROOT / path).unlink()
    for path in changed:
        (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
        (ROOT / path).write_text(files[path])
    print(f'{len(files)} generated files: {len(changed)} written, {len(stale)} stale removed')


if __name__ == '__main__':
    main()
