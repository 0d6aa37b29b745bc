"""LeNet-style convolutional classifier (LeCun et al., 1998, modernised).

Two ``5x5`` valid convolutions, each followed by ``2x2`` max-pooling and ReLU,
then two fully-connected layers:

.. math::
    y = W_4\\, \\phi(W_3\\, \\mathrm{vec}(\\phi(\\mathrm{pool}(K_2 * \\phi(\\mathrm{pool}(K_1 * x)))))

Architectures (number of weights for 10 classes):

- ``'mnist_small'``: 10 and 20 kernels, 50 hidden units (21,840 weights);
- ``'mnist_large'``: 20 and 50 kernels, 500 hidden units (431,080 weights);
- ``'cifar'``: 192 and 192 kernels, 1000 hidden units (5,747,394 weights),
  the variant of Gal et al. (2015) and Louizos et al. (2017).

Inputs follow the TensorFlow layout ``[B, H, W, C]`` (or flattened ``[B, H*W*C]``).
"""
import torch.nn.functional as F

from mnets.classifier_interface import Classifier

#: Weight shapes (conv1 kernel and bias, conv2, fc1, output) per architecture
#: for 10 classes; the output layer is resized to ``num_classes``.
ARCHITECTURES = {
    'mnist_small': ((10, 1, 5, 5), (10,), (20, 10, 5, 5), (20,), (50, 320), (50,), (10, 50), (10,)),
    'mnist_large': ((20, 1, 5, 5), (20,), (50, 20, 5, 5), (50,), (500, 800), (500,), (10, 500), (10,)),
    'cifar': ((192, 3, 5, 5), (192,), (192, 192, 5, 5), (192,), (1000, 4800), (1000,), (10, 1000), (10,)),
}


class LeNet(Classifier):
    """LeNet whose weights (and optional context-mod gains/shifts) may be
    supplied to :meth:`forward`.

    Args:
        in_shape (tuple): ``(H, W, C)`` of an input image: ``28x28`` for the MNIST
            architectures, ``32x32`` for ``'cifar'``; ``C`` must match the
            architecture (1 or 3).
        num_classes (int): Number of output units.
        verbose (bool): Print the number of weights.
        arch (str): One of :data:`ARCHITECTURES`.
        no_weights (bool): Hold no conv/fc weights; pass them to :meth:`forward`.
        init_weights (list, optional): Initial values of :attr:`internal_params`.
        dropout_rate (float): Channel dropout after both convolutions (before
            pooling) and dropout after the hidden fc layer; ``-1`` disables it.
        **kwargs: Context-mod options of :class:`mnets.mlp.MLP`
            (``use_context_mod``, ``context_mod_inputs``, ...) and
            ``context_mod_apply_pixel_wise`` (one gain per pixel instead of per
            channel for conv feature maps).
    """

    _SHARED_INPUT_NDIMS = (2, 4)

    def __init__(self, in_shape=(28, 28, 1), num_classes=10, verbose=True, arch='mnist_large',
                 no_weights=False, init_weights=None, dropout_rate=-1, **kwargs):
        super().__init__(num_classes, verbose)
        if arch not in ARCHITECTURES:
            raise ValueError(f'arch: expected one of {sorted(ARCHITECTURES)}, got {arch!r}')
        shapes = [list(s) for s in ARCHITECTURES[arch]]
        shapes[-2][0] = num_classes
        shapes[-1][0] = num_classes
        side = 28 if arch.startswith('mnist') else 32
        in_shape = tuple(in_shape)
        if len(in_shape) != 3 or in_shape[:2] != (side, side) or in_shape[2] != shapes[0][1]:
            raise ValueError(f'in_shape: arch {arch!r} expects ({side}, {side}, {shapes[0][1]}), '
                             f'got {in_shape}')
        if dropout_rate != -1 and not 0.0 <= dropout_rate <= 1.0:
            raise ValueError(f'dropout_rate: expected -1 or a value in [0, 1], got {dropout_rate!r}')
        pixel_wise = kwargs.pop('context_mod_apply_pixel_wise', False)
        unknown = self._parse_context_mod_args(kwargs)
        if unknown:
            raise ValueError(f'kwargs: unknown keyword arguments {unknown}')
        if kwargs['context_mod_gain_offset'] and kwargs['context_mod_gain_softplus']:
            raise ValueError('context_mod_gain_offset: cannot be combined with context_mod_gain_softplus')

        self._in_shape = in_shape
        self._arch = arch
        self._no_weights = no_weights
        self._dropout_rate = dropout_rate
        self._store_context_mod_options(kwargs)
        self._context_mod_apply_pixel_wise = pixel_wise

        self._has_bias = True
        self._has_fc_out = True
        self._mask_fc_out = True
        self._has_linear_out = True

        cm_external = self._use_context_mod and self._context_mod_no_weights
        self._init_param_bookkeeping(any_internal=not (no_weights and self._context_mod_no_weights),
                                     any_external=no_weights or cm_external)
        self._cm_slots = []
        if self._use_context_mod:
            cm_shapes, cm_layer_ids = self._context_mod_plan(shapes)
            self._cm_slots = self._add_context_mod_layers(cm_shapes, cm_layer_ids)
        # Layer ids: 0 input CM, then (op, its CM) pairs 1/2, 3/4, 5/6, 7/8.
        self._layer_slots = [self._add_weight_and_bias(shapes[2 * i], no_weights, 2 * i + 1)
                             for i in range(4)]
        self._is_properly_setup()
        self._load_init_weights(init_weights)

        if verbose:
            cm_count = self._num_context_mod_weights()
            print(f'Creating a LeNet with {self.num_params} weights'
                  + (f' (including {cm_count} weights associated with context modulation)'
                     if self._use_context_mod else '') + '.'
                  + (' The network uses dropout.' if dropout_rate != -1 else ''))

    def _context_mod_plan(self, shapes):
        """Shapes and layer ids of the context-mod layers.

        A conv feature map ``[C, H, W]`` is modulated per channel (``[C, 1, 1]``,
        broadcast over pixels) unless ``context_mod_apply_pixel_wise``.
        """
        height, width, channels = self._in_shape
        maps = []
        for kernel in (shapes[0], shapes[2]):
            height, width = (height - kernel[2] + 1) // 2, (width - kernel[3] + 1) // 2
            maps.append([kernel[0], height, width])
        cm_shapes = maps + [[shapes[4][0]], [shapes[6][0]]]
        cm_ids = [2, 4, 6, 8]
        if self._context_mod_inputs:
            cm_shapes.insert(0, [channels, self._in_shape[0], self._in_shape[1]])
            cm_ids.insert(0, 0)
        if self._no_last_layer_context_mod:
            cm_shapes, cm_ids = cm_shapes[:-1], cm_ids[:-1]
        if not self._context_mod_apply_pixel_wise:
            cm_shapes = [[s[0], 1, 1] if len(s) == 3 else s for s in cm_shapes]
        return cm_shapes, cm_ids

    def forward(self, x, weights=None, distilled_params=None, condition=None):
        """Logits ``[B, num_classes]`` for images ``x`` of shape ``[B, H, W, C]``
        or ``[B, H*W*C]``.

        Args:
            weights: See :meth:`mnets.mnet_interface.MainNetInterface._resolve_weights`.
            distilled_params: Not supported (LeNet has no distillation targets).
            condition: Not supported.
        """
        if distilled_params is not None:
            self._check_distilled_params(distilled_params)
        if condition is not None:
            raise ValueError(f'condition: LeNet has no conditional state, got {condition!r}')
        params = self._resolve_weights(weights)
        cm_index = 0

        def modulate(h):
            nonlocal cm_index
            slots = self._cm_slots[cm_index]
            h = self._context_mod_layers[cm_index](h, weights=[params[s] for s in slots])
            cm_index += 1
            return h

        def cm_and_relu(h):
            # Order: [CM] -> ReLU -> [CM with context_mod_post_activation].
            if self._use_context_mod and not self._context_mod_post_activation:
                h = modulate(h)
            h = F.relu(h)
            if self._use_context_mod and self._context_mod_post_activation:
                h = modulate(h)
            return h

        (k1, c1), (k2, c2), (w3, b3), (w4, b4) = [(params[w], params[b]) for w, b in self._layer_slots]
        dropout = self._dropout_rate != -1 and self.training
        h = x.reshape(-1, *self._in_shape).permute(0, 3, 1, 2)
        if self._use_context_mod and self._context_mod_inputs:
            h = modulate(h)
        for kernel, bias in ((k1, c1), (k2, c2)):
            h = F.conv2d(h, kernel, bias)
            if dropout:
                h = F.dropout2d(h, self._dropout_rate, training=True)
            h = cm_and_relu(F.max_pool2d(h, 2))
        h = cm_and_relu(F.linear(h.flatten(start_dim=1), w3, b3))
        if dropout:
            h = F.dropout(h, self._dropout_rate, training=True)
        h = F.linear(h, w4, b4)
        if self._use_context_mod and not self._no_last_layer_context_mod:
            h = modulate(h)
        return h

    def distillation_targets(self):
        """LeNet has no distillation targets: returns ``None``."""
        return None

