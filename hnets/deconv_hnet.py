r"""A transposed-convolution hypernetwork: main-network weights generated as an image.

Like a DCGAN generator, the input :math:`[z, e]` passes through a fully-connected layer whose output is read
as a small image ``[C_0, w_0, h_0]``; transposed convolutions then roughly double its size layer by layer
until the last one yields the *hyper-image* ``[C_out, W, H]`` (``hyper_img_shape``):

.. math::

    h_0 = \phi(\mathrm{reshape}(W_0 [z, e] + b_0)), \qquad
    h_l = \phi(K_l \circledast^\top h_{l-1} + b_l), \qquad
    \mathrm{vec}(W_{\text{main}}) = \mathrm{vec}(h_{L-1})_{:\text{num\_outputs}}

(no nonlinearity after the last layer). Weight sharing across the image makes the network much smaller than
a fully-connected one with the same output size; self-attention units
(:class:`utils.self_attention_layer.SelfAttnLayerV2`) after chosen layers add the global dependencies that
convolutions miss. Pixels beyond ``num_outputs`` (channel-major, then ``W``, then ``H``) are cropped.

Sizes: working back from ``(W, H)``, the input of a transposed convolution is half its output (rounded up,
stride 2) unless that would be below 4, then it keeps the size (stride 1). The full transposed-convolution
output is cropped symmetrically to the planned size, so any kernel of at least 2 works.

``K`` conditions are ``K`` images of one batch. :class:`hnets.chunked_deconv_hnet.ChunkedHDeconv` shares the
trunk (:class:`_DeconvTrunkMixin`).
"""
import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from hnets.hnet_interface import HyperNetInterface
from hnets.mlp_hnet import _RELU
from utils.batchnorm_layer import BatchNormLayer
from utils.self_attention_layer import SelfAttnLayerV2

__all__ = ['HDeconv']

# What each tensor of a self-attention unit is (meta key 'sa_role'), in SelfAttnLayerV2.weight_shapes order.
_SA_ROLES = ('query_weight', 'query_bias', 'key_weight', 'key_bias', 'value_weight', 'value_bias', 'gamma')


def _is_int(val):
    return isinstance(val, numbers.Integral) and not isinstance(val, bool)


class _DeconvTrunkMixin:
    """Fully-connected layer plus transposed convolutions (and self-attention), registered through
    :class:`HyperNetInterface` bookkeeping; produces ``[B, prod(hyper_img_shape)]``.

    Parameter order per layer ``l``: weight, bias, then (hidden layers) batch-norm scale/shift, then the 7
    tensors of a self-attention unit if ``l`` is in ``sa_units``.
    """

    @staticmethod
    def _check_img_shape(hyper_img_shape):
        if not isinstance(hyper_img_shape, (list, tuple)) or len(hyper_img_shape) not in (2, 3) or \
                not all(_is_int(d) and d > 0 for d in hyper_img_shape):
            raise ValueError('hyper_img_shape: expected (width, height) or (width, height, channels) of positive '
                             'ints, got %r' % (hyper_img_shape,))
        shape = [int(d) for d in hyper_img_shape]
        return shape if len(shape) == 3 else shape + [1]

    def _plan_layers(self, img_shape, num_layers, num_filters, kernel_size, sa_units):
        """Validate the architecture options; return channels, spatial sizes, kernels and strides."""
        if not _is_int(num_layers) or num_layers < 2:
            raise ValueError('num_layers: expected an int >= 2 (a fully-connected and at least one transposed '
                             'conv layer), got %r' % (num_layers,))
        n_conv = num_layers - 1
        if num_filters is None:
            num_filters = [128 * 2 ** (n_conv - 1 - i) for i in range(n_conv)]
        if not isinstance(num_filters, (list, tuple)) or len(num_filters) != n_conv or \
                not all(_is_int(f) and f > 0 for f in num_filters):
            raise ValueError('num_filters: expected %d positive ints (num_layers - 1), got %r'
                             % (n_conv, num_filters))
        kernels = kernel_size if isinstance(kernel_size, list) else [kernel_size] * n_conv
        if len(kernels) != n_conv:
            raise ValueError('kernel_size: expected an int, a tuple or a list of %d of them, got %r'
                             % (n_conv, kernel_size))
        kernels = [(k, k) if _is_int(k) else tuple(k) for k in kernels]
        if not all(len(k) == 2 and all(_is_int(d) and d > 0 for d in k) for k in kernels):
            raise ValueError('kernel_size: expected positive ints or (k_x, k_y) tuples, got %r' % (kernel_size,))
        sa_units = list(sa_units or [])
        for u in sa_units:
            if not _is_int(u) or not 0 <= u < n_conv:
                raise ValueError('sa_units: expected layer indices in [0, %d) (not the output layer), got %r'
                                 % (n_conv, sa_units))
            if num_filters[u] < 8:
                raise ValueError('sa_units: self-attention after layer %d needs >= 8 channels, that layer has %d'
                                 % (u, num_filters[u]))
        sizes = [img_shape[:2]]
        strides = []
        for _ in range(n_conv):
            out = sizes[0]
            half = [-(-d // 2) for d in out]
            stride = [2 if h >= 4 else 1 for h in half]
            sizes.insert(0, [h if s == 2 else d for h, s, d in zip(half, stride, out)])
            strides.insert(0, tuple(stride))
        for l, (k, s, size_in, size_out) in enumerate(zip(kernels, strides, sizes, sizes[1:])):
            full = [(i - 1) * st + kk for i, st, kk in zip(size_in, s, k)]
            if any(f < o for f, o in zip(full, size_out)):
                raise ValueError('kernel_size: kernel %s of transposed conv layer %d is too small to reach size %s '
                                 'from %s with stride %s' % (k, l + 1, size_out, size_in, s))
        return [int(f) for f in num_filters] + [img_shape[2]], sizes, kernels, strides, sorted(set(sa_units))

    def _build_deconv_trunk(self, in_size, img_shape, num_layers, num_filters, kernel_size, sa_units, use_bias,
                            use_batch_norm, use_spectral_norm, activation_fn, no_weights):
        channels, sizes, kernels, strides, sa_units = self._plan_layers(img_shape, num_layers, num_filters,
                                                                        kernel_size, sa_units)
        self._img_shape = img_shape
        self._channels, self._sizes, self._kernels, self._strides = channels, sizes, kernels, strides
        self._sa_unit_ids = sa_units
        self._act_fn = activation_fn
        self._use_batch_norm = use_batch_norm
        self._use_spectral_norm = use_spectral_norm
        self._has_bias = use_bias
        self._has_fc_out = False
        self._sa_layers = nn.ModuleDict()
        if use_batch_norm:
            self._batchnorm_layers = nn.ModuleList([BatchNormLayer(c, affine=False) for c in channels[:-1]])
        held = not no_weights
        layer_id = 1
        self._trunk_refs = []
        for l in range(len(channels)):
            if l == 0:
                shape = [channels[0] * sizes[0][0] * sizes[0][1], in_size]
            else:  # conv_transpose2d layout: [in, out, k_x, k_y]
                shape = [channels[l - 1], channels[l], *kernels[l - 1]]
            weight = torch.empty(shape)
            # The fc bias is per unit (pixel) of the first image, the conv biases per channel.
            bias = torch.empty(shape[0] if l == 0 else channels[l]) if use_bias else None
            _init_like_torch(weight, bias, transposed=l > 0)
            refs = {'weight': self._register_param(shape, 'weight', layer_id, False, held,
                                                   lambda p, src=weight: p.copy_(src))}
            if use_bias:
                refs['bias'] = self._register_param(bias.shape, 'bias', layer_id, False, held,
                                                    lambda p, src=bias: p.copy_(src))
            layer_id += 1
            if use_batch_norm and l < len(channels) - 1:
                refs['bn'] = (self._register_param([channels[l]], 'bn_scale', layer_id, False, held, nn.init.ones_),
                              self._register_param([channels[l]], 'bn_shift', layer_id, False, held, nn.init.zeros_))
                layer_id += 1
            if l in sa_units:
                sa = SelfAttnLayerV2(channels[l], use_spectral_norm, no_weights=False)
                self._sa_layers[str(l)] = SelfAttnLayerV2(channels[l], use_spectral_norm, no_weights=True)
                refs['sa'] = [self._register_param(s, 'sa_gamma' if i == 6 else ('weight', 'bias')[i % 2], layer_id,
                                                   False, held, lambda p, src=w: p.copy_(src),
                                                   info='self-attention', sa_role=role)
                              for i, (s, w, role) in enumerate(zip(sa.weight_shapes, sa.weights, _SA_ROLES))]
                layer_id += 1
            self._trunk_refs.append(refs)

    def _finish_trunk_positions(self):
        """Translate trunk indices into :attr:`param_shapes` into positions in the unconditional list."""
        pos = {ref: i for i, ref in enumerate(self.unconditional_param_shapes_ref)}
        self._trunk_pos = [{k: (pos[v] if isinstance(v, int) else [pos[r] for r in v]) for k, v in refs.items()}
                           for refs in self._trunk_refs]

    def _deconv_forward(self, h, uncond_weights, condition=None):
        """Map ``h`` ``[B, in_size]`` to the flattened hyper-image ``[B, C_out * W * H]``."""
        batch = h.shape[0]
        last = len(self._channels) - 1
        for l, pos in enumerate(self._trunk_pos):
            weight = uncond_weights[pos['weight']]
            bias = uncond_weights[pos['bias']] if 'bias' in pos else None
            if self._use_spectral_norm:
                matrix = weight if l == 0 else weight.transpose(0, 1).flatten(1)
                weight = weight / torch.linalg.matrix_norm(matrix, ord=2)
            if l == 0:
                h = F.linear(h, weight, bias).reshape(batch, self._channels[0], *self._sizes[0])
            else:
                h = self._conv_transpose(h, weight, bias, l)
            if l == last:
                break
            if self._use_batch_norm:
                scale, shift = pos['bn']
                h = self._batchnorm_layers[l].forward(h, weight=uncond_weights[scale], bias=uncond_weights[shift],
                                                      stats_id=condition)
            if self._act_fn is not None:
                h = self._act_fn(h)
            if 'sa' in pos:
                h = self._sa_layers[str(l)](h, weights=[uncond_weights[p] for p in pos['sa']])
        return h.reshape(batch, -1)

    def _conv_transpose(self, h, weight, bias, l):
        """Transposed conv to exactly the planned size: symmetric padding, then drop an odd leftover row."""
        stride, kernel = self._strides[l - 1], self._kernels[l - 1]
        size_in, size_out = self._sizes[l - 1], self._sizes[l]
        extra = [(i - 1) * s + k - o for i, s, k, o in zip(size_in, stride, kernel, size_out)]
        h = F.conv_transpose2d(h, weight, bias, stride=stride, padding=tuple(e // 2 for e in extra))
        return h[:, :, :size_out[0], :size_out[1]]


def _init_like_torch(weight, bias, transposed):
    """torch's defaults of ``nn.Linear`` / ``nn.ConvTranspose2d`` (whose fan-in is computed on the
    ``[in, out, k, k]`` layout, i.e. ``out * k * k``)."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in = weight[0].numel() if transposed else weight.shape[1]
        bound = 1. / math.sqrt(fan_in)
        nn.init.uniform_(bias, -bound, bound)


class HDeconv(nn.Module, _DeconvTrunkMixin, HyperNetInterface):
    """Deconvolutional (transposed-convolution) full hypernetwork.

    Args:
        target_shapes (list): shapes of the produced tensors.
        hyper_img_shape (tuple): ``(W, H)`` or ``(W, H, C)`` of the generated image (1 channel by default);
            it must hold at least ``num_outputs`` pixels, the rest is cropped.
        uncond_in_size, cond_in_size, verbose, activation_fn, use_bias, no_uncond_weights, no_cond_weights,
            num_cond_embs: as :class:`hnets.mlp_hnet.HMLP`.
        num_layers (int): layers including the first, fully-connected one (``>= 2``).
        num_filters (list, optional): ``num_layers - 1`` channel counts of the hidden images (the first is
            the fully-connected layer's output); default 128 in the last hidden layer, doubled backwards.
        kernel_size (int, tuple or list): kernel of every transposed conv layer, or one per layer.
        sa_units (tuple): indices of layers (0 = fully-connected) followed by a self-attention unit; not the
            output layer.
        use_spectral_norm (bool): divide every weight by its exact largest singular value.
        use_batch_norm (bool): batch norm before every hidden nonlinearity (statistics id ``condition``).
    """

    def __init__(self, target_shapes, hyper_img_shape, uncond_in_size=0, cond_in_size=8, num_layers=5,
                 num_filters=None, kernel_size=5, sa_units=(1, 3), verbose=True, activation_fn=_RELU, use_bias=True,
                 no_uncond_weights=False, no_cond_weights=False, num_cond_embs=1, use_spectral_norm=False,
                 use_batch_norm=False):
        nn.Module.__init__(self)
        HyperNetInterface.__init__(self)
        self._target_shapes = self._check_target_shapes(target_shapes)
        img_shape = self._check_img_shape(hyper_img_shape)
        _check_input_args(uncond_in_size, cond_in_size, num_cond_embs)
        if uncond_in_size + cond_in_size == 0:
            raise ValueError('uncond_in_size, cond_in_size: expected a positive total input size, got 0 and 0')
        if math.prod(img_shape) < self.num_outputs:
            raise ValueError('hyper_img_shape: expected at least num_outputs = %d pixels, got %s = %d'
                             % (self.num_outputs, img_shape, math.prod(img_shape)))
        if cond_in_size == 0:
            num_cond_embs = 0
        self._uncond_in_size = uncond_in_size
        self._cond_in_size = cond_in_size
        self._no_cond_weights = no_cond_weights
        self._num_known_conds = num_cond_embs
        for _ in range(num_cond_embs):
            self._register_param([cond_in_size], 'embedding', 0, conditional=True, internal=not no_cond_weights,
                                 init_fn=nn.init.normal_)
        self._build_deconv_trunk(uncond_in_size + cond_in_size, img_shape, num_layers, num_filters, kernel_size,
                                 sa_units, use_bias, use_batch_norm, use_spectral_norm, activation_fn,
                                 no_uncond_weights)
        self._finish_trunk_positions()
        if verbose:
            print('Deconv hypernetwork producing a %s image. %s' % (img_shape, self))

    def forward(self, uncond_input=None, cond_input=None, cond_id=None, weights=None, distilled_params=None,
                condition=None, ret_format='squeezed'):
        """Produce ``K`` weight sets (``K`` images in one batch); see :meth:`HyperNetInterface.forward`."""
        uncond_input, cond_input, uncond_weights, _, _ = self._preprocess_forward_args(
            uncond_input=uncond_input, cond_input=cond_input, cond_id=cond_id, weights=weights,
            ret_format=ret_format)
        h = _join_inputs(self, uncond_input, cond_input)
        flat = self._deconv_forward(h, uncond_weights, condition)[:, :self.num_outputs]
        return self._flat_to_ret_format(flat, ret_format)

    def get_cond_in_emb(self, cond_id):
        """The held conditional input embedding of condition ``cond_id``."""
        self._parse_cond_ids(cond_id)
        if self._cond_in_size == 0 or self._no_cond_weights:
            raise RuntimeError('get_cond_in_emb: this hypernetwork holds no conditional input embeddings')
        return self.internal_params[self.param_shapes_meta[cond_id]['index']]


def _check_input_args(uncond_in_size, cond_in_size, num_cond_embs):
    for arg, val in (('uncond_in_size', uncond_in_size), ('cond_in_size', cond_in_size),
                     ('num_cond_embs', num_cond_embs)):
        if not _is_int(val) or val < 0:
            raise ValueError('%s: expected an int >= 0, got %r' % (arg, val))


def _join_inputs(hnet, uncond_input, cond_input, middle=None):
    """``[z, (middle), e]`` as one batch, checking each part; ``middle`` (e.g. chunk embeddings) is
    already ``[B, ...]``."""
    parts = []
    for arg, val, size in (('uncond_input', uncond_input, hnet._uncond_in_size), ('middle', middle, None),
                           ('cond_input', cond_input, hnet._cond_in_size)):
        if size is None:
            if val is not None:
                parts.append(val)
            continue
        if size == 0:
            continue
        if val is None:
            raise ValueError('%s: expected a tensor [K, %d]%s, got None'
                             % (arg, size, ' (or cond_id)' if arg == 'cond_input' else ''))
        hnet._check_input(val, size, arg)
        parts.append(val)
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
