"""Tests for utils.si_regularizer: importance equals the analytic path integral on a quadratic loss."""
import pytest
import torch

from utils.optim_step import calc_delta_theta
from utils.si_regularizer import si_compute_importance, si_post_optim_step, si_pre_optim_step, si_regularizer

A = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=torch.float64)   # curvatures of L = 1/2 sum a (theta - c)^2
C = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)


def _train_task(net, theta, center, lr, steps, use_delta=False):
    """Plain gradient descent on the quadratic loss, with the SI hooks around every step."""
    optimizer = torch.optim.SGD([theta], lr=lr)
    for _ in range(steps):
        si_pre_optim_step(net, [theta], no_pre_step_ckpt=use_delta)
        optimizer.zero_grad()
        (0.5 * A * (theta - center).pow(2)).sum().backward()
        if use_delta:
            si_post_optim_step(net, [theta], delta_params=calc_delta_theta(optimizer, False))
            optimizer.step()
        else:
            optimizer.step()
            si_post_optim_step(net, [theta])


def _analytic_omega(theta0, center, lr, steps, epsilon):
    # theta_k - c = r^k (theta_0 - c) with r = 1 - lr a; omega = sum_k lr g_k^2, a geometric series.
    r = 1 - lr * A
    d0 = theta0 - center
    omega = lr * A.pow(2) * d0.pow(2) * (1 - r.pow(2 * steps)) / (1 - r.pow(2))
    travelled = (r.pow(steps) - 1) * d0
    return omega, omega / (travelled.pow(2) + epsilon)


@pytest.mark.parametrize('use_delta', [False, True])
def test_importance_matches_path_integral(use_delta):
    net = torch.nn.Module()
    theta0 = torch.zeros(4, dtype=torch.float64)
    theta = torch.nn.Parameter(theta0.clone())
    lr, steps, epsilon = 0.05, 40, 1e-3
    _train_task(net, theta, C, lr, steps, use_delta)
    omega, importance = _analytic_omega(theta0, C, lr, steps, epsilon)
    # Exact discrete recursion in float64: only rounding separates the two.
    torch.testing.assert_close(net.si_running_omega_weights_0, omega, rtol=1e-10, atol=1e-12)
    # The discrete path integral approaches the loss decrease L(0) - L(T) as lr -> 0 (error O(lr a)).
    loss_drop = 0.5 * A * (C.pow(2) - (theta.detach() - C).pow(2))
    assert torch.all((omega - loss_drop).abs() <= lr * A * loss_drop + 1e-12)
    si_compute_importance(net, [theta], epsilon=epsilon)
    torch.testing.assert_close(net.si_omega_weights_0, importance, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(net.si_prev_theta_weights_0, theta.detach(), rtol=0, atol=0)
    assert net.si_running_omega_weights_0 is None


def test_importance_accumulates_over_tasks_and_regularizer_is_quadratic():
    net = torch.nn.Module()
    theta = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    lr, steps = 0.05, 30
    _train_task(net, theta, C, lr, steps)
    si_compute_importance(net, [theta])
    first = net.si_omega_weights_0.clone()
    start2 = theta.detach().clone()
    _train_task(net, theta, -C, lr, steps)
    si_compute_importance(net, [theta])
    _, second = _analytic_omega(start2, -C, lr, steps, 1e-3)
    torch.testing.assert_close(net.si_omega_weights_0, first + second, rtol=1e-10, atol=1e-12)

    shift = torch.tensor([0.1, -0.2, 0.3, 0.0], dtype=torch.float64)
    with torch.no_grad():
        theta += shift
    theta.grad = None
    reg = si_regularizer(net, [theta])
    torch.testing.assert_close(reg, (net.si_omega_weights_0 * shift.pow(2)).sum(), rtol=1e-12, atol=0)
    reg.backward()
    torch.testing.assert_close(theta.grad, 2 * net.si_omega_weights_0 * shift, rtol=1e-12, atol=0)


def test_negative_contributions_are_clipped_and_groups_are_separate():
    net = torch.nn.Module()
    theta = torch.nn.Parameter(torch.zeros(3))
    frozen = torch.zeros(2, requires_grad=False)
    si_pre_optim_step(net, [theta, frozen], params_name='g')
    theta.grad = torch.tensor([1.0, -1.0, 0.0])
    # Moving along the gradient raises the loss: omega < 0 for entry 0, which must give Omega = 0.
    si_post_optim_step(net, [theta, frozen], params_name='g', delta_params=[torch.tensor([0.1, 0.1, 0.]), None])
    with torch.no_grad():
        theta += torch.tensor([0.1, 0.1, 0.])
    si_compute_importance(net, [theta, frozen], params_name='g')
    omega = net.si_omega_g_weights_0
    assert omega[0] == 0 and omega[1] > 0 and omega[2] == 0
    assert not hasattr(net, 'si_omega_g_weights_1') and not hasattr(net, 'si_omega_weights_0')


def test_errors():
    net = torch.nn.Module()
    theta = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match='si_compute_importance'):
        si_regularizer(net, [theta])
    with pytest.raises(ValueError, match='si_prev_theta_weights_0'):
        si_compute_importance(net, [theta])
    si_pre_optim_step(net, [theta])
    with pytest.raises(ValueError, match=r'params\[0\]: expected a gradient'):
        si_post_optim_step(net, [theta])
    theta.grad = torch.ones(3)
    with pytest.raises(ValueError, match='delta_params: expected 1 tensors'):
        si_post_optim_step(net, [theta], delta_params=[])
    si_post_optim_step(net, [theta])
    with pytest.raises(ValueError, match='si_pre_step_theta_weights_0'):
        si_post_optim_step(net, [theta])
    si_compute_importance(net, [theta])
    with pytest.raises(ValueError, match=r'params\[0\]: expected shape \(3,\)'):
        si_regularizer(net, [torch.nn.Parameter(torch.zeros(4))])
