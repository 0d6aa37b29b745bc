"""Tests of mnets.resnet.ResNet: contract checks, published sizes, shortcuts, options, errors and a short
hypernetwork training run."""
import mnet_contract as contract
import pytest
import torch
import torch.nn.functional as F

from hnets.chunked_mlp_hnet import ChunkedHMLP
from mnets.resnet import ResNet


def _images(batch=3, side=8, channels=3):
    return torch.randn(batch, side, side, channels, dtype=torch.float64)


def _small(**kwargs):
    """A ResNet-8 with 4/4/8/8 maps on 8x8 images: every code path of ResNet-32, 1000x cheaper."""
    kwargs.setdefault('num_feature_maps', (4, 4, 8, 8))
    return ResNet(in_shape=(8, 8, 3), n=1, verbose=False, **kwargs)


# Computed with hypnettorch 0.0.4: ResNet().num_params (ResNet-32 on CIFAR, BN and biases) and
# ResNet(use_batch_norm=False, use_bias=False).num_params. He et al. (2015) report 0.46 M.
@pytest.mark.parametrize('kwargs, num_params', [
    ({}, 465290),
    ({'use_batch_norm': False, 'use_bias': False}, 461872),
])
def test_resnet32_size_matches_reference(kwargs, num_params):
    net = ResNet(verbose=False, **kwargs)
    assert net.num_params == num_params
    contract.check_bookkeeping(net)


def test_param_order_and_meta():
    """Context-mod first, then batchnorm, then conv weights and the output layer (hypnettorch's order)."""
    net = _small(use_context_mod=True)
    names = [d['name'] for d in net.param_shapes_meta]
    num_cm, num_bn = 2 * 8, 2 * 7
    assert names[:num_cm] == ['cm_scale', 'cm_shift'] * 8
    assert names[num_cm:num_cm + num_bn] == ['bn_scale', 'bn_shift'] * 7
    assert names[num_cm + num_bn:] == ['weight', 'bias'] * 8
    assert net.param_shapes[-2:] == [[10, 8], [10]]
    # The first conv, its batchnorm and its context-mod share the block of layer ids 1..3.
    layers = [d['layer'] for d in net.param_shapes_meta]
    assert (layers[0], layers[num_cm], layers[num_cm + num_bn]) == (3, 2, 1)


@pytest.mark.parametrize('kwargs', [
    {},
    {'use_batch_norm': False},
    {'use_bias': False, 'k': 2},
    {'use_context_mod': True, 'context_mod_inputs': True},
    {'use_context_mod': True, 'context_mod_post_activation': True, 'no_last_layer_context_mod': True},
    {'use_context_mod': True, 'context_mod_apply_pixel_wise': True, 'context_mod_gain_offset': True},
])
def test_contract(kwargs):
    # as_double puts the net in eval mode: a training-mode running-stat update writes one buffer per net,
    # which torch.func.vmap cannot split into K updates (see utils.batchnorm_layer).
    contract.check_all(_small(**kwargs), _images())


def test_contract_without_any_internal_weights():
    net = contract.as_double(_small(no_weights=True, use_context_mod=True, context_mod_no_weights=True))
    x = _images()
    assert net.internal_params is None
    contract.check_bookkeeping(net)
    contract.check_weights_used(net, x, contract.random_weights(net))
    contract.check_vmap_matches_loop(net, x)
    contract.check_no_weights_requires_weights(net, x)


def test_vmap_in_training_mode_with_batch_statistics():
    """With bn_track_stats=False nothing is written, so training mode vmaps too (batch statistics)."""
    net = _small(bn_track_stats=False).double().train()
    contract.check_vmap_matches_loop(net, _images(batch=4))


def test_distilled_stats_are_used_and_vmappable():
    net = contract.as_double(_small(distill_bn_stats=True))
    x = _images()
    targets = net.distillation_targets()
    assert [list(t.shape) for t in targets] == net.hyper_shapes_distilled
    assert torch.equal(net(x, distilled_params=targets), net(x))
    shifted = [t + 0.5 if i % 2 == 0 else t * 2 for i, t in enumerate(targets)]
    assert not torch.allclose(net(x, distilled_params=shifted), net(x))
    contract.check_vmap_matches_loop(net, x, distilled_params=shifted)


def test_stored_statistics_selected_by_condition():
    net = _small().double()
    x = _images(batch=6)
    net.train()
    net(x)
    for layer in net.batchnorm_layers:
        layer.checkpoint_stats()
    net.eval()
    first, latest = net(x, condition=0), net(x)
    assert torch.equal(net(x, condition={'bn_stats_id': 1}), latest)
    assert not torch.allclose(first, latest)


def test_shortcut_pads_new_maps_and_subsamples():
    """With all conv kernels zero and no batchnorm/bias, each block returns ReLU(shortcut): the output equals
    the zero-padded, subsampled input path computed by hand."""
    net = contract.as_double(_small(use_batch_norm=False, use_bias=False, num_feature_maps=(2, 2, 5, 5)))
    w = [torch.zeros(s, dtype=torch.float64) for s in net.param_shapes]
    first_kernel = torch.zeros(2, 3, 3, 3, dtype=torch.float64)
    first_kernel[0, 0, 1, 1] = 1.0  # copy input channel 0 to map 0
    first_kernel[1, 1, 1, 1] = 1.0
    w[0] = first_kernel
    w[-1] = torch.eye(10, 5, dtype=torch.float64)
    x = _images()
    maps = F.relu(x.permute(0, 3, 1, 2)[:, :2])
    # Group 2 subsamples and pads 2 -> 5 maps as (1, 2) zero maps left/right; group 3 keeps the 5 maps.
    expected = F.pad(maps[..., ::2, ::2][..., ::2, ::2], (0, 0, 0, 0, 1, 2)).mean(dim=(-2, -1))
    torch.testing.assert_close(net(x, weights=w), F.linear(expected, w[-1]), **contract.TOL)


def test_flat_and_image_inputs_agree():
    net = contract.as_double(_small())
    x = _images()
    assert torch.equal(net(x), net(x.reshape(3, -1)))


@pytest.mark.parametrize('shape', [(3, 8, 8), (3, 8, 8, 1), (3, 100), (8, 8, 3)])
def test_wrong_input_shape_raises(shape):
    net = _small()
    with pytest.raises(ValueError, match=r'x: expected \[B, 192\] or \[B, H, W, C\]'):
        net(torch.randn(*shape))


@pytest.mark.parametrize('kwargs, match', [
    ({'num_feature_maps': (16, 16, 32)}, 'num_feature_maps: expected 4 positive ints'),
    ({'num_feature_maps': (16, 32, 16, 64)}, 'num_feature_maps: the .* must not decrease'),
    ({'n': 0}, 'n: expected a positive int'),
    ({'k': 1.5}, 'k: expected a positive int'),
    ({'in_shape': (32, 32)}, r'in_shape: expected 3 positive ints'),
    ({'use_cm': True}, r"kwargs: unknown keyword arguments \['use_cm'\]"),
    ({'distill_bn_stats': True, 'bn_track_stats': False}, 'distill_bn_stats: requires bn_track_stats'),
    ({'use_context_mod': True, 'context_mod_gain_offset': True, 'context_mod_gain_softplus': True},
     'context_mod_gain_offset: cannot be combined'),
])
def test_bad_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResNet(verbose=False, **kwargs)


def test_bad_condition_and_distilled_params_raise():
    net = _small()
    x = _images().float()
    with pytest.raises(ValueError, match="condition: the only allowed key is 'bn_stats_id'"):
        net(x, condition={'cmod_ckpt_id': 0})
    with pytest.raises(ValueError, match='distilled_params: only accepted'):
        net(x, distilled_params=[torch.zeros(4)])
    with pytest.raises(ValueError, match='init_weights: expected'):
        _small(init_weights=[torch.zeros(1)])


def test_chunked_hypernetwork_trains_resnet32():
    """Ten Adam steps of a ChunkedHMLP producing all ResNet-32 weights fit a fixed random CIFAR batch:
    the cross-entropy drops well below its start (a broken gradient path would leave it flat)."""
    torch.manual_seed(1)
    net = ResNet(no_weights=True, verbose=False, bn_track_stats=False)
    hnet = ChunkedHMLP(net.param_shapes, chunk_size=8000, chunk_emb_size=8, cond_in_size=8, layers=(32,),
                       verbose=False)
    x = torch.rand(16, 32 * 32 * 3)
    labels = torch.randint(0, 10, (16,))
    optimizer = torch.optim.Adam(hnet.internal_params, lr=1e-3)
    losses = []
    for _ in range(10):
        optimizer.zero_grad()
        loss = F.cross_entropy(net(x, weights=hnet(cond_id=0)), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
