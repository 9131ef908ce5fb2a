"""Highway gating of a residual block's shortcut (Srivastava et al. 2015).

y = T * F(x) + (1 - T) * x with T = sigmoid(1x1 conv of the shortcut). The gate bias starts
negative (-2: T ~ 0.12), so a gated block starts close to its identity path, as the Highway
paper recommends for deep stacks.
"""
import torch
import torch.nn as nn


class HighwayGate(nn.Module):

    def __init__(self, channels: int, bias_init: float = -2.0):
        super().__init__()
        self.bias_init = bias_init
        self.conv = nn.Conv2d(channels, channels, 1)
        self.init_weights()

    def init_weights(self):
        # called again by mmengine after the backbone's generic conv init
        nn.init.kaiming_normal_(self.conv.weight, mode='fan_out', nonlinearity='sigmoid')
        nn.init.constant_(self.conv.bias, self.bias_init)

    def gate(self, identity: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(identity))

    def forward(self, out: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        # lerp = t * out + (1 - t) * identity in one op, exact at t = 0 and at t = 1
        return torch.lerp(identity, out, self.gate(identity))
