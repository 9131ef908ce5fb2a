#!/usr/bin/env python
"""Does a backbone learn? Backbone + linear head on real Fashion-MNIST, plain PyTorch
(mmresfamily/train_fashion_mnist.py; `-h`).

    python tools/train_fashion_mnist.py --type RedNet --depth 26 --iters 300 --size 32
"""
from mmresfamily.train_fashion_mnist import main

if __name__ == '__main__':
    main()
