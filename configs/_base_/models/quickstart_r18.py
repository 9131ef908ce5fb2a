# What every quickstart detector shares (each config has its own mmdet model base, so they take
# these as variables): an mmresfamily ResNet-18 trained from scratch with trainable BN, and the
# channels of its four levels for the neck.
custom_imports = dict(imports=['mmresfamily'], allow_failed_imports=False)
quickstart_backbone = dict(_delete_=True, type='mmresfamily.ResNet', depth=18,
                           out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN', requires_grad=True),
                           norm_eval=False, init_cfg=None)
quickstart_channels = [64, 128, 256, 512]
