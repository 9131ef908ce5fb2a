from .checkpoint import (CheckpointRefusedError, install_runner_checkpoint_allowlist,
                         runner_checkpoint_globals, trusted_runner_checkpoints)

__all__ = ['CheckpointRefusedError', 'install_runner_checkpoint_allowlist',
           'runner_checkpoint_globals', 'trusted_runner_checkpoints']
