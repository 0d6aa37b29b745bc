"""hnet_helpers: embedding (re)initialisation and per-condition parameters for every hypernetwork type."""
import pytest
import torch

from hnets.chunked_mlp_hnet import ChunkedHMLP
from hnets.hnet_container import HContainer
from hnets.hnet_helpers import get_conditional_parameters, init_chunk_embeddings, init_conditional_embeddings
from hnets.hnet_perturbation_wrapper import HPerturbWrapper
from hnets.mlp_hnet import HMLP

SHAPES = [[3, 2], [3]]


def test_init_conditional_embeddings_default_and_custom():
    hnet = HMLP(SHAPES, cond_in_size=4000, layers=(), num_cond_embs=2, verbose=False)
    init_conditional_embeddings(hnet, normal_mean=3., normal_std=0.5)
    for e in hnet.conditional_params:  # 4000 draws: mean/std within ~5 standard errors
        assert abs(e.mean().item() - 3.) < 0.05 and abs(e.std().item() - 0.5) < 0.03
    init_conditional_embeddings(hnet, init_fct=lambda emb, cond_id: emb.fill_(cond_id))
    assert torch.equal(hnet.get_cond_in_emb(1), torch.ones(4000))


def test_init_chunk_embeddings():
    hnet = ChunkedHMLP(SHAPES, chunk_size=2, cond_chunk_embs=True, cond_in_size=0, num_cond_embs=2, layers=(4,),
                       verbose=False)
    seen = []

    def init_fct(cemb, chunk_id, cond_id=None):
        seen.append((chunk_id, cond_id))
        cemb.fill_(10 * cond_id + chunk_id)

    init_chunk_embeddings(hnet, init_fct=init_fct)
    assert len(seen) == 2 * hnet.num_chunks
    assert torch.equal(hnet.get_chunk_emb(chunk_id=4, cond_id=1), torch.full((8,), 14.))
    plain = HMLP(SHAPES, verbose=False)
    before = [p.clone() for p in plain.internal_params]
    init_chunk_embeddings(plain)  # no chunk embeddings: untouched
    assert all(torch.equal(a, b) for a, b in zip(before, plain.internal_params))


def test_get_conditional_parameters_for_all_types():
    hmlp = HMLP(SHAPES, cond_in_size=3, num_cond_embs=2, verbose=False)
    assert get_conditional_parameters(hmlp, 1)[0] is hmlp.conditional_params[1]
    chunked = ChunkedHMLP(SHAPES, chunk_size=2, cond_chunk_embs=True, cond_in_size=3, num_cond_embs=2,
                          verbose=False)
    got = get_conditional_parameters(chunked, 0)
    assert got[0] is chunked.get_cond_in_emb(0) and got[1] is chunked.get_chunk_emb(cond_id=0)
    container = HContainer([[3, 2], [3], [5]], hnets=[hmlp], cond_param_shapes=[[5]], num_cond_embs=2,
                           verbose=False)
    got = get_conditional_parameters(container, 1)
    assert got[0] is hmlp.conditional_params[1] and list(got[1].shape) == [5]
    wrapped = HPerturbWrapper(hmlp, input_handler=lambda **kw: (None, None, kw['cond_id']),
                              output_handler=lambda out, **kw: out, verbose=False)
    assert get_conditional_parameters(wrapped, 0)[0] is hmlp.conditional_params[0]
    with pytest.raises(ValueError, match='cond_id'):
        get_conditional_parameters(hmlp, 2)
    with pytest.raises(TypeError, match='hnet'):
        get_conditional_parameters(object(), 0)


def test_warns_without_held_conditional_parameters():
    hnet = HMLP(SHAPES, cond_in_size=3, no_cond_weights=True, verbose=False)
    with pytest.warns(UserWarning, match='no conditional parameters'):
        assert get_conditional_parameters(hnet, 0) == []
    with pytest.warns(UserWarning, match='no conditional parameters'):
        init_conditional_embeddings(hnet)


def test_chunk_embedding_helpers_cover_structured_hmlp():
    """StructuredHMLP holds one chunk-embedding tensor per chunk kind (``get_chunk_embs``): both helpers must
    reach all of them, per condition when they are conditional."""
    from hnets.structured_mlp_hnet import StructuredHMLP

    targets = [[3], [3], [10, 5], [10]]
    chunks = [[[3]], [[10, 5], [10]]]

    def assemble(parts):
        (a,), (b,), (w, bias) = parts
        return [a, b, w, bias]

    hnet = StructuredHMLP(targets, chunks, [2, 1], [2, 3], {'layers': []}, assemble, cond_chunk_embs=True,
                          cond_in_size=0, num_cond_embs=2, verbose=False)
    init_chunk_embeddings(hnet, normal_mean=5., normal_std=0.)
    for cond_id in range(2):
        for cembs in hnet.get_chunk_embs(cond_id=cond_id):
            assert torch.all(cembs == 5.)
    seen = []
    init_chunk_embeddings(hnet, init_fct=lambda emb, chunk_id, cond_id=None: seen.append((cond_id, chunk_id)))
    assert sorted(seen) == [(c, k) for c in range(2) for k in (0, 0, 1)]
    params = get_conditional_parameters(hnet, 1)
    held = hnet.get_chunk_embs(cond_id=1)
    assert len(params) == 2 and all(p is q for p, q in zip(params, held))
