"""Main networks: modules that accept externally supplied (e.g. hypernetwork-generated) weights."""
from mnets.lenet import LeNet
from mnets.mlp import MLP
from mnets.mnet_interface import MainNetInterface
from mnets.zenkenet import ZenkeNet

__all__ = ['LeNet', 'MLP', 'MainNetInterface', 'ZenkeNet']
