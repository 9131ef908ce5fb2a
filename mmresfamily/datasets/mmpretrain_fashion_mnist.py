"""Fashion-MNIST for mmpretrain configs, read from the Debian package's idx `.gz` files
(mmpretrain's own FashionMNIST wants unpacked files and would try to download them).

    custom_imports = dict(imports=['mmresfamily.datasets.mmpretrain_fashion_mnist'])
    dataset = dict(type='FashionMNISTLocal', split='train', num_samples=None)
"""
from typing import Optional

import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from .fashion_mnist import CLASSES, load_fashion_mnist


@DATASETS.register_module()
class FashionMNISTLocal(BaseDataset):
    """Images as HxWx3 uint8 (gray repeated, so 3-channel backbones transfer to detection).

    `num_samples` keeps the first N items (class-balanced enough for quick runs; the split's
    order is Fashion-MNIST's own shuffled order).
    """
    METAINFO = {'classes': CLASSES}

    def __init__(self, split: str = 'train', data_root: Optional[str] = None,
                 num_samples: Optional[int] = None, **kwargs):
        self.split, self.num_samples = split, num_samples
        kwargs.setdefault('test_mode', split == 'test')
        super().__init__(ann_file='', data_root=data_root or '', **kwargs)

    def load_data_list(self):
        images, labels = load_fashion_mnist(self.split, self.data_root or None)
        if self.num_samples is not None:
            images, labels = images[:self.num_samples], labels[:self.num_samples]
        return [dict(img=np.repeat(img[:, :, None], 3, axis=2), gt_label=int(label))
                for img, label in zip(images, labels)]
