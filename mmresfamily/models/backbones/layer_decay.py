"""Layer ids for mmpretrain's layer-wise learning-rate decay of ResNet-style backbones.

mmpretrain's `LearningRateDecayOptimWrapperConstructor` asks the model (which asks its backbone)
`get_layer_depth(param_name, prefix)` -> (layer id, number of ids) and scales each parameter's
learning rate by decay_rate ** (number of ids - 1 - layer id). mmpretrain's rule for ResNets: the
stem is id 0, stage 1 id 1, stages 2 and 3 split into groups of consecutive blocks (the group
sizes depend on the depth), stage 4 the last backbone id, and everything outside the backbone
(neck, head) one more.
"""
import math
import re
from typing import Sequence, Tuple

# (blocks of stage 2, blocks of stage 3) -> blocks per layer id in those stages
BLOCK_GROUPS = {(4, 6): (2, 3), (4, 23): (2, 3), (8, 36): (4, 4), (24, 36): (4, 4),
                (30, 48): (5, 6)}


def resnet_layer_depth(stage_blocks: Sequence[int], param_name: str,
                       prefix: str = '') -> Tuple[int, int]:
    middle = tuple(stage_blocks[1:3])
    if len(stage_blocks) != 4 or middle not in BLOCK_GROUPS:
        allowed = ', '.join(f'(_, {a}, {b}, _)' for a, b in BLOCK_GROUPS)
        raise ValueError(f'layer-wise learning-rate decay (get_layer_depth) follows mmpretrain, '
                         f'which defines it for 4 stages with blocks {allowed}; '
                         f'got {tuple(stage_blocks)}')
    group2, group3 = BLOCK_GROUPS[middle]
    ids2, ids3 = math.ceil(middle[0] / group2), math.ceil(middle[1] / group3)
    last = 2 + ids2 + ids3  # stage 4
    num_ids = last + 2
    if not param_name.startswith(prefix):
        return last + 1, num_ids
    match = re.match(r'layer(\d+)\.(\d+)\.', param_name[len(prefix):])
    if match is None:  # the stem
        return 0, num_ids
    stage, block = int(match.group(1)), int(match.group(2))
    first_ids = {1: 1, 2: 2 + block // group2, 3: 2 + ids2 + block // group3}
    return first_ids.get(stage, last), num_ids
