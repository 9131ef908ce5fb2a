#!/usr/bin/env python
"""Run every capability check (families of the model table x export paths and backbone
contracts) and write docs/capabilities.md, which tests/test_capabilities.py keeps true.

    python tools/capabilities.py [--out PATH] [--rows TEXT ...]

Takes tens of minutes on 2 CPU cores (every export path of every row); `--rows resnest dpn`
reruns only the rows whose label contains one of the words, keeping the other cells.
"""
import argparse

from mmresfamily.export.capabilities import DOC, generate, select


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default=DOC, help=f'where to write (default {DOC})')
    parser.add_argument('--rows', nargs='+', default=[], metavar='TEXT',
                        help='only the rows whose label contains one of these')
    args = parser.parse_args(argv)
    generate(args.out, select(args.rows))


if __name__ == '__main__':
    main()
