#!/usr/bin/env python
"""Build every model of the table and print what it measures beside what its source publishes.

    python tools/summary.py [--family F] [--size 224] [--csv out.csv] [--json]

The same as `python -m mmresfamily list --measure ...`: params (with a 1000-class head, as
published), GMACs at SIZE x SIZE (mmengine's counter) and the (stride:channels) of each output.
"""
import sys

from mmresfamily.cli import main as cli_main


def main(argv=None):
    return cli_main(['list', '--measure', *(sys.argv[1:] if argv is None else argv)])


if __name__ == '__main__':
    main()
