"""COCO transfer evaluation (`tools/coco_transfer.py`): fine-tune one detector with each of
several backbones under one shared schedule, evaluate COCO bbox (and segm) AP with pycocotools,
and write a CSV, a Markdown table and a bar chart.

    python tools/coco_transfer.py --detector faster --data-root data/quickstart \\
        --backbone scratch "dict(type='mmresfamily.ResNet', depth=18)" \\
        --backbone fmnist "dict(type='mmresfamily.ResNet', depth=18)" \\
                          checkpoints/r18_fmnist-XXXXXXXX.pth \\
        --iters 600 --out docs/coco_transfer
    tools/dist_coco_transfer.sh 2 ...              # distributed (rank 0 writes the files)

--backbone NAME SPEC [CHECKPOINT] (repeatable): SPEC is a backbone dict, `dict(...)` or `{...}`,
or the name of a configs/_base_/backbones/ file (its `backbone_det`). CHECKPOINT: backbone-only
weights (tools/publish_backbone.py), a full classification checkpoint (its `backbone.` keys are
used) or converted weights (tools/convert_weights.py); without one the backbone starts from
scratch. The neck's in_channels follow the backbone's out_channels.

Templates (--recipe): `quickstart` (default, small images and data) uses configs/quickstart
(Faster / Mask R-CNN) and configs/coco_transfer (RetinaNet, Cascade): narrow FPN/heads, small
anchors. `coco` uses the stock mmdet 1x COCO configs in configs/mmdet/resnet. In both, the tool
replaces backbone, neck in_channels, num_classes, data paths and classes, image size and schedule:
--iters iterations, --batch-size, the template's optimizer at --lr, linear warm-up then cosine.

Data (--data-root): COCO-format json + images. Without --train-ann/--val-ann/--train-img/--val-img
the quickstart layout (annotations/instances_{train,val}.json, {train,val}/images/) or else the
COCO 2017 one (annotations/instances_{train,val}2017.json, {train,val}2017/) is used. Classes are
the train json's categories in their order (--classes picks a subset); num_classes follows.

Outputs: OUT.csv (one row per backbone x detector x iters), OUT.md and OUT.png (bbox mAP, mAP@0.5
and segm mAP per backbone). Rows already in OUT.csv are skipped; a run interrupted mid-training
resumes from the last checkpoint in WORK_DIR/DETECTOR_NAME_ITERSit. The console shows a progress
bar and results (--verbose adds mmengine's log, always written to the work dir); --cfg-options
k=v overrides every run's config last.
"""
from .run import main

__all__ = ['main']
