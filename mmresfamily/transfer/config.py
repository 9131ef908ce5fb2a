"""A transfer run's config: the template with this run's backbone, data, classes and the shared
schedule."""
import os
import time


def make_configure(args, run, data, classes, train_images, init_file, channels, resume):
    """Turn a template config into this run's config (applied by launch.make_runner)."""
    from mmengine.config import ConfigDict
    (train_ann, train_img, val_ann, val_img), root = data, str(args.data_root)

    def set_num_classes(node, key=''):
        if isinstance(node, dict):
            if 'num_classes' in node and key != 'rpn_head':
                node['num_classes'] = len(classes)
            for k, v in node.items():
                set_num_classes(v, k)
        elif isinstance(node, list):
            for v in node:
                set_num_classes(v, key)

    def set_dataset(loader, ann, img):
        dataset = loader.dataset
        while 'dataset' in dataset:  # dataset wrappers
            dataset = dataset.dataset
        dataset.update(data_root=root, ann_file=ann, data_prefix=dict(img=img),
                       metainfo=dict(classes=tuple(classes)))
        if args.image_size:
            for step in dataset.pipeline:
                if step['type'] in ('Resize', 'mmdet.Resize'):
                    step.update(scale=args.image_size, keep_ratio=True)

    def configure(cfg):
        cfg.model.backbone = ConfigDict(
            run['cfg'], init_cfg=init_file and dict(type='Pretrained', checkpoint=init_file,
                                                    prefix='backbone.'))
        cfg.model.neck.in_channels = channels
        set_num_classes(cfg.model)
        set_dataset(cfg.train_dataloader, train_ann, train_img)
        set_dataset(cfg.test_dataloader, val_ann, val_img)
        cfg.test_evaluator.ann_file = os.path.join(root, val_ann)
        # evaluated once, by runner.test() after training
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
        if args.batch_size:
            cfg.train_dataloader.batch_size = args.batch_size
        # the shared schedule: template optimizer, linear warm-up, cosine to lr / 100
        iters = args.iters
        lr = args.lr or cfg.optim_wrapper.optimizer.lr
        cfg.optim_wrapper.optimizer.lr = lr
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters)
        cfg.param_scheduler = [
            dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
                 end=min(100, max(1, iters // 6))),
            dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=iters, eta_min=lr / 100)]
        cfg.log_processor = dict(by_epoch=False)
        cfg.default_hooks.logger = dict(type='LoggerHook', interval=max(1, min(50, iters // 10)))
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False,
                                            interval=max(1, -(-iters // 5)), max_keep_ckpts=1)
        cfg.randomness = dict(seed=args.seed)
        cfg.resume, cfg.load_from = resume, None
        cfg.experiment_name = f'{run["key"]}_{time.strftime("%Y%m%d_%H%M%S")}'
        if cfg.get('visualizer'):  # a named instance is global: a later run would reuse it
            cfg.visualizer.name = cfg.experiment_name
        cfg.merge_from_dict(args.cfg_options)
        # mmengine's iteration loop sleeps 2 s at every epoch end: repeat a small train set
        # so that an epoch lasts at least 200 iterations
        repeat = -(-200 * cfg.train_dataloader.batch_size // max(1, train_images))
        if repeat > 1:
            cfg.train_dataloader.dataset = dict(type='RepeatDataset', times=repeat,
                                                dataset=cfg.train_dataloader.dataset)
    return configure
