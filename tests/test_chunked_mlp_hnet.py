"""ChunkedHMLP: chunk coverage and cropping, equality with a per-chunk loop, conditional chunk embeddings,
gradients, external weights and chunked hyperfan init."""
import math

import pytest
import torch

from hnets.chunked_mlp_hnet import ChunkedHMLP
from mnets.mlp import MLP

SHAPES = [[5, 3], [5], [2, 5], [2]]  # 32 outputs
TOL = dict(rtol=1e-5, atol=1e-6)  # float32 gemms of different batch sizes round differently


def _loop_over_chunks(hnet, cond_input, chunk_embs, uncond_trunk):
    """Reference: one trunk pass per chunk, concatenated and cropped."""
    chunks = []
    for j in range(hnet.num_chunks):
        cemb = chunk_embs[:, j] if chunk_embs.dim() == 3 else chunk_embs[j].expand(cond_input.shape[0], -1)
        chunks.append(hnet._trunk_forward(torch.cat([cemb, cond_input], dim=1), uncond_trunk))
    return torch.cat(chunks, dim=1)[:, :hnet.num_outputs]


def test_chunks_cover_exactly_num_outputs_and_equal_loop():
    hnet = ChunkedHMLP(SHAPES, chunk_size=7, chunk_emb_size=3, cond_in_size=4, layers=(10,), num_cond_embs=3,
                       verbose=False)
    assert hnet.num_chunks == 5  # 5 * 7 = 35 >= 32 > 28
    assert list(hnet.get_chunk_emb().shape) == [5, 3]
    out = hnet(cond_id=[2, 0], ret_format='flattened')
    assert out.shape == (2, 32)
    cond_input = torch.stack([hnet.get_cond_in_emb(2), hnet.get_cond_in_emb(0)])
    expected = _loop_over_chunks(hnet, cond_input, hnet.get_chunk_emb(), hnet.unconditional_params[:-1])
    assert torch.allclose(out, expected, **TOL)
    for k, i in enumerate([2, 0]):
        assert torch.allclose(out[k], hnet(cond_id=i, ret_format='flattened')[0], **TOL)
    assert [list(t.shape) for t in hnet(cond_id=1)] == SHAPES


def test_conditional_chunk_embeddings():
    hnet = ChunkedHMLP(SHAPES, chunk_size=8, chunk_emb_size=[3], cond_chunk_embs=True, cond_in_size=0,
                       layers=(10,), num_cond_embs=2, verbose=False)
    assert hnet.chunk_emb_size == 3 and hnet.num_chunks == 4
    assert hnet.conditional_param_shapes == [[4, 3], [4, 3]]
    out = hnet(cond_id=[1, 0], ret_format='flattened')
    cembs = torch.stack([hnet.get_chunk_emb(cond_id=1), hnet.get_chunk_emb(cond_id=0)])
    assert torch.allclose(out, hnet(weights={'chunk_embs': cembs}, ret_format='flattened'), **TOL)
    trunk = hnet.unconditional_params
    loop = torch.cat([hnet._trunk_forward(cembs[:, j], trunk) for j in range(4)], dim=1)
    assert torch.allclose(out, loop, **TOL)
    with pytest.raises(ValueError, match="cond_id, weights\\['chunk_embs'\\]"):
        hnet(cond_id=0, weights={'chunk_embs': cembs})
    with pytest.raises(ValueError, match="chunk_embs'\\]: expected a tensor \\[K, 4, 3\\]"):
        hnet(weights={'chunk_embs': cembs[:, :2]})


def test_gradients_reach_theta_chunk_and_condition_embeddings():
    hnet = ChunkedHMLP(SHAPES, chunk_size=7, chunk_emb_size=3, cond_in_size=4, layers=(10,), num_cond_embs=2,
                       verbose=False)
    hnet(cond_id=[1], ret_format='flattened').pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in hnet.unconditional_params)
    assert hnet.get_cond_in_emb(1).grad.abs().sum() > 0 and hnet.get_cond_in_emb(0).grad is None
    assert (hnet.get_chunk_emb().grad.abs().sum(1) > 0).all()  # every chunk embedding is used


def test_external_uncond_weights_equal_internal_and_vmap():
    ref = ChunkedHMLP(SHAPES, chunk_size=7, chunk_emb_size=3, cond_in_size=4, layers=(10,), verbose=False)
    ext = ChunkedHMLP(SHAPES, chunk_size=7, chunk_emb_size=3, cond_in_size=4, layers=(10,),
                      no_uncond_weights=True, verbose=False)
    theta = [p.detach() for p in ref.unconditional_params]
    e = torch.randn(3, 4)
    assert torch.equal(ext(cond_input=e, weights=theta, ret_format='flattened'),
                       ref(cond_input=e, ret_format='flattened'))
    with pytest.raises(ValueError, match='no_uncond_weights=True'):
        ext(cond_input=e)
    stack = [torch.stack([t, 2 * t]) for t in theta]
    batched = torch.func.vmap(lambda ws: ext(cond_input=e, weights=ws, ret_format='flattened'))(stack)
    assert torch.allclose(batched[1], ext(cond_input=e, weights=[2 * t for t in theta], ret_format='flattened'),
                          **TOL)


def test_constructor_validation():
    with pytest.raises(ValueError, match='chunk_size'):
        ChunkedHMLP(SHAPES, chunk_size=0, verbose=False)
    with pytest.raises(ValueError, match='chunk_emb_size'):
        ChunkedHMLP(SHAPES, chunk_size=4, chunk_emb_size=[3, 4], verbose=False)
    with pytest.raises(ValueError, match='num_cond_embs'):
        ChunkedHMLP(SHAPES, chunk_size=4, cond_chunk_embs=True, num_cond_embs=0, verbose=False)
    with pytest.raises(ValueError, match='uncond_in_size, cond_in_size'):
        ChunkedHMLP(SHAPES, chunk_size=4, cond_in_size=0, num_cond_embs=0, verbose=False)


@pytest.mark.parametrize('cond_chunk_embs', [False, True])
def test_chunked_hyperfan_init_gives_target_variances(cond_chunk_embs):
    mnet = MLP(4, 3, (16,), no_weights=True, verbose=False)  # 64 + 16 + 48 + 3 outputs
    cond_var = 0.01  # small enough that no chunk-embedding variance has to be clipped
    hnet = ChunkedHMLP(mnet.param_shapes, chunk_size=16, chunk_emb_size=8, cond_chunk_embs=cond_chunk_embs,
                       cond_in_size=8, layers=(32, 32), verbose=False)
    # Chunks never straddle two tensors here, so every tensor must hit its own target.
    expected = [2 / 4, 1 / (3 * 4), 2 / 16, 1 / (3 * 16)]  # Kaiming fan-in weights, PyTorch-default biases
    sums = torch.zeros(4, dtype=torch.float64)
    n_inits = 100
    gen = torch.Generator().manual_seed(1)
    for seed in range(n_inits):
        torch.manual_seed(seed)
        hnet.apply_chunked_hyperfan_init(method='in', cond_var=cond_var, mnet=mnet)
        e = torch.randn(10, 8, generator=gen) * math.sqrt(cond_var)
        with torch.no_grad():
            if cond_chunk_embs:
                out = hnet(cond_input=e, weights={'chunk_embs': hnet.get_chunk_emb(cond_id=0).expand(10, -1, -1)},
                           ret_format='stacked')
            else:
                out = hnet(cond_input=e, ret_format='stacked')
        sums += torch.stack([t.double().pow(2).mean() for t in out])
    got = (sums / n_inits).tolist()
    assert all(abs(g / e - 1) < 0.2 for g, e in zip(got, expected)), (got, expected)


def test_chunked_hyperfan_warns_when_clipping_and_rejects_batchnorm():
    hnet = ChunkedHMLP(SHAPES, chunk_size=7, cond_in_size=4, layers=(10,), verbose=False)
    with pytest.warns(UserWarning, match='clipped'):
        hnet.apply_chunked_hyperfan_init(cond_var=10.)
    bn = ChunkedHMLP(SHAPES, chunk_size=7, cond_in_size=4, layers=(10,), use_batch_norm=True, verbose=False)
    with pytest.raises(ValueError, match='batch norm'):
        bn.apply_chunked_hyperfan_init()
    with pytest.raises(ValueError, match='target_vars'):
        hnet.apply_chunked_hyperfan_init(target_vars=[1.])
