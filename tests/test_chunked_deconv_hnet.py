"""ChunkedHDeconv: chunk count and cropping, equality with a per-chunk loop, batched conditions, conditional
chunk embeddings, gradients, external weights and errors."""
import pytest
import torch

from hnets.chunked_deconv_hnet import ChunkedHDeconv

SHAPES = [[10, 5], [10], [3, 10], [3]]  # 93 outputs
TOL = dict(rtol=1e-4, atol=1e-5)


def _hnet(**kw):
    args = dict(chunk_emb_size=3, num_layers=3, num_filters=[8, 8], kernel_size=3, sa_units=(1,), cond_in_size=4,
                num_cond_embs=3, verbose=False)
    args.update(kw)
    return ChunkedHDeconv(SHAPES, (4, 5), **args)


def test_chunks_cover_exactly_num_outputs_and_equal_loop():
    hnet = _hnet()
    assert hnet.num_chunks == 5 and list(hnet.get_chunk_emb().shape) == [5, 3]  # 5 * 20 = 100 >= 93
    out = hnet(cond_id=[2, 0], ret_format='flattened')
    assert out.shape == (2, 93)
    trunk = hnet.unconditional_params[:-1]
    e = torch.stack([hnet.get_cond_in_emb(2), hnet.get_cond_in_emb(0)])
    loop = torch.cat([hnet._deconv_forward(torch.cat([hnet.get_chunk_emb(j).expand(2, 3), e], 1), trunk)
                      for j in range(5)], dim=1)[:, :93]
    assert torch.allclose(out, loop, **TOL)
    for k, c in enumerate([2, 0]):
        assert torch.allclose(out[k], hnet(cond_id=c, ret_format='flattened')[0], **TOL)
    assert [list(t.shape) for t in hnet(cond_id=1)] == SHAPES


def test_conditional_chunk_embeddings_and_gradients():
    hnet = _hnet(cond_chunk_embs=True, cond_in_size=0, num_cond_embs=2)
    assert hnet.conditional_param_shapes == [[5, 3], [5, 3]]
    out = hnet(cond_id=[1, 0], ret_format='flattened')
    cembs = torch.stack([hnet.get_chunk_emb(cond_id=1), hnet.get_chunk_emb(cond_id=0)])
    assert torch.allclose(out, hnet(weights={'chunk_embs': cembs}, ret_format='flattened'), **TOL)
    out.pow(2).sum().backward()
    assert (hnet.get_chunk_emb(cond_id=1).grad.abs().sum(1) > 0).all()
    assert all(p.grad is not None for p in hnet.unconditional_params)
    with pytest.raises(ValueError, match="cond_id, weights\\['chunk_embs'\\]: expected at most one"):
        hnet(cond_id=0, weights={'chunk_embs': cembs})
    with pytest.raises(ValueError, match="chunk_embs'\\]: expected a tensor \\[K, 5, 3\\]"):
        hnet(weights={'chunk_embs': cembs[:, :2]})
    with pytest.raises(ValueError, match='conditional chunk embeddings need one of them'):
        hnet()


def test_external_weights_equal_internal():
    ref = _hnet()
    ext = _hnet(no_uncond_weights=True)
    theta = [p.detach() for p in ref.unconditional_params]
    e = torch.randn(3, 4)
    assert torch.allclose(ext(cond_input=e, weights={'uncond_weights': theta}, ret_format='flattened'),
                          ref(cond_input=e, ret_format='flattened'), rtol=1e-6, atol=1e-7)
    with pytest.raises(RuntimeError, match='chunk embeddings are not held'):
        ext.get_chunk_emb()


def test_errors():
    with pytest.raises(ValueError, match='chunk_emb_size: expected a positive int'):
        _hnet(chunk_emb_size=0)
    with pytest.raises(ValueError, match='uncond_in_size, cond_in_size: expected a positive total input size'):
        _hnet(cond_in_size=0)
    hnet = _hnet()
    with pytest.raises(ValueError, match="weights\\['chunk_embs'\\]: only allowed with cond_chunk_embs=True"):
        hnet(cond_id=0, weights={'chunk_embs': torch.zeros(1, 5, 3)})
    with pytest.raises(ValueError, match='chunk_id: expected an int in \\[0, 5\\), got 5'):
        hnet.get_chunk_emb(5)
