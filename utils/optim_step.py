r"""Optimizer-step lookahead: the change :math:`\Delta\theta` that ``optimizer.step()`` would apply.

PyTorch optimizers update parameters in place and offer no way to ask what the next update *would* be.
Regularizers such as :func:`utils.hnet_regularizer.calc_fix_target_reg` need exactly that quantity (the
direction the task loss is about to move :math:`\theta` in), and SI can use it as its path element. The
functions here recompute one step of SGD, Adam/AdamW and RMSprop from the gradients in ``p.grad`` and a
*copy-free read* of the optimizer state: every state tensor is only read, new moments are out-of-place
expressions, so neither the parameters nor ``optimizer.state`` change.

The formulas follow the single-tensor update rules of ``torch.optim`` (weight decay, momentum, Nesterov,
dampening, AMSGrad, decoupled weight decay, centered RMSprop, ``maximize``), so that
``p + delta == p_after_step`` up to floating-point rounding.

With ``detach_dp=False`` (and gradients built with ``backward(create_graph=True)``) the returned changes
stay in the autograd graph, e.g. to backpropagate a regularizer through the lookahead.

Parameters without a gradient are not touched by ``optimizer.step()``; their change is returned as zeros so
that the output list always lines up one-to-one with the parameters of ``optimizer.param_groups``.
"""
import torch
from torch import optim

__all__ = ['calc_delta_theta', 'sgd_step', 'adam_step', 'adamw_step', 'rmsprop_step']


def calc_delta_theta(optimizer, use_sgd_change, lr=None, detach_dt=True):
    r"""The change :math:`\Delta\theta` of all parameters that the next optimizer step would apply.

    Call it between ``loss.backward()`` and ``optimizer.step()``.

    Args:
        optimizer (torch.optim.Optimizer): An instance of ``SGD``, ``Adam``, ``AdamW`` or ``RMSprop``.
        use_sgd_change (bool): If ``True``, return plain gradient-descent changes
            :math:`-\text{lr} \cdot \nabla_\theta` instead of the optimizer's own update.
        lr (float, optional): Learning rate for ``use_sgd_change``; required then.
        detach_dt (bool): Detach the changes from the autograd graph.

    Returns:
        (list): One tensor per parameter of ``optimizer.param_groups`` (in order), shaped like it.

    Raises:
        ValueError: ``use_sgd_change`` without ``lr``.
        TypeError: an optimizer type whose step is not modelled here.
    """
    if use_sgd_change:
        if lr is None:
            raise ValueError('lr: expected a learning rate when use_sgd_change=True, got None')
        return [_zero_if_no_grad(p, lambda g: -lr * g, detach_dt)
                for group in optimizer.param_groups for p in group['params']]
    # AdamW subclasses Adam in torch; adam_step reads the group's decoupled_weight_decay flag for both.
    if isinstance(optimizer, optim.SGD):
        return sgd_step(optimizer, detach_dp=detach_dt)
    if isinstance(optimizer, optim.Adam) or isinstance(optimizer, optim.AdamW):
        return _adam_family_step(optimizer, detach_dt)
    if isinstance(optimizer, optim.RMSprop):
        return rmsprop_step(optimizer, detach_dp=detach_dt)
    raise TypeError('optimizer: expected torch.optim.SGD, Adam, AdamW or RMSprop, got '
                    f'{type(optimizer).__name__}')


def sgd_step(optimizer, detach_dp=True):
    r"""Lookahead of :class:`torch.optim.SGD`.

    With gradient :math:`g` (negated if ``maximize``), weight decay :math:`\lambda`, momentum :math:`\mu`,
    dampening :math:`\tau` and previous buffer :math:`b`:

    .. math::
        d = g + \lambda\theta,\quad b' = \mu b + (1-\tau) d \;(b' = d \text{ on the first step}),\quad
        \Delta\theta = -\text{lr}\,(d + \mu b' \text{ if Nesterov else } b').

    Args:
        optimizer (torch.optim.SGD): The optimizer.
        detach_dp (bool): Detach the changes from the autograd graph.

    Returns:
        (list): :math:`\Delta\theta` per parameter.
    """
    _check_type(optimizer, optim.SGD, 'torch.optim.SGD')
    deltas = []
    for group in optimizer.param_groups:
        momentum, lr = group['momentum'], _scalar(group['lr'])
        for p in group['params']:
            grad = _read_grad(p, group, detach_dp)
            if grad is None:
                deltas.append(torch.zeros_like(p))
                continue
            if group['weight_decay'] != 0:
                grad = grad + group['weight_decay'] * _param_value(p, detach_dp)
            if momentum != 0:
                buf = optimizer.state[p].get('momentum_buffer') if p in optimizer.state else None
                new_buf = grad if buf is None else momentum * buf + (1 - group['dampening']) * grad
                grad = grad + momentum * new_buf if group['nesterov'] else new_buf
            deltas.append(-lr * grad)
    return deltas


def adam_step(optimizer, detach_dp=True):
    r"""Lookahead of :class:`torch.optim.Adam` (and of ``AdamW``, which subclasses it).

    With step count :math:`t` after the update, moments :math:`m, v`, and gradient :math:`g`
    (plus :math:`\lambda\theta` for coupled weight decay):

    .. math::
        m' = \beta_1 m + (1-\beta_1) g,\quad v' = \beta_2 v + (1-\beta_2) g^2,\quad
        \Delta\theta = -\frac{\text{lr}}{1-\beta_1^t}\,
        \frac{m'}{\sqrt{\hat v} / \sqrt{1-\beta_2^t} + \epsilon}
        \;[-\,\text{lr}\,\lambda\,\theta \text{ if decoupled}],

    where :math:`\hat v = \max(v_\text{max}, v')` with AMSGrad and :math:`v'` otherwise. Unlike the
    reference implementation this honours weight decay (the reference computed and discarded it).

    Args:
        optimizer (torch.optim.Adam): The optimizer.
        detach_dp (bool): Detach the changes from the autograd graph.

    Returns:
        (list): :math:`\Delta\theta` per parameter.
    """
    _check_type(optimizer, optim.Adam, 'torch.optim.Adam')
    return _adam_family_step(optimizer, detach_dp)


def adamw_step(optimizer, detach_dp=True):
    r"""Lookahead of :class:`torch.optim.AdamW`: Adam with decoupled weight decay, see :func:`adam_step`.

    Args:
        optimizer (torch.optim.AdamW): The optimizer.
        detach_dp (bool): Detach the changes from the autograd graph.

    Returns:
        (list): :math:`\Delta\theta` per parameter.
    """
    _check_type(optimizer, optim.AdamW, 'torch.optim.AdamW')
    return _adam_family_step(optimizer, detach_dp)


def rmsprop_step(optimizer, detach_dp=True):
    r"""Lookahead of :class:`torch.optim.RMSprop`.

    .. math::
        s' = \alpha s + (1-\alpha) g^2,\quad
        a = \sqrt{s' - \bar g'^2} + \epsilon \text{ (centered, } \bar g' = \alpha\bar g + (1-\alpha) g)
        \text{ else } \sqrt{s'} + \epsilon,

    and :math:`\Delta\theta = -\text{lr}\, b'` with :math:`b' = \mu b + g / a` if momentum :math:`\mu > 0`,
    else :math:`\Delta\theta = -\text{lr}\, g / a`.

    Args:
        optimizer (torch.optim.RMSprop): The optimizer.
        detach_dp (bool): Detach the changes from the autograd graph.

    Returns:
        (list): :math:`\Delta\theta` per parameter.
    """
    _check_type(optimizer, optim.RMSprop, 'torch.optim.RMSprop')
    deltas = []
    for group in optimizer.param_groups:
        alpha, eps, momentum, lr = group['alpha'], group['eps'], group['momentum'], _scalar(group['lr'])
        for p in group['params']:
            grad = _read_grad(p, group, detach_dp)
            if grad is None:
                deltas.append(torch.zeros_like(p))
                continue
            state = optimizer.state[p] if p in optimizer.state else {}
            if group['weight_decay'] != 0:
                grad = grad + group['weight_decay'] * _param_value(p, detach_dp)
            square_avg = state.get('square_avg', torch.zeros_like(p))
            square_avg = alpha * square_avg + (1 - alpha) * grad * grad
            if group['centered']:
                grad_avg = state.get('grad_avg', torch.zeros_like(p))
                grad_avg = alpha * grad_avg + (1 - alpha) * grad
                avg = (square_avg - grad_avg * grad_avg).sqrt() + eps
            else:
                avg = square_avg.sqrt() + eps
            if momentum > 0:
                buf = state.get('momentum_buffer', torch.zeros_like(p))
                deltas.append(-lr * (momentum * buf + grad / avg))
            else:
                deltas.append(-lr * grad / avg)
    return deltas


def _adam_family_step(optimizer, detach_dp):
    """Shared Adam/AdamW lookahead; the group's ``decoupled_weight_decay`` picks the weight-decay form."""
    deltas = []
    for group in optimizer.param_groups:
        beta1, beta2 = (_scalar(b) for b in group['betas'])
        lr, eps, weight_decay = _scalar(group['lr']), group['eps'], group['weight_decay']
        decoupled = group.get('decoupled_weight_decay', isinstance(optimizer, optim.AdamW))
        for p in group['params']:
            grad = _read_grad(p, group, detach_dp)
            if grad is None:
                deltas.append(torch.zeros_like(p))
                continue
            state = optimizer.state[p] if p in optimizer.state else {}
            # The step counter is a host scalar on CPU-stepped optimizers; reading it once per parameter
            # is a lookahead-time cost, not a training-loop sync.
            step = float(state['step']) + 1 if 'step' in state else 1.
            param = _param_value(p, detach_dp)
            decay = torch.zeros_like(p)
            if weight_decay != 0:
                if decoupled:
                    decay = -lr * weight_decay * param
                else:
                    grad = grad + weight_decay * param
            exp_avg = state.get('exp_avg', torch.zeros_like(p))
            exp_avg_sq = state.get('exp_avg_sq', torch.zeros_like(p))
            exp_avg = beta1 * exp_avg + (1 - beta1) * grad
            exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
            if group['amsgrad']:
                exp_avg_sq = torch.maximum(state.get('max_exp_avg_sq', torch.zeros_like(p)), exp_avg_sq)
            bias_correction1 = 1 - beta1 ** step
            bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
            denom = exp_avg_sq.sqrt() / bias_correction2_sqrt + eps
            deltas.append(decay - (lr / bias_correction1) * exp_avg / denom)
    return deltas


def _check_type(optimizer, cls, expected):
    if not isinstance(optimizer, cls):
        raise TypeError(f'optimizer: expected {expected}, got {type(optimizer).__name__}')


def _scalar(value):
    """Hyperparameters may be 0-d tensors in recent torch; the step formulas take Python numbers."""
    return value.item() if isinstance(value, torch.Tensor) and not value.requires_grad else value


def _param_value(p, detach):
    return p.detach() if detach else p


def _read_grad(p, group, detach):
    """The gradient as the optimizer sees it (negated for ``maximize``), or None if absent."""
    if p.grad is None:
        return None
    if p.grad.is_sparse:
        raise TypeError('optimizer: sparse gradients are not supported by the lookahead')
    grad = p.grad.detach() if detach else p.grad
    return -grad if group.get('maximize', False) else grad


def _zero_if_no_grad(p, fn, detach):
    if p.grad is None:
        return torch.zeros_like(p)
    return fn(p.grad.detach() if detach else p.grad)
