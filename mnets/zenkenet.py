"""The CIFAR convnet of Zenke et al., "Continual Learning Through Synaptic
Intelligence" (ICML 2017), whose weights may come from a hypernetwork.

Two blocks of ``3x3`` convolutions (``same`` then ``valid`` padding, ReLU),
each followed by ``2x2`` max-pooling and channel dropout, then a 512-unit
ReLU layer with dropout at twice the rate and a linear output layer. Inputs
follow the TensorFlow layout ``[B, 32, 32, 3]`` (or flattened ``[B, 3072]``).
"""
import torch.nn.functional as F

from mnets.classifier_interface import Classifier

#: Weight shapes per architecture for 10 classes (output layer resized to
#: ``num_classes``); conv layers alternate ``same`` (padding 1) and ``valid``.
ARCHITECTURES = {
    'cifar': ((32, 3, 3, 3), (32,), (32, 32, 3, 3), (32,), (64, 32, 3, 3), (64,), (64, 64, 3, 3), (64,),
              (512, 2304), (512,), (10, 512), (10,)),
}
_CONV_PADDINGS = (1, 0, 1, 0)


class ZenkeNet(Classifier):
    """Four convolutional and two fully-connected layers.

    Args:
        in_shape (tuple): ``(32, 32, 3)``.
        num_classes (int): Number of output units.
        verbose (bool): Print the number of weights.
        arch (str): One of :data:`ARCHITECTURES` (``'cifar'``).
        no_weights (bool): Hold no weights; pass them to :meth:`forward`.
        init_weights (list, optional): Initial values of :attr:`internal_params`.
        dropout_rate (float): Channel dropout after each conv block and
            ``2 * dropout_rate`` after the hidden fc layer; at most 0.5;
            ``-1`` disables dropout.
    """

    _SHARED_INPUT_NDIMS = (2, 4)

    def __init__(self, in_shape=(32, 32, 3), num_classes=10, verbose=True, arch='cifar', no_weights=False,
                 init_weights=None, dropout_rate=0.25):
        super().__init__(num_classes, verbose)
        if arch not in ARCHITECTURES:
            raise ValueError(f'arch: expected one of {sorted(ARCHITECTURES)}, got {arch!r}')
        if tuple(in_shape) != (32, 32, 3):
            raise ValueError(f'in_shape: expected (32, 32, 3), got {tuple(in_shape)}')
        if dropout_rate != -1 and not 0.0 <= dropout_rate <= 0.5:
            raise ValueError(f'dropout_rate: expected -1 or a value in [0, 0.5], got {dropout_rate!r}')
        shapes = [list(s) for s in ARCHITECTURES[arch]]
        shapes[-2][0] = num_classes
        shapes[-1][0] = num_classes

        self._in_shape = tuple(in_shape)
        self._no_weights = no_weights
        self._dropout_rate = dropout_rate
        self._has_bias = True
        self._has_fc_out = True
        self._mask_fc_out = True
        self._has_linear_out = True

        self._init_param_bookkeeping(any_internal=not no_weights, any_external=no_weights)
        self._layer_slots = [self._add_weight_and_bias(shapes[2 * i], no_weights, i)
                             for i in range(len(shapes) // 2)]
        self._is_properly_setup()
        self._load_init_weights(init_weights)
        if verbose:
            print(f'Creating a ZenkeNet with {self.num_params} weights'
                  + (', that uses dropout.' if dropout_rate != -1 else '.'))

    def forward(self, x, weights=None, distilled_params=None, condition=None):
        """Logits ``[B, num_classes]`` for images ``x`` of shape ``[B, 32, 32, 3]``
        or ``[B, 3072]``.

        Args:
            weights: See :meth:`mnets.mnet_interface.MainNetInterface._resolve_weights`.
            distilled_params: Not supported (no distillation targets).
            condition: Not supported.
        """
        if distilled_params is not None:
            self._check_distilled_params(distilled_params)
        if condition is not None:
            raise ValueError(f'condition: ZenkeNet has no conditional state, got {condition!r}')
        params = self._resolve_weights(weights)
        layers = [(params[w], params[b]) for w, b in self._layer_slots]
        dropout = self._dropout_rate != -1 and self.training

        h = x.reshape(-1, *self._in_shape).permute(0, 3, 1, 2)
        for i, ((kernel, bias), padding) in enumerate(zip(layers[:4], _CONV_PADDINGS)):
            h = F.relu(F.conv2d(h, kernel, bias, padding=padding))
            if i % 2 == 1:
                h = F.max_pool2d(h, 2)
                if dropout:
                    h = F.dropout2d(h, self._dropout_rate, training=True)
        (w_hidden, b_hidden), (w_out, b_out) = layers[4:]
        h = F.relu(F.linear(h.flatten(start_dim=1), w_hidden, b_hidden))
        if dropout:
            h = F.dropout(h, 2 * self._dropout_rate, training=True)
        return F.linear(h, w_out, b_out)

    def distillation_targets(self):
        """ZenkeNet has no distillation targets: returns ``None``."""
        return None
