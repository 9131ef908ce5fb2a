"""Real Fashion-MNIST (Xiao et al. 2017, MIT) from the Debian package `dataset-fashion-mnist`.

Nothing is downloaded: tools/setup.sh installs the package (or unpacks it into the cache when not
root); a directory holding the four standard idx `.gz` files works too.
"""
import gzip
import os
import zlib
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker',
           'Bag', 'Ankle boot')
FILES = {
    'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
    'test': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'),
}
PACKAGE_DIR = 'usr/share/datasets/fashion-mnist'


def _search_paths():
    cache = os.environ.get('MMRF_CACHE', '~/.cache/mmresfamily')
    return ('/' + PACKAGE_DIR,  # apt-get install dataset-fashion-mnist
            f'{cache}/debs/{PACKAGE_DIR}')  # unpacked by tools/setup.sh when not root


def find_fashion_mnist(root: Optional[str] = None) -> Path:
    """The directory with the four idx files: `root`, $FASHION_MNIST_DIR, or the package's."""
    candidates = [root] if root else [os.environ.get('FASHION_MNIST_DIR'), *_search_paths()]
    needed = [name for pair in FILES.values() for name in pair]
    for candidate in filter(None, candidates):
        path = Path(candidate).expanduser()
        if all((path / name).is_file() for name in needed):
            return path
    searched = ', '.join(str(c) for c in filter(None, candidates))
    raise FileNotFoundError(
        f'Fashion-MNIST not found (looked in: {searched}). Run tools/setup.sh (installs the '
        f'Debian package dataset-fashion-mnist) or pass a directory holding {needed}.')


class FashionMnistFileError(ValueError):
    """A Fashion-MNIST file that is not a complete idx file; the message names it."""


IDX_UBYTE = 0x08  # idx type code of unsigned bytes, the only one Fashion-MNIST uses


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An idx file (gzip): magic 0 0 <type> <ndim>, ndim big-endian u32 sizes, then the data."""
    try:
        with gzip.open(path, 'rb') as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:  # not gzip, or cut short
        raise FashionMnistFileError(f'Fashion-MNIST file {path} is corrupt: cannot gunzip it '
                                    f'({err})') from None
    header = 4 + 4 * ndim
    if len(data) < header or data[:4] != bytes((0, 0, IDX_UBYTE, ndim)):
        raise FashionMnistFileError(
            f'Fashion-MNIST file {path} is corrupt: not an idx file of {ndim}-d unsigned bytes '
            f'(starts {data[:4].hex(" ") or "empty"}, expected 00 00 08 {ndim:02x})')
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    if len(data) - header != int(np.prod(dims)):
        raise FashionMnistFileError(f'Fashion-MNIST file {path} is corrupt: its header says '
                                    f'{dims} ({int(np.prod(dims))} bytes) but '
                                    f'{len(data) - header} bytes follow')
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def load_fashion_mnist(split: str = 'train',
                       root: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28], labels uint8 [N]) of the 'train' (60k) or 'test' (10k) split."""
    if split not in FILES:
        raise ValueError(f'split must be one of {tuple(FILES)}; got {split!r}')
    path = find_fashion_mnist(root)
    images_file, labels_file = (path / name for name in FILES[split])
    images, labels = _read_idx(images_file, 3), _read_idx(labels_file, 1)
    if len(images) != len(labels):
        raise FashionMnistFileError(f'Fashion-MNIST files {images_file} and {labels_file} '
                                    f'disagree: {len(images)} images, {len(labels)} labels')
    return images, labels
