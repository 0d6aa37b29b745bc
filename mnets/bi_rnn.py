r"""Bidirectional recurrent network built from :class:`mnets.simple_rnn.SimpleRNN` instances.

Each bidirectional layer runs one :class:`SimpleRNN` forward in time and a second one on the time-reversed
input, and concatenates their outputs per step:

.. math::
    h_t = \big[\, \hat h^{(f)}_t,\; \hat h^{(b)}_t \,\big], \qquad
    \hat h^{(f)}_{1:T} = \mathrm{RNN}_f(x_{1:T}), \qquad
    \hat h^{(b)}_{1:T} = \mathrm{rev}\big(\mathrm{RNN}_b(\mathrm{rev}(x_{1:T}))\big),

so :math:`h_t` summarises both the past and the future of step :math:`t`. Layers are stacked (the input size
of the next layer is twice the output size of the previous one) and an optional :class:`mnets.mlp.MLP` maps
every :math:`h_t` to the output.

With padded sequences of lengths :math:`L_n`, the reversal runs over the first :math:`L_n` steps of each
sequence only (one ``gather``, no loop over samples), and outputs at padded steps are set to zero, so that
no output at a valid step depends on the padding.

Order of :attr:`param_shapes`: the forward net of layer 1, its backward net, the forward net of layer 2, ...,
then the MLP; each part in its own order. ``param_shapes_meta`` layer ids of every part are shifted past those
of the parts before it, so ids stay unique across the whole network.
"""
import copy
import warnings

import torch
from torch import nn

from mnets.mlp import MLP
from mnets.mnet_interface import MainNetInterface
from mnets.simple_rnn import SimpleRNN


def _copy_args(args, arg, no_weights):
    if not isinstance(args, dict):
        raise TypeError(f'{arg}: expected a dict of constructor arguments, got {type(args).__name__}')
    args = copy.copy(args)
    if args.get('no_weights', no_weights) != no_weights:
        raise ValueError(f"{arg}: 'no_weights'={args['no_weights']} conflicts with the constructor argument "
                         f'no_weights={no_weights}')
    args['no_weights'] = no_weights
    args.setdefault('verbose', False)
    return args


class BiRNN(nn.Module, MainNetInterface):
    """Bidirectional RNN (see the module docstring).

    Args:
        rnn_args (dict or list): Constructor arguments of :class:`mnets.simple_rnn.SimpleRNN` for the forward
            and the backward net of one bidirectional layer, or a list of such dicts, one per layer.
            ``None`` means ``{}`` (the SimpleRNN defaults).
        mlp_args (dict, optional): Constructor arguments of :class:`mnets.mlp.MLP` applied to every
            :math:`h_t`; ``None``: the last bidirectional layer gives the output.
        preprocess_fct (callable, optional): ``preprocess_fct(x, seq_lengths=None)`` maps the input of
            :meth:`forward` to a ``[T, N, F]`` tensor first (e.g. looks up word embeddings).
        no_weights (bool): Hold no weights (all parts); they must be passed to :meth:`forward`.
        verbose (bool): Print the number of weights.
    """

    def __init__(self, rnn_args=None, mlp_args=None, preprocess_fct=None, no_weights=False, verbose=True):
        nn.Module.__init__(self)
        MainNetInterface.__init__(self)

        if rnn_args is None:
            rnn_args = {}
        layer_args = [rnn_args] if isinstance(rnn_args, dict) else rnn_args
        if not isinstance(layer_args, (list, tuple)) or len(layer_args) == 0:
            raise TypeError(f'rnn_args: expected a dict or a non-empty list of dicts, got {rnn_args!r}')
        if mlp_args is not None and not isinstance(mlp_args, dict):
            raise TypeError(f'mlp_args: expected None or a dict, got {type(mlp_args).__name__}')
        if preprocess_fct is not None and not callable(preprocess_fct):
            raise TypeError(f'preprocess_fct: expected None or a callable, got {type(preprocess_fct).__name__}')

        self._forward_rnns = nn.ModuleList()
        self._backward_rnns = nn.ModuleList()
        for i, args in enumerate(layer_args):
            args = _copy_args(args, f'rnn_args[{i}]', no_weights)
            self._forward_rnns.append(SimpleRNN(**args))
            self._backward_rnns.append(SimpleRNN(**args))
        self._out_mlp = None if mlp_args is None else MLP(**_copy_args(mlp_args, 'mlp_args', no_weights))
        self._check_layer_sizes()
        self.preprocess_fct = preprocess_fct

        parts = []
        for fnet, bnet in zip(self._forward_rnns, self._backward_rnns):
            parts.extend([fnet, bnet])
        if self._out_mlp is not None:
            parts.append(self._out_mlp)
        self._parts = parts
        self._combine_bookkeeping(parts)

        last = self._out_mlp if self._out_mlp is not None else self._forward_rnns[-1]
        self._has_fc_out = last.has_fc_out
        self._mask_fc_out = self._out_mlp is not None and self._out_mlp.mask_fc_out
        self._has_linear_out = last.has_linear_out
        self._is_properly_setup()
        if verbose:
            print(f'Constructed a bidirectional RNN with {self.num_params} weights.')

    def _check_layer_sizes(self):
        sizes = [net._rnn_layers[-1] if not net._fc_layers else net._fc_layers[-1] for net in self._forward_rnns]
        for i in range(1, len(self._forward_rnns)):
            expected = 2 * sizes[i - 1]
            if self._forward_rnns[i]._n_in != expected:
                raise ValueError(f'rnn_args[{i}]: expected n_in={expected} (twice the output size of layer '
                                 f'{i - 1}), got n_in={self._forward_rnns[i]._n_in}')
        if self._out_mlp is not None:
            expected = 2 * sizes[-1]
            n_in = self._out_mlp.param_shapes[self._out_mlp._fc_slots[0][0]][1]
            if n_in != expected:
                raise ValueError(f'mlp_args: expected n_in={expected} (twice the output size of the last '
                                 f'bidirectional layer), got n_in={n_in}')

    def _combine_bookkeeping(self, parts):
        """Concatenate the parts' weights, in order, into this network's bookkeeping."""
        cm_no_weights = {bool(p._context_mod_no_weights) for p in parts if p.context_mod_layers}
        if len(cm_no_weights) > 1:
            raise ValueError('rnn_args, mlp_args: context_mod_no_weights must be the same in all parts that use '
                             'context modulation, got both True and False')
        any_internal = any(p.internal_params is not None for p in parts)
        any_external = any(p.hyper_shapes_learned is not None for p in parts)
        self._init_param_bookkeeping(any_internal, any_external)
        self._context_mod_layers = nn.ModuleList()
        self._part_slots = []
        has_bias = {p.has_bias for p in parts}
        if len(has_bias) > 1:
            warnings.warn('BiRNN: some parts use biases and others do not; has_bias is set to False', stacklevel=3)
        self._has_bias = has_bias == {True}
        layer_offset = 0
        distilled = []
        for part in parts:
            start = len(self._param_shapes)
            internal = part.internal_params
            for shape, meta in zip(part.param_shapes, part.param_shapes_meta):
                param = None if meta['index'] == -1 else internal[meta['index']]
                layer = -1 if meta['layer'] == -1 else meta['layer'] + layer_offset
                self._register_param(shape, meta['name'], layer, param)
            self._part_slots.append((start, len(self._param_shapes)))
            layer_offset += 1 + max([d['layer'] for d in part.param_shapes_meta] + [0])
            if part.context_mod_layers is not None:
                self._context_mod_layers.extend(part.context_mod_layers)
            if part.batchnorm_layers is not None:
                if self._batchnorm_layers is None:
                    self._batchnorm_layers = nn.ModuleList()
                self._batchnorm_layers.extend(part.batchnorm_layers)
            if part.hyper_shapes_distilled is not None:
                distilled.extend(part.hyper_shapes_distilled)
        if not self._context_mod_layers:
            self._context_mod_layers = None
        self._hyper_shapes_distilled = distilled or None

    # ------------------------------------------------------------------ attributes
    @property
    def preprocess_fct(self):
        """See the constructor argument ``preprocess_fct``.

        :type: callable or None
        """
        return self._preprocess_fct

    @preprocess_fct.setter
    def preprocess_fct(self, value):
        if value is not None and not callable(value):
            raise TypeError(f'preprocess_fct: expected None or a callable, got {type(value).__name__}')
        self._preprocess_fct = value
        # A preprocessed input may have any rank, so forward_batch cannot infer the per-set dim then.
        self._SHARED_INPUT_NDIMS = (3,) if value is None else None

    @property
    def num_rec_layers(self):
        """Number of recurrent layers over all forward and backward nets.

        :type: int
        """
        return sum(net.num_rec_layers for net in list(self._forward_rnns) + list(self._backward_rnns))

    @property
    def use_lstm(self):
        """Whether the recurrent layers are LSTMs (raises if the layers mix types).

        :type: bool
        """
        kinds = {net.use_lstm for net in self._forward_rnns}
        if len(kinds) > 1:
            raise RuntimeError('use_lstm: the bidirectional layers mix LSTM and vanilla recurrent layers')
        return kinds.pop()

    def distillation_targets(self):
        """The distillation targets of the output MLP (``None`` without one)."""
        return None if self._out_mlp is None else self._out_mlp.distillation_targets()

    def init_hh_weights_orthogonal(self):
        """See :meth:`mnets.simple_rnn.SimpleRNN.init_hh_weights_orthogonal`; applied to every recurrent net."""
        for net in list(self._forward_rnns) + list(self._backward_rnns):
            net.init_hh_weights_orthogonal()

    def get_cm_weights(self):
        """Internally held context-mod weights (a list)."""
        return [self.internal_params[d['index']] for d in self.param_shapes_meta
                if d['name'] in ('cm_scale', 'cm_shift') and d['index'] != -1]

    def get_non_cm_weights(self):
        """Internally held weights that are not context-mod weights (a list)."""
        return [self.internal_params[d['index']] for d in self.param_shapes_meta
                if d['name'] not in ('cm_scale', 'cm_shift') and d['index'] != -1]

    # ------------------------------------------------------------------ forward
    def forward(self, x, weights=None, distilled_params=None, condition=None, seq_lengths=None):
        """Compute the output for sequences ``x`` of shape ``[T, N, F]``.

        Args:
            x: ``[T, N, F]`` (or whatever ``preprocess_fct`` turns into that).
            weights: Any format of :meth:`mnets.mnet_interface.MainNetInterface._resolve_weights`, in
                :attr:`param_shapes` order.
            distilled_params (list, optional): Passed to the output MLP.
            condition (int or dict, optional): An int is the context-mod checkpoint id of the recurrent nets;
                a dict may hold ``'cmod_ckpt_id'`` (recurrent nets) and ``'bn_stats_id'`` (output MLP).
            seq_lengths (sequence of int, optional): Unpadded length of each of the ``N`` sequences; then
                each sequence is reversed within its length and outputs at padded steps are zero.

        Returns:
            ``[T, N, n_out]``.
        """
        rnn_condition, mlp_condition = self._split_condition(condition)
        if self._preprocess_fct is not None:
            x = self._preprocess_fct(x, seq_lengths=seq_lengths)
        n_in = self._forward_rnns[0]._n_in
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[2] != n_in:
            got = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f'x: expected shape [T, N, {n_in}] (time first), got {got}')
        if distilled_params is not None and self._out_mlp is None:
            raise ValueError('distilled_params: only accepted with an output MLP (mlp_args), got a value')
        params = self._resolve_weights(weights)
        part_weights = [params[start:end] for start, end in self._part_slots]

        reverse_index, valid = self._reversal(x, seq_lengths)
        h = x
        for i, (fnet, bnet) in enumerate(zip(self._forward_rnns, self._backward_rnns)):
            h_f = fnet(h, weights=part_weights[2 * i], condition=rnn_condition)
            h_b = bnet(self._reverse(h, reverse_index), weights=part_weights[2 * i + 1], condition=rnn_condition)
            h = torch.cat([h_f, self._reverse(h_b, reverse_index)], dim=2)
            if valid is not None:
                h = h * valid
        if self._out_mlp is None:
            return h
        mlp_in = h
        if self._out_mlp.batchnorm_layers is not None:
            # Batch statistics over all steps and sequences.
            mlp_in = h.reshape(-1, h.shape[2])
        out = self._out_mlp(mlp_in, weights=part_weights[-1], distilled_params=distilled_params,
                            condition=mlp_condition)
        if isinstance(out, tuple):
            return tuple(o.reshape(*h.shape[:2], -1) for o in out)
        return out.reshape(*h.shape[:2], -1)

    def _split_condition(self, condition):
        if condition is None:
            return None, None
        if isinstance(condition, int) and not isinstance(condition, bool):
            return condition, None
        if isinstance(condition, dict):
            unknown = [k for k in condition if k not in ('cmod_ckpt_id', 'bn_stats_id')]
            if unknown:
                raise ValueError(f"condition: allowed keys are 'cmod_ckpt_id', 'bn_stats_id', got {unknown}")
            mlp_condition = None
            if 'bn_stats_id' in condition:
                mlp_condition = {'bn_stats_id': condition['bn_stats_id']}
            return condition.get('cmod_ckpt_id'), mlp_condition
        raise TypeError(f'condition: expected None, an int or a dict, got {type(condition).__name__}')

    @staticmethod
    def _reversal(x, seq_lengths):
        """Time indices that reverse each sequence within its length, and a ``[T, N, 1]`` mask of valid
        steps (``None, None`` without ``seq_lengths``: plain flip)."""
        if seq_lengths is None:
            return None, None
        num_steps, batch = x.shape[0], x.shape[1]
        lengths = torch.as_tensor(seq_lengths, device=x.device).reshape(-1)
        if lengths.numel() != batch:
            raise ValueError(f'seq_lengths: expected {batch} lengths (one per sequence), got {lengths.numel()}')
        if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
            raise TypeError(f'seq_lengths: expected integer lengths, got dtype {lengths.dtype}')
        if bool((lengths < 1).any()) or bool((lengths > num_steps).any()):
            raise ValueError(f'seq_lengths: expected lengths in [1, {num_steps}], got {lengths.tolist()}')
        steps = torch.arange(num_steps, device=x.device).unsqueeze(1)
        valid = steps < lengths.unsqueeze(0)
        # Inside a sequence t -> L - 1 - t; padded steps stay in place (and are masked later).
        index = torch.where(valid, lengths.unsqueeze(0) - 1 - steps, steps)
        return index, valid.unsqueeze(2).to(x.dtype)

    @staticmethod
    def _reverse(h, reverse_index):
        if reverse_index is None:
            return torch.flip(h, [0])
        return torch.gather(h, 0, reverse_index.unsqueeze(2).expand(-1, -1, h.shape[2]))
