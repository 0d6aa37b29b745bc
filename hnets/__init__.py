"""Hypernetworks: networks that produce the weights of main networks (see :mod:`hnets.hnet_interface`)."""
from hnets.chunked_mlp_hnet import ChunkedHMLP
from hnets.hnet_container import HContainer
from hnets.hnet_interface import HyperNetInterface
from hnets.hnet_perturbation_wrapper import HPerturbWrapper
from hnets.mlp_hnet import HMLP

__all__ = ['HyperNetInterface', 'HMLP', 'ChunkedHMLP', 'HContainer', 'HPerturbWrapper']
