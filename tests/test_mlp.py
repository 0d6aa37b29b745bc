"""Tests of mnets.mlp.MLP: contract checks, closed forms and input errors."""
import inspect

import mnet_contract as contract
import pytest
import torch
import torch.nn.functional as F

from mnets.mlp import MLP


def _x(n_in=3, batch=6):
    return torch.randn(batch, n_in, dtype=torch.float64)


def test_plain_param_shapes_follow_contract():
    net = MLP(3, 2, (4, 5), verbose=False)
    assert net.param_shapes == [[4, 3], [4], [5, 4], [5], [2, 5], [2]]
    assert [d['name'] for d in net.param_shapes_meta] == ['weight', 'bias'] * 3
    assert [d['layer'] for d in net.param_shapes_meta] == [0, 0, 1, 1, 2, 2]
    assert net.param_shapes == MLP.weight_shapes(3, 2, [4, 5])
    assert net.num_params == 12 + 4 + 20 + 5 + 10 + 2
    assert net.hyper_shapes_learned is None and net.has_linear_out


@pytest.mark.parametrize('kwargs', [
    {},
    {'use_bias': False},
    {'activation_fn': 'tanh'},
    {'activation_fn': None},
    {'dropout_rate': 0.3},
    {'use_spectral_norm': True},
    {'hidden_layers': ()},
])
def test_contract_plain_variants(kwargs):
    options = {'hidden_layers': (4, 5), **kwargs}
    contract.check_all(MLP(3, 2, verbose=False, **options), _x())


def test_forward_is_the_closed_form():
    net = contract.as_double(MLP(3, 2, (4,), activation_fn=torch.tanh, verbose=False))
    w1, b1, w2, b2 = [p.detach() for p in net.internal_params]
    x = _x()
    expected = torch.tanh(x @ w1.T + b1) @ w2.T + b2
    torch.testing.assert_close(net(x), expected, **contract.TOL)


def test_spectral_norm_divides_by_largest_singular_value():
    net = contract.as_double(MLP(3, 2, (), use_spectral_norm=True, verbose=False))
    weight, bias = contract.random_weights(net)
    x = _x()
    sigma = torch.linalg.svdvals(weight)[0]
    torch.testing.assert_close(net(x, weights=[weight, bias]), x @ (weight / sigma).T + bias,
                               **contract.TOL)


def test_out_fn_returns_pair():
    net = contract.as_double(MLP(3, 2, (4,), out_fn=torch.sigmoid, verbose=False))
    x = _x()
    y, h = net(x)
    torch.testing.assert_close(y, torch.sigmoid(h), **contract.TOL)
    assert not net.has_linear_out
    contract.check_vmap_matches_loop(net, x)


def test_no_weights_net():
    net = contract.as_double(MLP(3, 2, (4, 5), no_weights=True, verbose=False))
    x = _x()
    contract.check_bookkeeping(net)
    assert net.hyper_shapes_learned == net.param_shapes
    assert net.hyper_shapes_learned_ref == list(range(6))
    contract.check_weights_used(net, x, contract.random_weights(net))
    contract.check_vmap_matches_loop(net, x)
    contract.check_no_weights_requires_weights(net, x)
    contract.check_weight_errors(net, x)


def test_dropout_is_active_only_in_training_and_differs_per_set():
    net = contract.as_double(MLP(3, 2, (64,), dropout_rate=0.5, verbose=False))
    x = _x(batch=4)
    torch.testing.assert_close(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))
    stack = contract.random_weights(net, 2)
    stack = [torch.stack([t[0], t[0]]) for t in stack]
    out = net.forward_batch(x, stack)
    assert not torch.equal(out[0], out[1])


def test_init_weights_are_copied():
    source = MLP(3, 2, (4,), verbose=False)
    values = [torch.full_like(p, float(i)) for i, p in enumerate(source.internal_params)]
    net = MLP(3, 2, (4,), init_weights=values, verbose=False)
    for p, v in zip(net.internal_params, values):
        assert torch.equal(p.detach(), v)
    with pytest.raises(ValueError, match='init_weights: expected 4 tensors'):
        MLP(3, 2, (4,), init_weights=values[:3], verbose=False)
    with pytest.raises(ValueError, match=r'init_weights: tensor 0 should have shape \[4, 3\]'):
        MLP(3, 2, (4,), init_weights=[values[0].T] + values[1:], verbose=False)


def test_default_init_is_pytorch_linear_init():
    net = MLP(200, 2, (300,), verbose=False)
    weight = net.layer_weight_tensors[0]
    # kaiming_uniform(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    bound = 1 / 200 ** 0.5
    assert weight.abs().max() <= bound
    assert weight.abs().max() > 0.95 * bound
    assert net.layer_bias_vectors[0].abs().max() <= bound


def test_unknown_activation_name_raises():
    with pytest.raises(ValueError, match="activation_fn: unknown activation 'relux'"):
        MLP(3, 2, activation_fn='relux', verbose=False)


def test_invalid_activation_type_raises():
    with pytest.raises(TypeError, match='activation_fn: expected None, a name or a callable, got int'):
        MLP(3, 2, activation_fn=3, verbose=False)


@pytest.mark.parametrize('kwargs, match', [
    ({'n_in': 0}, 'n_in: expected a positive int'),
    ({'hidden_layers': (4, -1)}, 'hidden_layers: expected a positive int'),
    ({'dropout_rate': 1.5}, 'dropout_rate: expected -1 or a value in'),
    ({'use_spectral_norm': True, 'no_weights': True}, 'use_spectral_norm'),
    ({'use_batch_norm': True, 'distill_bn_stats': True, 'bn_track_stats': False}, 'distill_bn_stats'),
    ({'use_context_mod': True, 'context_mod_gain_offset': True, 'context_mod_gain_softplus': True},
     'context_mod_gain_offset'),
])
def test_invalid_constructor_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP(**{'n_in': 3, 'n_out': 2, 'verbose': False, **kwargs})


def test_init_weights_without_internal_weights_raises():
    with pytest.raises(ValueError, match='init_weights: expected 0 tensors'):
        MLP(3, 2, (4,), no_weights=True, init_weights=[torch.zeros(4, 3)], verbose=False)


def test_condition_errors():
    net = MLP(3, 2, (4,), verbose=False)
    with pytest.raises(ValueError, match="condition: allowed keys"):
        net(torch.zeros(1, 3), condition={'task': 1})
    with pytest.raises(TypeError, match='condition: expected None, an int or a dict'):
        net(torch.zeros(1, 3), condition='a')


def test_distilled_params_without_distillation_raise():
    net = MLP(3, 2, (4,), verbose=False)
    with pytest.raises(ValueError, match='distilled_params: only accepted'):
        net(torch.zeros(1, 3), distilled_params=[torch.zeros(4), torch.ones(4)])


def test_relu_module_default_matches_functional_relu():
    net = contract.as_double(MLP(3, 2, (4,), verbose=False))
    other = contract.as_double(MLP(3, 2, (4,), activation_fn=F.relu, verbose=False))
    x = _x()
    weights = contract.internal_as_full_list(net)
    torch.testing.assert_close(net(x), other(x, weights=weights), **contract.TOL)


def test_signature_matches_hypnettorch():
    params = inspect.signature(MLP.__init__).parameters
    assert list(params)[1:] == [
        'n_in', 'n_out', 'hidden_layers', 'activation_fn', 'use_bias', 'no_weights', 'init_weights',
        'dropout_rate', 'use_spectral_norm', 'use_batch_norm', 'bn_track_stats', 'distill_bn_stats',
        'use_context_mod', 'context_mod_inputs', 'no_last_layer_context_mod', 'context_mod_no_weights',
        'context_mod_post_activation', 'context_mod_gain_offset', 'context_mod_gain_softplus', 'out_fn',
        'verbose']


# ----------------------------------------------------------------------------
# Context modulation and batchnorm
# ----------------------------------------------------------------------------
# Expected values were computed with hypnettorch 0.0.4's MLP on the same options.
_REF_CM_BN_SHAPES = [[3], [3], [4], [4], [5], [5], [2], [2], [4], [4], [5], [5],
                     [4, 3], [4], [5, 4], [5], [2, 5], [2]]
_REF_CM_BN_META = [('cm_scale', 0, 0), ('cm_shift', 1, 0), ('cm_scale', 2, 2), ('cm_shift', 3, 2),
                   ('cm_scale', 4, 5), ('cm_shift', 5, 5), ('cm_scale', 6, 8), ('cm_shift', 7, 8),
                   ('bn_scale', 8, 3), ('bn_shift', 9, 3), ('bn_scale', 10, 6), ('bn_shift', 11, 6),
                   ('weight', 12, 1), ('bias', 13, 1), ('weight', 14, 4), ('bias', 15, 4),
                   ('weight', 16, 7), ('bias', 17, 7)]
_REF_POST_CMNW_META = [('cm_scale', -1, 2), ('cm_shift', -1, 2), ('cm_scale', -1, 5), ('cm_shift', -1, 5),
                       ('cm_scale', -1, 7), ('cm_shift', -1, 7), ('bn_scale', 0, 1), ('bn_shift', 1, 1),
                       ('bn_scale', 2, 4), ('bn_shift', 3, 4), ('weight', 4, 0), ('bias', 5, 0),
                       ('weight', 6, 3), ('bias', 7, 3), ('weight', 8, 6), ('bias', 9, 6)]


def _meta_tuples(net):
    return [(d['name'], d['index'], d['layer']) for d in net.param_shapes_meta]


def test_cm_bn_attributes_match_hypnettorch():
    net = MLP(3, 2, (4, 5), use_batch_norm=True, use_context_mod=True, context_mod_inputs=True,
              distill_bn_stats=True, verbose=False)
    assert net.param_shapes == _REF_CM_BN_SHAPES
    assert _meta_tuples(net) == _REF_CM_BN_META
    assert net.hyper_shapes_learned is None
    assert net.hyper_shapes_distilled == [[4], [4], [5], [5]]
    assert len(net.context_mod_layers) == 4 and len(net.batchnorm_layers) == 2
    contract.check_bookkeeping(net)


def test_post_activation_cm_without_weights_matches_hypnettorch():
    net = MLP(3, 2, (4, 5), use_batch_norm=True, use_context_mod=True, context_mod_post_activation=True,
              context_mod_no_weights=True, verbose=False)
    assert _meta_tuples(net) == _REF_POST_CMNW_META
    assert net.hyper_shapes_learned_ref == [0, 1, 2, 3, 4, 5]
    assert net.hyper_shapes_learned == [[4], [4], [5], [5], [2], [2]]
    assert len(net.internal_params) == 10
    contract.check_bookkeeping(net)


@pytest.mark.parametrize('kwargs', [
    {},
    {'context_mod_inputs': True},
    {'context_mod_post_activation': True},
    {'no_last_layer_context_mod': True},
    {'context_mod_gain_offset': True},
    {'context_mod_gain_softplus': True},
    {'use_batch_norm': True, 'context_mod_inputs': True},
])
def test_contract_context_mod_variants(kwargs):
    net = MLP(3, 2, (4, 5), use_context_mod=True, verbose=False, **kwargs)
    contract.check_all(net, _x())


def test_context_mod_closed_form():
    net = contract.as_double(MLP(3, 2, (4,), activation_fn=torch.tanh, use_context_mod=True,
                                 context_mod_gain_offset=True, verbose=False))
    g1, s1, g2, s2, w1, b1, w2, b2 = contract.random_weights(net)
    x = _x()
    hidden = torch.tanh((x @ w1.T + b1) * (1 + g1) + s1)
    expected = (hidden @ w2.T + b2) * (1 + g2) + s2
    torch.testing.assert_close(net(x, weights=[g1, s1, g2, s2, w1, b1, w2, b2]), expected,
                               **contract.TOL)


def test_external_context_mod_weights_formats():
    net = contract.as_double(MLP(3, 2, (4,), use_context_mod=True, context_mod_no_weights=True,
                                 verbose=False))
    x = _x()
    cm = contract.random_weights(net)[:4]
    internal = [p.detach() for p in net.internal_params]
    expected = net(x, weights=cm + internal)
    assert torch.equal(net(x, weights=cm), expected)
    assert torch.equal(net(x, weights={'mod_weights': cm}), expected)
    assert torch.equal(net(x, weights={'mod_weights': cm, 'internal_weights': internal}), expected)
    contract.check_weights_used(net, x, cm + internal)
    with pytest.raises(ValueError, match='weights: the network was built without'):
        net(x)
    with pytest.raises(ValueError, match='weights: tensors for param_shapes entries'):
        net(x, weights={'internal_weights': internal})
    with pytest.raises(ValueError, match="weights: dict keys must be among"):
        net(x, weights={'mod': cm})
    with pytest.raises(ValueError, match=r"weights\['mod_weights'\]: expected 4 tensors, got 3"):
        net(x, weights={'mod_weights': cm[:3]})


def test_forward_batch_over_context_mod_weights_only():
    """The hypernetwork + context-mod use case: K tasks' gains/shifts, shared rest."""
    net = contract.as_double(MLP(3, 2, (4, 5), use_context_mod=True, context_mod_no_weights=True,
                                 verbose=False))
    x = _x()
    cm_stack = [torch.randn(4, *s, dtype=torch.float64) for s in net.hyper_shapes_learned]
    loop = torch.stack([net(x, weights=[t[k] for t in cm_stack]) for k in range(4)])
    torch.testing.assert_close(net.forward_batch(x, cm_stack), loop, **contract.TOL)
    torch.testing.assert_close(net.forward_batch(x, {'mod_weights': cm_stack}), loop, **contract.TOL)
    contract.check_vmap_matches_loop(net, x)


def test_per_sample_context_mod_weights():
    net = contract.as_double(MLP(3, 2, (4,), use_context_mod=True, verbose=False))
    x = _x(batch=2)
    weights = contract.random_weights(net)
    per_sample = [torch.stack([w, w + 1]) for w in weights[:4]]
    out = net(x, weights={'mod_weights': per_sample, 'internal_weights': weights[4:]})
    for b in range(2):
        single = net(x[b:b + 1], weights=[w[b] for w in per_sample] + weights[4:])
        torch.testing.assert_close(out[b:b + 1], single, **contract.TOL)


def test_batchnorm_eval_closed_form_and_targets():
    net = contract.as_double(MLP(3, 2, (4,), use_batch_norm=True, distill_bn_stats=True, verbose=False))
    scale, shift, w1, b1, w2, b2 = contract.random_weights(net)
    mean, var = torch.randn(4, dtype=torch.float64), torch.rand(4, dtype=torch.float64) + 0.5
    x = _x()
    hidden = F.relu((x @ w1.T + b1 - mean) / torch.sqrt(var + 1e-5) * scale + shift)
    out = net(x, weights=[scale, shift, w1, b1, w2, b2], distilled_params=[mean, var])
    torch.testing.assert_close(out, hidden @ w2.T + b2, **contract.TOL)
    targets = net.distillation_targets()
    assert [list(t.shape) for t in targets] == net.hyper_shapes_distilled
    with pytest.raises(ValueError, match=r'distilled_params\[1\]: expected shape \[4\]'):
        net(x, distilled_params=[mean, var[:2]])


def test_batchnorm_training_updates_running_stats():
    net = MLP(3, 2, (4,), use_batch_norm=True, verbose=False).train()
    before = net.batchnorm_layers[0].get_stats()[0].clone()
    net(torch.randn(16, 3))
    assert not torch.equal(net.batchnorm_layers[0].get_stats()[0], before)


def test_batchnorm_vmap_with_external_stats():
    net = contract.as_double(MLP(3, 2, (4, 5), use_batch_norm=True, distill_bn_stats=True,
                                 no_weights=True, verbose=False))
    x = _x()
    stats = [torch.randn(4, dtype=torch.float64), torch.rand(4, dtype=torch.float64) + 0.5,
             torch.randn(5, dtype=torch.float64), torch.rand(5, dtype=torch.float64) + 0.5]
    contract.check_bookkeeping(net)
    contract.check_vmap_matches_loop(net, x, distilled_params=stats)
    # One set of statistics per weight set (e.g. per task).
    stack = contract.random_weights(net, 3)
    stats_stack = [torch.stack([s + 0.1 * k for k in range(3)]) for s in stats]
    loop = torch.stack([net(x, weights=[t[k] for t in stack], distilled_params=[s[k] for s in stats_stack])
                        for k in range(3)])
    torch.testing.assert_close(net.forward_batch(x, stack, distilled_params=stats_stack), loop,
                               **contract.TOL)


def test_batchnorm_batch_statistics_vmap_in_training():
    net = contract.as_double(MLP(3, 2, (4,), use_batch_norm=True, bn_track_stats=False,
                                 no_weights=True, verbose=False)).train()
    contract.check_vmap_matches_loop(net, _x())


def test_batchnorm_condition_selects_checkpointed_stats():
    net = contract.as_double(MLP(3, 2, (4,), use_batch_norm=True, verbose=False))
    x = _x()
    layer = net.batchnorm_layers[0]
    layer.checkpoint_stats()
    with torch.no_grad():
        mean0, var0 = layer.get_stats(0)
        mean0.add_(1.0)
    out0 = net(x, condition=0)
    assert torch.equal(out0, net(x, condition={'bn_stats_id': 0}))
    assert not torch.equal(out0, net(x, condition=1))


@pytest.mark.parametrize('kwargs', [
    {},
    {'use_bias': False, 'activation_fn': 'tanh'},
    {'hidden_layers': ()},
    {'dropout_rate': 0.3},  # eval mode: dropout is the identity, the direct path applies
])
@pytest.mark.parametrize('per_set_input', [False, True])
@pytest.mark.parametrize('block_diag', [True, False])
def test_plain_forward_batch_equals_the_vmap_path(kwargs, per_set_input, block_diag, monkeypatch):
    """The direct batched forward (2-D matmuls, block-diagonal or baddbmm) equals vmap over forward, with grads."""
    from mnets.mnet_interface import MainNetInterface
    options = {'hidden_layers': (4, 5), **kwargs}
    net = contract.as_double(MLP(3, 2, no_weights=True, verbose=False, **options))
    if not block_diag:
        monkeypatch.setattr(net, 'BLOCK_DIAG_MAX_ENTRIES', 0)
    gen = torch.Generator().manual_seed(0)
    stack = [w.requires_grad_(True) for w in contract.random_weights(net, 3, generator=gen)]
    x = torch.randn(3, 6, 3, dtype=torch.float64) if per_set_input else _x()
    direct = net.forward_batch(x, stack)
    generic = MainNetInterface.forward_batch(net, x, stack)
    torch.testing.assert_close(direct, generic, **contract.TOL)
    grads_direct = torch.autograd.grad(direct.pow(2).sum(), stack)
    grads_generic = torch.autograd.grad(generic.pow(2).sum(), stack)
    for a, b in zip(grads_direct, grads_generic):
        torch.testing.assert_close(a, b, **contract.TOL)


def test_plain_forward_batch_avoids_bmm_for_small_layers():
    """Small layers run as 2-D matmuls: CPU bmm splits over the thread pool, slower than the work itself."""
    net = MLP(1, 1, (10, 10), no_weights=True, verbose=False)
    stack = contract.random_weights(net, 4, dtype=torch.float32)
    with torch.autograd.profiler.profile() as prof:
        net.forward_batch(torch.randn(50, 1), stack)
    names = {event.name for event in prof.function_events}
    assert not names & {'aten::bmm', 'aten::baddbmm'}, names


def test_forward_batch_falls_back_to_vmap_when_not_plain():
    """Options the direct path does not cover (here a non-elementwise activation) still give per-set results."""
    net = contract.as_double(MLP(3, 2, (4,), activation_fn=lambda h: h / h.norm(dim=-1, keepdim=True),
                                 no_weights=True, verbose=False))
    stack = contract.random_weights(net, 3)
    x = _x()
    loop = torch.stack([net(x, weights=[t[k] for t in stack]) for k in range(3)])
    torch.testing.assert_close(net.forward_batch(x, stack), loop, **contract.TOL)


@pytest.mark.parametrize('kwargs', [
    {},
    {'use_bias': False},
    {'activation_fn': 'tanh'},
    {'activation_fn': torch.nn.Sigmoid()},
    {'activation_fn': None},
    {'hidden_layers': []},
])
@pytest.mark.parametrize('per_set_input', [False, True])
def test_forward_batch_vjp_equals_autograd(kwargs, per_set_input):
    torch.manual_seed(4)
    options = {'hidden_layers': (5, 4), **kwargs}
    net = MLP(3, 2, no_weights=True, verbose=False, **options).double()
    num_sets = 3
    weights = [torch.randn(num_sets, *s, dtype=torch.float64, requires_grad=True) for s in net.param_shapes]
    x = torch.randn(num_sets, 7, 3, dtype=torch.float64) if per_set_input else _x(batch=7)
    expected = net.forward_batch(x, weights, x_per_set=per_set_input)
    grad_out = torch.randn_like(expected)
    expected_grads = torch.autograd.grad(expected, weights, grad_out)

    outputs, vjp = net.forward_batch_vjp(x, [w.detach() for w in weights])
    grads = vjp(grad_out)
    assert not outputs.requires_grad
    assert torch.allclose(outputs, expected, atol=1e-12)
    assert len(grads) == len(weights)
    for got, want in zip(grads, expected_grads):
        assert got.shape == want.shape
        assert torch.allclose(got, want, atol=1e-12)


def test_forward_batch_vjp_reads_strided_views_of_flat_vectors():
    # HMC hands the network views of one flat position vector per chain: non-contiguous weights.
    net = MLP(2, 1, (4,), no_weights=True, verbose=False).double()
    flat = torch.randn(5, net.num_params, dtype=torch.float64)
    sizes = [int(torch.tensor(s).prod()) for s in net.param_shapes]
    views = [t.view(5, *s) for t, s in zip(torch.split(flat, sizes, dim=1), net.param_shapes)]
    assert not views[0].is_contiguous()
    x = _x(2)
    outputs, vjp = net.forward_batch_vjp(x, views)
    contiguous = [v.contiguous().requires_grad_(True) for v in views]
    expected = net.forward_batch(x, contiguous, x_per_set=False)
    assert outputs.shape == expected.shape == (5, 6, 1)
    assert torch.allclose(outputs, expected, atol=1e-12)
    grad_out = torch.randn_like(expected)
    for got, want in zip(vjp(grad_out), torch.autograd.grad(expected, contiguous, grad_out)):
        assert torch.allclose(got, want, atol=1e-12)


def test_forward_batch_vjp_rejects_what_it_cannot_differentiate():
    weights = lambda net: [torch.randn(2, *s) for s in net.param_shapes]  # noqa: E731
    for kwargs in ({'use_context_mod': True}, {'use_batch_norm': True}, {'activation_fn': 'elu'},
                   {'out_fn': torch.sigmoid}):
        net = MLP(3, 2, (4,), verbose=False, no_weights=True, **kwargs)
        assert not net.batch_vjp_supported
        with pytest.raises(ValueError, match='forward_batch_vjp'):
            net.forward_batch_vjp(_x().float(), weights(net))
    dropout = MLP(3, 2, (4,), dropout_rate=0.5, no_weights=True, verbose=False)
    assert not dropout.batch_vjp_supported
    assert dropout.eval().batch_vjp_supported
    net = MLP(3, 2, (4,), no_weights=True, verbose=False)
    assert net.batch_vjp_supported
    with pytest.raises(ValueError, match=r'weights\[1\]'):
        net.forward_batch_vjp(_x().float(), [torch.randn(2, 4, 3), torch.randn(3, 4)] + weights(net)[2:])
    with pytest.raises(ValueError, match='x: expected'):
        net.forward_batch_vjp(torch.randn(3, 6, 3), weights(net))
    _, vjp = net.forward_batch_vjp(_x().float(), weights(net))
    with pytest.raises(ValueError, match='grad_outputs'):
        vjp(torch.zeros(2, 6, 3))
