"""Tests of mnets.zenkenet.ZenkeNet: contract checks, a torch.nn twin and errors."""
import mnet_contract as contract
import pytest
import torch
from torch import nn

from mnets.zenkenet import ZenkeNet


def _images(batch=2):
    return torch.randn(batch, 32, 32, 3, dtype=torch.float64)


def test_shapes_and_size():
    net = ZenkeNet(num_classes=5, verbose=False)
    assert net.param_shapes[-2:] == [[5, 512], [5]]
    assert ZenkeNet(verbose=False).num_params == 1_250_858  # hypnettorch 0.0.4
    assert [d['layer'] for d in net.param_shapes_meta] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_contract():
    contract.check_all(ZenkeNet(verbose=False), _images(), num_sets=2)


def test_matches_torch_nn_twin():
    net = contract.as_double(ZenkeNet(verbose=False))
    twin = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2304, 512), nn.ReLU(),
                         nn.Linear(512, 10)).double()
    layers = [m for m in twin if isinstance(m, (nn.Conv2d, nn.Linear))]
    params = [p.detach() for p in net.internal_params]
    with torch.no_grad():
        for i, module in enumerate(layers):
            module.weight.copy_(params[2 * i])
            module.bias.copy_(params[2 * i + 1])
    x = _images()
    torch.testing.assert_close(net(x), twin(x.permute(0, 3, 1, 2)), **contract.TOL)


def test_no_weights_net():
    net = contract.as_double(ZenkeNet(no_weights=True, verbose=False))
    x = _images()
    assert net.internal_params is None and net.hyper_shapes_learned == net.param_shapes
    contract.check_bookkeeping(net)
    contract.check_vmap_matches_loop(net, x, num_sets=2)
    contract.check_no_weights_requires_weights(net, x)


def test_dropout_only_in_training():
    net = contract.as_double(ZenkeNet(verbose=False))
    x = _images()
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))


@pytest.mark.parametrize('kwargs, match', [
    ({'arch': 'imagenet'}, "arch: expected one of \\['cifar'\\], got 'imagenet'"),
    ({'in_shape': (28, 28, 1)}, 'in_shape: expected \\(32, 32, 3\\)'),
    ({'dropout_rate': 0.6}, 'dropout_rate: expected -1 or a value in \\[0, 0.5\\]'),
])
def test_invalid_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ZenkeNet(verbose=False, **kwargs)
