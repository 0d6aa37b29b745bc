"""Hypernetwork-agnostic helpers: (re)initialise embeddings, collect one condition's parameters.

They work by duck typing on what a network offers -- ``get_cond_in_emb`` (conditional input embeddings),
``get_chunk_emb``/``num_chunks``/``cond_chunk_embs`` (chunk embeddings), ``internal_hnets`` (containers) and
``internal_hnet`` (wrappers) -- so new hypernetwork types need no change here.
"""
from warnings import warn

import torch

from hnets.hnet_interface import HyperNetInterface


def _check_hnet(hnet):
    if not isinstance(hnet, HyperNetInterface):
        raise TypeError('hnet: expected a HyperNetInterface, got %s' % type(hnet).__name__)


def _children(hnet):
    if hasattr(hnet, 'internal_hnets'):
        return list(hnet.internal_hnets)
    if hasattr(hnet, 'internal_hnet'):
        return [hnet.internal_hnet]
    return []


def _held_cond_embs(hnet):
    """``[(cond_id, embedding)]`` of the held conditional input embeddings (empty if none)."""
    if not hasattr(hnet, 'get_cond_in_emb'):
        return []
    try:
        return [(i, hnet.get_cond_in_emb(i)) for i in range(hnet.num_known_conds)]
    except RuntimeError:
        return []


def init_conditional_embeddings(hnet, normal_mean=0., normal_std=1., init_fct=None):
    """(Re)initialise the held conditional input embeddings in place.

    Default: :math:`\\mathcal{N}(\\text{normal\\_mean}, \\text{normal\\_std}^2)`; with ``init_fct`` each
    embedding is passed as ``init_fct(cond_emb, cond_id)`` instead. Chunk embeddings are not input
    embeddings (see :func:`init_chunk_embeddings`); networks without held embeddings are left alone.
    """
    _check_hnet(hnet)
    if hnet.conditional_params is None:
        warn('init_conditional_embeddings: the hypernetwork holds no conditional parameters')
        return
    with torch.no_grad():
        for cond_id, emb in _held_cond_embs(hnet):
            if init_fct is None:
                emb.normal_(normal_mean, normal_std)
            else:
                init_fct(emb, cond_id)
    for child in _children(hnet):
        if child.conditional_params is not None:
            init_conditional_embeddings(child, normal_mean, normal_std, init_fct)


def init_chunk_embeddings(hnet, normal_mean=0., normal_std=1., init_fct=None):
    """(Re)initialise held chunk embeddings in place (networks without chunking are left alone).

    ``init_fct(chunk_emb, chunk_id, cond_id=None)`` receives one embedding (a row) at a time; ``cond_id`` is
    set for conditional chunk embeddings.
    """
    _check_hnet(hnet)
    cond_ids = list(range(hnet.num_known_conds)) if getattr(hnet, 'cond_chunk_embs', False) else [None]
    with torch.no_grad():
        for cond_id in cond_ids:
            for cembs in _held_chunk_embs(hnet, cond_id):
                if init_fct is None:
                    cembs.normal_(normal_mean, normal_std)
                else:
                    for chunk_id in range(cembs.shape[0]):
                        init_fct(cembs[chunk_id], chunk_id, cond_id=cond_id)
    for child in _children(hnet):
        init_chunk_embeddings(child, normal_mean, normal_std, init_fct)


def _held_chunk_embs(hnet, cond_id):
    """The chunk-embedding tensors ``hnet`` holds (of condition ``cond_id`` if they are conditional), each
    ``[num_chunks, emb_size]``: ChunkedHMLP has one (``get_chunk_emb``), StructuredHMLP one per chunk kind
    (``get_chunk_embs``). Empty when the network has none or they are supplied from outside."""
    try:
        if hasattr(hnet, 'get_chunk_embs'):
            return list(hnet.get_chunk_embs(cond_id=cond_id))
        if hasattr(hnet, 'get_chunk_emb'):
            return [hnet.get_chunk_emb(cond_id=cond_id)]
    except RuntimeError:  # embeddings not held by this network
        pass
    return []


def get_conditional_parameters(hnet, cond_id):
    """The held parameters specific to condition ``cond_id``: its input embedding, its chunk embeddings
    (if conditional) and, for containers, its plain per-condition tensors. Empty if none are held."""
    _check_hnet(hnet)
    hnet._parse_cond_ids(cond_id)
    if hnet.conditional_params is None:
        warn('get_conditional_parameters: the hypernetwork holds no conditional parameters')
        return []
    ret = [emb for i, emb in _held_cond_embs(hnet) if i == cond_id]
    if getattr(hnet, 'cond_chunk_embs', False):
        ret += _held_chunk_embs(hnet, cond_id)
    for child in _children(hnet):
        if child.conditional_params is not None:
            ret += get_conditional_parameters(child, cond_id)
    if hasattr(hnet, 'internal_hnets'):
        params = hnet.internal_params
        ret += [params[m['index']] for m in hnet.param_shapes_meta
                if m.get('celement_type') == 'cond' and m.get('celement_cind') == cond_id and m['index'] != -1]
    return ret
