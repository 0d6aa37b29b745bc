r"""CIFAR-style residual network (He et al., 2015, section 4.2) with :math:`6n+2` layers.

A ``3x3`` input convolution with ``f_0`` maps is followed by three groups of ``n`` residual blocks of two
``3x3`` convolutions each (``k f_1``, ``k f_2``, ``k f_3`` maps; the second and third groups halve the
resolution with a stride-2 first convolution), global average pooling and a linear output layer. Each
convolution unit computes

.. math::
    u(h) = \phi\big(\mathrm{BN}(\mathrm{CM}(K * h + b)) + s\big),

where the shortcut :math:`s` is added only in the second unit of a block: the block input itself, or (when
the block changes the number of maps or the resolution) its spatially subsampled copy zero-padded along the
channel dim ("option A" of the paper, which adds no weights). ResNet-32 (``n=5``, maps ``(16, 16, 32, 64)``)
has 0.46 M weights on CIFAR.
"""
import torch.nn.functional as F

from mnets.conv_base import ConvNetBase, conv_out_size, is_pos_int

__all__ = ['ResNet', 'ConvNetBase']


def check_feature_maps(num_feature_maps, k, n):
    """Validate ``num_feature_maps``, ``k`` and ``n`` and return the widened map counts
    ``[f_0, k f_1, k f_2, k f_3]``."""
    if not is_pos_int(n):
        raise ValueError(f'n: expected a positive int, got {n!r}')
    if not is_pos_int(k):
        raise ValueError(f'k: expected a positive int, got {k!r}')
    if not isinstance(num_feature_maps, (list, tuple)) or len(num_feature_maps) != 4 or \
            not all(is_pos_int(f) for f in num_feature_maps):
        raise ValueError(f'num_feature_maps: expected 4 positive ints, got {num_feature_maps!r}')
    return [num_feature_maps[0]] + [k * f for f in num_feature_maps[1:]]


class ResNet(ConvNetBase):
    """CIFAR ResNet with :math:`6n+2` layers whose weights may be supplied to :meth:`forward`.

    Args:
        in_shape (tuple): ``(H, W, C)`` of an input image (TensorFlow layout).
        num_classes (int): Number of output units (logits).
        use_bias (bool): Biases in all conv layers and the output layer.
        num_feature_maps (tuple): 4 ints: maps of the input conv layer and of the three groups; the group
            counts are multiplied by ``k`` and must not decrease (shortcuts zero-pad new maps).
        verbose (bool): Print the number of weights.
        n (int): Residual blocks per group (ResNet-20/32/44/56/110: 3/5/7/9/18).
        k (int): Widening factor of the three groups.
        no_weights (bool): Hold no conv/fc/batchnorm-affine weights; pass them to :meth:`forward`.
        init_weights (list, optional): Initial values of :attr:`internal_params`.
        use_batch_norm (bool): Batchnorm after every conv layer (before the shortcut and ReLU).
        bn_track_stats (bool): Track running statistics (used in eval mode; select stored sets via
            ``condition``). Without it batch statistics are used in both modes.
        distill_bn_stats (bool): Expose the running statistics as :attr:`hyper_shapes_distilled`
            (requires ``bn_track_stats``).
        context_mod_apply_pixel_wise (bool): One gain/shift per pixel of a feature map instead of per map.
        **kwargs: Context-mod options of :class:`mnets.mlp.MLP`. Context-mod acts after every conv layer
            (before batchnorm; after the ReLU with ``context_mod_post_activation``) and on the logits.
    """

    def __init__(self, in_shape=(32, 32, 3), num_classes=10, use_bias=True, num_feature_maps=(16, 16, 32, 64),
                 verbose=True, n=5, k=1, no_weights=False, init_weights=None, use_batch_norm=True,
                 bn_track_stats=True, distill_bn_stats=False, context_mod_apply_pixel_wise=False, **kwargs):
        super().__init__(num_classes, verbose)
        maps = check_feature_maps(num_feature_maps, k, n)
        if any(later < earlier for earlier, later in zip(maps, maps[1:])):
            raise ValueError(f'num_feature_maps: the (widened) map counts must not decrease since shortcuts '
                             f'zero-pad new maps, got {maps}')
        kwargs['context_mod_apply_pixel_wise'] = context_mod_apply_pixel_wise
        self._store_common_options(in_shape, no_weights, use_batch_norm, bn_track_stats, distill_bn_stats,
                                   kwargs)
        self._n = n
        self._k = k
        self._filter_sizes = maps
        self._has_bias = use_bias
        self._has_fc_out = True
        self._mask_fc_out = True
        self._has_linear_out = True

        # Conv unit l (0 .. 6n) and the output layer (l = 6n+1) get layer ids 3l+1 (conv/linear), 3l+2
        # (batchnorm) and 3l+3 (context-mod); the input context-mod layer gets id 0.
        unit_maps = [maps[0]] + [m for m in maps[1:] for _ in range(2 * n)]
        out_shapes = self._unit_out_shapes(unit_maps)
        if self._use_context_mod:
            self._cm_slots = self._add_unit_context_mod_layers(out_shapes)
        if use_batch_norm:
            self._bn_slots = self._add_batchnorm_layers(unit_maps, no_weights,
                                                        [3 * l + 2 for l in range(len(unit_maps))],
                                                        distill_bn_stats=self._distill_bn_stats,
                                                        bn_track_stats=bn_track_stats)
        in_maps = [in_shape[2]] + unit_maps[:-1]
        self._conv_slots = [self._add_weight_and_bias([c_out, c_in, 3, 3], no_weights, 3 * l + 1)
                            for l, (c_in, c_out) in enumerate(zip(in_maps, unit_maps))]
        self._fc_slots = self._add_weight_and_bias([num_classes, maps[-1]], no_weights, 3 * len(unit_maps) + 1)
        self._is_properly_setup()
        self._load_init_weights(init_weights)

        if verbose:
            cm_count = self._num_context_mod_weights()
            print(f'Creating a ResNet with {6 * n + 2} layers and {self.num_params} weights'
                  + (f' (including {cm_count} context-mod weights)' if cm_count else '') + '.'
                  + (' The network uses batchnorm.' if use_batch_norm else ''))

    def _unit_out_shapes(self, unit_maps):
        """``[C, H, W]`` after each conv unit (stride 2 at the start of groups 2 and 3), then ``[classes]``."""
        height, width = self._in_shape[:2]
        shapes = []
        for l, maps in enumerate(unit_maps):
            if self._unit_stride(l) == 2:
                height, width = conv_out_size(height, 3, 2, 1), conv_out_size(width, 3, 2, 1)
            shapes.append([maps, height, width])
        return shapes + [[self._num_classes]]

    def _unit_stride(self, l):
        return 2 if l in (2 * self._n + 1, 4 * self._n + 1) else 1

    def forward(self, x, weights=None, distilled_params=None, condition=None):
        """Logits ``[B, num_classes]`` for images ``x``.

        Args:
            x: ``[B, H*W*C]`` (flattened TensorFlow layout) or ``[B, H, W, C]``.
            weights: See :meth:`mnets.mnet_interface.MainNetInterface._resolve_weights`.
            distilled_params (list, optional): Batchnorm running statistics ``[mean_1, var_1, ...]`` to use
                instead of the stored ones (needs ``distill_bn_stats``).
            condition (int or dict, optional): Batchnorm statistics set (``stats_id``), as an int or
                ``{'bn_stats_id': int}``.
        """
        h, params, modulate, normalize = self._prepare_forward(x, weights, distilled_params, condition)
        use_cm = self._use_context_mod
        post_cm = self._context_mod_post_activation

        def conv_unit(act, l, shortcut=None):
            w_slot, b_slot = self._conv_slots[l]
            act = F.conv2d(act, params[w_slot], None if b_slot is None else params[b_slot],
                           stride=self._unit_stride(l), padding=1)
            if use_cm and not post_cm:
                act = modulate(act)
            if self._use_batch_norm:
                act = normalize(act, l)
            if shortcut is not None:
                act = act + shortcut
            act = F.relu(act)
            if use_cm and post_cm:
                act = modulate(act)
            return act

        if use_cm and self._context_mod_inputs:
            h = modulate(h)
        h = conv_unit(h, 0)
        l = 1
        for _ in range(3 * self._n):
            shortcut = h
            stride = self._unit_stride(l)
            missing_maps = self._filter_sizes_of_unit(l) - h.shape[-3]
            if stride != 1:
                shortcut = shortcut[..., ::stride, ::stride]
            if missing_maps:
                shortcut = F.pad(shortcut, (0, 0, 0, 0, missing_maps // 2, missing_maps - missing_maps // 2))
            h = conv_unit(h, l)
            h = conv_unit(h, l + 1, shortcut)
            l += 2
        h = h.mean(dim=(-2, -1))
        w_slot, b_slot = self._fc_slots
        h = F.linear(h, params[w_slot], None if b_slot is None else params[b_slot])
        if use_cm and not self._no_last_layer_context_mod:
            h = modulate(h)
        return h

    def _filter_sizes_of_unit(self, l):
        return self._filter_sizes[0] if l == 0 else self._filter_sizes[1 + (l - 1) // (2 * self._n)]
