"""`python -m mmresfamily.benchmark SUBCOMMAND ...` (`tools/benchmark.py`)."""
import argparse
import shlex
import sys

from . import involution, models

# name -> module with HELP, add_arguments(parser) and run(args)
SUBCOMMANDS = {'models': models, 'involution': involution}


def main(argv=None, prog='python -m mmresfamily.benchmark'):
    """Parse `argv` and run its subcommand; `prog` is how the report names the command."""
    parser = argparse.ArgumentParser(prog=prog, description=sys.modules[__package__].__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    for name, module in SUBCOMMANDS.items():
        module.add_arguments(commands.add_parser(name, help=module.HELP,
                                                 description=module.HELP))
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.command_line = f'{prog} {shlex.join(argv)}'
    return SUBCOMMANDS[args.command].run(args)
