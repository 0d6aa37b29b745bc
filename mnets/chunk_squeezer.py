r"""An MLP for very high-dimensional inputs (e.g. hypernetwork outputs) that first squeezes them chunk-wise.

The input :math:`x \in \mathbb{R}^{n_\text{in}}` is zero-padded to :math:`C d` entries and cut into
:math:`C = \lceil n_\text{in} / d \rceil` chunks :math:`x^{(c)} \in \mathbb{R}^d` (``d = inp_chunk_dim``).
One shared *reducer* MLP :math:`r` squeezes every chunk to ``out_chunk_dim`` entries; it knows which chunk it
sees through a learned chunk embedding :math:`e_c \in \mathbb{R}^{\text{cemb\_size}}`. The squeezed chunks
are concatenated and fed to the actual *network* MLP :math:`g`:

.. math::
    y = g\big(\big[\, r(x^{(1)}, e_1),\; \dots,\; r(x^{(C)}, e_C) \,\big]\big).

By default :math:`r(x^{(c)}, e_c) = \mathrm{MLP}([x^{(c)}, e_c])`. With ``dynamic_biases`` the embedding
instead enters as an extra bias :math:`V_l e_c` (:math:`V_l` without bias) added to the pre-activation of the
selected reducer layers :math:`l`. All chunks of all samples go through the reducer as one batch of
:math:`C \cdot B` rows, so the number of chunks costs no Python loop.

Order of :attr:`param_shapes`: chunk embeddings ``[C, cemb_size]`` (meta name ``'embedding'``), the
dynamic-bias matrices :math:`V_l` ``[size_l, cemb_size]`` in layer order, the reducer's weights, then the
network's weights (each in :class:`mnets.mlp.MLP` order).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from mnets.mlp import DEFAULT_ACTIVATION, MLP
from mnets.mnet_interface import MainNetInterface
from utils.torch_utils import init_params


def _positive_int(value, arg):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f'{arg}: expected a positive int, got {value!r}')


class ChunkSqueezer(nn.Module, MainNetInterface):
    """MLP whose input is first reduced chunk by chunk (see the module docstring).

    Args:
        n_in (int): Input size.
        n_out (int): Output size.
        inp_chunk_dim (int): Chunk size :math:`d`; the last chunk is zero-padded.
        out_chunk_dim (int): Size of a squeezed chunk (reducer output).
        cemb_size (int): Size of the chunk embeddings.
        cemb_init_std (float): Standard deviation of the normal init of the chunk embeddings.
        red_layers (list or tuple): Hidden layer sizes of the reducer.
        net_layers (list or tuple): Hidden layer sizes of the network.
        activation_fn: Hidden nonlinearity of both MLPs (see :class:`mnets.mlp.MLP`).
        use_bias (bool): Whether the MLPs' layers have biases.
        dynamic_biases (list, optional): Reducer layers (0 = first hidden layer, ``len(red_layers)`` = its
            output) that receive :math:`V_l e_c` as an extra bias; then the embedding is not an input.
        no_weights (bool): Hold no weights; they must be passed to :meth:`forward`.
        init_weights (list, optional): Initial values, one tensor per entry of :attr:`internal_params`.
        dropout_rate, use_spectral_norm, use_batch_norm, bn_track_stats, distill_bn_stats: Passed to both
            MLPs (see :class:`mnets.mlp.MLP`). Batchnorm statistics of the reducer are taken over all
            chunks of all samples.
        verbose (bool): Print the number of weights.
    """

    _SHARED_INPUT_NDIMS = (2,)

    def __init__(self, n_in, n_out=1, inp_chunk_dim=100, out_chunk_dim=10, cemb_size=8, cemb_init_std=1.,
                 red_layers=(10, 10), net_layers=(10, 10), activation_fn=DEFAULT_ACTIVATION, use_bias=True,
                 dynamic_biases=None, no_weights=False, init_weights=None, dropout_rate=-1,
                 use_spectral_norm=False, use_batch_norm=False, bn_track_stats=True, distill_bn_stats=False,
                 verbose=True):
        nn.Module.__init__(self)
        MainNetInterface.__init__(self)
        for value, arg in ((n_in, 'n_in'), (n_out, 'n_out'), (inp_chunk_dim, 'inp_chunk_dim'),
                           (out_chunk_dim, 'out_chunk_dim'), (cemb_size, 'cemb_size')):
            _positive_int(value, arg)
        if not cemb_init_std >= 0:
            raise ValueError(f'cemb_init_std: expected a non-negative number, got {cemb_init_std!r}')
        red_layers = list(red_layers)
        red_sizes = red_layers + [out_chunk_dim]
        if dynamic_biases is not None:
            dynamic_biases = sorted(set(dynamic_biases))
            bad = [i for i in dynamic_biases if isinstance(i, bool) or not isinstance(i, int)
                   or not 0 <= i <= len(red_layers)]
            if bad:
                raise ValueError(f'dynamic_biases: expected reducer layer indices in [0, {len(red_layers)}], '
                                 f'got {bad}')

        self._n_in = n_in
        self._inp_chunk_dim = inp_chunk_dim
        self._out_chunk_dim = out_chunk_dim
        self._num_cembs = math.ceil(n_in / inp_chunk_dim)
        self._pad = self._num_cembs * inp_chunk_dim - n_in
        self._dynamic_biases = dynamic_biases
        mlp_options = dict(activation_fn=activation_fn, use_bias=use_bias, no_weights=no_weights,
                           dropout_rate=dropout_rate, use_spectral_norm=use_spectral_norm,
                           use_batch_norm=use_batch_norm, bn_track_stats=bn_track_stats,
                           distill_bn_stats=distill_bn_stats, verbose=False)
        # Dynamic biases are realised as the reducer's context-mod shifts (gains fixed to one), supplied
        # per row, i.e. per (chunk, sample).
        self._reducer = MLP(n_in=inp_chunk_dim + (cemb_size if dynamic_biases is None else 0),
                            n_out=out_chunk_dim, hidden_layers=red_layers,
                            use_context_mod=dynamic_biases is not None, context_mod_no_weights=True,
                            **mlp_options)
        self._network = MLP(n_in=out_chunk_dim * self._num_cembs, n_out=n_out, hidden_layers=net_layers,
                            **mlp_options)

        self._has_bias = use_bias
        self._has_fc_out = True
        self._mask_fc_out = True
        self._has_linear_out = True
        self._init_param_bookkeeping(any_internal=not no_weights, any_external=no_weights)

        cembs = None
        if not no_weights:
            cembs = nn.Parameter(torch.empty(self._num_cembs, cemb_size))
            nn.init.normal_(cembs, mean=0.0, std=cemb_init_std)
        self._register_param([self._num_cembs, cemb_size], 'embedding', 0, cembs)
        self._dyn_bias_slots = {}
        for layer in dynamic_biases or []:
            weight = None
            if not no_weights:
                weight = nn.Parameter(torch.empty(red_sizes[layer], cemb_size))
                init_params(weight)
            self._dyn_bias_slots[layer] = self._register_param([red_sizes[layer], cemb_size], 'weight',
                                                               layer + 1, weight)
        self._red_slots = self._adopt(self._reducer, layer_offset=1, skip_cm=True)
        self._net_slots = self._adopt(self._network, layer_offset=len(red_sizes) + 2, skip_cm=False)
        self._batchnorm_layers = None
        if use_batch_norm:
            self._batchnorm_layers = nn.ModuleList(list(self._reducer.batchnorm_layers or [])
                                                   + list(self._network.batchnorm_layers or []))
        distilled = (self._reducer.hyper_shapes_distilled or []) + (self._network.hyper_shapes_distilled or [])
        self._hyper_shapes_distilled = distilled or None
        self._is_properly_setup()
        self._load_init_weights(init_weights)
        if verbose:
            print(f'Constructed a ChunkSqueezer ({self._num_cembs} chunks of {inp_chunk_dim} inputs) with '
                  f'{self.num_params} weights.')

    def _adopt(self, mlp, layer_offset, skip_cm):
        """Register the (non context-mod) weights of a sub-MLP; returns their slots here, in its order."""
        slots = []
        internal = mlp.internal_params
        for shape, meta in zip(mlp.param_shapes, mlp.param_shapes_meta):
            if skip_cm and meta['name'] in ('cm_scale', 'cm_shift'):
                continue
            param = None if meta['index'] == -1 else internal[meta['index']]
            slots.append(self._register_param(shape, meta['name'], meta['layer'] + layer_offset, param))
        return slots

    @property
    def num_chunks(self):
        """Number of input chunks :math:`C`.

        :type: int
        """
        return self._num_cembs

    def distillation_targets(self):
        """Batchnorm statistics of the reducer, then of the network (``None`` without ``distill_bn_stats``)."""
        if self._hyper_shapes_distilled is None:
            return None
        return (self._reducer.distillation_targets() or []) + (self._network.distillation_targets() or [])

    def forward(self, x, weights=None, distilled_params=None, condition=None):
        """Compute the output for inputs ``x`` of shape ``[B, n_in]``.

        Args:
            x: ``[B, n_in]``.
            weights: ``None``, a list in :attr:`param_shapes` order (or :attr:`hyper_shapes_learned` order),
                or a dict with ``'internal_weights'``.
            distilled_params (list, optional): Batchnorm statistics of the reducer, then of the network.
            condition (optional): Passed to both MLPs (batchnorm ``stats_id``).

        Returns:
            ``[B, n_out]``.
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self._n_in:
            got = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f'x: expected shape [B, {self._n_in}], got {got}')
        params = self._resolve_weights(weights)
        red_distilled = net_distilled = None
        if distilled_params is not None:
            self._check_distilled_params(distilled_params)
            num_red = len(self._reducer.hyper_shapes_distilled or [])
            red_distilled, net_distilled = distilled_params[:num_red], distilled_params[num_red:]

        batch, num_chunks = x.shape[0], self._num_cembs
        if self._pad:
            x = F.pad(x, (0, self._pad))
        # Rows ordered chunk-major: row c * B + b holds chunk c of sample b.
        chunks = x.reshape(batch, num_chunks, self._inp_chunk_dim).transpose(0, 1).reshape(
            num_chunks * batch, self._inp_chunk_dim)
        cembs = params[0]
        row_cembs = cembs.unsqueeze(1).expand(num_chunks, batch, cembs.shape[1]).reshape(num_chunks * batch, -1)
        red_weights = [params[s] for s in self._red_slots]
        if self._dynamic_biases is None:
            squeezed = self._reducer(torch.cat([chunks, row_cembs], dim=1), weights=red_weights,
                                     distilled_params=red_distilled, condition=condition)
        else:
            squeezed = self._reducer(chunks, weights={'internal_weights': red_weights,
                                                      'mod_weights': self._dynamic_shifts(params, row_cembs)},
                                     distilled_params=red_distilled, condition=condition)
        net_input = squeezed.reshape(num_chunks, batch, self._out_chunk_dim).transpose(0, 1).reshape(batch, -1)
        return self._network(net_input, weights=[params[s] for s in self._net_slots],
                             distilled_params=net_distilled, condition=condition)

    def _dynamic_shifts(self, params, row_cembs):
        """Per-row gains (ones) and shifts (:math:`V_l e_c`, or zeros) for every reducer layer."""
        mod_weights = []
        for layer, cm_layer in enumerate(self._reducer.context_mod_layers):
            size = cm_layer.param_shapes[0]
            mod_weights.append(row_cembs.new_ones(size))
            if layer in self._dyn_bias_slots:
                mod_weights.append(F.linear(row_cembs, params[self._dyn_bias_slots[layer]]))
            else:
                mod_weights.append(row_cembs.new_zeros(size))
        return mod_weights
