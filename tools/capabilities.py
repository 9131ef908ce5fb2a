#!/usr/bin/env python
"""Run every capability check (families of the model table x export paths and backbone
contracts) and write docs/capabilities.md, which tests/test_capabilities.py keeps true.

    python tools/capabilities.py [--out PATH] [--rows TEXT ...] [--capabilities NAME ...]

Takes tens of minutes on 2 CPU cores (every export path of every row); `--rows resnest dpn`
reruns only the rows whose label contains one of the words, `--capabilities` only those
columns, keeping the other cells.
"""
import argparse

from mmresfamily.export.capabilities import BY_NAME, DOC, generate, select


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default=DOC, help=f'where to write (default {DOC})')
    parser.add_argument('--rows', nargs='+', default=[], metavar='TEXT',
                        help='only the rows whose label contains one of these')
    parser.add_argument('--capabilities', nargs='+', default=[], choices=list(BY_NAME),
                        metavar='NAME', help=f'only these columns: {", ".join(BY_NAME)}')
    args = parser.parse_args(argv)
    generate(args.out, select(args.rows), [BY_NAME[name] for name in args.capabilities])


if __name__ == '__main__':
    main()
