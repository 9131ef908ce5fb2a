from setuptools import find_packages, setup

setup(
    name='mmresfamily',
    version='0.1.0',
    description='The ResNet family of vision backbones as an OpenMMLab plugin',
    packages=find_packages(include=['mmresfamily', 'mmresfamily.*']),
    python_requires='>=3.9',
    install_requires=['torch', 'mmengine>=0.10', 'mmcv>=2.0'],
)
