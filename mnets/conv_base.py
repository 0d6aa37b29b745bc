r"""Plumbing shared by the convolutional classifiers of this package.

:class:`ConvNetBase` validates and stores the options every conv net has (input shape, batchnorm,
context-mod), turns an image batch into ``[B, C, H, W]``, picks the batchnorm statistics a forward uses and
applies context-mod / batchnorm layers in forward order. :class:`SeparateFcBiasNet` adds conv layers and an
output layer that decide about biases separately (``use_bias`` / ``use_fc_bias``), as in the wide and the
ImageNet residual networks.
"""
import torch
from torch import nn

from mnets.bn_stats import BatchNormStatsMixin
from mnets.classifier_interface import Classifier
from utils.torch_utils import init_params

__all__ = ['ConvNetBase', 'SeparateFcBiasNet', 'conv_out_size', 'is_pos_int']

def is_pos_int(value):
    """Whether ``value`` is an ``int`` (not a ``bool``) greater than zero."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def conv_out_size(size, kernel, stride, padding):
    """Spatial size after a convolution: :math:`\\lfloor (s + 2p - k) / \\mathrm{stride} \\rfloor + 1`."""
    return (size + 2 * padding - kernel) // stride + 1


class ConvNetBase(BatchNormStatsMixin, Classifier):
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
        if not isinstance(in_shape, tuple) or len(in_shape) != 3 or not all(is_pos_int(s) for s in in_shape):
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
        self._store_context_mod_options(cm_kwargs)
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

    def _add_unit_context_mod_layers(self, out_shapes):
        """Context-mod layers after every unit of a residual net (and, with ``context_mod_inputs``, on the
        input image); returns their slots.

        Args:
            out_shapes (list): ``[C, H, W]`` output of every unit in forward order, then the output layer's
                ``[num_classes]``. Unit ``l`` gets layer id ``3l+3``, the input layer id ``0`` (as hypnettorch).
        """
        cm_shapes = [self._cm_feature_shape(s) for s in out_shapes]
        cm_ids = [3 * l + 3 for l in range(len(out_shapes))]
        if self._context_mod_inputs:
            height, width, channels = self._in_shape
            cm_shapes.insert(0, self._cm_feature_shape([channels, height, width]))
            cm_ids.insert(0, 0)
        if self._no_last_layer_context_mod:
            cm_shapes, cm_ids = cm_shapes[:-1], cm_ids[:-1]
        return self._add_context_mod_layers(cm_shapes, cm_ids)


class SeparateFcBiasNet(ConvNetBase):
    """A convolutional classifier whose conv layers (``use_bias``) and output layer (``use_fc_bias``) decide
    about biases separately; subclasses set ``_use_bias``, ``_use_fc_bias``, ``_no_weights`` and
    ``_fc_slots``."""

    def _add_layer(self, weight_shape, with_bias, layer):
        """Register a weight (and optionally a bias) with torch's default conv/linear init."""
        weight = bias = None
        if not self._no_weights:
            weight = nn.Parameter(torch.empty(*weight_shape))
            bias = nn.Parameter(torch.empty(weight_shape[0])) if with_bias else None
            init_params(weight, bias)
        w_slot = self._register_param(weight_shape, 'weight', layer, weight)
        b_slot = self._register_param([weight_shape[0]], 'bias', layer, bias) if with_bias else None
        return w_slot, b_slot

    @property
    def has_bias(self):
        """Whether all layers (conv and output) have biases.

        Raises:
            RuntimeError: if ``use_bias`` and ``use_fc_bias`` differ (the question has no single answer).
        """
        if self._use_bias != self._use_fc_bias:
            raise RuntimeError(f'has_bias: undefined when use_bias={self._use_bias} and '
                               f'use_fc_bias={self._use_fc_bias} differ')
        return self._has_bias

    def get_output_weight_mask(self, out_inds=None, device=None):
        """Masks of the output layer's weight (and bias, if ``use_fc_bias``); see
        :meth:`mnets.mnet_interface.MainNetInterface.get_output_weight_mask`."""
        masks = [None] * len(self.param_shapes)
        w_slot, b_slot = self._fc_slots
        for slot in (w_slot, b_slot):
            if slot is None:
                continue
            shape = self.param_shapes[slot]
            if out_inds is None:
                masks[slot] = torch.ones(*shape, dtype=torch.bool, device=device)
            else:
                masks[slot] = torch.zeros(*shape, dtype=torch.bool, device=device)
                masks[slot][out_inds] = True
        return masks
