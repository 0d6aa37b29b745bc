"""Tests for utils.ewc_regularizer: Fisher estimates against explicit per-sample loops and closed forms."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hnets.mlp_hnet import HMLP
from mnets.mlp import MLP
from utils.ewc_regularizer import compute_fisher, context_mod_forward, ewc_regularizer

CPU = torch.device('cpu')


class ToyData:
    """The slice of hypnettorch's Dataset interface compute_fisher reads (numpy batches, like MiniData)."""

    def __init__(self, n=37, n_in=5, n_out=3, seed=0, regression=False, one_hot=False, x=None, y=None):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, n_in, generator=g, dtype=torch.float64) if x is None else x
        if y is not None:
            self.y = y
        elif regression:
            self.y = torch.randn(n, n_out, generator=g, dtype=torch.float64)
        else:
            labels = torch.randint(0, n_out, (n,), generator=g)
            self.y = F.one_hot(labels, n_out).double() if one_hot else labels.view(n, 1)
        self.num_train_samples = n
        self.classification, self.is_one_hot = not regression, one_hot
        self.out_shape, self.num_classes = [n_out], n_out
        self._next = 0

    def reset_batch_generator(self, train=True, test=False, val=False):
        self._next = 0

    def next_train_batch(self, batch_size, return_ids=False):
        start = self._next
        ids = [(start + i) % self.num_train_samples for i in range(batch_size)]
        self._next = (start + batch_size) % self.num_train_samples
        batch = (self.x[ids].numpy(), self.y[ids].numpy())
        return batch + (ids,) if return_ids else batch

    def input_to_torch_tensor(self, x, device, mode='inference'):
        return torch.as_tensor(x, device=device)

    def output_to_torch_tensor(self, y, device, mode='inference'):
        return torch.as_tensor(y, device=device)


def _mlp(n_in=5, n_out=3, hidden=(6, 4), **kwargs):
    torch.manual_seed(1)
    return MLP(n_in=n_in, n_out=n_out, hidden_layers=list(hidden), verbose=False, **kwargs).double()


def _loop_fisher(params, data, n, outputs, regression=False, allowed=None):
    """Mean over samples of squared gradients, one backward per sample (the definition)."""
    total = [torch.zeros_like(p) for p in params]
    for b in range(n):
        x, y = data.x[b:b + 1], data.y[b:b + 1]
        Y = outputs(x)
        if allowed is not None:
            Y = Y[:, allowed]
        if regression:
            nll = 0.5 * (Y - y).pow(2).sum()
        else:
            label = y.argmax(-1) if data.is_one_hot else y.view(1)
            nll = F.cross_entropy(Y, label, reduction='sum')
        for t, g in zip(total, torch.autograd.grad(nll, params, allow_unused=True)):
            if g is not None:
                t += g.pow(2)
    return [t / n for t in total]


def _stored(net, task, count, online=False):
    tag = '' if online else f'_task_{task}'
    return [getattr(net, f'ewc_fisher_estimate{tag}_weights_{i}') for i in range(count)]


# float64 throughout: the vectorised and looped sums differ only by summation order (~1e-15 relative).
TOL = dict(rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize('kind', ['classification', 'one_hot', 'regression', 'allowed_outputs', 'n_max'])
def test_empirical_fisher_matches_loop_mlp(kind):
    regression = kind == 'regression'
    data = ToyData(regression=regression, one_hot=kind == 'one_hot', n_out=2 if kind == 'allowed_outputs' else 3)
    mnet = _mlp()
    params = list(mnet.parameters())
    allowed = [0, 2] if kind == 'allowed_outputs' else None
    n = 20 if kind == 'n_max' else data.num_train_samples
    compute_fisher(0, data, params, CPU, mnet, regression=regression, allowed_outputs=allowed,
                   n_max=20 if kind == 'n_max' else -1)
    expected = _loop_fisher(params, data, n, lambda x: mnet.forward(x), regression, allowed)
    for got, want in zip(_stored(mnet, 0, len(params)), expected):
        torch.testing.assert_close(got, want, **TOL)
    for p, w in zip(params, [getattr(mnet, f'ewc_prev_task_0_weights_{i}') for i in range(len(params))]):
        assert torch.equal(p.detach(), w)


def test_empirical_fisher_external_weights_and_custom_forward():
    # Weights passed through `weights=` (no_weights MLP) and a custom forward (vmap path) agree with the loop.
    data = ToyData()
    mnet = _mlp(no_weights=True)
    g = torch.Generator().manual_seed(4)
    params = [torch.randn(*s, generator=g, dtype=torch.float64) * 0.5 for s in mnet.param_shapes]
    expected = _loop_fisher([p.requires_grad_() for p in params], data, data.num_train_samples,
                            lambda x: mnet.forward(x, weights=params))
    compute_fisher(0, data, params, CPU, mnet)
    for got, want in zip(_stored(mnet, 0, len(params)), expected):
        torch.testing.assert_close(got, want, **TOL)
    compute_fisher(1, data, params, CPU, mnet,
                   custom_forward=lambda net, ps, x: torch.tanh(net.forward(x, weights=ps)) * 3)
    expected = _loop_fisher(params, data, data.num_train_samples,
                            lambda x: torch.tanh(mnet.forward(x, weights=params)) * 3)
    for got, want in zip(_stored(mnet, 1, len(params)), expected):
        torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize('regression', [False, True])
def test_empirical_fisher_with_hypernetwork(regression):
    # The reference raised NotImplementedError for hnet=...; the Fisher is w.r.t. the hnet's parameters.
    data = ToyData(regression=regression)
    mnet = _mlp(no_weights=True)
    torch.manual_seed(2)
    hnet = HMLP(mnet.param_shapes, uncond_in_size=0, cond_in_size=4, layers=[7], num_cond_embs=2,
                verbose=False).double()
    params = list(hnet.parameters())
    compute_fisher(1, data, params, CPU, mnet, hnet=hnet, regression=regression)
    expected = _loop_fisher(params, data, data.num_train_samples,
                            lambda x: mnet.forward(x, weights=hnet.forward(cond_id=1)), regression)
    for got, want in zip(_stored(hnet, 1, len(params)), expected):
        torch.testing.assert_close(got, want, **TOL)
    assert not hasattr(mnet, 'ewc_fisher_estimate_task_1_weights_0')
    # Only the embedding of task 1 (not of task 0) receives Fisher mass.
    emb_index = [i for i, p in enumerate(params) if p is hnet.conditional_params[0]][0]
    assert torch.count_nonzero(_stored(hnet, 1, len(params))[emb_index]) == 0


def test_loop_fallback_for_ids_and_non_vectorisable_nll():
    data = ToyData()
    mnet = _mlp()
    params = list(mnet.parameters())
    seen = []

    def nll_with_ids(Y, T, data_, allowed, empirical, ids):
        seen.extend(ids)
        return F.cross_entropy(Y, T.view(-1), reduction='sum')

    compute_fisher(0, data, params, CPU, mnet, custom_nll=nll_with_ids, pass_ids=True, n_max=10,
                   custom_forward=lambda net, ps, x, d, ids: net.forward(x, weights=ps))
    expected = _loop_fisher(params, data, 10, lambda x: mnet.forward(x))
    for got, want in zip(_stored(mnet, 0, len(params)), expected):
        torch.testing.assert_close(got, want, **TOL)
    assert seen == list(range(10))

    def host_sync_nll(Y, T, *args):  # `.item()` cannot run under vmap: must fall back, with a warning
        return F.cross_entropy(Y, T.view(-1), reduction='sum') * (1. + 0. * Y.sum().item())

    with pytest.warns(UserWarning, match='falling back'):
        compute_fisher(1, data, params, CPU, mnet, custom_nll=host_sync_nll)
    expected = _loop_fisher(params, data, data.num_train_samples, lambda x: mnet.forward(x))
    for got, want in zip(_stored(mnet, 1, len(params)), expected):
        torch.testing.assert_close(got, want, **TOL)


def test_context_mod_forward_helper():
    data = ToyData()
    mnet = _mlp(use_context_mod=True)
    internal = [p for p, meta in zip(mnet.internal_params, mnet.param_shapes_meta)
                if not meta['name'].startswith('cm_')]
    mods = [torch.full(s, 0.7, dtype=torch.float64) for s, meta in zip(mnet.param_shapes, mnet.param_shapes_meta)
            if meta['name'].startswith('cm_')]
    compute_fisher(0, data, internal, CPU, mnet, custom_forward=context_mod_forward(mods))
    expected = _loop_fisher(internal, data, data.num_train_samples,
                            lambda x: mnet.forward(x, weights={'mod_weights': mods, 'internal_weights': internal}))
    for got, want in zip(_stored(mnet, 0, len(internal)), expected):
        torch.testing.assert_close(got, want, **TOL)


def test_online_ewc_accumulates_over_three_tasks_and_regularizer_does_not_decay():
    mnet = _mlp()
    params = list(mnet.parameters())
    gamma, prior = 0.7, 0.01
    running = None
    for task in range(3):
        data = ToyData(seed=10 + task)
        with torch.no_grad():
            for p in params:
                p.add_(0.1 * torch.randn_like(p))
        compute_fisher(task, data, params, CPU, mnet, online=True, gamma=gamma, prior_strength=prior)
        fresh = _loop_fisher(params, data, data.num_train_samples, lambda x: mnet.forward(x))
        # F*_t = gamma F*_{t-1} + (F_t + prior)
        running = [f + prior if running is None else gamma * r + f + prior for r, f in zip(running or fresh, fresh)]
        for got, want in zip(_stored(mnet, None, len(params), online=True), running):
            torch.testing.assert_close(got, want, **TOL)

    stored = [f.clone() for f in _stored(mnet, None, len(params), online=True)]
    anchors = [p.detach().clone() for p in params]
    assert ewc_regularizer(3, params, mnet, online=True, gamma=gamma) == 0
    shift = [torch.randn_like(p) * 0.1 for p in params]
    shifted = [a + s for a, s in zip(anchors, shift)]
    expected = 0.5 * gamma * sum((f * s.pow(2)).sum() for f, s in zip(stored, shift))
    for _ in range(3):  # the reference multiplied the stored Fisher by gamma on every call
        torch.testing.assert_close(ewc_regularizer(3, shifted, mnet, online=True, gamma=gamma), expected,
                                   rtol=1e-12, atol=0)
    for got, want in zip(_stored(mnet, None, len(params), online=True), stored):
        assert torch.equal(got, want)


def test_proper_scaling_multiplies_by_dataset_size():
    data = ToyData()
    mnet = _mlp()
    params = list(mnet.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        compute_fisher(0, data, params, CPU, mnet, proper_scaling=True, n_max=10)
    expected = _loop_fisher(params, data, 10, lambda x: mnet.forward(x))
    for got, want in zip(_stored(mnet, 0, len(params)), expected):
        torch.testing.assert_close(got, data.num_train_samples * want, **TOL)


def test_ewc_regularizer_quadratic_over_tasks():
    mnet = _mlp()
    params = list(mnet.parameters())
    for task in range(2):
        with torch.no_grad():
            for p in params:
                p.add_(0.2 * torch.randn_like(p))
        compute_fisher(task, ToyData(seed=task), params, CPU, mnet)
    anchors = [[getattr(mnet, f'ewc_prev_task_{t}_weights_{i}') for i in range(len(params))] for t in range(2)]
    fishers = [_stored(mnet, t, len(params)) for t in range(2)]
    assert ewc_regularizer(1, anchors[0], mnet) == 0
    shift = [torch.randn_like(p) for p in params]
    moved = [(a + s).requires_grad_() for a, s in zip(anchors[1], shift)]
    reg = ewc_regularizer(2, moved, mnet)
    expected = 0.5 * sum((fishers[t][i] * (moved[i].detach() - anchors[t][i]).pow(2)).sum()
                         for t in range(2) for i in range(len(params)))
    torch.testing.assert_close(reg, expected, rtol=1e-12, atol=0)
    reg.backward()
    grad0 = sum(fishers[t][0] * (moved[0].detach() - anchors[t][0]) for t in range(2))
    torch.testing.assert_close(moved[0].grad, grad0, rtol=1e-12, atol=0)


def test_true_fisher_logistic_regression_converges_to_closed_form():
    # Two-class softmax regression: for weight row c, E_y[(1[y=c] - p_c)^2] x^2 = p(1-p) x^2, so the true
    # Fisher is E_x[p(1-p) x x^T] on the diagonal (and E_x[p(1-p)] for the bias).
    n, d = 4000, 3
    g = torch.Generator().manual_seed(5)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    data = ToyData(n=n, n_in=d, n_out=2, x=x, y=torch.zeros(n, 1, dtype=torch.long))  # labels unused
    mnet = _mlp(n_in=d, n_out=2, hidden=())
    with torch.no_grad():
        mnet.internal_params[0].copy_(torch.tensor([[1.0, -0.5, 0.3], [-0.2, 0.4, 0.1]]))
        mnet.internal_params[1].copy_(torch.tensor([0.2, -0.1]))
    params = list(mnet.parameters())
    torch.manual_seed(6)
    compute_fisher(0, data, params, CPU, mnet, empirical_fisher=False)
    with torch.no_grad():
        p = torch.softmax(mnet.forward(x), 1)[:, 0]
    v = p * (1 - p)
    # Given x, each sample contributes (1[y=c]-p)^2 x^2: mean v x^2, variance x^4 v (1 - 4v) ...
    # ((1-p)^4 p + p^4 (1-p) - v^2 = v (1 - 3v) - v^2 = v (1 - 4v)); MC standard error of the mean:
    feats = torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], 1)
    mean = (v[:, None] * feats.pow(2)).mean(0)
    stderr = ((v * (1 - 4 * v))[:, None] * feats.pow(4)).sum(0).sqrt() / n
    weight_f, bias_f = _stored(mnet, 0, 2)
    for row in range(2):  # both rows share p(1-p)
        got = torch.cat([weight_f[row], bias_f[row:row + 1]])
        assert torch.all((got - mean).abs() < 4 * stderr), (got, mean, stderr)
    # Regression: sampled targets y ~ N(f(x), s^2) give E[(y - f)^2 / s^4] x^2 = x^2 / s^2 exactly in
    # expectation; only check the bias (gradient (f-y)/s^2): mean 1/s^2, relative stderr sqrt(2/n).
    mreg = _mlp(n_in=d, n_out=1, hidden=())
    compute_fisher(0, ToyData(n=n, n_in=d, n_out=1, x=x, regression=True), list(mreg.parameters()), CPU,
                   mreg, empirical_fisher=False, regression=True, regression_lvar=0.25)
    bias = mreg.ewc_fisher_estimate_task_0_weights_1
    assert abs(bias.item() - 4.0) < 4 * 4.0 * math.sqrt(2 / n)


def test_errors():
    data = ToyData()
    mnet = _mlp()
    params = list(mnet.parameters())
    with pytest.raises(ValueError, match='task 0'):
        ewc_regularizer(1, params, mnet)
    with pytest.raises(ValueError, match='online estimate'):
        ewc_regularizer(1, params, mnet, online=True)
    with pytest.raises(ValueError, match='online estimate'):
        compute_fisher(2, data, params, CPU, mnet, online=True)
    with pytest.raises(ValueError, match='gamma'):
        compute_fisher(0, data, params, CPU, mnet, online=True, gamma=1.5)
    with pytest.raises(ValueError, match='n_max'):
        compute_fisher(0, data, params, CPU, mnet, n_max=0)
    with pytest.raises(ValueError, match='prior_strength'):
        compute_fisher(0, data, params, CPU, mnet, prior_strength=1.)
    with pytest.raises(TypeError, match='params'):
        compute_fisher(0, data, [], CPU, mnet)
    with pytest.raises(ValueError, match='task_id'):
        ewc_regularizer(0, params, mnet)
    compute_fisher(0, data, params, CPU, mnet)
    with pytest.raises(ValueError, match=r'params: expected 6 tensors .* got 4'):
        ewc_regularizer(1, params[:4], mnet)
    with pytest.raises(ValueError, match=r'params\[0\]: expected shape \(6, 5\)'):
        ewc_regularizer(1, [params[1]] + params[1:], mnet)
    with pytest.raises(ValueError, match='task 1'):
        ewc_regularizer(2, params, mnet)
    regression_data = ToyData(regression=True)
    regression_data.classification = False
    with pytest.raises(ValueError, match='classification'):
        compute_fisher(0, regression_data, params, CPU, mnet)
    assert np.isfinite(ewc_regularizer(1, params, mnet).item())


def test_time_series_sums_nll_over_steps():
    # Outputs [S, N, F]: the sample index is dim 1 and a sequence's NLL is the sum over its S steps.
    steps, n = 4, 9
    g = torch.Generator().manual_seed(8)
    x = torch.randn(n, steps, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (n, steps), generator=g)
    data = ToyData(n=n, x=x, y=y)
    data.input_to_torch_tensor = lambda b, device, mode='inference': torch.as_tensor(b).transpose(0, 1)
    data.output_to_torch_tensor = lambda b, device, mode='inference': torch.as_tensor(b).transpose(0, 1)
    mnet = _mlp()
    params = list(mnet.parameters())

    def per_step(net, ps, X):
        return net.forward(X.reshape(-1, X.shape[-1]), weights=ps).reshape(X.shape[0], X.shape[1], -1)

    compute_fisher(0, data, params, CPU, mnet, time_series=True, custom_forward=per_step)
    total = [torch.zeros_like(p) for p in params]
    for b in range(n):
        Y = per_step(mnet, params, x[b:b + 1].transpose(0, 1))
        nll = F.cross_entropy(Y.reshape(-1, 3), y[b], reduction='sum')
        for t, grad in zip(total, torch.autograd.grad(nll, params)):
            t += grad.pow(2)
    for got, want in zip(_stored(mnet, 0, len(params)), total):
        torch.testing.assert_close(got, want / n, **TOL)
