r"""Synaptic Intelligence (SI), Zenke et al. 2017, https://arxiv.org/abs/1703.04200.

SI measures how much each parameter contributed to lowering the loss along the training trajectory.
For a trajectory :math:`\theta(t)` the loss decrease decomposes per parameter as the path integral

.. math::
    L(\theta(0)) - L(\theta(T)) = \sum_i \omega_i, \qquad
    \omega_i = -\int_0^T \frac{\partial L}{\partial\theta_i}\,\frac{d\theta_i}{dt}\,dt
    \approx \sum_k -g_{k,i}\,\Delta\theta_{k,i},

accumulated over optimizer steps :math:`k` with gradient :math:`g_k` and update :math:`\Delta\theta_k`.
After a task the importance is normalised by how far each parameter travelled and kept non-negative
(van de Ven et al. 2019, appendix A.2.3):

.. math::
    \Omega_i \mathrel{+}= \max\Big(0,\; \frac{\omega_i}{(\theta_i(T) - \theta_i(0))^2 + \epsilon}\Big),

and the regularizer for later tasks is :math:`\sum_i \Omega_i (\theta_i - \theta^\text{prev}_i)^2`
(multiply by a strength yourself).

State lives in buffers of a module ``net`` under the reference library's names, so checkpoints carry it:
``si_prev_theta[_<name>]_weights_<i>`` (:math:`\theta^\text{prev}`, the start of the current task),
``si_pre_step_theta…`` (parameters before the pending optimizer step), ``si_running_omega…``
(:math:`\omega`) and ``si_omega…`` (:math:`\Omega`), where ``<i>`` is the position in ``params`` and
``<name>`` the optional ``params_name`` of a parameter group. Parameters with ``requires_grad=False`` are
skipped everywhere. Memory: four copies of the regularized parameters.

Typical loop::

    si_pre_optim_step(net, params)          # before every optimizer.step()
    loss.backward(); optimizer.step()
    si_post_optim_step(net, params)         # after it
    ...
    si_compute_importance(net, params)      # after each task
    loss = task_loss + c * si_regularizer(net, params)
"""
import torch

__all__ = ['si_pre_optim_step', 'si_post_optim_step', 'si_compute_importance', 'si_regularizer']


def si_pre_optim_step(net, params, params_name=None, no_pre_step_ckpt=False):
    r"""Checkpoint the parameters before an optimizer step.

    The first call also stores them as :math:`\theta^\text{prev}` (start of the first task), which
    :func:`si_compute_importance` needs to normalise :math:`\omega`.

    Args:
        net (torch.nn.Module): Module that holds the SI buffers.
        params (list): Parameter tensors to track; only those with ``requires_grad`` are used.
        params_name (str, optional): Name of this parameter group when several groups are tracked.
        no_pre_step_ckpt (bool): Skip the pre-step checkpoint because :func:`si_post_optim_step` will
            receive ``delta_params`` instead (still call this once before the first step).
    """
    for i, p in _tracked(params):
        names = _BufferNames(i, params_name)
        if getattr(net, names.prev_theta, None) is None:
            net.register_buffer(names.prev_theta, p.detach().clone())
        if not no_pre_step_ckpt:
            net.register_buffer(names.pre_step_theta, p.detach().clone())


def si_post_optim_step(net, params, params_name=None, delta_params=None):
    r"""Accumulate the path-integral element :math:`\omega \mathrel{+}= -g \odot \Delta\theta`.

    :math:`g` is read from ``p.grad`` (the gradient the step was taken with). :math:`\Delta\theta` is
    either the change since :func:`si_pre_optim_step` or ``delta_params``, e.g. from
    :func:`utils.optim_step.calc_delta_theta`, which lets the importance follow only part of the loss
    (the task term, without regularizers) and makes the actual ``optimizer.step()`` optional.

    Args:
        (....): See :func:`si_pre_optim_step`.
        delta_params (list, optional): One update tensor per entry of ``params`` (same order, same
            shapes); entries of parameters without ``requires_grad`` are ignored.

    Raises:
        ValueError: a tracked parameter has no gradient, no pre-step checkpoint exists and no
            ``delta_params`` are given, or ``delta_params`` does not match ``params``.
    """
    if delta_params is not None and len(delta_params) != len(params):
        raise ValueError(f'delta_params: expected {len(params)} tensors (one per params entry), '
                         f'got {len(delta_params)}')
    for i, p in _tracked(params):
        names = _BufferNames(i, params_name)
        if p.grad is None:
            raise ValueError(f'params[{i}]: expected a gradient in .grad (call backward() first), got None')
        if delta_params is None:
            pre_step = getattr(net, names.pre_step_theta, None)
            if pre_step is None:
                raise ValueError(f'net: expected buffer {names.pre_step_theta} from si_pre_optim_step '
                                 '(or pass delta_params), got none')
            _check_shape(f'params[{i}]', p, pre_step)
            delta = p.detach() - pre_step
            # Consumed: a second post-step call without a new pre-step would double count.
            setattr(net, names.pre_step_theta, None)
        else:
            delta = delta_params[i].detach()
            _check_shape(f'delta_params[{i}]', p, delta)
        running = getattr(net, names.running_omega, None)
        increment = -delta * p.grad.detach()
        net.register_buffer(names.running_omega, increment if running is None else running + increment)


def si_compute_importance(net, params, params_name=None, epsilon=1e-3):
    r"""Fold the finished task's :math:`\omega` into :math:`\Omega` and restart the path at the current
    parameters.

    Args:
        (....): See :func:`si_pre_optim_step`.
        epsilon (float): Damping :math:`\epsilon` of the normaliser :math:`(\Delta\theta)^2 + \epsilon`,
            which keeps parameters that barely moved from getting huge importances.

    Raises:
        ValueError: the pre-/post-step functions were not used during the task, or ``params`` no longer
            match the stored buffers.
    """
    for i, p in _tracked(params):
        names = _BufferNames(i, params_name)
        prev_theta = getattr(net, names.prev_theta, None)
        if prev_theta is None:
            raise ValueError(f'net: expected buffer {names.prev_theta}; call si_pre_optim_step at the start '
                             'of training, got none')
        running = getattr(net, names.running_omega, None)
        if running is None:
            raise ValueError(f'net: expected buffer {names.running_omega}; call si_post_optim_step after '
                             'optimizer steps of this task, got none')
        _check_shape(f'params[{i}]', p, prev_theta)
        travelled = p.detach() - prev_theta
        importance = torch.clamp(running / (travelled.pow(2) + epsilon), min=0)
        omega = getattr(net, names.omega, None)
        net.register_buffer(names.omega, importance if omega is None else omega + importance)
        net.register_buffer(names.prev_theta, p.detach().clone())
        setattr(net, names.running_omega, None)


def si_regularizer(net, params, params_name=None):
    r"""The SI penalty :math:`\sum_i \Omega_i (\theta_i - \theta^\text{prev}_i)^2`, differentiable in
    ``params``.

    Args:
        (....): See :func:`si_pre_optim_step`.

    Returns:
        (torch.Tensor): Scalar; multiply by the regularization strength yourself.

    Raises:
        ValueError: :func:`si_compute_importance` has not been called yet, or ``params`` do not match the
            stored buffers.
    """
    terms = []
    for i, p in _tracked(params):
        names = _BufferNames(i, params_name)
        omega = getattr(net, names.omega, None)
        prev_theta = getattr(net, names.prev_theta, None)
        if omega is None or prev_theta is None:
            raise ValueError(f'net: expected buffer {names.omega}; call si_compute_importance after a task '
                             'first, got none')
        _check_shape(f'params[{i}]', p, omega)
        terms.append((omega * (p - prev_theta).pow(2)).sum())
    if not terms:
        raise ValueError('params: expected at least one tensor with requires_grad=True, got none')
    return torch.stack(terms).sum()


class _BufferNames:
    """Buffer names of SI state for parameter ``index`` of group ``params_name`` (reference-compatible)."""

    def __init__(self, index, params_name=None):
        group = '' if params_name is None else f'_{params_name}'
        self.omega = f'si_omega{group}_weights_{index}'
        self.prev_theta = f'si_prev_theta{group}_weights_{index}'
        self.running_omega = f'si_running_omega{group}_weights_{index}'
        self.pre_step_theta = f'si_pre_step_theta{group}_weights_{index}'


def _tracked(params):
    return [(i, p) for i, p in enumerate(params) if p.requires_grad]


def _check_shape(name, p, stored):
    if p.shape != stored.shape:
        raise ValueError(f'{name}: expected shape {tuple(stored.shape)} (as stored by SI), '
                         f'got {tuple(p.shape)}')
