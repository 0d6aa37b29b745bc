r"""Wide residual network WRN-d-k-B(3,3) (Zagoruyko & Komodakis, 2016).

The same skeleton as :class:`mnets.resnet.ResNet` (an input ``3x3`` convolution, three groups of ``n`` blocks
of two ``3x3`` convolutions with ``k f_1``, ``k f_2``, ``k f_3`` maps, strides 1, 2, 2), but with
*pre-activation* units and projection shortcuts:

.. math::
    u(h) = K * \phi(\mathrm{BN}(\mathrm{CM}(h))), \qquad
    \mathrm{block}(h) = u_2(\mathrm{dropout}(u_1(h))) + s(h),

where :math:`s(h) = h`, or a ``1x1`` convolution :math:`P * h` (stride of the group, no bias) in the first
block of a group that changes the number of maps or the resolution. A final
:math:`\phi(\mathrm{BN}(\mathrm{CM}(h)))` precedes the global average pooling and the linear output layer.
The depth ``d`` counts all conv layers: :math:`d = 6n + 1 + (\text{number of 1x1 shortcuts})`, so
WRN-28-10 is ``n=4, k=10`` (36.5 M weights on CIFAR).
"""
import torch.nn.functional as F

from mnets.conv_base import SeparateFcBiasNet
from mnets.resnet import check_feature_maps

__all__ = ['WRN', 'SeparateFcBiasNet']


class WRN(SeparateFcBiasNet):
    """Wide ResNet whose weights may be supplied to :meth:`forward`.

    Args:
        in_shape (tuple): ``(H, W, C)`` of an input image.
        num_classes (int): Number of output units (logits).
        n (int): Residual blocks per group.
        k (int): Widening factor of the three groups.
        num_feature_maps (tuple): 4 ints: maps of the input conv layer and (before widening) of the groups.
        use_bias (bool): Biases in the ``3x3`` conv layers (``1x1`` shortcuts never have one).
        use_fc_bias (bool, optional): Bias in the output layer; ``None`` follows ``use_bias``.
        no_weights (bool): Hold no conv/fc/batchnorm-affine weights; pass them to :meth:`forward`.
        use_batch_norm (bool): Batchnorm in every unit (before the ReLU).
        bn_track_stats (bool): See :class:`mnets.resnet.ResNet`.
        distill_bn_stats (bool): See :class:`mnets.resnet.ResNet`.
        dropout_rate (float): Dropout between the two units of every block; ``-1`` disables it.
        chw_input_format (bool): Inputs are ``[B, C, H, W]`` (PyTorch layout) instead of ``[B, H*W*C]`` /
            ``[B, H, W, C]``.
        verbose (bool): Print the number of weights.
        **kwargs: Context-mod options of :class:`mnets.mlp.MLP` and ``context_mod_apply_pixel_wise``.
            Context-mod acts on every unit's input (before batchnorm; after the ReLU with
            ``context_mod_post_activation``), i.e. on the output of the layer before, and on the logits.
    """

    def __init__(self, in_shape=(32, 32, 3), num_classes=10, n=4, k=10, num_feature_maps=(16, 16, 32, 64),
                 use_bias=True, use_fc_bias=None, no_weights=False, use_batch_norm=True, bn_track_stats=True,
                 distill_bn_stats=False, dropout_rate=-1, chw_input_format=False, verbose=True, **kwargs):
        super().__init__(num_classes, verbose)
        maps = check_feature_maps(num_feature_maps, k, n)
        if dropout_rate != -1 and not (isinstance(dropout_rate, (int, float)) and 0 <= dropout_rate <= 1):
            raise ValueError(f'dropout_rate: expected -1 or a value in [0, 1], got {dropout_rate!r}')
        self._store_common_options(in_shape, no_weights, use_batch_norm, bn_track_stats, distill_bn_stats,
                                   kwargs, chw_input_format=chw_input_format)
        if use_fc_bias is None:
            use_fc_bias = use_bias
        self._n = n
        self._k = k
        self._filter_sizes = maps
        self._use_bias = use_bias
        self._use_fc_bias = use_fc_bias
        self._dropout_rate = dropout_rate
        self._has_bias = use_bias if use_bias == use_fc_bias else False
        self._has_fc_out = True
        self._mask_fc_out = True
        self._has_linear_out = True
        self._group_strides = (1, 2, 2)

        # Unit l (0 .. 6n, the last one without conv) and the output layer (l = 6n+1): conv/linear id 3l+1,
        # batchnorm id 3l+2, context-mod id 3l+3; input context-mod id 0; 1x1 shortcuts id -1 (as hypnettorch).
        unit_maps = [maps[0]] + [m for m in maps[1:] for _ in range(2 * n)]
        if self._use_context_mod:
            self._cm_slots = self._add_unit_context_mod_layers(self._layer_out_shapes())
        if use_batch_norm:
            self._bn_slots = self._add_batchnorm_layers(unit_maps, no_weights,
                                                        [3 * l + 2 for l in range(len(unit_maps))],
                                                        distill_bn_stats=self._distill_bn_stats,
                                                        bn_track_stats=bn_track_stats)
        self._skip_slots = []
        for g in range(3):
            needs_projection = maps[g] != maps[g + 1] or self._group_strides[g] != 1
            self._skip_slots.append(self._add_layer([maps[g + 1], maps[g], 1, 1], False, -1)[0]
                                    if needs_projection else None)
        in_maps = [in_shape[2]] + unit_maps[:-1]
        self._conv_slots = [self._add_layer([c_out, c_in, 3, 3], use_bias, 3 * l + 1)
                            for l, (c_in, c_out) in enumerate(zip(in_maps, unit_maps))]
        self._fc_slots = self._add_layer([num_classes, maps[-1]], use_fc_bias, 3 * len(unit_maps) + 1)
        self._is_properly_setup()

        if verbose:
            cm_count = self._num_context_mod_weights()
            print(f'Creating a WideResnet "{self}" with {self.num_params} weights'
                  + (f' (including {cm_count} context-mod weights)' if cm_count else '') + '.'
                  + (' The network uses batchnorm.' if use_batch_norm else '')
                  + (' The network uses dropout.' if dropout_rate != -1 else ''))

    def _layer_out_shapes(self):
        """``[C, H, W]`` after the input conv and every conv of the three groups, then ``[classes]``."""
        height, width = self._in_shape[:2]
        shapes = [[self._filter_sizes[0], height, width]]
        for g, stride in enumerate(self._group_strides):
            height, width = (height - 1) // stride + 1, (width - 1) // stride + 1
            shapes.extend([[self._filter_sizes[g + 1], height, width]] * (2 * self._n))
        return shapes + [[self._num_classes]]

    def __str__(self):
        depth = 6 * self._n + 1 + sum(s is not None for s in self._skip_slots)
        return f'WRN-{depth}-{self._k}-B(3,3)'

    def forward(self, x, weights=None, distilled_params=None, condition=None):
        """Logits ``[B, num_classes]`` for images ``x``.

        Args:
            x: ``[B, H*W*C]`` or ``[B, H, W, C]``; ``[B, C, H, W]`` with ``chw_input_format``.
            weights, distilled_params, condition: As in :meth:`mnets.resnet.ResNet.forward`.
        """
        h, params, modulate, normalize = self._prepare_forward(x, weights, distilled_params, condition)
        use_cm = self._use_context_mod
        post_cm = self._context_mod_post_activation

        def activate(act, l):
            if use_cm and not post_cm:
                act = modulate(act)
            if self._use_batch_norm:
                act = normalize(act, l)
            act = F.relu(act)
            if use_cm and post_cm:
                act = modulate(act)
            return act

        def conv(act, l, stride):
            w_slot, b_slot = self._conv_slots[l]
            return F.conv2d(act, params[w_slot], None if b_slot is None else params[b_slot], stride=stride,
                            padding=1)

        if use_cm and self._context_mod_inputs:
            h = modulate(h)
        h = conv(h, 0, 1)
        l = 0
        for g, group_stride in enumerate(self._group_strides):
            for block in range(self._n):
                stride = group_stride if block == 0 else 1
                shortcut = h
                if block == 0 and self._skip_slots[g] is not None:
                    shortcut = F.conv2d(h, params[self._skip_slots[g]], stride=stride)
                h = conv(activate(h, l), l + 1, stride)
                if self._dropout_rate != -1:
                    h = F.dropout(h, p=self._dropout_rate, training=self.training)
                h = conv(activate(h, l + 1), l + 2, 1) + shortcut
                l += 2
        h = activate(h, l).mean(dim=(-2, -1))
        w_slot, b_slot = self._fc_slots
        h = F.linear(h, params[w_slot], None if b_slot is None else params[b_slot])
        if use_cm and not self._no_last_layer_context_mod:
            h = modulate(h)
        return h
