"""HContainer: assembly of hypernetwork outputs and plain tensors, batched over conditions."""
import pytest
import torch

from hnets.chunked_mlp_hnet import ChunkedHMLP
from hnets.hnet_container import HContainer
from hnets.mlp_hnet import HMLP

TARGETS = [[10, 5], [10], [10], [10], [3, 10]]


def _container(assembly_fct=None, **kwargs):
    fl_hnet = HMLP([[10, 5], [10]], cond_in_size=4, layers=(8,), num_cond_embs=3, verbose=False)
    return HContainer(TARGETS, assembly_fct, hnets=[fl_hnet], uncond_param_shapes=[[10], [10]],
                      uncond_param_names=['bn_scale', 'bn_shift'], cond_param_shapes=[[3, 10]], num_cond_embs=3,
                      verbose=False, **kwargs), fl_hnet


def test_default_assembly_concatenates_sources():
    hnet, fl_hnet = _container()
    assert hnet.num_known_conds == 3 and hnet.num_outputs == 50 + 10 + 10 + 10 + 30
    out = hnet(cond_id=[2, 0], ret_format='stacked')
    assert [list(t.shape[1:]) for t in out] == TARGETS
    inner = fl_hnet(cond_id=[2, 0], ret_format='stacked')
    assert torch.equal(out[0], inner[0]) and torch.equal(out[1], inner[1])
    plain = hnet._plain_params
    assert torch.equal(out[2][0], plain[0]) and torch.equal(out[3][1], plain[1])
    cond_meta = [m for m in hnet.param_shapes_meta if m.get('celement_type') == 'cond']
    by_cond = {m['celement_cind']: hnet.internal_params[m['index']] for m in cond_meta}
    assert torch.equal(out[4][0], by_cond[2]) and torch.equal(out[4][1], by_cond[0])
    flat = hnet(cond_id=[2, 0], ret_format='flattened')
    assert torch.equal(hnet.convert_out_format(out, 'stacked', 'flattened'), flat)


def test_custom_assembly_is_vmapped_over_conditions():
    def reorder(hnet_tensors, uncond, cond):
        w, b = hnet_tensors[0]
        return [w, b, uncond[0] * 2, uncond[1], cond[0]]
    ref, _ = _container()
    hnet, _ = _container(reorder)
    hnet.load_state_dict(ref.state_dict())
    a = ref(cond_id=[0, 1], ret_format='stacked')
    b = hnet(cond_id=[0, 1], ret_format='stacked')
    assert torch.equal(b[2], 2 * a[2]) and all(torch.equal(x, y) for x, y in zip(a[3:], b[3:]))
    seq = hnet(cond_id=[0, 1], ret_format='sequential')
    assert len(seq) == 2 and torch.equal(seq[1][4], b[4][1])


def test_parameter_bookkeeping_and_gradients():
    hnet, fl_hnet = _container()
    n_inner = len(fl_hnet.internal_params)
    assert len(hnet.internal_params) == n_inner + 2 + 3
    assert len(hnet.conditional_params) == 3 + 3  # 3 embeddings + 3 plain per-condition tensors
    assert len(list(hnet.parameters())) == len(hnet.internal_params)  # no duplicate registration
    hnet(cond_id=1, ret_format='flattened').sum().backward()
    assert all(p.grad is not None for p in fl_hnet.unconditional_params)
    assert hnet._plain_params[0].grad is not None


def test_external_weights_equal_internal():
    hnet, _ = _container()
    ws = [p.detach().clone() for p in hnet.internal_params]
    assert torch.equal(hnet(cond_id=[0, 2], weights=ws, ret_format='flattened'),
                       hnet(cond_id=[0, 2], ret_format='flattened'))
    ext, _ = _container(no_uncond_weights=True)
    assert [list(s) for s in ext.hyper_shapes_learned] == [[10], [10]]
    with pytest.raises(ValueError, match='no_uncond_weights=True'):
        ext(cond_id=0)
    theta = [torch.ones(10), torch.zeros(10)]
    out = ext(cond_id=0, weights=theta)
    assert torch.equal(out[2], torch.ones(10))


def test_chunked_member_with_extra_weights():
    member = ChunkedHMLP([[4, 4]], chunk_size=5, cond_chunk_embs=True, cond_in_size=0, num_cond_embs=2,
                         layers=(6,), verbose=False)
    hnet = HContainer([[4, 4], [4]], hnets=[member], uncond_param_shapes=[[4]], verbose=False)
    cembs = member.get_chunk_emb(cond_id=1).unsqueeze(0)
    out = hnet(weights={'hnets': [{'chunk_embs': cembs}]}, ret_format='flattened')
    assert torch.equal(out[:, :16], member(cond_id=1, ret_format='flattened'))


def test_errors():
    hnet, _ = _container()
    with pytest.raises(ValueError, match='cond_id: expected an int or list'):
        hnet()
    with pytest.raises(ValueError, match=r'cond_id: expected values in \[0, 3\)'):
        hnet(cond_id=7)
    with pytest.raises(ValueError, match='assembly_fct: expected outputs of shapes'):
        HContainer([[10, 5]], hnets=[HMLP([[10, 5], [10]], verbose=False)], verbose=False)(cond_id=0)
    with pytest.raises(ValueError, match='at least one source'):
        HContainer([[3]], verbose=False)
    with pytest.raises(ValueError, match=r'hnets\[1\]: expected num_known_conds == 1'):
        HContainer([[3]], hnets=[HMLP([[3]], verbose=False), HMLP([[3]], num_cond_embs=2, verbose=False)],
                   verbose=False)
    with pytest.raises(ValueError, match='uncond_param_names: expected 1 names, got 2'):
        HContainer([[3]], uncond_param_shapes=[[3]], uncond_param_names=['a', 'b'], verbose=False)
