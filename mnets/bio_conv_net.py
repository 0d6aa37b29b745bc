r"""A biologically plausible convolutional classifier: convolutions without weight sharing.

The "locally-connected network" of Bartunov et al. (2018, table 3, CIFAR): three
:class:`utils.local_conv2d_layer.LocalConv2dLayer` layers ``(kernel, maps, stride, padding)`` =
``(5x5, 64, 2, 0)``, ``(5x5, 128, 2, 0)``, ``(3x3, 256, 1, 1)``, then fully-connected layers with 1024 and
``num_classes`` units, :math:`\tanh` between all layers and linear logits:

.. math::
    y = W_5 \tanh(W_4 \,\mathrm{vec}(\tanh(L_3 \tanh(L_2 \tanh(L_1 x))))),

where each :math:`L_i` owns one filter per output pixel (so backpropagation-free learning rules need not
transport weights between locations).
"""
import torch
import torch.nn.functional as F
from torch import nn

from mnets.conv_base import ConvNetBase
from utils.local_conv2d_layer import LocalConv2dLayer

__all__ = ['BioConvNet']

#: ``(out_maps, kernel, stride, padding)`` of the three locally connected layers.
LOCAL_CONV_SPECS = ((64, 5, 2, 0), (128, 5, 2, 0), (256, 3, 1, 1))
#: Hidden fully-connected units.
HIDDEN_UNITS = 1024


class BioConvNet(ConvNetBase):
    """Locally connected network whose weights may be supplied to :meth:`forward`.

    Args:
        in_shape (tuple): ``(H, W, C)`` of an input image (TensorFlow layout); ``32x32`` gives the paper's
            network, other sizes change the number of pixels (and weights) of each layer.
        num_classes (int): Number of output units (logits).
        no_weights (bool): Hold no layer weights; pass them to :meth:`forward`.
        init_weights (list, optional): Initial values of :attr:`internal_params`.
        use_context_mod, context_mod_inputs, no_last_layer_context_mod, context_mod_no_weights,
        context_mod_post_activation, context_mod_gain_offset, context_mod_gain_softplus: As in
            :class:`mnets.mlp.MLP`; context-mod acts after every layer (after :math:`\\tanh` with
            ``context_mod_post_activation``).
        context_mod_apply_pixel_wise (bool): One gain/shift per pixel of a feature map instead of per map.
        verbose (bool): Print the number of weights (hypnettorch always prints).
    """

    def __init__(self, in_shape=(32, 32, 3), num_classes=10, no_weights=False, init_weights=None,
                 use_context_mod=False, context_mod_inputs=False, no_last_layer_context_mod=False,
                 context_mod_no_weights=False, context_mod_post_activation=False, context_mod_gain_offset=False,
                 context_mod_gain_softplus=False, context_mod_apply_pixel_wise=False, verbose=True):
        super().__init__(num_classes, verbose)
        cm_kwargs = dict(use_context_mod=use_context_mod, context_mod_inputs=context_mod_inputs,
                         no_last_layer_context_mod=no_last_layer_context_mod,
                         context_mod_no_weights=context_mod_no_weights,
                         context_mod_post_activation=context_mod_post_activation,
                         context_mod_gain_offset=context_mod_gain_offset,
                         context_mod_gain_softplus=context_mod_gain_softplus,
                         context_mod_apply_pixel_wise=context_mod_apply_pixel_wise)
        self._store_common_options(in_shape, no_weights, False, False, False, cm_kwargs)
        self._has_bias = True
        self._has_fc_out = True
        self._mask_fc_out = True
        self._has_linear_out = True

        # Geometry-only layers: the network registers and holds their weights itself (in param_shapes order).
        height, width, channels = self._in_shape
        self._local_layers = nn.ModuleList()
        out_shapes = []
        for maps, kernel, stride, padding in LOCAL_CONV_SPECS:
            try:
                layer = LocalConv2dLayer(channels, maps, height, width, kernel, stride=stride, padding=padding,
                                         no_weights=True)
            except ValueError as err:
                raise ValueError(f'in_shape: {self._in_shape} is too small for the locally connected layers '
                                 f'({err})') from None
            self._local_layers.append(layer)
            height, width, channels = layer.out_height, layer.out_width, maps
            out_shapes.append([maps, height, width])
        fc_sizes = [height * width * channels, HIDDEN_UNITS, num_classes]
        out_shapes += [[HIDDEN_UNITS], [num_classes]]

        # Layer l (0..4): op id 2l+1, its context-mod id 2l+2; the input context-mod layer has id 0.
        if self._use_context_mod:
            cm_shapes = [self._cm_feature_shape(s) for s in out_shapes]
            cm_ids = [2 * l + 2 for l in range(len(out_shapes))]
            if context_mod_inputs:
                cm_shapes.insert(0, self._cm_feature_shape([in_shape[2], in_shape[0], in_shape[1]]))
                cm_ids.insert(0, 0)
            if no_last_layer_context_mod:
                cm_shapes, cm_ids = cm_shapes[:-1], cm_ids[:-1]
            self._cm_slots = self._add_context_mod_layers(cm_shapes, cm_ids)
        self._layer_slots = []
        for l, layer in enumerate(self._local_layers):
            held = None if no_weights else [nn.Parameter(torch.empty(*s)) for s in layer.param_shapes]
            if held is not None:
                LocalConv2dLayer.init_weights_(*held)
            self._layer_slots.append(tuple(
                self._register_param(s, name, 2 * l + 1, None if held is None else held[j])
                for j, (name, s) in enumerate(zip(('weight', 'bias'), layer.param_shapes))))
        self._layer_slots += self._add_fc_layers(fc_sizes[:-1], fc_sizes[1:], no_weights, [7, 9])
        self._is_properly_setup()
        self._load_init_weights(init_weights)

        if verbose:
            cm_count = self._num_context_mod_weights()
            print(f'Creating bio-plausible convnet with {self.num_params} weights'
                  + (f' (including {cm_count} context-mod weights)' if use_context_mod else '') + '.')

    def forward(self, x, weights=None, distilled_params=None, condition=None, collect_activations=False):
        """Logits ``[B, num_classes]`` for images ``x`` of shape ``[B, H*W*C]`` or ``[B, H, W, C]``.

        Args:
            weights: See :meth:`mnets.mnet_interface.MainNetInterface._resolve_weights`.
            distilled_params: Not supported (no distillation targets).
            condition: Not supported (no batchnorm; pass checkpointed context-mod weights via
                ``weights={'mod_weights': ...}``).
            collect_activations (bool): Also return the pre-activation outputs of all five layers and the
                last hidden layer's output (for credit-assignment rules other than backpropagation).

        Returns:
            ``y``, or ``(y, [a_1, ..., a_5], h_4)`` with ``collect_activations``.
        """
        if condition is not None:
            raise ValueError(f'condition: BioConvNet has no batchnorm statistics to select; pass checkpointed '
                             f"context-mod weights via weights={{'mod_weights': ...}}; got {condition!r}")
        h, params, modulate, _ = self._prepare_forward(x, weights, distilled_params, None)
        use_cm = self._use_context_mod
        post_cm = self._context_mod_post_activation
        activations = []

        def nonlinearity(act):
            if use_cm and not post_cm:
                act = modulate(act)
            act = torch.tanh(act)
            if use_cm and post_cm:
                act = modulate(act)
            return act

        if use_cm and self._context_mod_inputs:
            h = modulate(h)
        for layer, (w_slot, b_slot) in zip(self._local_layers, self._layer_slots):
            h = layer(h, weights=[params[w_slot], params[b_slot]])
            activations.append(h)
            h = nonlinearity(h)
        (w_hidden, b_hidden), (w_out, b_out) = self._layer_slots[3:]
        h = F.linear(h.flatten(start_dim=1), params[w_hidden], params[b_hidden])
        activations.append(h)
        last_hidden = h = nonlinearity(h)
        h = F.linear(h, params[w_out], params[b_out])
        activations.append(h)
        if use_cm and not self._no_last_layer_context_mod:
            h = modulate(h)
        if collect_activations:
            return h, activations, last_hidden
        return h
