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

The module also holds :class:`ConvNetBase`, the plumbing that all convolutional classifiers of this package
share (image-input checks, batchnorm-statistics selection, context-mod application).
"""
import torch.nn.functional as F

from mnets.classifier_interface import Classifier

__all__ = ['ResNet', 'ConvNetBase']


def _is_pos_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def conv_out_size(size, kernel, stride, padding):
    """Spatial size after a convolution: :math:`\\lfloor (s + 2p - k) / \\mathrm{stride} \\rfloor + 1`."""
    return (size + 2 * padding - kernel) // stride + 1


class ConvNetBase(Classifier):
    """Shared machinery of the convolutional classifiers (inputs, options, batchnorm stats, context-mod).

    Subclasses call :meth:`_store_common_options` early in their constructor, register tensors through the
    :class:`mnets.mnet_interface.MainNetInterface` helpers and use :meth:`_prepare_forward` at the start of
    ``forward``.
    """

    # Inputs are flattened ``[B, H*W*C]`` or ``[B, H, W, C]`` (or ``[B, C, H, W]`` with ``chw_input_format``).
    _SHARED_INPUT_NDIMS = (2, 4)

    def _store_common_options(self, in_shape, no_weights, use_batch_norm, bn_track_stats, distill_bn_stats,
                              cm_kwargs, chw_input_format=False):
        """Validate and store the options every convolutional net has.

        Raises:
            ValueError: bad ``in_shape``, unknown keyword arguments, ``distill_bn_stats`` without tracked
                statistics, or ``context_mod_gain_offset`` together with ``context_mod_gain_softplus``.
        """
        in_shape = tuple(in_shape) if isinstance(in_shape, (list, tuple)) else in_shape
        if not isinstance(in_shape, tuple) or len(in_shape) != 3 or not all(_is_pos_int(s) for s in in_shape):
            raise ValueError(f'in_shape: expected 3 positive ints (H, W, C), got {in_shape!r}')
        pixel_wise = cm_kwargs.pop('context_mod_apply_pixel_wise', False)
        unknown = self._parse_context_mod_args(cm_kwargs)
        if unknown:
            raise ValueError(f'kwargs: unknown keyword arguments {unknown}')
        if cm_kwargs['context_mod_gain_offset'] and cm_kwargs['context_mod_gain_softplus']:
            raise ValueError('context_mod_gain_offset: cannot be combined with context_mod_gain_softplus')
        if use_batch_norm and distill_bn_stats and not bn_track_stats:
            raise ValueError('distill_bn_stats: requires bn_track_stats=True (there are no running statistics '
                             'to distill otherwise), got bn_track_stats=False')

        self._in_shape = in_shape
        self._chw_input_format = chw_input_format
        self._no_weights = no_weights
        self._use_batch_norm = use_batch_norm
        self._bn_track_stats = bn_track_stats
        self._distill_bn_stats = distill_bn_stats and use_batch_norm
        self._use_context_mod = cm_kwargs['use_context_mod']
        self._context_mod_inputs = cm_kwargs['context_mod_inputs']
        self._no_last_layer_context_mod = cm_kwargs['no_last_layer_context_mod']
        self._context_mod_no_weights = cm_kwargs['context_mod_no_weights']
        self._context_mod_post_activation = cm_kwargs['context_mod_post_activation']
        self._context_mod_gain_offset = cm_kwargs['context_mod_gain_offset']
        self._context_mod_gain_softplus = cm_kwargs['context_mod_gain_softplus']
        self._context_mod_apply_pixel_wise = pixel_wise
        self._cm_slots = []
        self._bn_slots = []

        cm_external = self._use_context_mod and self._context_mod_no_weights
        self._init_param_bookkeeping(any_internal=not (no_weights and cm_external),
                                     any_external=no_weights or cm_external)

    def _cm_feature_shape(self, out_shape):
        """Gain/shift shape for an activation ``[C, H, W]``: one value per map (``[C, 1, 1]``, broadcast
        over pixels) unless ``context_mod_apply_pixel_wise``; vectors are left unchanged."""
        if len(out_shape) == 3 and not self._context_mod_apply_pixel_wise:
            return [out_shape[0], 1, 1]
        return list(out_shape)

    def _to_nchw(self, x):
        """Check an input batch and return it as ``[B, C, H, W]``."""
        height, width, channels = self._in_shape
        if self._chw_input_format:
            expected = [channels, height, width]
        else:
            expected = [height, width, channels]
        if x.dim() == 2 and x.shape[1] == height * width * channels:
            x = x.reshape(x.shape[0], *expected)
        elif x.dim() != 4 or list(x.shape[1:]) != expected:
            layout = 'C, H, W' if self._chw_input_format else 'H, W, C'
            raise ValueError(f'x: expected [B, {height * width * channels}] or [B, {layout}] = [B, '
                             f'{", ".join(map(str, expected))}], got {list(x.shape)}')
        return x if self._chw_input_format else x.permute(0, 3, 1, 2)

    @staticmethod
    def _parse_condition(condition):
        """The batchnorm ``stats_id`` encoded in ``condition`` (an int or ``{'bn_stats_id': int}``)."""
        if condition is None or (isinstance(condition, int) and not isinstance(condition, bool)):
            return condition
        if isinstance(condition, dict):
            unknown = [k for k in condition if k != 'bn_stats_id']
            if unknown:
                raise ValueError(f"condition: the only allowed key is 'bn_stats_id' (checkpointed context-mod "
                                 f"weights are passed via weights={{'mod_weights': ...}}), got {unknown}")
            return condition.get('bn_stats_id')
        raise TypeError(f'condition: expected None, an int or a dict, got {type(condition).__name__}')

    def _running_stats(self, distilled_params, bn_stats_id):
        """Per batchnorm layer ``(mean, var)``; ``(None, None)`` lets the layer choose (``stats_id`` or
        batch statistics)."""
        num_bn = len(self._bn_slots)
        if distilled_params is not None:
            if not self._distill_bn_stats:
                raise ValueError('distilled_params: only accepted when the net was built with '
                                 'use_batch_norm=True and distill_bn_stats=True')
            self._check_distilled_params(distilled_params)
            return [(distilled_params[2 * i], distilled_params[2 * i + 1]) for i in range(num_bn)]
        if self._use_batch_norm and self._bn_track_stats and bn_stats_id is None:
            # The most recent statistics, also when several tasks' statistics are checkpointed.
            return [tuple(layer.get_stats()) for layer in self._batchnorm_layers]
        return [(None, None)] * num_bn

    def _prepare_forward(self, x, weights, distilled_params, condition):
        """Resolve everything ``forward`` needs.

        Returns:
            tuple: ``(h, params, modulate, normalize)``: the input as ``[B, C, H, W]``, one tensor per
            :attr:`param_shapes` entry, and closures applying the next context-mod layer / batchnorm layer
            ``i`` in forward order.
        """
        params = self._resolve_weights(weights)
        bn_stats_id = self._parse_condition(condition)
        running_stats = self._running_stats(distilled_params, bn_stats_id)
        h = self._to_nchw(x)
        cm_index = 0

        def modulate(act):
            nonlocal cm_index
            slots = self._cm_slots[cm_index]
            act = self._context_mod_layers[cm_index](act, weights=[params[s] for s in slots])
            cm_index += 1
            return act

        def normalize(act, i):
            scale_slot, shift_slot = self._bn_slots[i]
            mean, var = running_stats[i]
            return self._batchnorm_layers[i](act, running_mean=mean, running_var=var, weight=params[scale_slot],
                                             bias=params[shift_slot],
                                             stats_id=bn_stats_id if mean is None else None)

        return h, params, modulate, normalize

    def distillation_targets(self):
        """Current running means and variances of all batchnorm layers (``[mean_1, var_1, ...]``) if
        ``distill_bn_stats``, else ``None``."""
        if self._hyper_shapes_distilled is None:
            return None
        targets = []
        for layer in self._batchnorm_layers:
            targets.extend(layer.get_stats())
        return targets

    def _cm_weight_count(self):
        return self.shapes_to_num_weights([self.param_shapes[s] for slots in self._cm_slots for s in slots])


def check_feature_maps(num_feature_maps, k, n):
    """Validate ``num_feature_maps``, ``k`` and ``n`` and return the widened map counts
    ``[f_0, k f_1, k f_2, k f_3]``."""
    if not _is_pos_int(n):
        raise ValueError(f'n: expected a positive int, got {n!r}')
    if not _is_pos_int(k):
        raise ValueError(f'k: expected a positive int, got {k!r}')
    if not isinstance(num_feature_maps, (list, tuple)) or len(num_feature_maps) != 4 or \
            not all(_is_pos_int(f) for f in num_feature_maps):
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
            cm_shapes = [self._cm_feature_shape(s) for s in out_shapes]
            cm_ids = [3 * l + 3 for l in range(len(out_shapes))]
            if self._context_mod_inputs:
                cm_shapes.insert(0, self._cm_feature_shape([in_shape[2], in_shape[0], in_shape[1]]))
                cm_ids.insert(0, 0)
            if self._no_last_layer_context_mod:
                cm_shapes, cm_ids = cm_shapes[:-1], cm_ids[:-1]
            self._cm_slots = self._add_context_mod_layers(cm_shapes, cm_ids)
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
            cm_count = self._cm_weight_count()
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
