"""Tests of mnets.bio_conv_net.BioConvNet: contract checks, the reference size, a hand-built forward,
collected activations, options and errors."""
import mnet_contract as contract
import pytest
import torch
import torch.nn.functional as F

from mnets.bio_conv_net import BioConvNet

# 13x13x1 inputs shrink the layers to 5x5, 1x1 and 1x1 pixels (~0.8 M weights instead of 20 M).
_SMALL = (13, 13, 1)


def _images(batch=3, shape=_SMALL):
    return torch.randn(batch, *shape, dtype=torch.float64)


def _small(**kwargs):
    kwargs.setdefault('in_shape', _SMALL)
    return BioConvNet(verbose=False, **kwargs)


def test_cifar_size_matches_reference():
    # hypnettorch 0.0.4: BioConvNet().num_params on 32x32x3 inputs, and with use_context_mod=True.
    assert BioConvNet(no_weights=True, verbose=False).num_params == 20020618
    net = BioConvNet(no_weights=True, use_context_mod=True, context_mod_inputs=True, verbose=False)
    assert net.num_params == 20023588
    assert net.param_shapes[2:12:2] == [[64, 1, 1], [128, 1, 1], [256, 1, 1], [1024], [10]]
    assert net.param_shapes[12:14] == [[64, 75, 196], [64, 196]]


@pytest.mark.parametrize('kwargs', [
    {},
    {'use_context_mod': True, 'context_mod_inputs': True},
    {'use_context_mod': True, 'context_mod_post_activation': True, 'no_last_layer_context_mod': True},
    {'use_context_mod': True, 'context_mod_gain_softplus': True},
])
def test_contract(kwargs):
    contract.check_all(_small(**kwargs), _images())


def test_contract_pixel_wise_context_mod():
    net = _small(in_shape=(17, 17, 2), use_context_mod=True, context_mod_apply_pixel_wise=True)
    assert net.param_shapes[:6:2] == [[64, 7, 7], [128, 2, 2], [256, 2, 2]]
    contract.check_all(net, _images(shape=(17, 17, 2)))


def test_contract_without_any_internal_weights():
    net = contract.as_double(_small(no_weights=True, use_context_mod=True, context_mod_no_weights=True))
    x = _images()
    assert net.internal_params is None
    contract.check_bookkeeping(net)
    contract.check_weights_used(net, x, contract.random_weights(net))
    contract.check_vmap_matches_loop(net, x)
    contract.check_no_weights_requires_weights(net, x)


def test_forward_equals_hand_built_network():
    """Layer 1 by unfold + matmul per pixel, layers 2-3 see a single pixel (so they are plain linear maps
    of the flattened receptive field), then tanh-MLP."""
    net = contract.as_double(_small())
    f1, b1, f2, b2, f3, b3, w4, b4, w5, b5 = [p.detach() for p in net.internal_params]
    x = _images()
    patches = F.unfold(x.permute(0, 3, 1, 2), 5, stride=2)  # [B, 25, 25 pixels]
    h = torch.tanh((f1.unsqueeze(0) * patches.unsqueeze(1)).sum(2) + b1).reshape(3, 64, 5, 5)
    h = torch.tanh(h[:, :, 0:5, 0:5].flatten(1) @ f2[:, :, 0].T + b2[:, 0])  # [B, 128], one pixel
    # Third layer: 3x3 kernel with padding 1 on a 1x1 map only touches the centre tap.
    centre = f3[:, :, 0].reshape(256, 128, 3, 3)[:, :, 1, 1]
    h = torch.tanh(h @ centre.T + b3[:, 0])
    expected = F.linear(torch.tanh(F.linear(h, w4, b4)), w5, b5)
    torch.testing.assert_close(net(x), expected, **contract.TOL)


def test_collect_activations():
    net = contract.as_double(_small())
    x = _images()
    y, activations, last_hidden = net(x, collect_activations=True)
    assert torch.equal(y, net(x))
    assert [tuple(a.shape) for a in activations] == [(3, 64, 5, 5), (3, 128, 1, 1), (3, 256, 1, 1), (3, 1024),
                                                     (3, 10)]
    assert torch.equal(last_hidden, torch.tanh(activations[3]))
    assert torch.equal(activations[4], y)


def test_errors():
    net = _small()
    with pytest.raises(ValueError, match=r'x: expected \[B, 169\] or \[B, H, W, C\]'):
        net(torch.randn(2, 13, 13, 3))
    with pytest.raises(ValueError, match='condition: BioConvNet has no batchnorm'):
        net(torch.randn(2, 169), condition=0)
    with pytest.raises(ValueError, match='distilled_params: only accepted'):
        net(torch.randn(2, 169), distilled_params=[])
    with pytest.raises(ValueError, match=r'in_shape: \(8, 8, 3\) is too small'):
        BioConvNet(in_shape=(8, 8, 3), verbose=False)
    with pytest.raises(ValueError, match='in_shape: expected 3 positive ints'):
        BioConvNet(in_shape=(32, 32), verbose=False)
    with pytest.raises(ValueError, match='context_mod_gain_offset: cannot be combined'):
        _small(use_context_mod=True, context_mod_gain_offset=True, context_mod_gain_softplus=True)
