"""BatchNorm statistics recomputed with the current weights ("precise BN")."""
from typing import Iterable

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


@torch.no_grad()
def recompute_bn_statistics_(model: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Reset every BN layer's running statistics and set them to the plain average over
    train-mode forwards of `batches` (in place; each layer's momentum is restored after).

    Exponential running averages mix in statistics of earlier weights (after a short training
    run) or keep their (0, 1) defaults (a freshly built model); these are the weights' own.
    """
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    if not norms:
        return model
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
    model.train()
    for x in batches:
        model(x)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return model
