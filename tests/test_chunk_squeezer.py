"""Tests of mnets.chunk_squeezer.ChunkSqueezer: contract checks, the definition written out chunk by chunk,
dynamic biases, errors. Float64, tolerances as in mnet_contract."""
import mnet_contract as contract
import pytest
import torch
import torch.nn.functional as F

from mnets.chunk_squeezer import ChunkSqueezer

N_IN, B = 23, 5


def _x(batch=B):
    return torch.randn(batch, N_IN, dtype=torch.float64)


def _net(**kwargs):
    options = {'n_in': N_IN, 'n_out': 3, 'inp_chunk_dim': 5, 'out_chunk_dim': 2, 'cemb_size': 4,
               'red_layers': (6,), 'net_layers': (7,), 'verbose': False, **kwargs}
    return contract.as_double(ChunkSqueezer(**options))


def _checks(net, x):
    meta = net.param_shapes_meta
    assert meta[0]['name'] == 'embedding' and net.param_shapes[0] == [net.num_chunks, 4]
    if net.internal_params is not None:
        # Stricter than check_bookkeeping: a net with weights holds every tensor, none comes from outside.
        assert sorted(d['index'] for d in meta) == list(range(len(net.internal_params)))
        contract.check_all(net, x)
    else:
        # check_all without check_external_equals_internal, which needs internal weights.
        contract.check_bookkeeping(net)
        assert net.hyper_shapes_learned == net.param_shapes
        contract.check_no_weights_requires_weights(net, x)
        contract.check_weights_used(net, x, contract.random_weights(net))
        contract.check_vmap_matches_loop(net, x)
        contract.check_weight_errors(net, x)


@pytest.mark.parametrize('kwargs', [
    {},
    {'no_weights': True},
    {'use_bias': False, 'activation_fn': torch.tanh},
    {'dynamic_biases': [0, 1]},
    {'dynamic_biases': [1], 'no_weights': True},
    {'inp_chunk_dim': 23, 'red_layers': ()},
])
def test_contract(kwargs):
    _checks(_net(**kwargs), _x())


def _mlp(h, layers, last_linear=True, shifts=None):
    """Reference MLP: ReLU(W h + b [+ shift]) per layer, last layer without ReLU."""
    for i, (w, b) in enumerate(layers):
        h = h @ w.T + b
        if shifts is not None and shifts[i] is not None:
            h = h + shifts[i]
        if i < len(layers) - 1 or not last_linear:
            h = F.relu(h)
    return h


def test_output_matches_definition():
    net = _net()
    cembs, rw1, rb1, rw2, rb2, nw1, nb1, nw2, nb2 = [p.detach() for p in net.internal_params]
    x = _x()
    padded = torch.cat([x, torch.zeros(B, 2, dtype=x.dtype)], dim=1)
    assert net.num_chunks == 5
    squeezed = [_mlp(torch.cat([padded[:, 5 * c:5 * c + 5], cembs[c].expand(B, -1)], dim=1),
                     [(rw1, rb1), (rw2, rb2)]) for c in range(5)]
    expected = _mlp(torch.cat(squeezed, dim=1), [(nw1, nb1), (nw2, nb2)])
    torch.testing.assert_close(net(x), expected, **contract.TOL)


def test_dynamic_biases_match_definition():
    net = _net(dynamic_biases=[1])
    cembs, v1, rw1, rb1, rw2, rb2, nw1, nb1, nw2, nb2 = [p.detach() for p in net.internal_params]
    assert list(v1.shape) == [2, 4] and [list(w.shape) for w in (rw1, rw2)] == [[6, 5], [2, 6]]
    x = _x()
    padded = F.pad(x, (0, 2))
    squeezed = [_mlp(padded[:, 5 * c:5 * c + 5], [(rw1, rb1), (rw2, rb2)], shifts=[None, cembs[c] @ v1.T])
                for c in range(5)]
    expected = _mlp(torch.cat(squeezed, dim=1), [(nw1, nb1), (nw2, nb2)])
    torch.testing.assert_close(net(x), expected, **contract.TOL)


def test_batchnorm_and_distillation_targets():
    net = _net(use_batch_norm=True, distill_bn_stats=True)
    assert net.hyper_shapes_distilled == [[6], [6], [7], [7]]
    net.train()
    net(_x())
    net.eval()
    targets = net.distillation_targets()
    x = _x()
    torch.testing.assert_close(net(x, distilled_params=targets), net(x), **contract.TOL)


def test_errors():
    net = _net()
    with pytest.raises(ValueError, match=r'x: expected shape \[B, 23\], got \[5, 22\]'):
        net(torch.randn(5, 22, dtype=torch.float64))
    with pytest.raises(ValueError, match='distilled_params'):
        net(_x(), distilled_params=[torch.zeros(6)])
    with pytest.raises(ValueError, match=r'dynamic_biases: .*\[0, 1\], got \[2\]'):
        _net(dynamic_biases=[2])
    with pytest.raises(ValueError, match='inp_chunk_dim'):
        _net(inp_chunk_dim=0)
    with pytest.raises(ValueError, match='cemb_init_std'):
        _net(cemb_init_std=-1.0)
    with pytest.raises(ValueError, match='init_weights: expected 9 tensors'):
        _net(init_weights=[torch.zeros(1)])
