"""The errors mmresfamily raises for bad arguments and inputs, and the checks that raise them.

Messages name the argument (or layer) and what is allowed. The classes also derive from the
exception types mmdet, mmseg and mmpretrain raise for the same mistake, so code written against
the toolboxes keeps catching them:

* `InvalidArgumentError` (ValueError, AssertionError): a bad argument value; the toolboxes
  `assert` most of their arguments (style, stage tuples, num_stages, DCN on BasicBlock, ...).
* `UnknownChoiceError` (+ KeyError): a value not among the allowed ones -- a depth or arch
  missing from a table (mmdet/mmpretrain raise KeyError), an unregistered layer type (mmcv
  raises KeyError).
* `ArgumentTypeError` (+ TypeError): a value of the wrong type ('50' for an int, a string for a
  config dict), where the toolboxes fail with a TypeError.
* `InvalidInputError` (ValueError): a forward input the backbone cannot run.

`str(err)` is the plain message (KeyError alone would quote it).
"""
import numbers

__all__ = ['InvalidArgumentError', 'UnknownChoiceError', 'ArgumentTypeError', 'InvalidInputError',
           'check_choice', 'check_stage_tuple', 'check_int', 'check_stage_ints', 'check_number',
           'check_flag', 'check_unsupported']


class InvalidArgumentError(ValueError, AssertionError):
    """A bad argument value (an AssertionError in the toolboxes)."""
    __str__ = Exception.__str__  # subclasses mixing in KeyError must not quote the message


class UnknownChoiceError(InvalidArgumentError, KeyError):
    """A value that is not one of the allowed choices (KeyError for depth/arch/layer types)."""


class ArgumentTypeError(InvalidArgumentError, TypeError):
    """An argument of the wrong type."""


class InvalidInputError(ValueError):
    """A forward input the backbone cannot process (type, shape, batch or spatial size)."""


def is_int(value) -> bool:
    """An integer that is not a bool (True would otherwise pass as 1)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_choice(name: str, value, allowed):
    """`value` must be one of `allowed`; ints must be ints (not 4.0, '4' or True)."""
    allowed = tuple(allowed)
    ints_only = all(is_int(a) for a in allowed)
    if not (is_int(value) if ints_only else isinstance(value, (str, numbers.Number))) \
            or value not in allowed:
        allowed_text = ', '.join(repr(a) for a in allowed)
        raise UnknownChoiceError(f'{name} must be one of {allowed_text}; got {value!r}')
    return value


def check_stage_tuple(name: str, value, num_stages: int, at_least: bool = False) -> tuple:
    """A per-stage tuple (strides, dilations, stage_with_dcn, ...) must have num_stages entries
    (`at_least`: num_stages or more, as an arch table's per-stage lists)."""
    if not isinstance(value, (tuple, list)):
        raise ArgumentTypeError(f'{name} must be a tuple with one entry per stage '
                                f'(num_stages={num_stages}); got {value!r}')
    value = tuple(value)
    if at_least and len(value) < num_stages:
        raise InvalidArgumentError(f'{name} must have at least num_stages={num_stages} entries; '
                                   f'got {value!r}')
    if not at_least and len(value) != num_stages:
        raise InvalidArgumentError(f'{name} must have one entry per stage (num_stages='
                                   f'{num_stages}); got {len(value)}: {value!r}')
    return value


def _int_text(minimum: int, plural: bool = False) -> str:
    if minimum == 1:
        return 'positive ints' if plural else 'a positive int'
    return f'ints >= {minimum}' if plural else f'>= {minimum} (an int)'


def check_int(name: str, value, minimum: int = 1) -> int:
    """`value` must be an int >= `minimum` (a width, a count, a factor)."""
    if not is_int(value):
        raise ArgumentTypeError(f'{name} must be {_int_text(minimum)}; got {value!r}')
    if value < minimum:
        raise InvalidArgumentError(f'{name} must be {_int_text(minimum)}; got {value!r}')
    return int(value)


def check_stage_ints(name: str, value, num_stages: int, minimum: int = 1,
                     at_least: bool = False) -> tuple:
    """A per-stage tuple of ints >= `minimum` (strides, dilations, multi_grid, block counts)."""
    value = check_stage_tuple(name, value, num_stages, at_least)
    if not all(is_int(v) for v in value):
        raise ArgumentTypeError(f'{name} entries must be {_int_text(minimum, True)}; '
                                f'got {value!r}')
    if any(v < minimum for v in value):
        raise InvalidArgumentError(f'{name} entries must be {_int_text(minimum, True)}; '
                                   f'got {value!r}')
    return tuple(int(v) for v in value)


def check_number(name: str, value, low: float, high: float, low_open: bool = False,
                 high_open: bool = False, or_none: bool = False):
    """`value` must be a real number in [low, high] (open ends with `low_open` / `high_open`),
    or None with `or_none`."""
    if or_none and value is None:
        return value
    interval = f'{"(" if low_open else "["}{low}, {high}{")" if high_open else "]"}'
    message = f'{name} must be {"None or " if or_none else ""}in {interval}; got {value!r}'
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ArgumentTypeError(message)
    above_low = value > low if low_open else value >= low
    below_high = value < high if high_open else value <= high
    if not (above_low and below_high):
        raise InvalidArgumentError(message)
    return value


def check_flag(name: str, value) -> bool:
    """A switch must be a bool: a string such as 'False' would silently count as on."""
    if isinstance(value, bool) or is_int(value) and value in (0, 1):
        return bool(value)
    raise ArgumentTypeError(f'{name} must be True or False; got {value!r}')


def check_unsupported(name: str, value, owner: str, remedy: str):
    """An option `owner` (a family or block) does not have must be left unset (None or empty):
    `NAME is not supported by OWNER<remedy>`, where `remedy` says why or what to use instead."""
    if value is None or isinstance(value, (list, tuple, dict)) and not value:
        return
    verb = 'are' if name.endswith('s') else 'is'
    raise InvalidArgumentError(f'{name} {verb} not supported by {owner}{remedy}')
