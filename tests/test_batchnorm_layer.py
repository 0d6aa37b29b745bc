"""Tests for utils.batchnorm_layer against torch.nn.functional.batch_norm and hand computations.

float32 normalisation of O(1) data: results from the folded closed form and torch's kernel differ by a few
ulps of values of size O(1..5), so ``atol=1e-5`` is tight (a wrong epsilon of 1e-3 would already give errors
~5e-4) yet robust to summation order.
"""
import pytest
import torch
import torch.nn.functional as F
from torch.func import vmap

from utils.batchnorm_layer import BatchNormLayer

ATOL = 1e-5


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _by_hand(x, mean, var, weight, bias, eps=1e-5):
    view = (1, -1) + (1,) * (x.dim() - 2)
    return (x - mean.view(view)) / torch.sqrt(var.view(view) + eps) * weight.view(view) + bias.view(view)


@pytest.mark.parametrize('shape', [(16, 3), (8, 3, 5), (4, 3, 4, 4)])
def test_train_and_eval_match_torch(shape):
    layer = BatchNormLayer(3, momentum=0.2)
    ref = torch.nn.BatchNorm1d(3, momentum=0.2) if len(shape) < 4 else torch.nn.BatchNorm2d(3, momentum=0.2)
    with torch.no_grad():
        for p in (layer.scale, layer.bias):
            p.normal_()
        ref.weight.copy_(layer.scale)
        ref.bias.copy_(layer.bias)
    for _ in range(3):
        x = torch.randn(shape) * 2 + 1
        torch.testing.assert_close(layer(x), ref(x), atol=ATOL, rtol=0)
    mean, var = layer.get_stats()
    torch.testing.assert_close(mean, ref.running_mean, atol=ATOL, rtol=0)
    torch.testing.assert_close(var, ref.running_var, atol=ATOL, rtol=0)

    layer.eval()
    ref.eval()
    x = torch.randn(shape)
    torch.testing.assert_close(layer(x), ref(x), atol=ATOL, rtol=0)
    torch.testing.assert_close(layer(x), _by_hand(x, mean, var, layer.scale, layer.bias), atol=ATOL, rtol=0)


def test_train_mode_normalises_with_batch_stats_by_hand():
    layer = BatchNormLayer(4)
    x = torch.randn(32, 4) * 3 - 2
    biased_var, mean = torch.var_mean(x, dim=0, unbiased=False)
    torch.testing.assert_close(layer(x), _by_hand(x, mean, biased_var, torch.ones(4), torch.zeros(4)),
                               atol=ATOL, rtol=0)
    # Running update uses the unbiased variance (as torch.nn.BatchNorm).
    running_mean, running_var = layer.get_stats()
    torch.testing.assert_close(running_mean, 0.1 * mean, atol=ATOL, rtol=0)
    torch.testing.assert_close(running_var, 0.9 + 0.1 * x.var(dim=0, unbiased=True), atol=ATOL, rtol=0)


def test_stats_checkpoints_and_stats_id():
    layer = BatchNormLayer(2)
    assert layer.num_stats == 1
    layer(torch.randn(10, 2) + 5)
    first = [t.clone() for t in layer.get_stats(0)]
    layer.checkpoint_stats()
    assert layer.num_stats == 2
    with pytest.raises(ValueError, match='stats_id'):
        layer(torch.randn(10, 2))
    layer(torch.randn(10, 2) - 5, stats_id=1)
    torch.testing.assert_close(layer.get_stats(0)[0], first[0])  # set 0 untouched
    assert (layer.get_stats(1)[0] < 0).all() and (layer.get_stats()[0] < 0).all()  # default: latest

    layer.eval()
    x = torch.randn(6, 2)
    for sid in (0, 1):
        m, v = layer.get_stats(sid)
        torch.testing.assert_close(layer(x, stats_id=sid), _by_hand(x, m, v, layer.scale, layer.bias),
                                   atol=ATOL, rtol=0)

    doubled = BatchNormLayer(2).double()
    doubled.checkpoint_stats()
    assert doubled.get_stats(1)[0].dtype == torch.float64
    doubled.eval()(torch.randn(3, 2, dtype=torch.float64), stats_id=1)

    fresh = BatchNormLayer(2)
    fresh.load_state_dict(layer.state_dict())
    assert fresh.num_stats == 2
    fresh.eval()
    torch.testing.assert_close(fresh(x, stats_id=1), layer(x, stats_id=1))


def test_external_stats_and_affine_params():
    layer = BatchNormLayer(3, affine=False)
    assert layer.weights is None and layer.hyper_shapes == [[3], [3]]
    assert BatchNormLayer(3).hyper_shapes is None and BatchNormLayer(3).param_shapes == [[3], [3]]
    x = torch.randn(5, 3, 2)
    m, v, w, b = torch.randn(3), torch.rand(3) + 0.5, torch.randn(3), torch.randn(3)
    layer.eval()
    torch.testing.assert_close(layer(x, m, v, w, b), _by_hand(x, m, v, w, b), atol=ATOL, rtol=0)
    torch.testing.assert_close(layer(x, m, v), _by_hand(x, m, v, torch.ones(3), torch.zeros(3)),
                               atol=ATOL, rtol=0)

    # Training mode: batch stats normalise; given stats are updated in place like torch's running stats.
    layer.train()
    m_given, v_given = m.clone(), v.clone()
    expected = F.batch_norm(x, m.clone(), v.clone(), w, b, training=True)
    torch.testing.assert_close(layer(x, m_given, v_given, w, b), expected, atol=ATOL, rtol=0)
    assert not torch.equal(m_given, m)
    # Stats requiring grad (hypernetwork outputs) are parameters: used in eval, never updated.
    m_param = m.clone().requires_grad_()
    layer(x, m_param, v, w, b)
    assert torch.equal(m_param.detach(), m)


def test_gradient_wrt_external_stats_in_eval():
    layer = BatchNormLayer(3, affine=False).eval()
    x = torch.randn(4, 3)
    m = torch.zeros(3, requires_grad=True)
    v = torch.ones(3, requires_grad=True)
    layer(x, m, v).sum().backward()
    # d/dm sum((x - m) / sqrt(v + eps)) = -B / sqrt(v + eps)
    torch.testing.assert_close(m.grad, torch.full((3,), -4. / (1 + 1e-5) ** 0.5), atol=ATOL, rtol=0)
    torch.testing.assert_close(v.grad, -0.5 * x.sum(0) / (1 + 1e-5) ** 1.5, atol=ATOL, rtol=0)
    # The same through torch.func.grad, vmapped over K stats sets (the differentiable closed-form path).
    grads = vmap(torch.func.grad(lambda mean, var: layer(x, mean, var).sum()))(torch.zeros(2, 3), torch.ones(2, 3))
    torch.testing.assert_close(grads, m.grad.expand(2, 3), atol=ATOL, rtol=0)
    # Both paths (closed form for stats requiring grad, torch's kernel otherwise) give the same values.
    torch.testing.assert_close(layer(x, m, v), layer(x, m.detach(), v.detach()), atol=ATOL, rtol=0)


def test_no_running_stats_always_uses_batch_stats():
    layer = BatchNormLayer(3, track_running_stats=False).eval()
    assert layer.num_stats == 0
    x = torch.randn(9, 3)
    torch.testing.assert_close(layer(x), F.batch_norm(x, None, None, training=True), atol=ATOL, rtol=0)


def test_frozen_and_learnable_stats():
    frozen = BatchNormLayer(3, track_running_stats=False, frozen_stats=True)
    x = torch.randn(5, 3) * 4
    with torch.no_grad():
        frozen.scale.fill_(2.)
    # mean 0, var 1: a pure affine map in both modes, stats never change.
    torch.testing.assert_close(frozen(x), 2. * x / (1 + 1e-5) ** 0.5, atol=ATOL, rtol=0)
    assert torch.equal(frozen.get_stats()[0], torch.zeros(3))

    learnable = BatchNormLayer(3, track_running_stats=False, learnable_stats=True)
    assert len(learnable.weights) == 2 and len(list(learnable.parameters())) == 4
    learnable(x).sum().backward()
    mean_param = learnable.get_stats()[0]
    torch.testing.assert_close(mean_param.grad, torch.full((3,), -5. / (1 + 1e-5) ** 0.5), atol=ATOL, rtol=0)


def test_vmap_over_external_stats_and_affine_params():
    k, layer = 5, BatchNormLayer(3, affine=False)
    x = torch.randn(6, 3, 4, 4)
    means, vars_ = torch.randn(k, 3), torch.rand(k, 3) + 0.5
    ws, bs = torch.randn(k, 3), torch.randn(k, 3)

    layer.eval()
    batched = vmap(lambda m, v, w, b: layer(x, m, v, w, b))(means, vars_, ws, bs)
    looped = torch.stack([layer(x, means[i], vars_[i], ws[i], bs[i]) for i in range(k)])
    torch.testing.assert_close(batched, looped, atol=ATOL, rtol=0)

    # Training mode: each vmapped slice updates its own stats set, as a loop would.
    layer.train()
    xs = torch.randn(k, 6, 3, 4, 4)
    m_vmap, v_vmap = means.clone(), vars_.clone()
    m_loop, v_loop = means.clone(), vars_.clone()
    batched = vmap(lambda xi, m, v, w, b: layer(xi, m, v, w, b))(xs, m_vmap, v_vmap, ws, bs)
    looped = torch.stack([layer(xs[i], m_loop[i], v_loop[i], ws[i], bs[i]) for i in range(k)])
    torch.testing.assert_close(batched, looped, atol=ATOL, rtol=0)
    torch.testing.assert_close(m_vmap, m_loop, atol=ATOL, rtol=0)
    torch.testing.assert_close(v_vmap, v_loop, atol=ATOL, rtol=0)


def test_vmap_over_internal_buffers_in_training_fails_loudly():
    layer = BatchNormLayer(3)
    with pytest.raises(RuntimeError, match='running_mean'):
        vmap(layer)(torch.randn(2, 4, 3))
    layer.eval()  # evaluation mode only reads the buffers: fine
    out = vmap(layer)(torch.randn(2, 4, 3))
    assert out.shape == (2, 4, 3)


def test_errors():
    with pytest.raises(ValueError, match='num_features'):
        BatchNormLayer(0)
    with pytest.raises(ValueError, match='momentum'):
        BatchNormLayer(3, momentum=None)
    with pytest.raises(ValueError, match='track_running_stats'):
        BatchNormLayer(3, frozen_stats=True)
    with pytest.raises(ValueError, match='track_running_stats'):
        BatchNormLayer(3, learnable_stats=True)
    with pytest.raises(ValueError, match='frozen_stats, learnable_stats'):
        BatchNormLayer(3, track_running_stats=False, frozen_stats=True, learnable_stats=True)
    with pytest.raises(ValueError, match='checkpoint_stats'):
        BatchNormLayer(3, track_running_stats=False).checkpoint_stats()
    with pytest.raises(ValueError, match='get_stats'):
        BatchNormLayer(3, track_running_stats=False).get_stats()

    layer = BatchNormLayer(3)
    with pytest.raises(ValueError, match=r'inputs: expected shape \[B, 3, ...\], got \[4, 2\]'):
        layer(torch.randn(4, 2))
    with pytest.raises(ValueError, match='running_mean, running_var'):
        layer(torch.randn(4, 3), running_mean=torch.zeros(3))
    with pytest.raises(ValueError, match=r'weight: expected shape \[3\], got \[2\]'):
        layer(torch.randn(4, 3), weight=torch.ones(2))
    with pytest.raises(ValueError, match=r'stats_id: expected an int in \[0, 0\], got 3'):
        layer(torch.randn(4, 3), stats_id=3)
    with pytest.warns(UserWarning, match='stats_id=0 is ignored'):
        layer(torch.randn(4, 3), torch.zeros(3), torch.ones(3), stats_id=0)
