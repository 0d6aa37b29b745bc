"""HyperNetInterface: bookkeeping, output formats and validation of forward arguments (via HMLP)."""
import pytest
import torch

from hnets.hnet_interface import RET_FORMATS
from hnets.mlp_hnet import HMLP

SHAPES = [[4, 3], [4], [2, 4], [2]]


@pytest.fixture
def hnet():
    return HMLP(SHAPES, cond_in_size=5, layers=(7,), num_cond_embs=3, verbose=False)


def test_bookkeeping_splits_theta_and_embeddings(hnet):
    assert hnet.num_outputs == 12 + 4 + 8 + 2
    assert hnet.num_known_conds == 3
    assert hnet.conditional_param_shapes == [[5]] * 3
    assert hnet.unconditional_param_shapes == [[7, 5], [7], [26, 7], [26]]
    assert hnet.num_params == hnet.num_internal_params == 15 + 35 + 7 + 26 * 7 + 26
    assert hnet.hyper_shapes_learned is None
    assert [list(p.shape) for p in hnet.layer_weight_tensors] == [[7, 5], [26, 7]]
    for p, i in zip(hnet.unconditional_params, hnet.unconditional_params_ref):
        assert p is hnet.internal_params[i]
    assert len(hnet.conditional_params) == 3


def test_all_formats_convert_into_each_other(hnet):
    flat = hnet(cond_id=[0, 1, 2], ret_format='flattened')
    for src in RET_FORMATS:
        out = hnet(cond_id=[0, 1, 2], ret_format=src)
        for trgt in RET_FORMATS:
            converted = hnet.convert_out_format(out, src, trgt)
            back = hnet.convert_out_format(converted, trgt, 'flattened')
            assert torch.equal(back, flat), (src, trgt)
    single = hnet(cond_id=1, ret_format='squeezed')
    assert [list(t.shape) for t in single] == SHAPES
    for trgt in RET_FORMATS:
        back = hnet.convert_out_format(hnet.convert_out_format(single, 'squeezed', trgt), trgt, 'flattened')
        # A K=1 pass may round differently from the K=3 gemm: float32 tolerance only.
        assert torch.allclose(back, flat[1:2], rtol=1e-5, atol=1e-6)


def test_stacked_format_has_leading_k_dim(hnet):
    stacked = hnet(cond_id=[2, 0], ret_format='stacked')
    assert [list(t.shape) for t in stacked] == [[2, *s] for s in SHAPES]
    seq = hnet(cond_id=[2, 0], ret_format='sequential')
    for k in range(2):
        for t, s in zip(stacked, seq[k]):
            assert torch.equal(t[k], s)
    assert len(hnet(cond_id=[1], ret_format='stacked')[0]) == 1  # K == 1 keeps its dim


def test_flatten_params_round_trip(hnet):
    ts = [torch.randn(s) for s in SHAPES]
    flat = hnet.flatten_params(ts)
    assert flat.shape == (26,)
    assert all(torch.equal(a, b) for a, b in zip(hnet.flatten_params(flat, SHAPES, unflatten=True), ts))


def test_unknown_ret_format_raises(hnet):
    with pytest.raises(ValueError, match="ret_format.*'flattened'.*'stacked'.*got 'flat'"):
        hnet(cond_id=0, ret_format='flat')
    with pytest.raises(ValueError, match='trgt_format'):
        hnet.convert_out_format(hnet(cond_id=0), 'squeezed', 'bogus')


def test_cond_id_out_of_range_raises(hnet):
    with pytest.raises(ValueError, match=r'cond_id: expected values in \[0, 3\), got 3'):
        hnet(cond_id=3)
    with pytest.raises(ValueError, match=r'cond_id.*got -1'):
        hnet(cond_id=[0, -1])
    with pytest.raises(TypeError, match='cond_id'):
        hnet(cond_id=[])


def test_cond_input_and_cond_id_together_raise(hnet):
    with pytest.raises(ValueError, match='cond_input, cond_id: expected at most one'):
        hnet(cond_input=torch.randn(1, 5), cond_id=0)


def test_missing_input_raises(hnet):
    with pytest.raises(ValueError, match='expected at least one hypernetwork input'):
        hnet()


def test_wrong_weight_count_and_shape_raise(hnet):
    with pytest.raises(ValueError, match='weights: expected 7 tensors, got 2'):
        hnet(cond_id=0, weights=[torch.zeros(1), torch.zeros(1)])
    ws = [p.detach().clone() for p in hnet.internal_params]
    ws[4] = torch.zeros(8)
    with pytest.raises(ValueError, match=r'weights\[4\]: expected shape \[7\], got \[8\]'):
        hnet(cond_id=0, weights=ws)
    with pytest.raises(ValueError, match=r"uncond_weights'\]: expected 4 tensors, got 3"):
        hnet(cond_id=0, weights={'uncond_weights': ws[3:6]})
    with pytest.raises(ValueError, match='dict keys'):
        hnet(cond_id=0, weights={'theta': ws})


def test_no_uncond_weights_without_weights_raises():
    hnet = HMLP(SHAPES, cond_in_size=5, layers=(7,), no_uncond_weights=True, verbose=False)
    assert hnet.hyper_shapes_learned == hnet.unconditional_param_shapes
    with pytest.raises(ValueError, match='no_uncond_weights=True.*expected 4 tensors'):
        hnet(cond_id=0)


def test_full_weight_list_equals_internal(hnet):
    ws = [p.detach().clone() for p in hnet.internal_params]
    assert torch.equal(hnet(cond_id=[0, 2], weights=ws, ret_format='flattened'),
                       hnet(cond_id=[0, 2], ret_format='flattened'))


def test_task_emb_accessors_and_add_to_uncond_params(hnet):
    with pytest.warns(DeprecationWarning):
        assert hnet.get_task_emb(2) is hnet.conditional_params[2]
    with pytest.raises(ValueError, match='task_id'):
        hnet.get_task_emb(5)
    deltas = [torch.ones_like(p) for p in hnet.unconditional_params]
    summed = hnet.add_to_uncond_params(deltas)
    assert all(torch.equal(s, p + 1) for s, p in zip(summed, hnet.unconditional_params))
    with pytest.raises(ValueError, match='dparams: expected 4 tensors, got 1'):
        hnet.add_to_uncond_params(deltas[:1])


def test_uncond_and_cond_batches_broadcast():
    hnet = HMLP(SHAPES, uncond_in_size=2, cond_in_size=5, layers=(7,), num_cond_embs=2, verbose=False)
    z = torch.randn(1, 2)
    both = hnet(uncond_input=z, cond_id=[0, 1], ret_format='flattened')
    assert both.shape == (2, 26)
    assert torch.allclose(both[1], hnet(uncond_input=z, cond_id=1, ret_format='flattened')[0])
    with pytest.raises(ValueError, match='equal batch sizes'):
        hnet(uncond_input=torch.randn(3, 2), cond_id=[0, 1])
