r"""Locally connected 2D convolution: a convolution without weight sharing.

Every output pixel :math:`(y, x)` of every output map :math:`j` has its own filter over its receptive field
(Bartunov et al., 2018, "locally-connected network"):

.. math::
    G^{(j)}_{yx} = B^{(j)}_{yx} + \sum_{i=1}^{C_\text{in}} \big\langle W^{(i,j)}_{yx},
    \hat{F}^{(i)}(y, x) \big\rangle_F ,

where :math:`\hat{F}^{(i)}(y, x) \in \mathbb{R}^{K_h \times K_w}` is the patch of input map :math:`i` that
pixel :math:`(y, x)` sees. :func:`torch.nn.functional.unfold` lays all patches out as columns
``[N, R, P]`` (``R = C_in K_h K_w`` entries per receptive field, ``P = H_out W_out`` pixels), so the layer is
one batched contraction over ``R``:

.. math::
    G[n, o, p] = \sum_r W[o, r, p] \, \hat{F}[n, r, p] + B[o, p],

computed with :func:`torch.einsum`. The layer therefore has ``P`` times the weights of a
:class:`torch.nn.Conv2d` of the same geometry.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['LocalConv2dLayer']


def _pair(value, name):
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if not (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise ValueError(f'{name}: expected an int or a pair of ints, got {value!r}')
    return tuple(value)


class LocalConv2dLayer(nn.Module):
    r"""Locally connected convolution ``[N, C_in, H_in, W_in] -> [N, C_out, H_out, W_out]``.

    Args:
        in_channels (int): Number of input maps ``C_in``.
        out_channels (int): Number of output maps ``C_out``.
        in_height (int): ``H_in``; fixed, since every output pixel owns a filter.
        in_width (int): ``W_in``.
        kernel_size (int or tuple): ``K`` or ``(K_h, K_w)``.
        stride (int or tuple): Stride of the receptive fields.
        padding (int or tuple): Zero-padding on both sides of the input.
        bias (bool): One bias per output pixel and map, ``[C_out, P]``.
        no_weights (bool): Hold no weights; pass them to :meth:`forward`.

    Weights: ``filters`` ``[C_out, R, P]`` with ``R = C_in K_h K_w``, ``P = H_out W_out`` (receptive-field
    entries ordered channel-major as :func:`torch.nn.functional.unfold` does, pixels row-major), and
    ``bias`` ``[C_out, P]``. Both are initialised from :math:`U(-1/\sqrt{R}, 1/\sqrt{R})`, torch's
    ``Conv2d`` default for the fan-in ``R`` that each output unit really has.
    """

    def __init__(self, in_channels, out_channels, in_height, in_width, kernel_size, stride=1, padding=0,
                 bias=True, no_weights=False):
        super().__init__()
        for name, value in (('in_channels', in_channels), ('out_channels', out_channels),
                            ('in_height', in_height), ('in_width', in_width)):
            if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
                raise ValueError(f'{name}: expected a positive int, got {value!r}')
        kernel_size = _pair(kernel_size, 'kernel_size')
        stride = _pair(stride, 'stride')
        padding = _pair(padding, 'padding')
        if min(kernel_size) < 1 or min(stride) < 1 or min(padding) < 0:
            raise ValueError(f'kernel_size, stride, padding: expected positive kernel and stride and '
                             f'non-negative padding, got {kernel_size}, {stride}, {padding}')
        out_height = (in_height + 2 * padding[0] - kernel_size[0]) // stride[0] + 1
        out_width = (in_width + 2 * padding[1] - kernel_size[1]) // stride[1] + 1
        if out_height < 1 or out_width < 1:
            raise ValueError(f'kernel_size: a {kernel_size} kernel does not fit the padded {in_height}x'
                             f'{in_width} input (padding {padding})')

        self._in_channels = in_channels
        self._out_channels = out_channels
        self._in_height = in_height
        self._in_width = in_width
        self._kernel_size = kernel_size
        self._stride = stride
        self._padding = padding
        self._has_bias = bias
        self._no_weights = no_weights
        self._out_height = out_height
        self._out_width = out_width
        self._rf_size = in_channels * kernel_size[0] * kernel_size[1]
        self._num_pix = out_height * out_width

        self._param_shapes = [[out_channels, self._rf_size, self._num_pix]]
        if bias:
            self._param_shapes.append([out_channels, self._num_pix])
        self._weights = None
        self.filters = None
        self.bias = None
        if not no_weights:
            self.filters = nn.Parameter(torch.empty(*self._param_shapes[0]))
            self.bias = nn.Parameter(torch.empty(*self._param_shapes[1])) if bias else None
            self.init_weights_(self.filters, self.bias)
            self._weights = nn.ParameterList([self.filters] + ([self.bias] if bias else []))

    @staticmethod
    @torch.no_grad()
    def init_weights_(filters, bias=None):
        r"""Fill ``filters`` ``[C_out, R, P]`` (and ``bias``) in place from :math:`U(-1/\sqrt{R}, 1/\sqrt{R})`."""
        bound = 1.0 / math.sqrt(filters.shape[1])
        nn.init.uniform_(filters, -bound, bound)
        if bias is not None:
            nn.init.uniform_(bias, -bound, bound)

    @property
    def weights(self):
        """Internal ``[filters, bias]`` (or ``[filters]``), ``None`` with ``no_weights``.

        :type: torch.nn.ParameterList or None
        """
        return self._weights

    @property
    def param_shapes(self):
        """``[[C_out, R, P], [C_out, P]]`` (the bias shape only with ``bias``), whether held or not.

        :type: list
        """
        return self._param_shapes

    @property
    def out_height(self):
        """Height ``H_out`` of the output maps.

        :type: int
        """
        return self._out_height

    @property
    def out_width(self):
        """Width ``W_out`` of the output maps.

        :type: int
        """
        return self._out_width

    def _check_weight(self, tensor, expected, name, batch):
        shape = list(tensor.shape)
        if shape != expected and shape != [batch] + expected:
            raise ValueError(f'weights: expected {name} of shape {expected} or [{batch}, *{expected}] '
                             f'(one per sample), got {shape}')

    def forward(self, x, weights=None):
        """Apply the layer.

        Args:
            x (torch.Tensor): ``[N, C_in, H_in, W_in]``.
            weights (list, optional): ``[filters, bias]`` (or ``[filters]`` without bias) instead of the internal
                ones; required with ``no_weights``. Each may carry a leading ``N`` (one set per sample).

        Returns:
            torch.Tensor: ``[N, C_out, H_out, W_out]``.
        """
        expected_x = [self._in_channels, self._in_height, self._in_width]
        if x.dim() != 4 or list(x.shape[1:]) != expected_x:
            raise ValueError(f'x: expected shape [N, {", ".join(map(str, expected_x))}], got {list(x.shape)}')
        batch = x.shape[0]
        if weights is None:
            if self._no_weights:
                raise ValueError('weights: the layer was built with no_weights=True, so [filters, bias] must be '
                                 'passed; got None')
            filters, bias = self.filters, self.bias
        else:
            if isinstance(weights, torch.Tensor) or len(weights) != len(self._param_shapes):
                got = 'a tensor' if isinstance(weights, torch.Tensor) else f'{len(weights)} tensors'
                raise ValueError(f'weights: expected a list of {len(self._param_shapes)} tensors, got {got}')
            filters = weights[0]
            bias = weights[1] if self._has_bias else None
            self._check_weight(filters, self._param_shapes[0], 'filters', batch)
            if bias is not None:
                self._check_weight(bias, self._param_shapes[1], 'bias', batch)

        patches = F.unfold(x, self._kernel_size, padding=self._padding, stride=self._stride)
        # Shared filters contract as 'orp,nrp->nop'; per-sample filters carry n themselves.
        pattern = 'norp,nrp->nop' if filters.dim() == 4 else 'orp,nrp->nop'
        out = torch.einsum(pattern, filters, patches)
        if bias is not None:
            out = out + bias
        return out.reshape(batch, self._out_channels, self._out_height, self._out_width)

    def extra_repr(self):
        return (f'{self._in_channels}, {self._out_channels}, in_size=({self._in_height}, {self._in_width}), '
                f'kernel_size={self._kernel_size}, stride={self._stride}, padding={self._padding}, '
                f'bias={self._has_bias}')
