# resnet50_8xb32-tricks_in1k.py plus knowledge distillation from a frozen ResNet-152 teacher:
# loss = (1 - alpha) * label loss + alpha * T^2 * KL(teacher || student at temperature T).
# teacher: a config file whose `model` is the teacher (or a model dict); teacher_ckpt: its weights,
# e.g. work_dirs/resnet152_8xb32_in1k/epoch_100.pth from training that config with tools/train.py.
# The teacher sees the student's preprocessed (normalised, mixed) batch.
_base_ = ['./resnet50_8xb32-tricks_in1k.py']
custom_imports = dict(imports=['mmresfamily', 'mmresfamily.pretrain'], allow_failed_imports=False)
model = dict(
    type='mmresfamily.KDImageClassifier',
    teacher='{{fileDirname}}/resnet152_8xb32_in1k.py',
    teacher_ckpt='checkpoints/resnet152_8xb32_in1k.pth',
    kd_loss=dict(type='mmresfamily.KDLoss', temperature=20., alpha=0.5))  # T=20 as in the paper
