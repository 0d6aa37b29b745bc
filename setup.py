"""Packaging for hnetkit: continual learning with hypernetworks, in PyTorch."""
from setuptools import find_packages, setup

setup(
    name='hnetkit',
    version='0.1.0',
    description='Continual learning with hypernetworks: main networks, hypernetworks, '
                'regularizers, samplers and experiments in PyTorch.',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.9',
    packages=find_packages(include=['mnets', 'mnets.*', 'hnets', 'hnets.*', 'utils', 'utils.*',
                                    'probabilistic', 'probabilistic.*', 'data', 'data.*',
                                    'sims', 'sims.*']),
    include_package_data=True,
    package_data={'data': ['mnist/*.gz']},
    install_requires=[
        # 2.13.0 (the CPU wheel on the project's machines) must satisfy this range.
        'torch>=2.1,<3',
        'numpy',
        'tensorboardX',
        'matplotlib',
        'tqdm',
    ],
    extras_require={
        'dev': ['pytest', 'ruff', 'hypothesis'],
        'sweep': ['ray[tune]'],
    },
)
