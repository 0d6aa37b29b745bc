"""Tests of utils.l0_regularizer.L0Module: sparsification with fit kept, closed forms, exclude, per-sample."""
import math

import pytest
import torch
from torch import nn

from utils.l0_regularizer import L0Module


def _mlp():
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))


def test_l0_prunes_mlp_and_keeps_the_fit():
    n_train = 256
    x = torch.randn(n_train, 8)
    # Only 3 of 8 inputs matter, and mostly linearly: a sparse network suffices.
    y = 2 * x[:, :1] - x[:, 1:2] + 0.5 * torch.tanh(2 * x[:, 2:3]) + 0.05 * torch.randn(n_train, 1)
    net = _mlp()
    dense_count = sum(p.numel() for p in net.parameters())
    model = L0Module(net, lam=1.0, droprate_init=0.2)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(1500):
        optimizer.zero_grad()
        loss = (model(x) - y).pow(2).mean() + model.regularization() / n_train
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        mse = (model(x) - y).pow(2).mean()
        kept = sum(int((mask > 0).sum()) for mask in model.get_masks().values())
    # Measured: count_l0 ~ 42 of 161 and mse ~ 0.014 against a target variance ~ 4.2 (noise variance 0.0025).
    assert model.count_l0() < 0.4 * dense_count
    assert kept < 0.4 * dense_count
    assert mse < 0.05 * y.var()


def test_regularization_and_counts_closed_forms():
    net = nn.Linear(3, 2)
    model = L0Module(net, lam=0.7, weight_decay=0.3, temperature=0.5, limit_a=-0.2, limit_b=1.3,
                     exclude=('bias',))
    with torch.no_grad():
        model.log_alphas[0].copy_(torch.tensor([[0.1, -1.0, 2.0], [0.0, 0.5, -3.0]]))
    probs = torch.sigmoid(model.log_alphas[0] - 0.5 * math.log(0.2 / 1.3))
    torch.testing.assert_close(model.active_probs()['weight'], probs)
    weight, bias = net.weight, net.bias
    torch.testing.assert_close(model.count_l0(), probs.sum() + 2)
    torch.testing.assert_close(model.count_l2(), (probs * weight.pow(2)).sum() + bias.pow(2).sum())
    expected = (probs * (0.7 + 0.15 * weight.pow(2))).sum() + 0.15 * bias.pow(2).sum()
    torch.testing.assert_close(model.regularization(), expected)


def test_droprate_init_sets_initial_keep_probability():
    model = L0Module(_mlp(), lam=1.0, droprate_init=0.3)
    log_alpha = torch.cat([la.detach().reshape(-1) for la in model.log_alphas])
    # log(alpha) ~ N(log(0.7 / 0.3), 0.01^2): the expected eval gate is sigmoid(log alpha) ~ 0.7.
    torch.testing.assert_close(log_alpha.mean(), torch.tensor(math.log(0.7 / 0.3)), atol=5e-3, rtol=0)


def test_sampled_masks_match_active_probs():
    model = L0Module(nn.Linear(5, 1, bias=False), lam=1.0)
    with torch.no_grad():
        model.log_alphas[0].copy_(torch.linspace(-3, 3, 5).reshape(1, 5))
    n_samples = 40000
    masks = model.sample_masks(n_samples)['weight']
    empirical = (masks > 0).double().mean(0)
    probs = model.active_probs()['weight'].double()
    tolerance = 5 * torch.sqrt(probs * (1 - probs) / n_samples)  # 5 binomial standard errors
    assert torch.all((empirical - probs).abs() <= tolerance)


def test_forward_matches_functional_module_with_eval_masks():
    net = _mlp()
    model = L0Module(net, lam=1.0)
    with torch.no_grad():
        for log_alpha in model.log_alphas:
            log_alpha.normal_(0.0, 3.0)
    model.eval()
    x = torch.randn(10, 8)
    masks = model.get_masks()
    assert any(bool((m == 0).any()) for m in masks.values()) and any(bool((m == 1).any())
                                                                     for m in masks.values())
    w1, b1 = net[0].weight * masks['0.weight'], net[0].bias * masks['0.bias']
    w2, b2 = net[2].weight * masks['2.weight'], net[2].bias * masks['2.bias']
    expected = torch.nn.functional.linear(torch.tanh(torch.nn.functional.linear(x, w1, b1)), w2, b2)
    torch.testing.assert_close(model(x), expected)
    assert torch.equal(model(x), model(x))


def test_parameters_not_duplicated_and_module_untouched():
    net = _mlp()
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    model = L0Module(net, lam=1.0, exclude=('2.bias',))
    ids = [id(p) for p in model.parameters()]
    assert len(ids) == len(set(ids))
    net_ids = {id(p) for p in net.parameters()}
    assert net_ids <= set(ids)
    assert len(ids) == len(net_ids) + len(model.gated_names)
    assert model.gated_names == ('0.weight', '0.bias', '2.weight')
    model(torch.randn(4, 8)).sum().backward()
    for name, p in net.named_parameters():
        assert torch.equal(p, before[name])  # gating happens on copies: the user's module is not rewritten
    assert not any(isinstance(m, L0Module) for m in net.modules())


def test_exclude_leaves_parameters_ungated():
    net = _mlp()
    model = L0Module(net, lam=1.0, exclude=('2.weight', '2.bias'))
    with torch.no_grad():
        for log_alpha in model.log_alphas:
            log_alpha.fill_(-20.0)  # every gated entry is off
    model.eval()
    x = torch.randn(6, 8)
    # First layer fully pruned: the output is the untouched last layer applied to tanh(0) = 0, i.e. its bias.
    torch.testing.assert_close(model(x), net[2].bias.expand(6, 1))
    model.train()
    out = model(x)
    out.sum().backward()
    torch.testing.assert_close(net[2].bias.grad, torch.tensor([6.0]))
    with pytest.raises(ValueError, match='exclude'):
        L0Module(_mlp(), lam=1.0, exclude=('3.weight',))
    with pytest.raises(TypeError, match='exclude'):
        L0Module(_mlp(), lam=1.0, exclude='2.bias')


def test_per_sample_masks_differ_across_batch():
    net = nn.Linear(4, 3)
    model = L0Module(net, lam=1.0, per_sample=True)
    x = torch.ones(1, 4).expand(32, 4)
    out = model(x)
    assert out.shape == (32, 3)
    # Identical inputs: any difference between rows comes from their masks.
    assert (out - out[:1]).abs().amax(1).gt(1e-6).sum() >= 30
    out.sum().backward()
    assert model.log_alphas[0].grad.abs().sum() > 0 and net.weight.grad.abs().sum() > 0
    # Shared masks in the default mode: identical inputs give identical rows.
    shared = L0Module(nn.Linear(4, 3), lam=1.0)(x)
    torch.testing.assert_close(shared, shared[:1].expand(32, 3))
    # Eval stays deterministic even with per_sample.
    model.eval()
    torch.testing.assert_close(model(x), model(x)[:1].expand(32, 3))


def test_per_sample_matches_loop_with_same_masks():
    net = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    model = L0Module(net, lam=1.0, per_sample=True)
    x = torch.randn(7, 4)
    torch.manual_seed(3)
    out = model(x)
    torch.manual_seed(3)
    masks = model.sample_masks(7)
    params = dict(net.named_parameters())
    for i in range(7):
        gated = {name: params[name] * masks[name][i] for name in masks}
        expected = torch.func.functional_call(net, gated, (x[i:i + 1],))
        torch.testing.assert_close(out[i], expected[0])


def test_argument_errors():
    with pytest.raises(TypeError, match='module'):
        L0Module(lambda x: x, lam=1.0)
    with pytest.raises(ValueError, match='module'):
        L0Module(nn.ReLU(), lam=1.0)
    with pytest.raises(ValueError, match='lam'):
        L0Module(_mlp(), lam=-1.0)
    with pytest.raises(ValueError, match='weight_decay'):
        L0Module(_mlp(), lam=1.0, weight_decay=-0.1)
    for rate in (0.0, 1.0):
        with pytest.raises(ValueError, match='droprate_init'):
            L0Module(_mlp(), lam=1.0, droprate_init=rate)
    for temperature in (0.0, 1.2):
        with pytest.raises(ValueError, match='temperature'):
            L0Module(_mlp(), lam=1.0, temperature=temperature)
    with pytest.raises(ValueError, match='limit_a'):
        L0Module(_mlp(), lam=1.0, limit_a=0.0)
    with pytest.raises(ValueError, match='limit_b'):
        L0Module(_mlp(), lam=1.0, limit_b=1.0)
    with pytest.raises(TypeError, match='lam'):
        L0Module(_mlp(), lam='big')
    with pytest.raises(ValueError, match='args'):
        L0Module(_mlp(), lam=1.0, per_sample=True)()


@pytest.mark.cuda
@pytest.mark.parametrize('per_sample', [False, True])
def test_l0_runs_on_cuda(per_sample):
    model = L0Module(_mlp(), lam=1.0, weight_decay=0.1, per_sample=per_sample).cuda()
    out = model(torch.randn(4, 8, device='cuda'))
    (out.sum() + model.regularization()).backward()
    assert out.device.type == 'cuda' and model.log_alphas[0].grad.device.type == 'cuda'
