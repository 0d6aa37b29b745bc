"""Tests of mnets.wide_resnet.WRN: contract checks, the published WRN-28-10 size, projection shortcuts,
options and errors."""
import mnet_contract as contract
import pytest
import torch
import torch.nn.functional as F

from mnets.wide_resnet import WRN


def _images(batch=3, side=8):
    return torch.randn(batch, side, side, 3, dtype=torch.float64)


def _small(**kwargs):
    """WRN-10-2 with 4/4/4/8 (widened 4/8/8/16) maps on 8x8 images: all code paths, tiny cost."""
    kwargs.setdefault('num_feature_maps', (4, 4, 4, 8))
    kwargs.setdefault('k', 2)
    return WRN(in_shape=(8, 8, 3), n=1, verbose=False, **kwargs)


# Computed with hypnettorch 0.0.4: WRN().num_params (n=4, k=10, CIFAR) and WRN(use_bias=False).num_params;
# Zagoruyko & Komodakis (2016) report 36.5 M for WRN-28-10. Built with no_weights=True so nothing is allocated.
@pytest.mark.parametrize('kwargs, num_params', [({}, 36488170), ({'use_bias': False}, 36479184)])
def test_wrn_28_10_size_matches_reference(kwargs, num_params):
    net = WRN(no_weights=True, verbose=False, **kwargs)
    assert net.num_params == num_params
    assert str(net) == 'WRN-28-10-B(3,3)'
    contract.check_bookkeeping(net)


def test_param_order_and_layer_ids_match_reference():
    # hypnettorch 0.0.4, WRN(n=1, k=2, use_context_mod=True, context_mod_inputs=True): cm 0, 3, 6, ...,
    # bn 2, 5, ..., 1x1 shortcuts -1, conv 1, 4, ... (two entries per weight/bias pair).
    net = WRN(n=1, k=2, use_context_mod=True, context_mod_inputs=True, verbose=False)
    expected = [0, 0] + [3 * i for i in range(1, 9) for _ in range(2)] \
        + [3 * i + 2 for i in range(7) for _ in range(2)] + [-1] * 3 + [3 * i + 1 for i in range(8) for _ in range(2)]
    assert [d['layer'] for d in net.param_shapes_meta] == expected
    assert net.param_shapes[32:35] == [[32, 16, 1, 1], [64, 32, 1, 1], [128, 64, 1, 1]]
    assert [d['index'] for d in net.param_shapes_meta] == list(range(len(expected)))


@pytest.mark.parametrize('kwargs', [
    {},
    {'use_batch_norm': False},
    {'use_bias': False},
    {'use_context_mod': True, 'context_mod_inputs': True},
    {'use_context_mod': True, 'context_mod_post_activation': True, 'no_last_layer_context_mod': True},
    {'use_context_mod': True, 'context_mod_apply_pixel_wise': True},
])
def test_contract(kwargs):
    # Eval mode (as_double): training-mode running-stat updates cannot be vmapped (one buffer, K updates).
    contract.check_all(_small(**kwargs), _images())


def test_contract_without_any_internal_weights():
    net = contract.as_double(_small(no_weights=True, use_context_mod=True, context_mod_no_weights=True))
    x = _images()
    assert net.internal_params is None
    contract.check_bookkeeping(net)
    contract.check_weights_used(net, x, contract.random_weights(net))
    contract.check_vmap_matches_loop(net, x)
    contract.check_no_weights_requires_weights(net, x)


def test_identity_shortcut_when_maps_and_resolution_stay():
    """Group 1 keeps 4 maps at stride 1, so it has no 1x1 projection; the later groups do."""
    net = _small(k=1)
    assert str(net) == 'WRN-9-1-B(3,3)'
    assert [list(net.param_shapes[s]) if s is not None else None for s in net._skip_slots] == \
        [None, [4, 4, 1, 1], [8, 4, 1, 1]]


def test_projection_shortcut_carries_the_signal():
    """With every 3x3 kernel zero (and no batchnorm/bias) each block returns its shortcut: the output is the
    chain of 1x1 projections applied to the ReLU-free input path."""
    net = contract.as_double(_small(use_batch_norm=False, use_bias=False))
    w = contract.random_weights(net)
    for slot, _ in net._conv_slots[1:]:
        w[slot] = torch.zeros_like(w[slot])
    x = _images()
    h = F.conv2d(x.permute(0, 3, 1, 2), w[net._conv_slots[0][0]], padding=1)
    for g, stride in enumerate((1, 2, 2)):
        h = F.conv2d(h, w[net._skip_slots[g]], stride=stride)
    expected = F.linear(F.relu(h).mean(dim=(-2, -1)), w[-1])
    torch.testing.assert_close(net(x, weights=w), expected, **contract.TOL)


def test_chw_input_format():
    net = contract.as_double(_small(chw_input_format=True))
    x = _images()
    ref = contract.as_double(_small())
    ref.load_state_dict(net.state_dict())
    assert torch.equal(net(x.permute(0, 3, 1, 2)), ref(x))
    with pytest.raises(ValueError, match=r'x: expected \[B, 192\] or \[B, C, H, W\] = \[B, 3, 8, 8\]'):
        net(x)


def test_dropout_only_in_training():
    net = _small(dropout_rate=0.5, use_batch_norm=False).double()
    x = _images()
    assert torch.equal(net.eval()(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))


def test_mixed_biases():
    net = _small(use_bias=False, use_fc_bias=True)
    assert net.param_shapes[-1] == [10]
    with pytest.raises(RuntimeError, match='has_bias: undefined'):
        _ = net.has_bias
    masks = net.get_output_weight_mask(out_inds=[2])
    assert masks[-1].tolist() == [i == 2 for i in range(10)]
    assert masks[-2].shape == (10, 16) and masks[-2][2].all() and masks[-2].sum() == 16
    assert all(m is None for m in masks[:-2])
    no_fc_bias = _small(use_fc_bias=False).get_output_weight_mask()
    assert no_fc_bias[-1].shape == (10, 16) and no_fc_bias[-2] is None


def test_distilled_stats_vmap():
    net = contract.as_double(_small(distill_bn_stats=True))
    stats = [t + 0.1 for t in net.distillation_targets()]
    contract.check_vmap_matches_loop(net, _images(), distilled_params=stats)


@pytest.mark.parametrize('shape', [(3, 8, 8), (3, 3, 8, 8), (3, 191)])
def test_wrong_input_shape_raises(shape):
    with pytest.raises(ValueError, match=r'x: expected \[B, 192\] or \[B, H, W, C\]'):
        _small()(torch.randn(*shape))


@pytest.mark.parametrize('kwargs, match', [
    ({'dropout_rate': 1.5}, 'dropout_rate: expected -1 or a value in'),
    ({'num_feature_maps': (16, 32)}, 'num_feature_maps: expected 4 positive ints'),
    ({'n': -1}, 'n: expected a positive int'),
    ({'foo': 1}, r"kwargs: unknown keyword arguments \['foo'\]"),
    ({'in_shape': (32, 32, 0)}, 'in_shape: expected 3 positive ints'),
])
def test_bad_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WRN(verbose=False, no_weights=True, **kwargs)
