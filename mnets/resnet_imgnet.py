r"""ImageNet-style residual networks (He et al., 2015, table 1): ResNet-18/34/50/101/152.

A ``7x7`` stride-2 input convolution and ``3x3`` stride-2 max-pooling (or, with ``cutout_mod``, a ``3x3``
stride-1 convolution and no pooling, the CIFAR variant of DeVries & Taylor, 2017), four groups of residual
blocks with ``f_1 .. f_4`` maps (groups 2-4 start with stride 2), global average pooling and a linear layer.
A block is either two ``3x3`` units or, with ``bottleneck_blocks``, a ``1x1`` (``f``), ``3x3`` (``f``) and
``1x1`` (``4f``) unit. Each unit computes

.. math::
    u(h) = \phi\big(\mathrm{BN}(\mathrm{CM}(K * h + b)) + s\big),

with the shortcut :math:`s` added in the last unit of a block. A block that changes maps or resolution uses
either a zero-padded, subsampled shortcut or (``projection_shortcut``) :math:`\mathrm{BN}(P * h)` with a
``1x1`` stride-``s`` kernel :math:`P`.
"""
import torch.nn.functional as F

from mnets.conv_base import SeparateFcBiasNet, conv_out_size, is_pos_int

__all__ = ['ResNetIN']


class ResNetIN(SeparateFcBiasNet):
    """ImageNet ResNet whose weights may be supplied to :meth:`forward`.

    Args:
        in_shape (tuple): ``(H, W, C)`` of an input image.
        num_classes (int): Number of output units (logits).
        use_bias (bool): Biases in the conv layers (``1x1`` projections never have one).
        use_fc_bias (bool, optional): Bias in the output layer; ``None`` follows ``use_bias``.
        num_feature_maps (tuple): 5 ints: maps of the input conv layer and of the four groups (bottleneck
            blocks output 4 times the group's count).
        blocks_per_group (tuple): 4 ints; ``(2, 2, 2, 2)`` is ResNet-18, ``(3, 4, 6, 3)`` ResNet-34 (or
            ResNet-50 with ``bottleneck_blocks``).
        projection_shortcut (bool): ``1x1`` conv + batchnorm shortcuts where maps or resolution change,
            instead of zero-padding.
        bottleneck_blocks (bool): Three-unit bottleneck blocks.
        cutout_mod (bool): ``3x3`` stride-1 input conv without max-pooling (small images such as CIFAR).
        no_weights (bool): Hold no conv/fc/batchnorm-affine weights; pass them to :meth:`forward`.
        use_batch_norm, bn_track_stats, distill_bn_stats: See :class:`mnets.resnet.ResNet`.
        chw_input_format (bool): Inputs are ``[B, C, H, W]`` instead of ``[B, H*W*C]`` / ``[B, H, W, C]``.
        verbose (bool): Print the number of weights.
        **kwargs: Context-mod options of :class:`mnets.mlp.MLP` and ``context_mod_apply_pixel_wise``;
            context-mod acts after every main conv layer (before batchnorm, or after the ReLU with
            ``context_mod_post_activation``) and on the logits, not on shortcuts.
    """

    def __init__(self, in_shape=(224, 224, 3), num_classes=1000, use_bias=True, use_fc_bias=None,
                 num_feature_maps=(64, 64, 128, 256, 512), blocks_per_group=(2, 2, 2, 2), projection_shortcut=False,
                 bottleneck_blocks=False, cutout_mod=False, no_weights=False, use_batch_norm=True,
                 bn_track_stats=True, distill_bn_stats=False, chw_input_format=False, verbose=True, **kwargs):
        super().__init__(num_classes, verbose)
        for name, value, count in (('num_feature_maps', num_feature_maps, 5),
                                   ('blocks_per_group', blocks_per_group, 4)):
            if not isinstance(value, (list, tuple)) or len(value) != count or \
                    not all(is_pos_int(v) for v in value):
                raise ValueError(f'{name}: expected {count} positive ints, got {value!r}')
        self._store_common_options(in_shape, no_weights, use_batch_norm, bn_track_stats, distill_bn_stats,
                                   kwargs, chw_input_format=chw_input_format)
        if use_fc_bias is None:
            use_fc_bias = use_bias
        self._use_bias = use_bias
        self._use_fc_bias = use_fc_bias
        self._has_bias = use_bias if use_bias == use_fc_bias else False
        self._has_fc_out = True
        self._mask_fc_out = True
        self._has_linear_out = True
        self._filter_sizes = list(num_feature_maps)
        self._num_blocks = list(blocks_per_group)
        self._projection_shortcut = projection_shortcut
        self._bottleneck_blocks = bottleneck_blocks
        self._cutout_mod = cutout_mod
        # (kernel, stride, padding) of the input conv layer.
        self._init_conv = (3, 1, 1) if cutout_mod else (7, 2, 3)

        units = self._plan_units()
        self._units = units
        num_main = len(units)
        group_out = [self._filter_sizes[0]] + [f * (4 if bottleneck_blocks else 1) for f in self._filter_sizes[1:]]
        # A group needs a non-identity shortcut in its first block if it changes maps or resolution.
        self._group_changes = [group_out[g] != group_out[g + 1] or g > 0 for g in range(4)]
        self._group_out = group_out
        if not projection_shortcut and any(b < a for a, b in zip(group_out, group_out[1:])):
            raise ValueError(f'num_feature_maps: without projection_shortcut the output maps per group must not '
                             f'decrease (shortcuts zero-pad new maps), got {group_out}')

        # Layer ids as hypnettorch: main unit l has conv 3l+1, batchnorm 3l+2, context-mod 3l+3 (the output
        # layer is unit num_main); projection g (in order) has conv 3(num_main+1)+1+3g', batchnorm +1.
        out_shapes = [[u['out'], u['height'], u['width']] for u in units] + [[num_classes]]
        if self._use_context_mod:
            self._cm_slots = self._add_unit_context_mod_layers(out_shapes)
        projected = [g for g in range(4) if projection_shortcut and self._group_changes[g]]
        skip_base = 3 * (num_main + 1)
        if use_batch_norm:
            bn_sizes = [u['out'] for u in units] + [group_out[g + 1] for g in projected]
            bn_ids = [3 * l + 2 for l in range(num_main)] + [skip_base + 2 + 3 * i for i in range(len(projected))]
            bn_slots = self._add_batchnorm_layers(bn_sizes, no_weights, bn_ids,
                                                  distill_bn_stats=self._distill_bn_stats,
                                                  bn_track_stats=bn_track_stats)
            self._bn_slots = bn_slots
        self._skip = [None] * 4  # per group: (1x1 weight slot, batchnorm index or None)
        for i, g in enumerate(projected):
            w_slot = self._add_layer([group_out[g + 1], group_out[g], 1, 1], False, skip_base + 1 + 3 * i)[0]
            self._skip[g] = (w_slot, num_main + i if use_batch_norm else None)
        self._conv_slots = [self._add_layer([u['out'], u['in_maps'], u['kernel'], u['kernel']], use_bias, 3 * l + 1)
                            for l, u in enumerate(units)]
        self._fc_slots = self._add_layer([num_classes, group_out[-1]], use_fc_bias, 3 * num_main + 1)
        self._is_properly_setup()

        if verbose:
            cm_count = self._num_context_mod_weights()
            print(f'Creating a "{self}" with {self.num_params} weights'
                  + (f' (including {cm_count} context-mod weights)' if cm_count else '') + '.'
                  + (' The network uses batchnorm.' if use_batch_norm else ''))

    def _plan_units(self):
        """One dict per main conv unit: maps ``in_maps``/``out``, ``kernel``, ``stride``, ``padding``, output
        ``height``/``width``, ``shortcut`` (group index) on the last unit of every block, ``block_start``
        and ``first_block`` (of its group)."""
        height, width, channels = self._in_shape
        kernel, stride, padding = self._init_conv
        height, width = conv_out_size(height, kernel, stride, padding), conv_out_size(width, kernel, stride, padding)
        units = [dict(in_maps=channels, out=self._filter_sizes[0], kernel=kernel, stride=stride, padding=padding,
                      height=height, width=width, shortcut=None)]
        if not self._cutout_mod:
            height, width = conv_out_size(height, 3, 2, 1), conv_out_size(width, 3, 2, 1)
        maps = self._filter_sizes[0]
        for g in range(4):
            base = self._filter_sizes[g + 1]
            if self._bottleneck_blocks:
                block = [(base, 1, 0), (base, 3, 1), (4 * base, 1, 0)]
            else:
                block = [(base, 3, 1), (base, 3, 1)]
            for b in range(self._num_blocks[g]):
                for u, (out, kernel, padding) in enumerate(block):
                    stride = 2 if (g > 0 and b == 0 and u == 0) else 1
                    height = conv_out_size(height, kernel, stride, padding)
                    width = conv_out_size(width, kernel, stride, padding)
                    units.append(dict(in_maps=maps, out=out, kernel=kernel, stride=stride, padding=padding,
                                      height=height, width=width,
                                      shortcut=g if u == len(block) - 1 else None, block_start=u == 0,
                                      first_block=b == 0))
                    maps = out
        return units

    def __str__(self):
        return f'ResNet-{len(self._units) + 1}'

    def forward(self, x, weights=None, distilled_params=None, condition=None):
        """Logits ``[B, num_classes]`` for images ``x``.

        Args:
            x: ``[B, H*W*C]`` or ``[B, H, W, C]``; ``[B, C, H, W]`` with ``chw_input_format``.
            weights, distilled_params, condition: As in :meth:`mnets.resnet.ResNet.forward`.
        """
        h, params, modulate, normalize = self._prepare_forward(x, weights, distilled_params, condition)
        use_cm = self._use_context_mod
        post_cm = self._context_mod_post_activation
        if use_cm and self._context_mod_inputs:
            h = modulate(h)

        block_input = h
        for l, unit in enumerate(self._units):
            if unit.get('block_start'):
                block_input = h
            w_slot, b_slot = self._conv_slots[l]
            h = F.conv2d(h, params[w_slot], None if b_slot is None else params[b_slot], stride=unit['stride'],
                         padding=unit['padding'])
            if use_cm and not post_cm:
                h = modulate(h)
            if self._use_batch_norm:
                h = normalize(h, l)
            if unit['shortcut'] is not None:
                h = h + self._shortcut(block_input, unit['shortcut'], params, normalize,
                                       first_block=unit['first_block'])
            h = F.relu(h)
            if use_cm and post_cm:
                h = modulate(h)
            if l == 0 and not self._cutout_mod:
                h = F.max_pool2d(h, kernel_size=3, stride=2, padding=1)
        h = h.mean(dim=(-2, -1))
        w_slot, b_slot = self._fc_slots
        h = F.linear(h, params[w_slot], None if b_slot is None else params[b_slot])
        if use_cm and not self._no_last_layer_context_mod:
            h = modulate(h)
        return h

    def _shortcut(self, h, group, params, normalize, first_block):
        """Identity, or (first block of a changing group) a projection / subsample-and-pad of ``h``."""
        if not (first_block and self._group_changes[group]):
            return h
        stride = 2 if group > 0 else 1
        if self._skip[group] is not None:
            w_slot, bn_index = self._skip[group]
            h = F.conv2d(h, params[w_slot], stride=stride)
            return h if bn_index is None else normalize(h, bn_index)
        if stride != 1:
            h = h[..., ::stride, ::stride]
        missing = self._group_out[group + 1] - h.shape[-3]
        return F.pad(h, (0, 0, 0, 0, missing // 2, missing - missing // 2))
