r"""Stochastic gates: a differentiable surrogate of the L0 norm for feature selection and pruning.

Each gate :math:`z_k \in [0, 1]` multiplies one group of input elements. It is the hard-sigmoid
:math:`z = \min(1, \max(0, \bar s))` of a continuous random variable :math:`\bar s` whose distribution is
controlled by a learnable parameter per gate, so :math:`z` is exactly 0 with positive probability, exactly 1
with positive probability, and continuous in between. Because of that,

.. math::  \mathbb{E}\,\|z\|_0 = \sum_k P(z_k > 0) = \sum_k P(\bar s_k > 0)

is a smooth function of the gate parameters, and the gate values themselves can be reparameterised as
``parameter + noise``; both the data loss and the expected-L0 penalty can therefore be optimised by SGD.

Two distributions for :math:`\bar s` are provided (same public API as Captum's ``captum.module``):

* :class:`GaussianStochasticGates` (Yamada et al. 2020, "Feature selection using stochastic gates"):
  :math:`\bar s = \mu + \sigma \epsilon`, :math:`\epsilon \sim N(0, 1)`, so
  :math:`P(z > 0) = \Phi(\mu / \sigma)`.
* :class:`BinaryConcreteStochasticGates` (Louizos et al. 2018, "Learning sparse neural networks through L0
  regularization"): a binary concrete sample stretched to :math:`(l, r)` with :math:`l < 0 < 1 < r`,
  :math:`\bar s = l + (r - l)\,\sigma((\log u - \log(1 - u) + \log\alpha) / \beta)`, so
  :math:`P(z > 0) = \sigma(\log\alpha - \beta \log(-l / r))`.

In training mode every batch element draws its own gates; in eval mode the gates are deterministic (the
hard-sigmoid of the distribution's location), so inference is reproducible.

Gate parameters normally live in the module (``mu`` or ``log_alpha_param``), but ``forward`` and the query
methods also accept ``gate_params`` from outside, e.g. one set per task produced by a hypernetwork. A batch of
such parameter sets is handled by ``torch.func.vmap`` over ``forward`` (with ``randomness='different'`` in
training mode).

This module is a building block: it imports nothing from the project.
"""
import math
from abc import ABC, abstractmethod

import torch
from torch import nn

__all__ = ['StochasticGatesBase', 'GaussianStochasticGates', 'BinaryConcreteStochasticGates']

_REDUCTIONS = ('none', 'mean', 'sum')


def _check_n_gates(n_gates):
    if isinstance(n_gates, bool) or not isinstance(n_gates, int):
        raise TypeError('n_gates: expected an int, got %s' % type(n_gates).__name__)
    if n_gates <= 0:
        raise ValueError('n_gates: expected an integer > 0, got %d' % n_gates)


def _check_positive(name, value):
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError('%s: expected a number, got %s' % (name, type(value).__name__))
    if not value > 0:
        raise ValueError('%s: expected a number > 0, got %r' % (name, value))


class StochasticGatesBase(nn.Module, ABC):
    r"""Common machinery of stochastic gates: grouping by ``mask``, gating, and the expected-L0 penalty.

    Subclasses define the distribution of the pre-rectification variable :math:`\bar s` through three
    methods, each taking the gate parameters ``[n_gates]``: ``_sample_gate_values(params, batch_size)``
    (reparameterised samples ``[batch_size, n_gates]``), ``_get_gate_values(params)`` (deterministic values
    ``[n_gates]`` used in eval mode) and ``_get_gate_active_probs(params)`` (:math:`P(\bar s > 0)`,
    ``[n_gates]``). Values returned by the first two are rectified here by clamping to ``[0, 1]``.

    Args:
        n_gates (int): Number of gates.
        mask (torch.Tensor, optional): Integer tensor with values in ``[0, n_gates - 1]`` assigning each input
            element (all dimensions except the batch dimension) to a gate; elements with the same value
            share one gate. It must broadcast to the input's shape; if it has as many dimensions as the input
            its leading (batch) size must be 1. Without a mask, input element ``k`` (in row-major order of the
            non-batch dimensions) has gate ``k``, and each sample must then have exactly ``n_gates`` elements.
        reg_weight (float): Factor of the returned L0 penalty.
        reg_reduction (str): ``'sum'`` (default, as in Louizos et al.: gates of different layers compare
            on the same scale), ``'mean'`` or ``'none'`` (the per-gate penalties ``[n_gates]``).
    """

    def __init__(self, n_gates, mask=None, reg_weight=1.0, reg_reduction='sum'):
        super().__init__()
        _check_n_gates(n_gates)
        if reg_reduction not in _REDUCTIONS:
            raise ValueError('reg_reduction: expected one of %s, got %r' % (_REDUCTIONS, reg_reduction))
        if not isinstance(reg_weight, (int, float)) or isinstance(reg_weight, bool):
            raise TypeError('reg_weight: expected a number, got %s' % type(reg_weight).__name__)
        if mask is not None:
            if not isinstance(mask, torch.Tensor):
                raise TypeError('mask: expected an integer torch.Tensor, got %s' % type(mask).__name__)
            if mask.dtype.is_floating_point or mask.dtype.is_complex or mask.dtype == torch.bool:
                raise TypeError('mask: expected an integer tensor, got dtype %s' % mask.dtype)
            if mask.numel() == 0:
                raise ValueError('mask: expected a non-empty tensor, got shape %s' % list(mask.shape))
            low, high = int(mask.min()), int(mask.max())
            if low < 0 or high >= n_gates:
                raise ValueError('mask: expected values in [0, %d] (n_gates=%d), got values in [%d, %d]'
                                 % (n_gates - 1, n_gates, low, high))
            mask = mask.detach().long().clone()
        self.n_gates = n_gates
        self.reg_weight = reg_weight
        self.reg_reduction = reg_reduction
        self.register_buffer('mask', mask)

    @abstractmethod
    def _sample_gate_values(self, params, batch_size):
        """Reparameterised samples of the unrectified gates, ``[batch_size, n_gates]``."""

    @abstractmethod
    def _get_gate_values(self, params):
        """Deterministic unrectified gates used in eval mode, ``[n_gates]``."""

    @abstractmethod
    def _get_gate_active_probs(self, params):
        """Probabilities ``P(gate > 0)``, ``[n_gates]``."""

    @property
    @abstractmethod
    def gate_params(self):
        """The module's own gate parameters ``[n_gates]``."""

    def _resolve_params(self, gate_params):
        if gate_params is None:
            return self.gate_params
        if not isinstance(gate_params, torch.Tensor):
            raise TypeError('gate_params: expected a torch.Tensor, got %s' % type(gate_params).__name__)
        if tuple(gate_params.shape) != (self.n_gates,):
            raise ValueError('gate_params: expected shape [%d], got %s'
                             % (self.n_gates, list(gate_params.shape)))
        return gate_params

    def _element_gate_index(self, input_shape):
        """Gate index of every element of one sample, flattened: ``[prod(input_shape[1:])]``."""
        sample_shape = input_shape[1:]
        if self.mask is None:
            n_elements = math.prod(sample_shape)
            if n_elements != self.n_gates:
                raise ValueError('input_tensor: without a mask each sample needs n_gates=%d elements, got '
                                 'shape %s (%d elements)' % (self.n_gates, list(input_shape), n_elements))
            return None
        mask = self.mask
        if mask.dim() > len(sample_shape):
            if mask.dim() != len(input_shape) or mask.shape[0] != 1:
                raise ValueError('mask: shape %s does not broadcast to the per-sample shape of input %s'
                                 % (list(mask.shape), list(input_shape)))
            mask = mask[0]
        try:
            return mask.expand(sample_shape).reshape(-1)
        except RuntimeError:
            raise ValueError('mask: shape %s does not broadcast to the per-sample shape of input %s'
                             % (list(self.mask.shape), list(input_shape))) from None

    def _reduce(self, probs):
        if self.reg_reduction == 'sum':
            probs = probs.sum()
        elif self.reg_reduction == 'mean':
            probs = probs.mean()
        return self.reg_weight * probs

    def forward(self, input_tensor, gate_params=None):
        """Gate the input and return the expected-L0 penalty.

        Args:
            input_tensor (torch.Tensor): ``[B, ...]``, gated along all but the first dimension.
            gate_params (torch.Tensor, optional): ``[n_gates]`` gate parameters to use instead of the
                module's own (e.g. produced by a hypernetwork).

        Returns:
            (tuple): ``(gated_input, l0_reg)`` with ``gated_input`` shaped like ``input_tensor`` and
            ``l0_reg = reg_weight * reduce(P(z > 0))`` (a scalar, or ``[n_gates]`` for ``'none'``).
        """
        if not isinstance(input_tensor, torch.Tensor):
            raise TypeError('input_tensor: expected a torch.Tensor, got %s' % type(input_tensor).__name__)
        if input_tensor.dim() < 2:
            raise ValueError('input_tensor: expected shape [B, ...] with at least 2 dimensions, got %s'
                             % list(input_tensor.shape))
        params = self._resolve_params(gate_params)
        element_index = self._element_gate_index(input_tensor.shape)
        batch_size = input_tensor.shape[0]
        if self.training:
            gates = self._sample_gate_values(params, batch_size)
        else:
            gates = self._get_gate_values(params).unsqueeze(0).expand(batch_size, self.n_gates)
        gates = gates.clamp(0.0, 1.0)
        if element_index is not None:
            gates = gates.index_select(1, element_index)
        gated = input_tensor * gates.reshape(input_tensor.shape).to(input_tensor.dtype)
        return gated, self._reduce(self._get_gate_active_probs(params))

    def get_gate_values(self, clamp=True, gate_params=None):
        """Deterministic gate values ``[n_gates]`` (those used in eval mode).

        With ``clamp=False`` the unrectified values are returned, which tell how far a gate is from
        switching (a value far below 0 marks a firmly closed gate).
        """
        values = self._get_gate_values(self._resolve_params(gate_params))
        return values.clamp(0.0, 1.0) if clamp else values

    def get_gate_active_probs(self, gate_params=None):
        """Probability of each gate being non-zero in training mode, ``[n_gates]``."""
        return self._get_gate_active_probs(self._resolve_params(gate_params))

    @classmethod
    def _from_pretrained(cls, gate_params, *args, **kwargs):
        """Build gates of ``cls`` whose parameters are a copy of ``gate_params`` (any shape; flattened)."""
        if not isinstance(gate_params, torch.Tensor):
            raise TypeError('gate_params: expected a torch.Tensor, got %s' % type(gate_params).__name__)
        if gate_params.numel() == 0:
            raise ValueError('gate_params: expected a non-empty tensor, got shape %s'
                             % list(gate_params.shape))
        gates = cls(gate_params.numel(), *args, **kwargs)
        with torch.no_grad():
            gates.gate_params.copy_(gate_params.reshape(-1))
        return gates

    def extra_repr(self):
        return 'n_gates=%d, reg_weight=%s, reg_reduction=%r, grouped=%s' % (
            self.n_gates, self.reg_weight, self.reg_reduction, self.mask is not None)


class GaussianStochasticGates(StochasticGatesBase):
    r"""Gates :math:`z = \mathrm{clamp}(\mu + \sigma\epsilon, 0, 1)` with :math:`\epsilon \sim N(0, 1)`.

    ``P(z > 0) = Phi(mu / std)``; in eval mode ``z = clamp(mu, 0, 1)``. The location ``mu`` ([n_gates],
    attribute ``mu``) starts near 0.5, i.e. every gate half open, as in Yamada et al. 2020.

    Args:
        n_gates, mask, reg_weight, reg_reduction: see :class:`StochasticGatesBase`.
        std (float): Noise scale :math:`\sigma > 0`.
    """

    def __init__(self, n_gates, mask=None, reg_weight=1.0, std=0.5, reg_reduction='sum'):
        super().__init__(n_gates, mask=mask, reg_weight=reg_weight, reg_reduction=reg_reduction)
        _check_positive('std', std)
        self.std = std
        self.mu = nn.Parameter(torch.empty(n_gates))
        nn.init.normal_(self.mu, mean=0.5, std=0.01)

    @property
    def gate_params(self):
        return self.mu

    def _sample_gate_values(self, params, batch_size):
        noise = torch.randn(batch_size, self.n_gates, dtype=params.dtype, device=params.device)
        return params + self.std * noise

    def _get_gate_values(self, params):
        return params

    def _get_gate_active_probs(self, params):
        return 0.5 * (1.0 + torch.erf(params / (self.std * math.sqrt(2.0))))

    @classmethod
    def _from_pretrained(cls, mu, *args, **kwargs):
        """Gaussian gates with location ``mu`` (flattened; ``n_gates = mu.numel()``)."""
        return super()._from_pretrained(mu, *args, **kwargs)


class BinaryConcreteStochasticGates(StochasticGatesBase):
    r"""Hard-concrete gates (Louizos et al. 2018) with learnable :math:`\log\alpha` per gate.

    Training: :math:`u \sim U(\epsilon, 1 - \epsilon)`,
    :math:`\bar s = l + (r - l)\,\sigma((\log u - \log(1 - u) + \log\alpha)/\beta)`, :math:`z =
    \mathrm{clamp}(\bar s, 0, 1)`. Eval: :math:`z = \mathrm{clamp}(l + (r - l)\sigma(\log\alpha), 0, 1)`.
    :math:`P(z > 0) = \sigma(\log\alpha - \beta\log(-l/r))`. ``log_alpha_param`` ([n_gates]) starts near 0.

    Args:
        n_gates, mask, reg_weight, reg_reduction: see :class:`StochasticGatesBase`.
        temperature (float): :math:`\beta \in (0, 1]`; smaller is closer to a Bernoulli.
        lower_bound (float): Stretch :math:`l < 0`, so that a gate is exactly 0 with positive probability.
        upper_bound (float): Stretch :math:`r > 1`, so that a gate is exactly 1 with positive probability.
        eps (float): Keeps :math:`u` away from 0 and 1 so the logit stays finite.
    """

    def __init__(self, n_gates, mask=None, reg_weight=1.0, temperature=2.0 / 3, lower_bound=-0.1,
                 upper_bound=1.1, eps=1e-8, reg_reduction='sum'):
        super().__init__(n_gates, mask=mask, reg_weight=reg_weight, reg_reduction=reg_reduction)
        _check_positive('temperature', temperature)
        if temperature > 1:
            raise ValueError('temperature: expected a number in (0, 1], got %r' % temperature)
        if not lower_bound < 0:
            raise ValueError('lower_bound: expected a number < 0, got %r' % lower_bound)
        if not upper_bound > 1:
            raise ValueError('upper_bound: expected a number > 1, got %r' % upper_bound)
        _check_positive('eps', eps)
        if eps >= 0.5:
            raise ValueError('eps: expected a number in (0, 0.5), got %r' % eps)
        self.temperature = temperature
        self.lower_bound = lower_bound
        self.upper_bound = upper_bound
        self.eps = eps
        # The shift of log(alpha) at which P(z > 0) = 1/2.
        self._active_prob_offset = temperature * math.log(-lower_bound / upper_bound)
        self.log_alpha_param = nn.Parameter(torch.empty(n_gates))
        nn.init.normal_(self.log_alpha_param, mean=0.0, std=0.01)

    @property
    def gate_params(self):
        return self.log_alpha_param

    def _stretch(self, unit_values):
        return self.lower_bound + (self.upper_bound - self.lower_bound) * unit_values

    def _sample_gate_values(self, params, batch_size):
        u = torch.rand(batch_size, self.n_gates, dtype=params.dtype, device=params.device)
        u = u.clamp(self.eps, 1.0 - self.eps)
        return self._stretch(torch.sigmoid((torch.logit(u) + params) / self.temperature))

    def _get_gate_values(self, params):
        return self._stretch(torch.sigmoid(params))

    def _get_gate_active_probs(self, params):
        return torch.sigmoid(params - self._active_prob_offset)

    @classmethod
    def _from_pretrained(cls, log_alpha_param, *args, **kwargs):
        """Hard-concrete gates with the given ``log_alpha_param`` (flattened; ``n_gates = numel``)."""
        return super()._from_pretrained(log_alpha_param, *args, **kwargs)

