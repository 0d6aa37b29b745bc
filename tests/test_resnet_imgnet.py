"""Tests of mnets.resnet_imgnet.ResNetIN: contract checks, published sizes, shortcuts, options, errors."""
import mnet_contract as contract
import pytest
import torch

from mnets.resnet_imgnet import ResNetIN

_SMALL = dict(in_shape=(16, 16, 3), num_classes=5, num_feature_maps=(4, 4, 4, 8, 8), blocks_per_group=(1, 1, 1, 1))


def _images(batch=3, side=16):
    return torch.randn(batch, side, side, 3, dtype=torch.float64)


def _small(**kwargs):
    return ResNetIN(verbose=False, **{**_SMALL, **kwargs})


# hypnettorch 0.0.4 counts (ImageNet shapes, with biases): ResNet-18 and ResNet-50 with projection shortcuts
# (He et al. report 11.7 M and 25.6 M; the projections add 0.17 M to ResNet-18).
@pytest.mark.parametrize('kwargs, num_params, name', [
    ({}, 11519592, 'ResNet-18'),
    ({'projection_shortcut': True}, 11693416, 'ResNet-18'),
    ({'bottleneck_blocks': True, 'blocks_per_group': (3, 4, 6, 3), 'projection_shortcut': True}, 25579752,
     'ResNet-50'),
])
def test_sizes_match_reference(kwargs, num_params, name):
    net = ResNetIN(no_weights=True, verbose=False, **kwargs)
    assert net.num_params == num_params
    assert str(net) == name
    contract.check_bookkeeping(net)


@pytest.mark.parametrize('kwargs', [
    {},
    {'bottleneck_blocks': True},
    {'projection_shortcut': True},
    {'bottleneck_blocks': True, 'projection_shortcut': True, 'use_bias': False},
    {'cutout_mod': True, 'use_context_mod': True, 'context_mod_inputs': True},
    {'use_batch_norm': False, 'use_context_mod': True, 'context_mod_post_activation': True},
])
def test_contract(kwargs):
    # Eval mode (as_double): training-mode running-stat updates cannot be vmapped (one buffer, K updates).
    contract.check_all(_small(**kwargs), _images())


def test_contract_without_any_internal_weights():
    net = contract.as_double(_small(no_weights=True, projection_shortcut=True, use_context_mod=True,
                                    context_mod_no_weights=True))
    x = _images()
    assert net.internal_params is None
    contract.check_bookkeeping(net)
    contract.check_weights_used(net, x, contract.random_weights(net))
    contract.check_vmap_matches_loop(net, x)
    contract.check_no_weights_requires_weights(net, x)


def test_projection_shortcuts_and_their_batchnorm():
    """Groups 2-4 downsample (projection each); group 1 keeps 4 maps at stride 1 (identity). Projections come
    after the main batchnorm layers and before the main conv weights, as in hypnettorch."""
    net = _small(projection_shortcut=True)
    meta = net.param_shapes_meta
    skips = [i for i, s in enumerate(net.param_shapes) if len(s) == 4 and s[2:] == [1, 1]]
    assert [net.param_shapes[i] for i in skips] == [[4, 4, 1, 1], [8, 4, 1, 1], [8, 8, 1, 1]]
    assert len(net.batchnorm_layers) == 9 + 3
    assert all(meta[i]['layer'] > meta[-1]['layer'] for i in skips)  # ids after the output layer


def test_bottleneck_expands_maps():
    net = _small(bottleneck_blocks=True)
    assert net.param_shapes[-2:] == [[5, 32], [5]]
    assert str(net) == 'ResNet-14'


def test_chw_input_and_errors():
    net = contract.as_double(_small(chw_input_format=True))
    assert net(_images().permute(0, 3, 1, 2)).shape == (3, 5)
    with pytest.raises(ValueError, match=r'x: expected \[B, 768\] or \[B, C, H, W\]'):
        net(_images())
    with pytest.raises(ValueError, match=r'x: expected \[B, 768\] or \[B, H, W, C\]'):
        _small()(torch.randn(2, 16, 16))


@pytest.mark.parametrize('kwargs, match', [
    ({'num_feature_maps': (64, 64, 128, 256)}, 'num_feature_maps: expected 5 positive ints'),
    ({'blocks_per_group': (2, 2, 0, 2)}, 'blocks_per_group: expected 4 positive ints'),
    ({'num_feature_maps': (4, 8, 4, 8, 8)}, 'num_feature_maps: without projection_shortcut'),
    ({'in_shape': (16, 16)}, 'in_shape: expected 3 positive ints'),
    ({'bogus': 1}, r"kwargs: unknown keyword arguments \['bogus'\]"),
    ({'distill_bn_stats': True, 'bn_track_stats': False}, 'distill_bn_stats: requires bn_track_stats'),
])
def test_bad_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _small(**kwargs)
