r"""L0 regularisation of any ``nn.Module`` by hard-concrete gates on its parameters (Louizos et al. 2018).

Every entry :math:`\theta_j` of every gated parameter is multiplied by its own gate :math:`z_j \in [0, 1]`,

.. math::  z_j = \min(1, \max(0, \bar s_j)),\quad
           \bar s_j = l + (r - l)\,\sigma\big((\log u_j - \log(1 - u_j) + \log\alpha_j)/\beta\big),\quad
           u_j \sim U(0, 1),

with stretch limits :math:`l < 0 < 1 < r` (``limit_a``, ``limit_b``) and temperature :math:`\beta`. A gate
is exactly zero with probability :math:`1 - \pi_j`, where

.. math::  \pi_j = P(z_j \neq 0) = \sigma\big(\log\alpha_j - \beta\log(-l/r)\big),

so the expected number of non-zero parameters and the expected L2 norm of the gated parameters are smooth in
:math:`\log\alpha` and :math:`\theta` (paper, eq. 12 and 14):

.. math::  R(\theta, \alpha) = \sum_j \pi_j\Big(\lambda + \tfrac{\text{weight\_decay}}{2}\,\theta_j^2\Big).

The paper divides :math:`R` by the training-set size :math:`N` when adding it to the data loss; do that in
the training loop (``loss = nll + model.regularization() / N``).

:class:`L0Module` applies this to any module without touching it: the module stays a registered submodule
(its parameters appear exactly once in ``parameters()``), and ``forward`` runs it through
``torch.func.functional_call`` with gated copies of its parameters. At evaluation the gates are the
deterministic :math:`\min(1, \max(0, l + (r - l)\sigma(\log\alpha)))` of the paper.

This is a ``utils`` tool: it imports nothing from ``mnets`` or ``hnets``.
"""
import math

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.utils._pytree import tree_map

__all__ = ['L0Module']


def _check_number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError('%s: expected a number, got %s' % (name, type(value).__name__))


class L0Module(nn.Module):
    r"""Wrap ``module`` with one hard-concrete gate per parameter entry (connection).

    Args:
        module (nn.Module): The network to sparsify. Its ``forward`` must be expressible with its parameters
            swapped by ``torch.func.functional_call`` (true for every module built from ``torch.nn`` layers
            and for functional forwards that read their own parameters).
        lam (float): :math:`\lambda \ge 0`, the price of one non-zero parameter.
        weight_decay (float): L2 factor on the expected kept values (and plain L2 on excluded parameters).
        droprate_init (float): Initial probability in ``(0, 1)`` of a gate being closed; sets
            :math:`\log\alpha \approx \log(1 - p) - \log p` at initialisation, as in the paper.
        temperature (float): :math:`\beta \in (0, 1]`.
        limit_a (float): Stretch :math:`l < 0`.
        limit_b (float): Stretch :math:`r > 1`.
        exclude (iterable of str): Names (as in ``module.named_parameters()``) left ungated, e.g. an output
            bias. They still receive the ``weight_decay`` L2 penalty.
        per_sample (bool): In training, draw an independent mask for every batch element (vectorised with
            ``torch.func.vmap``; every positional tensor argument of ``forward`` must carry the batch in
            dimension 0, keyword arguments are shared by all samples, and the module must not update buffers
            in place, e.g. batch-norm statistics). Otherwise one mask is
            shared by the whole mini-batch, which is cheaper and what the paper does for weights.

    Attributes:
        module (nn.Module): The wrapped module.
        gated_names (tuple of str): Names of the gated parameters, in ``module.named_parameters()`` order.
        log_alphas (nn.ParameterList): :math:`\log\alpha`, one tensor per gated parameter, same shape.
    """

    def __init__(self, module, lam, weight_decay=0., droprate_init=0.5, temperature=2. / 3, limit_a=-0.1,
                 limit_b=1.1, exclude=(), per_sample=False):
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError('module: expected an nn.Module, got %s' % type(module).__name__)
        for name, value in (('lam', lam), ('weight_decay', weight_decay), ('droprate_init', droprate_init),
                            ('temperature', temperature), ('limit_a', limit_a), ('limit_b', limit_b)):
            _check_number(name, value)
        if lam < 0:
            raise ValueError('lam: expected a number >= 0, got %r' % lam)
        if weight_decay < 0:
            raise ValueError('weight_decay: expected a number >= 0, got %r' % weight_decay)
        if not 0 < droprate_init < 1:
            raise ValueError('droprate_init: expected a number in (0, 1), got %r' % droprate_init)
        if not 0 < temperature <= 1:
            raise ValueError('temperature: expected a number in (0, 1], got %r' % temperature)
        if not limit_a < 0:
            raise ValueError('limit_a: expected a number < 0, got %r' % limit_a)
        if not limit_b > 1:
            raise ValueError('limit_b: expected a number > 1, got %r' % limit_b)
        if isinstance(exclude, str):
            raise TypeError('exclude: expected an iterable of parameter names, got the string %r' % exclude)
        exclude = tuple(exclude)
        param_names = [name for name, _ in module.named_parameters()]
        if not param_names:
            raise ValueError('module: expected a module with parameters, got %s without any'
                             % type(module).__name__)
        unknown = [name for name in exclude if name not in param_names]
        if unknown:
            raise ValueError('exclude: expected names among %s, got unknown %s' % (param_names, unknown))

        self.module = module
        self.lam = lam
        self.weight_decay = weight_decay
        self.droprate_init = droprate_init
        self.temperature = temperature
        self.limit_a = limit_a
        self.limit_b = limit_b
        self.per_sample = bool(per_sample)
        self.exclude = exclude
        self.gated_names = tuple(name for name in param_names if name not in exclude)
        # log(alpha) at which P(z != 0) = 1/2; fixed by the temperature and the stretch.
        self._active_offset = temperature * math.log(-limit_a / limit_b)
        init_mean = math.log(1 - droprate_init) - math.log(droprate_init)
        params = dict(module.named_parameters())
        self.log_alphas = nn.ParameterList()
        for name in self.gated_names:
            log_alpha = torch.empty_like(params[name], requires_grad=False)
            nn.init.normal_(log_alpha, mean=init_mean, std=1e-2)
            self.log_alphas.append(nn.Parameter(log_alpha))

    def _stretch_and_clamp(self, unit_values):
        return (self.limit_a + (self.limit_b - self.limit_a) * unit_values).clamp(0.0, 1.0)

    def active_probs(self):
        r"""``{name: pi}`` with :math:`\pi_j = P(z_j \neq 0)` for every gated parameter (same shapes)."""
        return {name: torch.sigmoid(log_alpha - self._active_offset)
                for name, log_alpha in zip(self.gated_names, self.log_alphas)}

    def get_masks(self):
        """``{name: z}``: the deterministic gates used in eval mode (0 marks a pruned parameter entry)."""
        return {name: self._stretch_and_clamp(torch.sigmoid(log_alpha))
                for name, log_alpha in zip(self.gated_names, self.log_alphas)}

    def sample_masks(self, batch_size=None):
        """Draw gates ``{name: z}``; with ``batch_size`` each carries a leading ``[batch_size]`` dimension."""
        masks = {}
        lead = () if batch_size is None else (batch_size,)
        for name, log_alpha in zip(self.gated_names, self.log_alphas):
            # Keep u away from {0, 1} so that its logit stays finite in single precision.
            u = torch.rand(lead + tuple(log_alpha.shape), dtype=log_alpha.dtype, device=log_alpha.device)
            u = u.clamp(1e-6, 1 - 1e-6)
            masks[name] = self._stretch_and_clamp(torch.sigmoid((torch.logit(u) + log_alpha)
                                                                / self.temperature))
        return masks

    def forward(self, *args, **kwargs):
        """Run the wrapped module with gated parameters; same arguments and outputs as ``module``."""
        params = dict(self.module.named_parameters())
        if not self.training:
            masks = self.get_masks()
        elif not self.per_sample:
            masks = self.sample_masks()
        else:
            return self._forward_per_sample(params, args, kwargs)
        gated = {name: params[name] * mask for name, mask in masks.items()}
        return functional_call(self.module, gated, args, kwargs)

    def _forward_per_sample(self, params, args, kwargs):
        batched = [isinstance(arg, torch.Tensor) for arg in args]
        if not any(batched):
            raise ValueError('args: per_sample=True needs at least one tensor argument with a batch '
                             'dimension, got types %s' % [type(arg).__name__ for arg in args])
        batch_size = args[batched.index(True)].shape[0]
        masks = self.sample_masks(batch_size)

        def run_one(sample_masks, *sample_args):
            gated = {name: params[name] * mask for name, mask in sample_masks.items()}
            # The module expects a batch: give every sample a batch of one and drop it again after.
            one_batch = tuple(arg.unsqueeze(0) if is_batched else arg
                              for arg, is_batched in zip(sample_args, batched))
            out = functional_call(self.module, gated, one_batch, kwargs)
            return tree_map(lambda t: t.squeeze(0) if isinstance(t, torch.Tensor) else t, out)

        in_dims = (0,) + tuple(0 if is_batched else None for is_batched in batched)
        return vmap(run_one, in_dims=in_dims, randomness='different')(masks, *args)

    def _excluded_params(self):
        params = dict(self.module.named_parameters())
        return [params[name] for name in self.exclude]

    def count_l0(self):
        """Expected number of non-zero parameters: ``sum(pi)`` over gated entries plus every excluded one."""
        expected = sum(probs.sum() for probs in self.active_probs().values())
        return expected + sum(p.numel() for p in self._excluded_params())

    def count_l2(self):
        r"""Expected squared L2 norm of the gated parameters, :math:`\sum_j \pi_j\theta_j^2` (+ excluded)."""
        params = dict(self.module.named_parameters())
        expected = sum((probs * params[name].pow(2)).sum() for name, probs in self.active_probs().items())
        return expected + sum(p.pow(2).sum() for p in self._excluded_params())

    def regularization(self):
        r""":math:`\sum_j \pi_j(\lambda + \frac{wd}{2}\theta_j^2)` plus :math:`\frac{wd}{2}\|\theta\|^2`
        of the excluded parameters (a scalar; divide by the training-set size in the loss as in the paper)."""
        params = dict(self.module.named_parameters())
        reg = sum((probs * (self.lam + 0.5 * self.weight_decay * params[name].pow(2))).sum()
                  for name, probs in self.active_probs().items())
        if self.weight_decay > 0:
            reg = reg + 0.5 * self.weight_decay * sum(p.pow(2).sum() for p in self._excluded_params())
        return reg

    def extra_repr(self):
        return 'lam=%s, weight_decay=%s, temperature=%s, limits=(%s, %s), gated=%d, excluded=%s, ' \
               'per_sample=%s' % (self.lam, self.weight_decay, self.temperature, self.limit_a, self.limit_b,
                                  len(self.gated_names), list(self.exclude), self.per_sample)
