r"""Self-attention for feature maps (Zhang et al., "Self-Attention Generative Adversarial Networks", 2018).

Convolutions mix information only locally; this layer lets every location see every other one. For a
feature map :math:`x \in \mathbb{R}^{C \times N}` (:math:`N` locations) three ``1x1`` convolutions give
queries :math:`f = W_f x + b_f`, keys :math:`g = W_g x + b_g` (both :math:`C/8` channels) and values
:math:`v = W_v x + b_v` (:math:`C` channels). Location :math:`i` attends to location :math:`j` with

.. math::

    A_{ij} = \frac{\exp(f_i^\top g_j)}{\sum_{j'} \exp(f_i^\top g_{j'})}, \qquad
    o_i = \sum_j A_{ij} v_j, \qquad y = \gamma\, o + x

:math:`\gamma` starts at 0, so the layer starts as the identity and learns how much global context to add.
Weights are held by the layer or supplied to :meth:`SelfAttnLayerV2.forward` (e.g. by a hypernetwork); the
forward is a pure function of its tensors, so ``torch.func.vmap`` over weight sets works.
"""
import math

import torch
from torch import nn

__all__ = ['SelfAttnLayerV2']


class SelfAttnLayerV2(nn.Module):
    """Self-attention layer with held or supplied weights.

    Args:
        in_dim (int): number of channels ``C`` (at least 8, since queries and keys have ``C // 8``).
        use_spectral_norm (bool): divide every ``1x1`` convolution weight by its largest singular value
            (computed exactly, so the forward stays stateless).
        no_weights (bool): hold no weights; they must be passed to :meth:`forward`.
        init_weights (list, optional): initial values in :attr:`weight_shapes` order.

    Weight order (:attr:`weight_shapes`): ``W_f [C/8, C, 1, 1]``, ``b_f [C/8]``, ``W_g [C/8, C, 1, 1]``,
    ``b_g [C/8]``, ``W_v [C, C, 1, 1]``, ``b_v [C]``, ``gamma [1]``.
    """

    def __init__(self, in_dim, use_spectral_norm, no_weights=False, init_weights=None):
        super().__init__()
        if isinstance(in_dim, bool) or not isinstance(in_dim, int) or in_dim < 8:
            raise ValueError('in_dim: expected an int >= 8 (queries and keys have in_dim // 8 channels), got %r'
                             % (in_dim,))
        if no_weights and init_weights is not None:
            raise ValueError('init_weights: expected None when no_weights=True, got a list')
        self.channel_in = in_dim
        self._use_spectral_norm = use_spectral_norm
        qk = in_dim // 8
        self._weight_shapes = [[qk, in_dim, 1, 1], [qk], [qk, in_dim, 1, 1], [qk], [in_dim, in_dim, 1, 1],
                               [in_dim], [1]]
        if no_weights:
            self._weights = None
            return
        self._weights = nn.ParameterList([nn.Parameter(torch.empty(s)) for s in self._weight_shapes])
        with torch.no_grad():
            if init_weights is not None:
                for p, w in zip(self._weights, self._check_weights(init_weights, 'init_weights')):
                    p.copy_(w)
            else:
                for i in range(0, 6, 2):
                    _init_conv(self._weights[i], self._weights[i + 1])
                self._weights[6].zero_()

    @property
    def weight_shapes(self):
        """Shapes of all weight tensors (whether held or not)."""
        return self._weight_shapes

    @property
    def weights(self):
        """The held weights (``nn.ParameterList``) or ``None`` with ``no_weights=True``."""
        return self._weights

    def _check_weights(self, weights, arg):
        if not isinstance(weights, (list, tuple)) or len(weights) != len(self._weight_shapes):
            n = len(weights) if isinstance(weights, (list, tuple)) else type(weights).__name__
            raise ValueError('%s: expected a list of %d tensors, got %s' % (arg, len(self._weight_shapes), n))
        for i, (w, s) in enumerate(zip(weights, self._weight_shapes)):
            if not isinstance(w, torch.Tensor) or list(w.shape) != s:
                raise ValueError('%s[%d]: expected shape %s, got %s'
                                 % (arg, i, s, list(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__))
        return list(weights)

    def forward(self, x, ret_attention=False, weights=None, dWeights=None):
        """Mix global context into ``x``.

        Args:
            x (torch.Tensor): feature maps ``[B, C, W, H]``.
            ret_attention (bool): also return the attention map.
            weights (list, optional): tensors of :attr:`weight_shapes`, used instead of the held ones.
            dWeights (list, optional): perturbations added to the weights used.

        Returns:
            ``y`` ``[B, C, W, H]``, and with ``ret_attention`` the attention ``A`` ``[B, N, N]`` (``N = W H``,
            rows sum to 1).
        """
        if weights is None:
            if self._weights is None:
                raise ValueError('weights: expected a list of %d tensors since the layer holds none '
                                 '(no_weights=True), got None' % len(self._weight_shapes))
            weights = list(self._weights)
        else:
            weights = self._check_weights(weights, 'weights')
        if dWeights is not None:
            weights = [w + d for w, d in zip(weights, self._check_weights(dWeights, 'dWeights'))]
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != self.channel_in:
            raise ValueError('x: expected a tensor [B, %d, W, H], got %s'
                             % (self.channel_in, list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__))
        batch, channels, width, height = x.shape
        flat = x.reshape(batch, channels, width * height)
        query, key, value = (self._conv1x1(flat, weights[i], weights[i + 1]) for i in (0, 2, 4))
        attention = torch.softmax(query.transpose(1, 2) @ key, dim=-1)   # [B, N, N]
        out = (value @ attention.transpose(1, 2)).reshape(batch, channels, width, height)
        y = weights[6] * out + x
        return (y, attention) if ret_attention else y

    def _conv1x1(self, flat, weight, bias):
        """A ``1x1`` convolution on ``[B, C, N]`` is a matrix product over channels."""
        matrix = weight.reshape(weight.shape[0], weight.shape[1])
        if self._use_spectral_norm:
            matrix = matrix / torch.linalg.matrix_norm(matrix, ord=2)
        return matrix @ flat + bias.unsqueeze(-1)


def _init_conv(weight, bias):
    """torch's default conv init: U(+-1/sqrt(fan_in)) for the bias, Kaiming-uniform(a=sqrt(5)) for the weight."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    bound = 1. / math.sqrt(weight[0].numel())
    nn.init.uniform_(bias, -bound, bound)
