from .checkpoint import (
                         CheckpointRefusedError,
                         install_runner_checkpoint_allowlist,
                         runner_checkpoint_globals,
                         trusted_runner_checkpoints,
)
from .checkpoint_file import CheckpointFileError, load_checkpoint_file
from .pretrained import load_pretrained
from .state_dict import (
                         CheckpointError,
                         CheckpointMismatchError,
                         StateDictFit,
                         check_state_dict_fits,
                         compare_state_dicts,
                         select_prefix,
                         strip_prefix,
                         unwrap_state_dict,
)

__all__ = ['CheckpointRefusedError', 'install_runner_checkpoint_allowlist',
           'runner_checkpoint_globals', 'trusted_runner_checkpoints', 'CheckpointFileError',
           'load_checkpoint_file', 'load_pretrained', 'CheckpointError', 'CheckpointMismatchError',
           'StateDictFit', 'check_state_dict_fits', 'compare_state_dicts', 'select_prefix',
           'strip_prefix', 'unwrap_state_dict']
