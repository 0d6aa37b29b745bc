"""Tests of mnets.bi_rnn.BiRNN: contract checks, equality with a manual forward/backward composition and
with torch.nn.LSTM(bidirectional=True), padded sequences, errors. Float64, tolerances as in mnet_contract."""
import mnet_contract as contract
import pytest
import torch

from mnets.bi_rnn import BiRNN
from mnets.mlp import MLP
from mnets.simple_rnn import SimpleRNN

T, N, N_IN = 5, 3, 4
RNN_ARGS = {'n_in': N_IN, 'rnn_layers': (5,), 'fc_layers': (3,)}
MLP_ARGS = {'n_in': 6, 'n_out': 2, 'hidden_layers': (4,)}


def _x(steps=T, batch=N):
    return torch.randn(steps, batch, N_IN, dtype=torch.float64)


def _net(rnn_args=RNN_ARGS, mlp_args=MLP_ARGS, **kwargs):
    return contract.as_double(BiRNN(rnn_args=rnn_args, mlp_args=mlp_args, verbose=False, **kwargs))


@pytest.mark.parametrize('rnn_args, mlp_args', [
    (RNN_ARGS, MLP_ARGS),
    ({**RNN_ARGS, 'use_lstm': True, 'fc_layers': ()}, None),
    ([RNN_ARGS, {'n_in': 6, 'rnn_layers': (4,), 'fc_layers': (), 'use_lstm': True}], {**MLP_ARGS, 'n_in': 8}),
    ({**RNN_ARGS, 'use_context_mod': True}, {**MLP_ARGS, 'use_context_mod': True}),
])
def test_contract(rnn_args, mlp_args):
    contract.check_all(_net(rnn_args, mlp_args), _x())


def test_contract_no_weights():
    net = _net(no_weights=True)
    x = _x()
    contract.check_bookkeeping(net)
    contract.check_no_weights_requires_weights(net, x)
    contract.check_weights_used(net, x, contract.random_weights(net))
    contract.check_vmap_matches_loop(net, x)


def test_equals_manual_forward_backward_composition():
    net = _net(no_weights=True)
    fnet = contract.as_double(SimpleRNN(**RNN_ARGS, no_weights=True, verbose=False))
    mlp = contract.as_double(MLP(**MLP_ARGS, no_weights=True, verbose=False))
    weights = contract.random_weights(net)
    n_rnn = len(fnet.param_shapes)
    assert net.param_shapes == fnet.param_shapes * 2 + mlp.param_shapes
    w_f, w_b, w_mlp = weights[:n_rnn], weights[n_rnn:2 * n_rnn], weights[2 * n_rnn:]
    x = _x()
    h_f = fnet(x, weights=w_f)
    h_b = fnet(x.flip(0), weights=w_b).flip(0)
    expected = mlp(torch.cat([h_f, h_b], dim=2), weights=w_mlp)
    out = net(x, weights=weights)
    assert out.shape == (T, N, 2)
    torch.testing.assert_close(out, expected, **contract.TOL)


def test_bilstm_equals_torch_bidirectional_lstm():
    net = _net({'n_in': N_IN, 'rnn_layers': (5,), 'fc_layers': (), 'use_lstm': True}, None, no_weights=True)
    ref = torch.nn.LSTM(N_IN, 5, bidirectional=True).double()
    weights = [getattr(ref, f'{kind}_{part}_l0{suffix}').detach()
               for suffix in ('', '_reverse') for part in ('ih', 'hh') for kind in ('weight', 'bias')]
    # SimpleRNN orders W_ih, b_ih, W_hh, b_hh, which is the order built above.
    x = _x()
    torch.testing.assert_close(net(x, weights=weights), ref(x)[0], rtol=1e-12, atol=1e-12)


def test_padded_sequences_match_unpadded_ones():
    net = _net()
    x = _x()
    lengths = [5, 2, 3]
    padded = x.clone()
    for n, length in enumerate(lengths):
        padded[length:, n] = 7.0
    rnn_only = _net(mlp_args=None)
    out = rnn_only(padded, seq_lengths=lengths)
    for n, length in enumerate(lengths):
        single = rnn_only(x[:length, n:n + 1])
        torch.testing.assert_close(out[:length, n:n + 1], single, **contract.TOL)
        assert torch.all(out[length:, n] == 0)
    # The output MLP sees the same valid steps.
    full = net(padded, seq_lengths=torch.tensor(lengths))
    torch.testing.assert_close(full[:2, 1:2], net(x[:2, 1:2]), **contract.TOL)


def test_preprocess_fct_and_forward_batch_with_it():
    table = torch.randn(10, N_IN, dtype=torch.float64)
    net = _net(preprocess_fct=lambda tokens, seq_lengths=None: table[tokens])
    tokens = torch.randint(0, 10, (T, N))
    plain = _net()
    expected = plain(table[tokens], weights=contract.internal_as_full_list(net))
    torch.testing.assert_close(net(tokens), expected, **contract.TOL)
    stack = contract.random_weights(net, 2)
    with pytest.raises(ValueError, match='x_per_set'):
        net.forward_batch(tokens, stack)
    assert net.forward_batch(tokens, stack, x_per_set=False).shape == (2, T, N, 2)


def test_attributes():
    net = _net([RNN_ARGS, {'n_in': 6, 'rnn_layers': (4, 4), 'fc_layers': ()}], {**MLP_ARGS, 'n_in': 8})
    assert net.num_rec_layers == 6 and net.use_lstm is False
    assert net.has_fc_out and net.mask_fc_out and net.has_linear_out
    assert len(net.get_non_cm_weights()) == len(net.internal_params) and net.get_cm_weights() == []
    assert net.distillation_targets() is None
    layers = [d['layer'] for d in net.param_shapes_meta]
    assert layers == sorted(layers), 'layer ids grow from input to output'


def test_errors():
    with pytest.raises(ValueError, match=r'rnn_args\[1\]: expected n_in=6'):
        BiRNN([RNN_ARGS, RNN_ARGS], verbose=False)
    with pytest.raises(ValueError, match='mlp_args: expected n_in=6'):
        BiRNN(RNN_ARGS, {**MLP_ARGS, 'n_in': 3}, verbose=False)
    with pytest.raises(ValueError, match="'no_weights'=True conflicts"):
        BiRNN({**RNN_ARGS, 'no_weights': True}, verbose=False)
    with pytest.raises(TypeError, match='rnn_args'):
        BiRNN('lstm', verbose=False)
    with pytest.raises(ValueError, match='context_mod_no_weights must be the same'):
        BiRNN({**RNN_ARGS, 'use_context_mod': True},
              {**MLP_ARGS, 'use_context_mod': True, 'context_mod_no_weights': True}, verbose=False)
    net = _net()
    with pytest.raises(ValueError, match=r'x: expected shape \[T, N, 4\]'):
        net(torch.randn(T, N, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match='seq_lengths: expected 3 lengths'):
        net(_x(), seq_lengths=[2, 2])
    with pytest.raises(ValueError, match=r'seq_lengths: expected lengths in \[1, 5\]'):
        net(_x(), seq_lengths=[2, 6, 1])
    with pytest.raises(ValueError, match='condition'):
        net(_x(), condition={'task': 1})
    with pytest.raises(ValueError, match='distilled_params'):
        _net(mlp_args=None)(_x(), distilled_params=[])
