"""Tests for utils.context_mod_layer: closed forms, per-sample weights, checkpoints, vmap, errors.

All comparisons are float32 element-wise products/sums of O(1) values, so results agree with the closed form
to a few ulps; ``atol=1e-6`` leaves margin while still catching any wrong formula (differences O(0.1)).
"""
import pytest
import torch
from torch.func import vmap

from utils.context_mod_layer import ContextModLayer

ATOL = 1e-6


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_default_init_is_identity_and_shapes():
    layer = ContextModLayer(4)
    x = torch.randn(3, 4)
    assert torch.equal(layer(x), x)
    assert layer.param_shapes == [[4], [4]]
    assert layer.param_shapes_meta == ['gain', 'shift']
    assert [p is q for p, q in zip(layer.weights, (layer.gain, layer.shift))] == [True, True]
    assert layer.has_gains and layer.has_shifts and layer.num_ckpts == 0


def test_offset_init_is_identity():
    layer = ContextModLayer(4, apply_gain_offset=True)
    assert torch.equal(layer.gain.detach(), torch.zeros(4))
    x = torch.randn(3, 4)
    assert torch.equal(layer(x), x)


@pytest.mark.parametrize('offset, softplus, scale', [(False, False, 1.), (True, False, 1.), (False, True, 1.),
                                                    (False, True, 3.)])
def test_forward_closed_form(offset, softplus, scale):
    layer = ContextModLayer(5, no_weights=True, apply_gain_offset=offset, apply_gain_softplus=softplus,
                            softplus_scale=scale)
    x, g, s = torch.randn(7, 5), torch.randn(5), torch.randn(5)
    if softplus:
        eff = torch.log1p(torch.exp(scale * g)) / scale
    else:
        eff = g + 1 if offset else g
    torch.testing.assert_close(layer(x, weights=[g, s]), x * eff + s, atol=ATOL, rtol=0)


def test_only_gains_or_only_shifts():
    x, w = torch.randn(2, 3), torch.randn(3)
    only_shift = ContextModLayer(3, no_gains=True, no_weights=True)
    only_gain = ContextModLayer(3, no_shifts=True, no_weights=True)
    assert only_shift.param_shapes_meta == ['shift'] and only_gain.param_shapes_meta == ['gain']
    torch.testing.assert_close(only_shift(x, weights=[w]), x + w)
    torch.testing.assert_close(only_gain(x, weights=[w]), x * w)
    assert ContextModLayer(3, no_gains=True).gain is None


def test_per_sample_weights_2d_and_conv():
    layer = ContextModLayer(4, no_weights=True)
    x, g, s = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4)
    out = layer(x, weights=[g, s])
    for b in range(3):
        torch.testing.assert_close(out[b], x[b] * g[b] + s[b], atol=ATOL, rtol=0)

    # One gain per feature map (dim 1) of a conv activation; per-sample variant [B, C, 1, 1].
    conv_layer = ContextModLayer([2, 1, 1], no_weights=True)
    x = torch.randn(3, 2, 5, 5)
    g, s = torch.randn(2, 1, 1), torch.randn(2, 1, 1)
    torch.testing.assert_close(conv_layer(x, weights=[g, s]),
                               x * g.view(1, 2, 1, 1) + s.view(1, 2, 1, 1), atol=ATOL, rtol=0)
    gb, sb = torch.randn(3, 2, 1, 1), torch.randn(3, 2, 1, 1)
    out = conv_layer(x, weights=[gb, sb])
    torch.testing.assert_close(out[1], x[1] * gb[1] + sb[1], atol=ATOL, rtol=0)


def test_per_sample_weights_sequence_batch_dim():
    layer = ContextModLayer(4, no_weights=True)
    x = torch.randn(6, 3, 4)  # [T, B, F]
    g, s = torch.randn(3, 4), torch.randn(3, 4)
    out = layer(x, weights=[g, s], bs_dim=1)
    torch.testing.assert_close(out[:, 2], x[:, 2] * g[2] + s[2], atol=ATOL, rtol=0)
    # Batch-first sequences [B, T, F] put the per-sample weights on dim 0.
    out = layer(x.transpose(0, 1), weights=[g, s], bs_dim=0)
    torch.testing.assert_close(out[2], x[:, 2] * g[2] + s[2], atol=ATOL, rtol=0)


def test_checkpoints_and_reinit():
    layer = ContextModLayer(3)
    with torch.no_grad():
        layer.gain.copy_(torch.tensor([2., 3., 4.]))
        layer.shift.copy_(torch.tensor([1., 1., 1.]))
    layer.checkpoint_weights()
    assert layer.num_ckpts == 1
    assert torch.equal(layer.gain.detach(), torch.ones(3)) and torch.equal(layer.shift.detach(), torch.zeros(3))
    x = torch.randn(2, 3)
    torch.testing.assert_close(layer(x, ckpt_id=0), x * torch.tensor([2., 3., 4.]) + 1)
    torch.testing.assert_close(layer(x, ckpt_id=1), x)  # id == num_ckpts -> current weights
    assert all(b.requires_grad is False for b in layer.get_weights(0))
    assert len(list(layer.parameters())) == 2  # checkpoints are buffers, not trained

    with torch.no_grad():
        layer.gain.fill_(5.)
    layer.checkpoint_weights(no_reinit=True)
    assert torch.equal(layer.gain.detach(), torch.full((3,), 5.))
    assert torch.equal(layer.get_weights(1)[0], torch.full((3,), 5.))

    # A fresh layer loads a state_dict holding checkpoints.
    fresh = ContextModLayer(3)
    fresh.load_state_dict(layer.state_dict())
    assert fresh.num_ckpts == 2
    torch.testing.assert_close(fresh(x, ckpt_id=0), layer(x, ckpt_id=0))


def test_checkpoint_of_offset_layer_resets_to_zero():
    layer = ContextModLayer(2, apply_gain_offset=True, no_shifts=True)
    with torch.no_grad():
        layer.gain.fill_(0.5)
    layer.checkpoint_weights()
    assert torch.equal(layer.gain.detach(), torch.zeros(2))
    assert layer.get_weights(0)[1] is None


def test_inits():
    layer = ContextModLayer(2000)
    layer.normal_init(std=0.1)
    assert abs(layer.gain.mean().item() - 1.) < 0.02 and abs(layer.shift.std().item() - 0.1) < 0.01
    layer.uniform_init(width=0.5)
    assert layer.gain.min() >= 0.5 and layer.gain.max() <= 1.5
    layer.sparse_init(sparsity=0.25)
    assert int((layer.gain == 0).sum()) == 500 and int((layer.gain == 1).sum()) == 1500
    layer.reset_parameters()
    assert torch.equal(layer.gain.detach(), torch.ones(2000))


def test_vmap_over_weight_sets_equals_loop():
    k, layer = 4, ContextModLayer(5, no_weights=True, apply_gain_softplus=True, softplus_scale=2.)
    x = torch.randn(8, 5)
    gains, shifts = torch.randn(k, 5), torch.randn(k, 5)
    batched = vmap(lambda g, s: layer(x, weights=[g, s]))(gains, shifts)
    looped = torch.stack([layer(x, weights=[gains[i], shifts[i]]) for i in range(k)])
    torch.testing.assert_close(batched, looped, atol=ATOL, rtol=0)

    # Also with per-task inputs and per-sample weights inside each vmapped slice.
    xs, gs = torch.randn(k, 8, 5), torch.randn(k, 8, 5)
    batched = vmap(lambda xi, g, s: layer(xi, weights=[g, s]))(xs, gs, shifts)
    looped = torch.stack([layer(xs[i], weights=[gs[i], shifts[i]]) for i in range(k)])
    torch.testing.assert_close(batched, looped, atol=ATOL, rtol=0)


def test_gradients_flow_to_given_weights():
    layer = ContextModLayer(3, no_weights=True, apply_gain_offset=True)
    x = torch.randn(4, 3)
    g, s = torch.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)
    layer(x, weights=[g, s]).sum().backward()
    torch.testing.assert_close(g.grad, x.sum(0))
    torch.testing.assert_close(s.grad, torch.full((3,), 4.))


def test_errors():
    with pytest.raises(ValueError, match='no_gains, no_shifts'):
        ContextModLayer(3, no_gains=True, no_shifts=True)
    with pytest.raises(ValueError, match='apply_gain_offset'):
        ContextModLayer(3, apply_gain_offset=True, apply_gain_softplus=True)
    with pytest.raises(ValueError, match='num_features'):
        ContextModLayer([3, 0])
    with pytest.raises(TypeError, match='num_features'):
        ContextModLayer('3')
    with pytest.raises(ValueError, match='softplus_scale'):
        ContextModLayer(3, softplus_scale=0.)

    no_w = ContextModLayer(3, no_weights=True)
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match='weights: expected gain/shift'):
        no_w(x)
    with pytest.raises(ValueError, match='weights: expected a list of 2 tensors'):
        no_w(x, weights=[torch.ones(3)])
    with pytest.raises(ValueError, match=r'weights: expected gain of shape \[3\]'):
        no_w(x, weights=[torch.ones(4), torch.ones(3)])
    with pytest.raises(ValueError, match='weights: expected shift'):
        no_w(x, weights=[torch.ones(3), torch.ones(5, 3)])  # batch 5 != 2
    with pytest.raises(ValueError, match='bs_dim'):
        no_w(x, weights=[torch.ones(3), torch.ones(3)], bs_dim=2)
    with pytest.raises(ValueError, match='checkpoint_weights'):
        no_w.checkpoint_weights()
    with pytest.raises(ValueError, match='sparsity'):
        ContextModLayer(3).sparse_init(1.5)

    layer = ContextModLayer(3)
    with pytest.raises(ValueError, match=r'ckpt_id: expected an int in \[0, 0\]'):
        layer(x, ckpt_id=2)
    with pytest.warns(UserWarning, match='ckpt_id=0 is ignored'):
        layer(x, weights=[torch.ones(3), torch.zeros(3)], ckpt_id=0)
