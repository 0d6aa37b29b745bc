"""Tests of mnets.simple_rnn.SimpleRNN: contract checks, torch.nn.LSTM equality, closed forms, errors.

Numerics run in float64, where a loop and a vectorised evaluation differ only by the order of
reductions (~1e-15 relative), hence the 1e-10 tolerances of ``mnet_contract.TOL``.
"""
import mnet_contract as contract
import pytest
import torch

from mnets.simple_rnn import SimpleRNN

T, N, N_IN = 5, 4, 3


def _x(steps=T, batch=N, n_in=N_IN):
    return torch.randn(steps, batch, n_in, dtype=torch.float64)


def _net(**kwargs):
    options = {'n_in': N_IN, 'rnn_layers': (6,), 'fc_layers': (2,), 'verbose': False, **kwargs}
    return contract.as_double(SimpleRNN(**options))


def test_param_shapes_follow_reference_layout():
    vanilla = SimpleRNN(3, rnn_layers=(5,), fc_layers_pre=(4,), fc_layers=(2,), verbose=False)
    assert vanilla.param_shapes == [[4, 3], [4], [5, 4], [5], [5, 5], [5], [5, 5], [5], [2, 5], [2]]
    assert [d['layer'] for d in vanilla.param_shapes_meta] == [1, 1, 3, 3, 3, 3, 3, 3, 5, 5]
    lstm = SimpleRNN(3, rnn_layers=(5,), fc_layers=(), use_lstm=True, use_bias=False, verbose=False)
    assert lstm.param_shapes == [[20, 3], [20, 5]]
    assert not lstm.has_fc_out and not lstm.has_linear_out and lstm.has_fc_out is False
    cm = SimpleRNN(3, rnn_layers=(5,), fc_layers=(2,), use_context_mod=True, context_mod_inputs=True,
                   verbose=False)
    names = [d['name'] for d in cm.param_shapes_meta]
    assert names[:6] == ['cm_scale', 'cm_shift'] * 3
    assert [d['layer'] for d in cm.param_shapes_meta[:6]] == [0, 0, 2, 2, 4, 4]


@pytest.mark.parametrize('kwargs', [
    {},
    {'use_lstm': True},
    {'use_bias': False},
    {'use_lstm': True, 'rnn_layers': (6, 5), 'fc_layers_pre': (4,), 'fc_layers': (3, 2)},
    {'fc_layers': ()},
    {'activation': torch.nn.ReLU()},
    {'activation': None, 'use_lstm': True},
    {'use_context_mod': True, 'context_mod_inputs': True, 'fc_layers_pre': (4,)},
    {'use_context_mod': True, 'context_mod_post_activation': True, 'use_lstm': True},
    {'use_context_mod': True, 'context_mod_last_step': True, 'context_mod_gain_softplus': True},
    {'use_context_mod': True, 'context_mod_num_ts': T, 'context_mod_separate_layers_per_ts': True},
])
def test_contract(kwargs):
    contract.check_all(_net(**kwargs), _x())


@pytest.mark.parametrize('kwargs', [
    {'no_weights': True},
    {'no_weights': True, 'use_lstm': True, 'use_context_mod': True, 'context_mod_no_weights': True,
     'context_mod_num_ts': T},
    {'use_context_mod': True, 'context_mod_no_weights': True, 'context_mod_num_ts': T},
])
def test_contract_external_weights(kwargs):
    net = _net(**kwargs)
    x = _x()
    contract.check_bookkeeping(net)
    contract.check_no_weights_requires_weights(net, x)
    contract.check_weights_used(net, x, contract.random_weights(net))
    contract.check_vmap_matches_loop(net, x)
    contract.check_weight_errors(net, x)


def test_output_shapes_are_time_first():
    for fc_layers, n_out in (((7, 2), 2), ((), 6)):
        for use_lstm in (False, True):
            net = _net(fc_layers=fc_layers, use_lstm=use_lstm)
            assert net(_x(steps=7, batch=3)).shape == (7, 3, n_out)


@pytest.mark.parametrize('use_bias', [True, False])
def test_lstm_equals_torch_lstm(use_bias):
    # Both use the gate order (input, forget, cell, output) along the rows of W_ih and W_hh, so the
    # tensors map one to one: [W_ih, b_ih, W_hh, b_hh] per layer.
    net = _net(rnn_layers=(6, 5), fc_layers=(), use_lstm=True, use_bias=use_bias, no_weights=True)
    ref = torch.nn.LSTM(N_IN, 6, num_layers=1, bias=use_bias).double()
    ref2 = torch.nn.LSTM(6, 5, num_layers=1, bias=use_bias).double()
    weights = []
    for module in (ref, ref2):
        names = ['weight_ih_l0', 'bias_ih_l0', 'weight_hh_l0', 'bias_hh_l0'] if use_bias else \
            ['weight_ih_l0', 'weight_hh_l0']
        weights.extend(getattr(module, name).detach() for name in names)
    x = _x()
    expected = ref2(ref(x)[0])[0]
    torch.testing.assert_close(net(x, weights=weights), expected, rtol=1e-12, atol=1e-12)


def test_vanilla_layer_closed_form():
    net = _net(fc_layers=(2,))
    w_ih, b_ih, w_hh, b_hh, w_ho, b_ho, w_out, b_out = [p.detach() for p in net.internal_params]
    x = _x()
    h = torch.zeros(N, 6, dtype=torch.float64)
    outputs = []
    for t in range(T):
        h = torch.tanh(x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
        outputs.append(torch.tanh(h @ w_ho.T + b_ho) @ w_out.T + b_out)
    torch.testing.assert_close(net(x), torch.stack(outputs), **contract.TOL)


def test_return_hidden_lists_layer_outputs_and_states():
    net = _net(fc_layers_pre=(4,), rnn_layers=(6,), fc_layers=(3, 2), use_lstm=True)
    x = _x()
    out, hidden, hidden_int = net(x, return_hidden=True, return_hidden_int=True)
    assert [list(h.shape) for h in hidden] == [[T, N, 4], [T, N, 6], [T, N, 3]]
    assert hidden_int[0] is None and hidden_int[2] is None and hidden_int[1].shape == (T, N, 6)
    torch.testing.assert_close(out, net(x), **contract.TOL)
    # h_t = sigmoid(o) tanh(c_t) bounds each output by its cell state.
    assert torch.all(hidden[1].abs() <= hidden_int[1].tanh().abs() + 1e-12)


def test_identity_context_mod_leaves_output_unchanged():
    plain = _net(use_lstm=True)
    modulated = _net(use_lstm=True, use_context_mod=True, context_mod_no_weights=True)
    cm_shapes = [s for s, d in zip(modulated.param_shapes, modulated.param_shapes_meta)
                 if d['name'].startswith('cm_')]
    identity = [torch.ones(s, dtype=torch.float64) if i % 2 == 0 else torch.zeros(s, dtype=torch.float64)
                for i, s in enumerate(cm_shapes)]
    weights = contract.internal_as_full_list(plain)
    x = _x()
    torch.testing.assert_close(modulated(x, weights=identity + weights), plain(x), **contract.TOL)


@pytest.mark.parametrize('use_lstm', [False, True])
def test_last_step_modulation_changes_only_the_last_step(use_lstm):
    net = _net(use_lstm=use_lstm, fc_layers=(), use_context_mod=True, context_mod_last_step=True)
    x = _x()
    base = net(x)
    cm_weights = [w.detach().clone() for w in net.get_cm_weights()]
    cm_weights[1] = cm_weights[1] + 0.5
    moved = net(x, weights={'mod_weights': cm_weights})
    torch.testing.assert_close(moved[:-1], base[:-1], rtol=0, atol=0)
    assert (moved[-1] - base[-1]).abs().min() > 1e-6


def test_stacked_per_step_weights_equal_separate_layers():
    separate = _net(use_context_mod=True, context_mod_no_weights=True, context_mod_num_ts=T,
                    context_mod_separate_layers_per_ts=True)
    stacked = _net(use_context_mod=True, context_mod_no_weights=True, context_mod_num_ts=T)
    num_cm = len(separate.get_cm_inds())
    assert num_cm == 2 * (T + 1) and len(stacked.get_cm_inds()) == 4
    weights = contract.random_weights(separate)
    rec = weights[:2 * T]
    stacked_weights = [torch.stack(rec[0::2]), torch.stack(rec[1::2])] + weights[2 * T:]
    x = _x(steps=T - 1)
    torch.testing.assert_close(stacked(x, weights=stacked_weights), separate(x, weights=weights),
                               **contract.TOL)


def test_per_sample_context_mod_weights():
    net = _net(use_context_mod=True, context_mod_inputs=True, use_lstm=True)
    x = _x()
    cm = [w.detach() for w in net.get_cm_weights()]
    per_sample = [torch.stack([w + 0.1 * n for n in range(N)]) for w in cm]
    out = net(x, weights={'mod_weights': per_sample})
    for n in range(N):
        single = net(x[:, n:n + 1], weights={'mod_weights': [w + 0.1 * n for w in cm]})
        torch.testing.assert_close(out[:, n:n + 1], single, **contract.TOL)


def test_context_mod_checkpoint_condition():
    net = _net(use_context_mod=True)
    x = _x()
    before = net(x)
    for layer in net.context_mod_layers:
        layer.checkpoint_weights()
    with torch.no_grad():
        for w in net.get_cm_weights():
            w.add_(0.3)
    torch.testing.assert_close(net(x, condition=0), before, rtol=0, atol=0)
    assert not torch.allclose(net(x), before)


def test_truncated_bptt_blocks_gradients_to_early_steps():
    net = _net(use_lstm=True)
    net.bptt_depth = 2
    x = _x().requires_grad_(True)
    net(x)[-1].sum().backward()
    assert torch.all(x.grad[:T - 2] == 0) and torch.any(x.grad[T - 2:] != 0)
    with pytest.raises(ValueError, match='bptt_depth'):
        net.bptt_depth = -3


def test_orthogonal_hh_init_per_gate_block():
    net = _net(use_lstm=True)
    net.init_hh_weights_orthogonal()
    w_hh = net.internal_params[2].detach()
    for block in w_hh.chunk(4):
        torch.testing.assert_close(block @ block.T, torch.eye(6, dtype=torch.float64), rtol=0, atol=1e-10)


def test_output_weight_mask():
    net = _net()
    masks = net.get_output_weight_mask(out_inds=[1])
    assert masks[-2][1].all() and not masks[-2][0].any()
    with pytest.raises(NotImplementedError, match='recurrent'):
        _net(fc_layers=()).get_output_weight_mask()


def test_input_errors():
    net = _net()
    with pytest.raises(ValueError, match=r'x: expected shape \[T, N, 3\]'):
        net(torch.randn(N, N_IN, dtype=torch.float64))
    with pytest.raises(ValueError, match=r'x: expected shape \[T, N, 3\].*\[5, 4, 7\]'):
        net(_x(n_in=7))
    with pytest.raises(TypeError, match='x: expected a tensor'):
        net([[1.0]])
    with pytest.raises(ValueError, match='distilled_params'):
        net(_x(), distilled_params=[torch.zeros(1)])
    with pytest.raises(ValueError, match='return_hidden_int'):
        net(_x(), return_hidden_int=True)
    with pytest.raises(TypeError, match='condition'):
        net(_x(), condition='task0')
    short = _net(use_context_mod=True, context_mod_num_ts=3, context_mod_separate_layers_per_ts=True)
    with pytest.raises(ValueError, match='context_mod_num_ts=3'):
        short(_x(steps=4))


@pytest.mark.parametrize('kwargs, error, match', [
    ({'rnn_layers': ()}, ValueError, 'rnn_layers: expected at least one'),
    ({'rnn_layers': (4, 0)}, ValueError, 'rnn_layers: expected a list of positive ints'),
    ({'n_in': 0}, ValueError, 'n_in'),
    ({'activation': torch.nn.Sigmoid()}, ValueError, 'activation'),
    ({'use_batch_norm': True}, TypeError, r"kwargs: unknown keyword arguments \['use_batch_norm'\]"),
    ({'use_context_mod': True, 'context_mod_num_ts': 4, 'context_mod_last_step': True}, ValueError,
     'context_mod_last_step'),
    ({'use_context_mod': True, 'context_mod_num_ts': 4}, ValueError, 'context_mod_separate_layers_per_ts'),
    ({'context_mod_num_ts': 0}, ValueError, 'context_mod_num_ts'),
    ({'context_mod_gain_offset': True, 'context_mod_gain_softplus': True}, ValueError, 'gain_offset'),
])
def test_constructor_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        SimpleRNN(**{'n_in': 3, 'verbose': False, **kwargs})


def test_init_weights_are_loaded():
    source = _net(use_lstm=True)
    values = [p.detach().clone() for p in source.internal_params]
    copy = contract.as_double(SimpleRNN(N_IN, (6,), fc_layers=(2,), use_lstm=True, verbose=False,
                                        init_weights=[v.float() for v in values]))
    x = _x()
    torch.testing.assert_close(copy(x), source(x), rtol=1e-6, atol=1e-6)
