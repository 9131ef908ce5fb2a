"""ImageNet pretraining extras that need mmpretrain (kept out of `mmresfamily.models`, which loads
in every toolbox): knowledge distillation. Configs load it with

    custom_imports = dict(imports=['mmresfamily', 'mmresfamily.pretrain'])
"""
from .kd import KDImageClassifier, KDLoss

__all__ = ['KDImageClassifier', 'KDLoss']
