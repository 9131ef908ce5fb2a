"""argparse helpers shared by the tools: bad numbers are argument errors naming what is allowed."""
import argparse


def int_at_least(minimum: int, reason: str = ''):
    """An argparse `type`: an int >= minimum, else `argument --flag: must be an integer >= N`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f'must be an integer >= {minimum}{f" ({reason})" if reason else ""}; got {text!r}')
        return value
    parse.__name__ = f'int >= {minimum}'  # argparse names the type in some messages
    return parse
