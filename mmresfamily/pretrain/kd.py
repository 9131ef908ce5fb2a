"""Knowledge distillation for mmpretrain classifiers (Hinton et al. 2015; He et al. 2019, "Bag of
Tricks", section 5): a frozen teacher's logits, softened by a temperature, supervise the student
next to the labels. mmpretrain has no distillation; these register in the `mmresfamily` scope:

    model = dict(type='mmresfamily.KDImageClassifier', backbone=..., neck=..., head=...,
                 teacher='configs/pretrain/resnet/resnet152_8xb32_in1k.py',  # or a model dict
                 teacher_ckpt='work_dirs/resnet152_8xb32_in1k/epoch_100.pth',
                 kd_loss=dict(type='mmresfamily.KDLoss', temperature=20., alpha=0.5))
"""
import os.path as osp
from typing import List, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

from ..registry import MODELS
from ..utils.pretrained import load_pretrained


@MODELS.register_module()
class KDLoss(nn.Module):
    """(1 - alpha) * label_loss + alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)).

    KL is summed over classes and averaged over the batch; T^2 keeps the soft term's gradients on
    the scale of the label loss's whatever T is (Hinton et al.). `label_loss` is the head's own
    loss (hard, smoothed or mixup/cutmix soft labels).
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 0.5):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'KDLoss temperature must be > 0; got {temperature}')
        if not 0 <= alpha <= 1:
            raise ValueError(f'KDLoss alpha must be in [0, 1]; got {alpha}')
        self.temperature, self.alpha = float(temperature), float(alpha)

    def distill(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor):
        """T^2 * KL(softmax(teacher/T) || softmax(student/T)), in float32 (AMP-safe)."""
        t = self.temperature
        log_student = F.log_softmax(student_logits.float() / t, dim=1)
        log_teacher = F.log_softmax(teacher_logits.detach().float() / t, dim=1)
        kl = F.kl_div(log_student, log_teacher, reduction='batchmean', log_target=True)
        return kl * t * t

    def forward(self, student_logits, teacher_logits, label_loss) -> dict:
        return dict(loss_cls=(1 - self.alpha) * label_loss,
                    loss_kd=self.alpha * self.distill(student_logits, teacher_logits))


@MODELS.register_module()
class KDImageClassifier(ImageClassifier):
    """An mmpretrain ImageClassifier (the student) distilled from a frozen teacher.

    Args:
        teacher (dict | str): the teacher's model config, or a config file whose `model` is the
            teacher (e.g. its own pretrain config). It gets the student's preprocessed batch, so it
            must expect the same normalisation.
        teacher_ckpt (str): the teacher's weights: a tools/train.py checkpoint or a bare state
            dict, loaded strictly by `init_weights()` (which mmengine's Runner calls before it
            resumes or loads anything) with `utils.load_pretrained` (weights only, the
            runner-checkpoint allow-list; keys or shapes that differ are refused). Before that
            the teacher is untrained, and `loss()` refuses to run.
        kd_loss (dict): the loss mixing labels and teacher, `mmresfamily.KDLoss` by default.
        **kwargs: ImageClassifier's arguments (backbone, neck, head, train_cfg, ...).

    The teacher is a submodule (it follows .to()/.cuda() and is saved in checkpoints; the student
    backbone alone comes out with tools/publish_backbone.py), has requires_grad=False, runs under
    no_grad, and stays in eval mode whatever `train()` is told (fixed BN statistics).
    """

    def __init__(self, teacher: Union[dict, str], teacher_ckpt: str,
                 kd_loss: dict = dict(type='mmresfamily.KDLoss'), **kwargs):
        super().__init__(**kwargs)
        if isinstance(teacher, str):
            if not osp.isfile(teacher):
                raise FileNotFoundError(f'KDImageClassifier: teacher config not found: {teacher}')
            teacher = Config.fromfile(teacher).model
        self.teacher = MMPRETRAIN_MODELS.build(teacher)
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        self.teacher_ckpt = teacher_ckpt
        self.teacher_loaded = False
        self.kd_loss = MMPRETRAIN_MODELS.build(kd_loss)

    def init_weights(self):
        # the student's init must not re-initialise the teacher (a waste: the checkpoint replaces
        # it); hide it from mmengine's recursive init, then load its weights
        teacher = self._modules.pop('teacher')
        try:
            super().init_weights()
        finally:
            self._modules['teacher'] = teacher
        self.load_teacher()

    def load_teacher(self):
        if not osp.isfile(self.teacher_ckpt):
            raise FileNotFoundError(f'KDImageClassifier: teacher checkpoint not found: '
                                    f'{self.teacher_ckpt} (set model.teacher_ckpt)')
        # the shared reader (weights only + the runner-checkpoint allow-list) and fit check
        load_pretrained(self.teacher, self.teacher_ckpt, strict=True)
        self.teacher_loaded = True

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        return self

    def loss(self, inputs: torch.Tensor, data_samples: List) -> dict:
        if not self.teacher_loaded:
            raise RuntimeError('KDImageClassifier: the teacher is not loaded; init_weights() loads '
                               f'{self.teacher_ckpt} (mmengine Runner.train calls it)')
        logits = self.head(self.extract_feat(inputs))
        with torch.no_grad():
            teacher_logits = self.teacher(inputs, mode='tensor')
        losses = self.head._get_loss(logits, data_samples)  # the head's label loss (+ accuracy)
        losses.update(self.kd_loss(logits, teacher_logits, losses.pop('loss')))
        return losses
