r"""Potential energies for Bayesian neural networks.

For a network :math:`f(x; W)` with a likelihood :math:`p(y \mid f(x; W))` and prior :math:`p(W)`, posterior
sampling needs :math:`U(W) = -\sum_n \log p(y_n \mid x_n, W) - \log p(W)` up to a constant. The returned
potential takes a flat weight vector ``[D]`` **or a batch** ``[C, D]``: the batch is one batched forward pass
of the network (its ``forward_batch``, or ``torch.func.vmap`` over its functional ``forward``), which is what
lets many HMC chains share one call per leapfrog step.
"""
import functools
import math

import torch
import torch.nn.functional as F


def log_prob_standard_normal_prior(position, mean=0., std=1.):
    r"""Log-density of the diagonal Gaussian prior :math:`\mathcal{N}(q; \mu, \sigma^2 I)`.

    Args:
        position (torch.Tensor): ``[D]`` or a batch ``[C, D]``.
        mean (float or torch.Tensor): :math:`\mu` (broadcast over dimensions).
        std (float or torch.Tensor): :math:`\sigma > 0`.

    Returns:
        (torch.Tensor): scalar for ``[D]``, ``[C]`` for ``[C, D]``:
        :math:`\sum_d -\frac{(q_d - \mu_d)^2}{2 \sigma_d^2} - \log \sigma_d - \frac{1}{2} \log 2\pi`.
    """
    if isinstance(mean, (int, float)) and isinstance(std, (int, float)):
        # Python-number parameters: no tensors to create, the constant folded (this runs every leapfrog step).
        if std <= 0:
            raise ValueError(f'std: expected a positive value, got {std}')
        centered = position if mean == 0 else position - mean
        constant = position.shape[-1] * (math.log(std) + 0.5 * math.log(2 * math.pi))
        return centered.pow(2).sum(-1).mul(-0.5 / std ** 2).sub(constant)
    std = torch.as_tensor(std, dtype=position.dtype, device=position.device)
    mean = torch.as_tensor(mean, dtype=position.dtype, device=position.device)
    z = (position - mean) / std
    return (-0.5 * z * z - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)


def _standard_normal_parameters(prior_log_prob_func):
    """``(mean, std)`` when the prior is :func:`log_prob_standard_normal_prior` itself or a
    ``functools.partial`` of it with Python-number ``mean``/``std`` (its gradient is then known in closed
    form); None for any other prior."""
    func, kwargs = prior_log_prob_func, {}
    if isinstance(func, functools.partial) and not func.args:
        func, kwargs = func.func, dict(func.keywords)
    if func is not log_prob_standard_normal_prior or set(kwargs) - {'mean', 'std'}:
        return None
    mean, std = kwargs.get('mean', 0.), kwargs.get('std', 1.)
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (mean, std))
    return (float(mean), float(std)) if numbers and std > 0 else None


def _unflatten(flat, param_shapes):
    """Split a flat vector ``[D]`` into tensors of ``param_shapes`` (views, no copy)."""
    sizes = [math.prod(shape) for shape in param_shapes]
    return [chunk.view(shape) for chunk, shape in zip(torch.split(flat, sizes), param_shapes)]


def _unflatten_batch(flat, param_shapes):
    """Split positions ``[C, D]`` into tensors ``[C, *shape]`` of ``param_shapes`` (views, no copy)."""
    sizes = [math.prod(shape) for shape in param_shapes]
    num_chains = flat.shape[0]
    return [chunk.view(num_chains, *shape) for chunk, shape in zip(torch.split(flat, sizes, dim=1), param_shapes)]


def nn_pot_energy(net, inputs, targets, prior_log_prob_func, tau_pred=1., nll_type='regression'):
    r"""The potential :math:`U(W) = \text{NLL}(W) - \log p(W)` of a network's weights, for HMC/NUTS.

    Args:
        net: a main network (``mnets.mnet_interface.MainNetInterface``): needs ``param_shapes`` and a functional
            ``forward(x, weights=[...])``. All of ``param_shapes`` is sampled.
        inputs (torch.Tensor): all inputs :math:`x_n`, ``[N, ...]``.
        targets (torch.Tensor): regression: targets with ``N * n_out`` entries; classification: integer labels
            ``[N]`` (not one-hot).
        prior_log_prob_func (callable): :math:`\log p(W)` for ``[D]`` (and ideally ``[C, D] -> [C]``; otherwise
            it is vmapped), e.g. :func:`log_prob_standard_normal_prior`.
        tau_pred (float): regression only: the likelihood precision :math:`\tau = 1/\sigma^2` in
            :math:`\text{NLL} = \frac{\tau}{2} \sum_n \lVert f(x_n; W) - y_n \rVert^2` (the Gaussian's
            normaliser is constant in :math:`W` and dropped).
        nll_type (str): ``'regression'`` (above) or ``'classification'``: softmax likelihood on logit outputs,
            :math:`\text{NLL} = -\sum_n \log \text{softmax}(f(x_n; W))_{y_n}`; ``tau_pred`` must stay 1.

    Returns:
        (callable): ``pot_energy(position)``: ``[D] -> scalar`` or ``[C, D] -> [C]``.
    """
    if nll_type not in ('regression', 'classification'):
        raise ValueError(f"nll_type: expected 'regression' or 'classification', got {nll_type!r}")
    if isinstance(tau_pred, bool) or not isinstance(tau_pred, (int, float)) or not tau_pred > 0:
        raise ValueError(f'tau_pred: expected a positive number, got {tau_pred!r}')
    if nll_type == 'classification' and tau_pred != 1.:
        raise ValueError(f'tau_pred: must be 1 for classification (no temperature), got {tau_pred}')
    if not hasattr(net, 'param_shapes') or not callable(getattr(net, 'forward', None)):
        raise TypeError(f'net: expected a main network with param_shapes and forward, got {type(net).__name__}')
    if not isinstance(inputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError('inputs, targets: expected torch.Tensor objects')
    if inputs.shape[0] != targets.shape[0]:
        raise ValueError(f'targets: expected {inputs.shape[0]} samples like inputs, got {targets.shape[0]}')
    if not callable(prior_log_prob_func):
        raise TypeError(f'prior_log_prob_func: expected a callable, got {type(prior_log_prob_func).__name__}')
    param_shapes = [list(shape) for shape in net.param_shapes]
    num_params = sum(math.prod(shape) for shape in param_shapes)
    if nll_type == 'classification':
        targets = targets.long().reshape(-1)
    else:
        targets = targets.contiguous()

    def predict(flat):
        return net.forward(inputs, weights=_unflatten(flat, param_shapes))

    forward_batch = getattr(net, 'forward_batch', None)

    def predict_batch(flat):
        # [C, D] -> [C, N, n_out]: the network's own batched forward when it has one (an MLP then runs all
        # chains as a few 2-D matmuls), else vmap over the functional forward.
        if forward_batch is not None:
            return forward_batch(inputs, _unflatten_batch(flat, param_shapes), x_per_set=False)
        return torch.func.vmap(predict)(flat)

    def regression_residual(preds):
        # preds: [C, N, n_out] -> f(x_n; W) - y_n, same shape
        if math.prod(preds.shape[1:]) != targets.numel():
            raise ValueError(f'targets: expected {math.prod(preds.shape[1:])} entries (the outputs of the '
                             f'network), got {targets.numel()}')
        return preds - targets.view(preds.shape[1:])

    def regression_nll(residual):
        return residual.square().sum(tuple(range(1, residual.ndim))).mul(0.5 * tau_pred)

    def check_positions(position, single_allowed=True):
        if position.ndim not in ((1, 2) if single_allowed else (2,)) or position.shape[-1] != num_params:
            expected = f'[{num_params}] or [C, {num_params}]' if single_allowed else f'[C, {num_params}]'
            raise ValueError(f'position: expected {expected}, got {list(position.shape)}')

    def nll(preds):
        # preds: [C, N, n_out] -> [C]
        if nll_type == 'regression':
            return regression_nll(regression_residual(preds))
        num_chains, num_samples = preds.shape[0], preds.shape[1]
        losses = F.cross_entropy(preds.reshape(num_chains * num_samples, -1), targets.repeat(num_chains),
                                 reduction='none')
        return losses.view(num_chains, num_samples).sum(1)

    def prior(positions):
        value = prior_log_prob_func(positions)
        if tuple(value.shape) == (positions.shape[0],):
            return value
        return torch.func.vmap(prior_log_prob_func)(positions)

    def pot_energy(position):
        check_positions(position)
        if position.ndim == 1:
            return (nll(predict(position).unsqueeze(0)) - prior(position.unsqueeze(0)))[0]
        return nll(predict_batch(position)) - prior(position)

    forward_batch_vjp = getattr(net, 'forward_batch_vjp', None)
    prior_mean_std = _standard_normal_parameters(prior_log_prob_func)
    one_hot_cache = {}

    def nll_and_grad(preds):
        # preds [C, N, n_out] -> NLL [C] and dNLL/dpreds [C, N, n_out], both in closed form.
        if nll_type == 'regression':
            residual = regression_residual(preds)
            return regression_nll(residual), residual.mul(tau_pred)
        key = (preds.shape[-1], preds.dtype, preds.device)
        if key not in one_hot_cache:
            one_hot_cache[key] = F.one_hot(targets, preds.shape[-1]).to(preds.dtype)
        one_hot = one_hot_cache[key]
        log_probs = preds.log_softmax(-1)
        # d/dz of -log softmax(z)_y is softmax(z) - onehot(y).
        return (log_probs * one_hot).sum((1, 2)).neg(), log_probs.exp().sub(one_hot)

    def value_and_grad(positions):
        """:math:`U` ``[C]`` and :math:`\\nabla U` ``[C, D]`` for positions ``[C, D]`` without autograd, or
        None when the network has no closed-form backward now (then the caller uses autograd).

        The likelihood's gradient comes from the network's ``forward_batch_vjp`` (a plain MLP's backward
        written out, a few batched matmuls), the standard-normal prior's is the position itself; any other
        prior is differentiated by autograd on its own (a handful of ops)."""
        if forward_batch_vjp is None or not net.batch_vjp_supported:
            return None
        check_positions(positions, single_allowed=False)
        preds, vjp = forward_batch_vjp(inputs, _unflatten_batch(positions, param_shapes))
        values, grad_preds = nll_and_grad(preds)
        grads = torch.cat([g.reshape(positions.shape[0], -1) for g in vjp(grad_preds)], dim=1)
        if prior_mean_std is not None:
            # The gradient of -log N(q; mu, s^2 I) is (q - mu) / s^2.
            mean, std = prior_mean_std
            centered = positions if mean == 0 else positions - mean
            return values - prior(positions), grads.add_(centered, alpha=1. / std ** 2)
        with torch.enable_grad():
            leaf = positions.detach().requires_grad_(True)
            log_prior = prior(leaf)
            prior_grad, = torch.autograd.grad(log_prior.sum(), leaf)
        return values - log_prior.detach(), grads.sub_(prior_grad)

    # Tells utils.mcmc.energy.PotentialEvaluator that [C, D] -> [C] is supported (no probing calls needed)
    # and that it may ask for the value and gradient in closed form.
    pot_energy.supports_batch = True
    pot_energy.value_and_grad = value_and_grad
    return pot_energy
