"""Tests for utils.optim_step: the lookahead must equal the change of the real optimizer.step()."""
import copy

import pytest
import torch

from utils.optim_step import adam_step, adamw_step, calc_delta_theta, rmsprop_step, sgd_step

OPTIMIZERS = [
    (torch.optim.SGD, dict(lr=0.1)),
    (torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    (torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.05)),
    (torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05)),
    (torch.optim.SGD, dict(lr=0.1, momentum=0.5, maximize=True)),
    (torch.optim.Adam, dict(lr=0.01)),
    (torch.optim.Adam, dict(lr=0.01, weight_decay=0.1)),
    (torch.optim.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    (torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.9), eps=1e-3, maximize=True)),
    (torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
    (torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    (torch.optim.RMSprop, dict(lr=0.01)),
    (torch.optim.RMSprop, dict(lr=0.01, centered=True, momentum=0.9)),
    (torch.optim.RMSprop, dict(lr=0.01, alpha=0.9, momentum=0.5, weight_decay=0.1)),
]


def _params():
    g = torch.Generator().manual_seed(1)
    return [torch.nn.Parameter(torch.randn(4, 3, generator=g, dtype=torch.float64)),
            torch.nn.Parameter(torch.randn(3, generator=g, dtype=torch.float64))]


def _loss(params, step):
    # A nonquadratic loss whose gradients change from step to step, so the state matters.
    w, b = params
    x = torch.linspace(-1, 1, 12, dtype=torch.float64).view(4, 3) * (1 + 0.1 * step)
    return torch.tanh((w * x).sum(0) + b).pow(2).sum() + (w ** 3).sum() * 0.1


def _state_snapshot(optimizer):
    return {id(p): {k: (v.clone() if torch.is_tensor(v) else copy.deepcopy(v)) for k, v in s.items()}
            for p, s in optimizer.state.items()}


def _assert_same_state(before, optimizer):
    assert set(before) == {id(p) for p in optimizer.state}
    for p, s in optimizer.state.items():
        assert set(before[id(p)]) == set(s)
        for k, v in s.items():
            if torch.is_tensor(v):
                assert torch.equal(before[id(p)][k], v), k


@pytest.mark.parametrize('cls,kwargs', OPTIMIZERS)
def test_lookahead_equals_real_step_over_several_steps(cls, kwargs):
    params = _params()
    optimizer = cls(params, **kwargs)
    for step in range(5):
        optimizer.zero_grad()
        _loss(params, step).backward()
        before = [p.detach().clone() for p in params]
        state_before = _state_snapshot(optimizer)
        deltas = calc_delta_theta(optimizer, False)
        # The lookahead itself changes neither the parameters nor the optimizer state.
        _assert_same_state(state_before, optimizer)
        for p, b in zip(params, before):
            assert torch.equal(p.detach(), b)
        optimizer.step()
        for p, b, d in zip(params, before, deltas):
            assert not d.requires_grad
            # float64 and a handful of elementwise ops: agreement to rounding, far below the 1e-3 step size.
            torch.testing.assert_close(b + d, p.detach(), rtol=1e-12, atol=1e-12)


def test_dedicated_step_functions_match_dispatcher():
    params = _params()
    _loss(params, 0).backward()
    for fn, opt in [(sgd_step, torch.optim.SGD(params, lr=0.1, momentum=0.9)),
                    (adam_step, torch.optim.Adam(params, lr=0.1, weight_decay=0.1)),
                    (adamw_step, torch.optim.AdamW(params, lr=0.1)),
                    (rmsprop_step, torch.optim.RMSprop(params, lr=0.1))]:
        for a, b in zip(fn(opt), calc_delta_theta(opt, False)):
            assert torch.equal(a, b)


def test_adam_weight_decay_changes_the_step():
    # The reference dropped Adam's coupled weight decay; here it must alter the update.
    params = _params()
    _loss(params, 0).backward()
    plain = adam_step(torch.optim.Adam(params, lr=0.1))
    decayed = adam_step(torch.optim.Adam(params, lr=0.1, weight_decay=10.))
    assert not torch.allclose(plain[0], decayed[0])


def test_sgd_change_and_missing_gradient():
    params = _params() + [torch.nn.Parameter(torch.ones(2, dtype=torch.float64))]
    _loss(params[:2], 0).backward()
    optimizer = torch.optim.Adam(params, lr=0.3)
    deltas = calc_delta_theta(optimizer, True, lr=0.5)
    for p, d in zip(params[:2], deltas[:2]):
        torch.testing.assert_close(d, -0.5 * p.grad, rtol=0, atol=0)
    # A parameter without gradient is left alone by step(); the list stays aligned with zeros.
    assert len(deltas) == 3 and torch.equal(deltas[2], torch.zeros(2, dtype=torch.float64))
    assert torch.equal(calc_delta_theta(optimizer, False)[2], torch.zeros(2, dtype=torch.float64))


@pytest.mark.parametrize('cls,kwargs', [(torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
                                        (torch.optim.Adam, dict(lr=0.1, weight_decay=0.1)),
                                        (torch.optim.RMSprop, dict(lr=0.1, centered=True))])
def test_lookahead_is_differentiable(cls, kwargs):
    # With create_graph=True and detach_dt=False, d(sum delta)/d theta must equal finite differences
    # of the (detached) lookahead seen as a function of theta, with the optimizer state fixed.
    params = _params()
    optimizer = cls(params, **kwargs)
    _loss(params, 0).backward()
    optimizer.step()

    def lookahead_sum(detach):
        optimizer.zero_grad()
        grads = torch.autograd.grad(_loss(params, 1), params, create_graph=not detach)
        for p, g in zip(params, grads):
            p.grad = g
        return sum(d.sum() for d in calc_delta_theta(optimizer, False, detach_dt=detach))

    total = lookahead_sum(False)
    analytic = torch.autograd.grad(total, params[1])[0]
    h = 1e-6
    numeric = torch.zeros(3, dtype=torch.float64)
    for i in range(3):
        with torch.no_grad():
            params[1][i] += h
        up = lookahead_sum(True)
        with torch.no_grad():
            params[1][i] -= 2 * h
        down = lookahead_sum(True)
        with torch.no_grad():
            params[1][i] += h
        numeric[i] = (up - down) / (2 * h)
    # Central differences in float64: truncation O(h^2) ~ 1e-12, rounding ~ 1e-16 / h ~ 1e-10.
    torch.testing.assert_close(analytic, numeric, rtol=1e-6, atol=1e-7)


def test_errors():
    params = _params()
    _loss(params, 0).backward()
    with pytest.raises(ValueError, match='lr'):
        calc_delta_theta(torch.optim.SGD(params, lr=0.1), True)
    with pytest.raises(TypeError, match='Adagrad'):
        calc_delta_theta(torch.optim.Adagrad(params, lr=0.1), False)
    with pytest.raises(TypeError, match='torch.optim.SGD'):
        sgd_step(torch.optim.Adam(params, lr=0.1))
    with pytest.raises(TypeError, match='torch.optim.AdamW'):
        adamw_step(torch.optim.Adam(params, lr=0.1))
