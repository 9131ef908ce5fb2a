from .fashion_mnist import CLASSES as FASHION_MNIST_CLASSES
from .fashion_mnist import find_fashion_mnist, load_fashion_mnist

__all__ = ['FASHION_MNIST_CLASSES', 'find_fashion_mnist', 'load_fashion_mnist']
