"""Tests of mnets.lenet.LeNet: contract checks, a torch.nn twin, options and errors."""
import mnet_contract as contract
import pytest
import torch
from torch import nn

from mnets.lenet import LeNet


def _images(batch=3, shape=(28, 28, 1)):
    return torch.randn(batch, *shape, dtype=torch.float64)


@pytest.mark.parametrize('arch, in_shape, num_params', [
    ('mnist_small', (28, 28, 1), 21840),
    ('mnist_large', (28, 28, 1), 431080),
    ('cifar', (32, 32, 3), 5747394),
])
def test_architecture_sizes_match_reference(arch, in_shape, num_params):
    net = LeNet(in_shape=in_shape, arch=arch, verbose=False)
    assert net.num_params == num_params
    contract.check_bookkeeping(net)


def test_num_classes_resizes_output_without_touching_other_instances():
    net = LeNet(arch='mnist_small', num_classes=5, verbose=False)
    assert net.param_shapes[-2:] == [[5, 50], [5]]
    assert LeNet(arch='mnist_small', verbose=False).param_shapes[-2:] == [[10, 50], [10]]


def test_contract_mnist_small():
    contract.check_all(LeNet(arch='mnist_small', verbose=False), _images())


def test_flat_and_image_inputs_agree():
    net = contract.as_double(LeNet(arch='mnist_small', verbose=False))
    x = _images()
    assert torch.equal(net(x), net(x.reshape(3, -1)))
    assert net.forward_batch(x.reshape(3, -1), contract.random_weights(net, 2)).shape == (2, 3, 10)


def test_matches_torch_nn_twin():
    net = contract.as_double(LeNet(arch='mnist_small', verbose=False))
    k1, c1, k2, c2, w3, b3, w4, b4 = [p.detach() for p in net.internal_params]
    twin = nn.Sequential(nn.Conv2d(1, 10, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(10, 20, 5),
                         nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(320, 50), nn.ReLU(),
                         nn.Linear(50, 10)).double()
    with torch.no_grad():
        for module, (w, b) in zip([twin[0], twin[3], twin[7], twin[9]],
                                  [(k1, c1), (k2, c2), (w3, b3), (w4, b4)]):
            module.weight.copy_(w)
            module.bias.copy_(b)
    x = _images()
    torch.testing.assert_close(net(x), twin(x.permute(0, 3, 1, 2)), **contract.TOL)


# Computed with hypnettorch 0.0.4: LeNet(arch='mnist_small', use_context_mod=True, context_mod_inputs=True).
_REF_CM_SHAPES = [[1, 1, 1], [1, 1, 1], [10, 1, 1], [10, 1, 1], [20, 1, 1], [20, 1, 1], [50], [50], [10], [10],
                  [10, 1, 5, 5], [10], [20, 10, 5, 5], [20], [50, 320], [50], [10, 50], [10]]
_REF_CM_LAYERS = [0, 0, 2, 2, 4, 4, 6, 6, 8, 8, 1, 1, 3, 3, 5, 5, 7, 7]


def test_context_mod_attributes_match_hypnettorch():
    net = LeNet(arch='mnist_small', use_context_mod=True, context_mod_inputs=True, verbose=False)
    assert net.param_shapes == _REF_CM_SHAPES
    assert [d['layer'] for d in net.param_shapes_meta] == _REF_CM_LAYERS
    assert [d['index'] for d in net.param_shapes_meta] == list(range(18))


@pytest.mark.parametrize('kwargs', [
    {'context_mod_inputs': True},
    {'context_mod_post_activation': True, 'no_last_layer_context_mod': True},
    {'context_mod_apply_pixel_wise': True, 'context_mod_gain_offset': True},
])
def test_contract_context_mod_variants(kwargs):
    contract.check_all(LeNet(arch='mnist_small', use_context_mod=True, verbose=False, **kwargs), _images())


def test_pixel_wise_context_mod_shapes():
    net = LeNet(arch='mnist_small', use_context_mod=True, context_mod_apply_pixel_wise=True,
                context_mod_inputs=True, verbose=False)
    assert net.param_shapes[:6:2] == [[1, 28, 28], [10, 12, 12], [20, 4, 4]]


def test_no_weights_net():
    net = contract.as_double(LeNet(arch='mnist_small', no_weights=True, use_context_mod=True,
                                   context_mod_no_weights=True, verbose=False))
    x = _images()
    assert net.internal_params is None
    contract.check_bookkeeping(net)
    contract.check_weights_used(net, x, contract.random_weights(net))
    contract.check_vmap_matches_loop(net, x)
    contract.check_no_weights_requires_weights(net, x)
    contract.check_weight_errors(net, x)


def test_dropout_only_in_training():
    net = contract.as_double(LeNet(arch='mnist_small', dropout_rate=0.5, verbose=False))
    x = _images()
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))


def test_unknown_arch_raises():
    with pytest.raises(ValueError, match="arch: expected one of .*got 'mnist_huge'"):
        LeNet(arch='mnist_huge', verbose=False)


@pytest.mark.parametrize('arch, in_shape', [('mnist_small', (32, 32, 1)), ('cifar', (32, 32, 1))])
def test_wrong_in_shape_raises(arch, in_shape):
    with pytest.raises(ValueError, match='in_shape: arch'):
        LeNet(in_shape=in_shape, arch=arch, verbose=False)


def test_unknown_keyword_raises():
    with pytest.raises(ValueError, match=r"kwargs: unknown keyword arguments \['use_cm'\]"):
        LeNet(arch='mnist_small', use_cm=True, verbose=False)


def test_condition_and_distilled_params_are_rejected():
    net = LeNet(arch='mnist_small', verbose=False)
    x = torch.zeros(1, 784)
    with pytest.raises(ValueError, match='condition: LeNet has no conditional state'):
        net(x, condition=0)
    with pytest.raises(ValueError, match='distilled_params: this network has no distillation targets'):
        net(x, distilled_params=[torch.zeros(1)])
