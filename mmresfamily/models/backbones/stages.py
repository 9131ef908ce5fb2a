"""Per-stage arguments the families share: strides and dilations (or mmseg's `output_stride`),
the output stride of each stage, and arguments other toolboxes spell differently."""
import itertools
import operator
from typing import List, Tuple

from ...errors import InvalidArgumentError, check_choice, check_stage_ints, check_stage_tuple

# output stride -> (strides, dilations) of four stages (mmseg's dilated-backbone recipe)
OUTPUT_STRIDES = {
    32: ((1, 2, 2, 2), (1, 1, 1, 1)),
    16: ((1, 2, 2, 1), (1, 1, 1, 2)),
    8: ((1, 2, 1, 1), (1, 1, 2, 4)),
}


def default_strides(num_stages: int) -> tuple:
    """The classification default: stride 2 from the second stage on."""
    return (1, ) + (2, ) * (num_stages - 1)


def resolve_strides(output_stride, strides, dilations, num_stages: int,
                    first_stage_strides: bool = True) -> Tuple[tuple, tuple]:
    """Per-stage (strides, dilations) for the dense families: given, or set by `output_stride`
    (8/16/32, four stages), or the classification default (`default_strides`, no dilation).
    `first_stage_strides=False` where stage 1 has no downsampling layer."""
    if output_stride is not None:
        check_choice('output_stride', output_stride, tuple(OUTPUT_STRIDES))
        if num_stages != 4 or strides is not None or dilations is not None:
            raise InvalidArgumentError('output_stride sets strides and dilations of the 4 '
                                       'stages: give either output_stride or strides/dilations, '
                                       'not both')
        return OUTPUT_STRIDES[output_stride]
    strides = default_strides(num_stages) if strides is None else strides
    dilations = (1, ) * num_stages if dilations is None else dilations
    strides = check_stage_tuple('strides', strides, num_stages)
    dilations = check_stage_ints('dilations', dilations, num_stages)
    for s in strides:
        check_choice('strides entries', s, (1, 2))
    if strides[0] != 1 and not first_stage_strides:
        raise InvalidArgumentError(f'strides[0] must be 1: stage 1 has no downsampling layer of '
                                   f'its own; got {strides!r}')
    return strides, dilations


def stage_reductions(strides, stem_reduction: int = 4) -> List[int]:
    """Each stage's output stride: the stem's times every stage stride so far."""
    return list(itertools.accumulate(strides, operator.mul, initial=stem_reduction))[1:]


def resolve_alias(name: str, value, default, alias: str, alias_value):
    """One argument that another toolbox spells differently (`alias`, None when not given):
    either spelling works; both, with different values, are refused."""
    if alias_value is None:
        return value
    if value != default and value != alias_value:
        raise InvalidArgumentError(f'{name} and {alias} are one argument (two spellings); give '
                                   f'one of them; got {name}={value!r}, {alias}={alias_value!r}')
    return alias_value
