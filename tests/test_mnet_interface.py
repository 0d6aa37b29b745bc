"""Tests of mnets.mnet_interface.MainNetInterface on a minimal subclass and on MLP."""
import inspect

import mnet_contract as contract
import pytest
import torch
from torch import nn

from mnets.mlp import MLP
from mnets.mnet_interface import CONTEXT_MOD_DEFAULTS, MainNetInterface


class Affine(nn.Module, MainNetInterface):
    """y = W x + b: the smallest network built only from interface helpers."""

    def __init__(self, n_in=3, n_out=2, no_weights=False, declare_input_rank=True):
        nn.Module.__init__(self)
        MainNetInterface.__init__(self)
        self._has_bias = True
        self._has_fc_out = True
        self._mask_fc_out = True
        self._has_linear_out = True
        if declare_input_rank:
            self._SHARED_INPUT_NDIMS = (2,)
        self._init_param_bookkeeping(any_internal=not no_weights, any_external=no_weights)
        self._slots = self._add_fc_layers([n_in], [n_out], no_weights, fc_layers=[0])[0]
        self._is_properly_setup()

    def forward(self, x, weights=None, distilled_params=None, condition=None):
        params = self._resolve_weights(weights)
        return x @ params[self._slots[0]].T + params[self._slots[1]]

    def distillation_targets(self):
        return None


def test_minimal_subclass_fulfils_the_contract():
    contract.check_all(Affine(), torch.randn(4, 3))


def test_no_weights_subclass():
    net = Affine(no_weights=True).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    assert net.internal_params is None and net.internal_params_ref is None
    assert net.hyper_shapes_learned == [[2, 3], [2]] and net.hyper_shapes_learned_ref == [0, 1]
    contract.check_vmap_matches_loop(net, x)
    contract.check_no_weights_requires_weights(net, x)


def test_weights_alias_and_refs():
    net = Affine()
    assert net.weights is net.internal_params
    assert net.internal_params_ref == [0, 1]
    assert net.num_internal_params == net.num_params == 8


def test_forward_batch_infers_shared_and_per_set_inputs():
    net = Affine().double()
    stack = contract.random_weights(net, 5)
    x = torch.randn(4, 3, dtype=torch.float64)
    assert net.forward_batch(x, stack).shape == (5, 4, 2)
    assert net.forward_batch(x.expand(5, 4, 3), stack).shape == (5, 4, 2)
    with pytest.raises(ValueError, match=r'x: a per-set input needs leading dimension K=5'):
        net.forward_batch(torch.randn(3, 4, 3, dtype=torch.float64), stack)
    with pytest.raises(ValueError, match=r'x: expected \[2\] dims'):
        net.forward_batch(torch.randn(1, 1, 4, 3, dtype=torch.float64), stack)


def test_forward_batch_needs_x_per_set_when_rank_unknown():
    net = Affine(declare_input_rank=False).double()
    stack = contract.random_weights(net, 2)
    x = torch.randn(4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match='x_per_set: Affine cannot infer'):
        net.forward_batch(x, stack)
    assert net.forward_batch(x, stack, x_per_set=False).shape == (2, 4, 2)


def test_forward_batch_rejects_inconsistent_sets():
    net = Affine().double()
    stack = contract.random_weights(net, 3)
    x = torch.randn(4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match='weights: all tensors must share the leading K=3'):
        net.forward_batch(x, [stack[0], stack[1][:2]])
    with pytest.raises(ValueError, match='weights: forward_batch needs a non-empty list'):
        net.forward_batch(x, [])
    with pytest.raises(ValueError, match=r'weights\[1\]: expected shape \[2\], got \[3\]'):
        net.forward_batch(x, [stack[0], torch.zeros(3, 3, dtype=torch.float64)])


def test_flatten_roundtrip_with_leading_dims():
    shapes = [[2, 3], [2], [4, 1, 2]]
    params = [torch.randn(*s) for s in shapes]
    flat = MainNetInterface.flatten_params(params)
    assert flat.shape == (6 + 2 + 8,)
    for got, want in zip(MainNetInterface.flatten_params(flat, shapes, unflatten=True), params):
        assert torch.equal(got, want)
    batched = torch.stack([flat, 2 * flat])
    second = MainNetInterface.flatten_params(batched, shapes, unflatten=True)
    assert torch.equal(second[2][1], 2 * params[2])


def test_flatten_errors():
    with pytest.raises(ValueError, match='param_shapes: required when unflatten=True'):
        MainNetInterface.flatten_params(torch.zeros(3), unflatten=True)
    with pytest.raises(ValueError, match='params: expected 4 entries to unflatten, got 3'):
        MainNetInterface.flatten_params(torch.zeros(3), [[2, 2]], unflatten=True)


def test_output_weight_mask():
    net = MLP(3, 4, (5,), verbose=False)
    masks = net.get_output_weight_mask(out_inds=[1, 3])
    assert masks[:2] == [None, None]
    assert masks[2].shape == (4, 5) and masks[2][[1, 3]].all() and not masks[2][[0, 2]].any()
    assert masks[3].tolist() == [False, True, False, True]
    assert all(m.all() for m in net.get_output_weight_mask()[2:])


def test_custom_init_xavier_and_zero_bias():
    net = MLP(30, 20, (40,), verbose=False)
    net.custom_init()
    assert all(torch.all(b == 0) for b in net.layer_bias_vectors)
    bound = (6 / (30 + 40)) ** 0.5
    assert net.layer_weight_tensors[0].abs().max() <= bound
    net.custom_init(normal_init=True, normal_std=1e-3, zero_bias=False)
    assert net.layer_weight_tensors[0].std() < 2e-3


def test_overwrite_internal_params():
    net = Affine()
    new = [torch.ones(2, 3), torch.zeros(2)]
    net.overwrite_internal_params(new)
    assert torch.equal(net(torch.ones(1, 3)), torch.full((1, 2), 3.0))
    with pytest.raises(ValueError, match='expected 2 tensors'):
        net.overwrite_internal_params(new[:1])
    with pytest.raises(ValueError, match=r'tensor 0 should have shape \[2, 3\], got \[3, 2\]'):
        net.overwrite_internal_params([torch.ones(3, 2), torch.zeros(2)])


def test_weights_of_wrong_type_raise():
    net = Affine()
    with pytest.raises(TypeError, match='weights: expected None, a list of tensors or a dict, got str'):
        net(torch.zeros(1, 3), weights='w')
    with pytest.raises(TypeError, match=r'weights\[0\]: expected a tensor of shape \[2, 3\], got list'):
        net(torch.zeros(1, 3), weights=[[1.0], torch.zeros(2)])


def test_context_mod_defaults_equal_mlp_signature():
    params = inspect.signature(MLP.__init__).parameters
    assert {k: params[k].default for k in CONTEXT_MOD_DEFAULTS} == CONTEXT_MOD_DEFAULTS
    kwargs = {'use_context_mod': True, 'foo': 1}
    assert MainNetInterface._parse_context_mod_args(kwargs) == ['foo']
    assert kwargs['context_mod_inputs'] is False


def test_incomplete_subclass_is_reported():
    class Broken(Affine):
        def __init__(self):
            super().__init__()
            self._has_fc_out = None
            self._is_properly_setup()

    with pytest.raises(RuntimeError, match='_has_fc_out must be a bool'):
        Broken()
