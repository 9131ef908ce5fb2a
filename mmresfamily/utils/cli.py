"""argparse helpers shared by the command lines: bad numbers are argument errors naming what is
allowed; config dicts given on the command line are read as literals, never executed."""
import argparse
import ast


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


def is_literal_dict(text: str) -> bool:
    """Whether a command-line value is meant as a dict (`dict(...)` or `{...}`), not a file."""
    return text.strip().startswith(('dict(', '{'))


def literal_value(text: str):
    """A Python literal, where dicts may also be written `dict(key=value, ...)` as in configs.
    Nothing is executed: anything else (a call, a name) raises ValueError (or SyntaxError)."""
    def literal(node):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id == 'dict' and not node.args:
            return {kw.arg: literal(kw.value) for kw in node.keywords}
        if isinstance(node, ast.Dict):
            return {literal(k): literal(v) for k, v in zip(node.keys, node.values)}
        if isinstance(node, (ast.List, ast.Tuple)):
            values = [literal(v) for v in node.elts]
            return values if isinstance(node, ast.List) else tuple(values)
        return ast.literal_eval(node)

    return literal(ast.parse(text.strip(), mode='eval').body)
