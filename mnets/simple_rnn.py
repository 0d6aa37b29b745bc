r"""Stacked vanilla (Elman) or LSTM recurrent network whose weights may come from a hypernetwork.

The network maps a sequence :math:`x_{1:T}` (tensor ``[T, N, n_in]``, time first) to a sequence of the same
length. It is made of three stages, each optional except the recurrent one:

1. fully-connected layers ``fc_layers_pre`` applied to every time step, :math:`h = \phi(W h + b)`;
2. recurrent layers ``rnn_layers``;
3. fully-connected layers ``fc_layers``; the last one is linear (the network output).

A vanilla recurrent layer keeps a hidden state :math:`h_t` and emits a separate output :math:`y_t`:

.. math::
    h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}), \qquad y_t = \phi(W_{ho} h_t + b_{ho}).

An LSTM layer uses gates in PyTorch's order (input, forget, cell, output), stacked along the rows of
:math:`W_{ih}` ``[4H, F]`` and :math:`W_{hh}` ``[4H, H]``:

.. math::
    [i, f, g, o] = W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh},\quad
    c_t = \sigma(f) c_{t-1} + \sigma(i) \tanh(g),\quad h_t = \sigma(o)\, \phi(c_t),

so with :math:`\phi = \tanh` it equals :class:`torch.nn.LSTM` given the same four tensors.

Context modulation :math:`\mathrm{CM}(a) = \tilde g \odot a + s` acts before :math:`\phi` (or after it with
``context_mod_post_activation``). In a vanilla layer the same gains/shifts modulate both :math:`h_t` and
:math:`y_t`; in an LSTM they modulate :math:`c_t` only where it enters :math:`h_t` (the carried cell state
stays unmodulated, so it cannot be driven out of range over many steps). Modulation may be restricted to the
last time step, or use a separate set of gains/shifts per time step (``context_mod_num_ts``).

Order of :attr:`param_shapes` (as in hypnettorch): all context-mod gains/shifts, then per layer from input to
output weight and bias; a recurrent layer contributes :math:`W_{ih}, b_{ih}, W_{hh}, b_{hh}` and, for vanilla
layers, :math:`W_{ho}, b_{ho}`. ``param_shapes_meta`` layer ids: 0 for input modulation, odd numbers for the
layers (1, 3, ...) and the following even number for each layer's modulation.

Only the recurrence itself loops over time: input projections :math:`W_{ih} x_t` of all steps and the vanilla
outputs :math:`W_{ho} h_t` are each one batched matrix product.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from mnets.mnet_interface import MainNetInterface
from utils.torch_utils import init_params

#: Default nonlinearity (hypnettorch's ``torch.nn.Tanh()``); stateless, so one instance is shared.
DEFAULT_ACTIVATION = torch.nn.Tanh()

#: Nonlinearities accepted for ``activation`` (recurrent states must stay bounded or rectified).
_ACTIVATION_NAMES = {'tanh': torch.tanh, 'relu': F.relu}


def _resolve_rnn_activation(activation):
    if activation is None:
        return None
    if isinstance(activation, nn.Tanh):
        return torch.tanh
    if isinstance(activation, nn.ReLU):
        return F.relu
    if isinstance(activation, str) and activation in _ACTIVATION_NAMES:
        return _ACTIVATION_NAMES[activation]
    raise ValueError(f'activation: expected None, torch.nn.Tanh(), torch.nn.ReLU(), "tanh" or "relu" '
                     f'(recurrent networks support only these), got {activation!r}')


def _check_sizes(sizes, arg, allow_empty=True):
    try:
        sizes = list(sizes)
    except TypeError:
        raise TypeError(f'{arg}: expected a list of positive ints, got {sizes!r}') from None
    if not allow_empty and not sizes:
        raise ValueError(f'{arg}: expected at least one layer size, got an empty list')
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, int) or s <= 0:
            raise ValueError(f'{arg}: expected a list of positive ints, got {sizes}')
    return sizes


class SimpleRNN(nn.Module, MainNetInterface):
    """Stacked vanilla-RNN or LSTM layers, optionally enclosed by fully-connected layers.

    Args:
        n_in (int): Input features per time step.
        rnn_layers (list or tuple): Sizes of the recurrent layers (at least one). Without ``fc_layers``
            the last one is the output size, and the output is nonlinear.
        fc_layers_pre (list or tuple): Sizes of fully-connected layers applied before the recurrent ones.
        fc_layers (list or tuple): Sizes of fully-connected layers after the recurrent ones; the last is
            the (linear) output layer.
        activation: :math:`\\phi`: ``torch.nn.Tanh()``, ``torch.nn.ReLU()``, their names, or ``None``.
        use_lstm (bool): LSTM instead of vanilla recurrent layers.
        use_bias (bool): Whether layers have biases.
        no_weights (bool): Hold no layer weights; they must be passed to :meth:`forward`.
        init_weights (list, optional): Initial values, one tensor per entry of :attr:`internal_params`.
        kaiming_rnn_init (bool): Initialise recurrent weights like linear layers
            (:func:`utils.torch_utils.init_params`) instead of PyTorch's RNN default
            :math:`U(-1/\\sqrt{H}, 1/\\sqrt{H})`.
        context_mod_last_step (bool): Modulate recurrent layers at the last time step only.
        context_mod_num_ts (int): If not ``-1``, the maximal sequence length; every time step of a
            recurrent layer then gets its own gains/shifts.
        context_mod_separate_layers_per_ts (bool): With ``context_mod_num_ts``, one context-mod layer per
            time step (its weights listed separately); otherwise one layer whose weights have shape
            ``[context_mod_num_ts, H]`` (requires ``context_mod_no_weights``).
        verbose (bool): Print the number of weights.
        **kwargs: The context-mod options of :class:`mnets.mlp.MLP` (``use_context_mod``,
            ``context_mod_inputs``, ``no_last_layer_context_mod``, ``context_mod_no_weights``,
            ``context_mod_post_activation``, ``context_mod_gain_offset``, ``context_mod_gain_softplus``).
    """

    _SHARED_INPUT_NDIMS = (3,)

    def __init__(self, n_in=1, rnn_layers=(10,), fc_layers_pre=(), fc_layers=(1,), activation=DEFAULT_ACTIVATION,
                 use_lstm=False, use_bias=True, no_weights=False, init_weights=None, kaiming_rnn_init=False,
                 context_mod_last_step=False, context_mod_num_ts=-1, context_mod_separate_layers_per_ts=False,
                 verbose=True, **kwargs):
        nn.Module.__init__(self)
        MainNetInterface.__init__(self)

        if isinstance(n_in, bool) or not isinstance(n_in, int) or n_in <= 0:
            raise ValueError(f'n_in: expected a positive int, got {n_in!r}')
        rnn_layers = _check_sizes(rnn_layers, 'rnn_layers', allow_empty=False)
        fc_layers_pre = _check_sizes(fc_layers_pre, 'fc_layers_pre')
        fc_layers = _check_sizes(fc_layers, 'fc_layers')
        self._a_fun = _resolve_rnn_activation(activation)
        unknown = MainNetInterface._parse_context_mod_args(kwargs)
        if unknown:
            raise TypeError(f'kwargs: unknown keyword arguments {unknown}; accepted are the context-mod '
                            f'options of mnets.mlp.MLP')
        if kwargs['context_mod_gain_offset'] and kwargs['context_mod_gain_softplus']:
            raise ValueError('context_mod_gain_offset: cannot be combined with context_mod_gain_softplus')
        if isinstance(context_mod_num_ts, bool) or not isinstance(context_mod_num_ts, int) or \
                not (context_mod_num_ts == -1 or context_mod_num_ts > 0):
            raise ValueError(f'context_mod_num_ts: expected -1 or a positive int, got {context_mod_num_ts!r}')
        if context_mod_num_ts != -1:
            if context_mod_last_step:
                raise ValueError('context_mod_last_step: cannot be combined with context_mod_num_ts='
                                 f'{context_mod_num_ts} (per-time-step modulation)')
            if not kwargs['context_mod_no_weights'] and not context_mod_separate_layers_per_ts:
                raise ValueError('context_mod_separate_layers_per_ts: must be True when context_mod_num_ts is '
                                 'set and the network holds its context-mod weights '
                                 '(context_mod_no_weights=False)')

        self._n_in = n_in
        self._rnn_layers = rnn_layers
        self._fc_layers_pre = fc_layers_pre
        self._fc_layers = fc_layers
        self._use_lstm = use_lstm
        self._no_weights = no_weights
        self._bptt_depth = -1
        self._store_context_mod_options(kwargs)
        self._context_mod_last_step = context_mod_last_step
        self._context_mod_num_ts = context_mod_num_ts
        self._cm_per_ts_layers = context_mod_num_ts != -1 and context_mod_separate_layers_per_ts
        self._cm_stacked_ts = context_mod_num_ts != -1 and not context_mod_separate_layers_per_ts

        rec_out = not fc_layers
        self._has_bias = use_bias
        self._has_fc_out = not rec_out
        self._mask_fc_out = not rec_out
        self._has_linear_out = not rec_out

        cm_external = self._use_context_mod and self._context_mod_no_weights
        self._init_param_bookkeeping(any_internal=not (no_weights and cm_external),
                                     any_external=no_weights or cm_external)
        self._build_context_mod()
        self._build_layers(kaiming_rnn_init)
        self._is_properly_setup()
        self._load_init_weights(init_weights)

        if verbose:
            cm_count = self._num_context_mod_weights()
            print(f'Creating a simple RNN with {self.num_params} weights'
                  + (f' (including {cm_count} weights associated with context modulation)'
                     if self._use_context_mod else '') + '.')

    # ------------------------------------------------------------------ construction
    def _build_context_mod(self):
        """Register the context-mod layers; record which layer modulates what.

        Sets ``_cm_input`` (layer index or None), ``_cm_fc_pre`` / ``_cm_fc`` (per fc layer: index or
        None) and ``_cm_rec`` (per recurrent layer: list of layer indices, one per time step when
        ``context_mod_separate_layers_per_ts``, else one; or None).
        """
        num_pre, num_rec, num_post = len(self._fc_layers_pre), len(self._rnn_layers), len(self._fc_layers)
        self._cm_input = None
        self._cm_fc_pre = [None] * num_pre
        self._cm_rec = [None] * num_rec
        self._cm_fc = [None] * num_post
        if not self._use_context_mod:
            return
        sizes, layer_ids = [], []

        def add(size, layer_id):
            sizes.append(size)
            layer_ids.append(layer_id)
            return len(sizes) - 1

        if self._context_mod_inputs:
            self._cm_input = add(self._n_in, 0)
        # Layer k (1-based, over all layers) has weights in layer id 2k - 1 and modulation in 2k.
        for i, size in enumerate(self._fc_layers_pre):
            self._cm_fc_pre[i] = add(size, 2 * (i + 1))
        for i, size in enumerate(self._rnn_layers):
            if i == num_rec - 1 and not self._fc_layers and self._no_last_layer_context_mod:
                break
            layer_id = 2 * (num_pre + i + 1)
            copies = self._context_mod_num_ts if self._cm_per_ts_layers else 1
            self._cm_rec[i] = [add(size, layer_id) for _ in range(copies)]
        for i, size in enumerate(self._fc_layers):
            if i == num_post - 1 and self._no_last_layer_context_mod:
                break
            self._cm_fc[i] = add(size, 2 * (num_pre + num_rec + i + 1))
        if not sizes:
            self._use_context_mod = False
            return
        self._cm_slots = self._add_context_mod_layers(sizes, layer_ids)
        if self._cm_stacked_ts:
            # One layer per recurrent layer whose gains/shifts carry a leading time dim [T, H]; these are
            # always external (checked in the constructor).
            for layers in self._cm_rec:
                if layers is None:
                    continue
                for slot in self._cm_slots[layers[0]]:
                    stacked = [self._context_mod_num_ts, *self._param_shapes[slot]]
                    self._param_shapes[slot] = stacked
                    self._hyper_shapes_learned[self._hyper_shapes_learned_ref.index(slot)] = stacked

    def _build_layers(self, kaiming_rnn_init):
        """Register the weights of all layers, input to output, with their initialisation."""
        num_pre, num_rec = len(self._fc_layers_pre), len(self._rnn_layers)
        prev = self._n_in
        self._fc_pre_slots = []
        for i, size in enumerate(self._fc_layers_pre):
            self._fc_pre_slots.append(self._add_weight_and_bias([size, prev], self._no_weights, 2 * i + 1))
            prev = size
        self._rec_slots = []
        self._hh_slots = []
        gates = 4 if self._use_lstm else 1
        for i, size in enumerate(self._rnn_layers):
            layer_id = 2 * (num_pre + i) + 1
            shapes = [[gates * size, prev], [gates * size, size]]
            if not self._use_lstm:
                shapes.append([size, size])
            slots = []
            for shape in shapes:
                w_slot, b_slot = self._add_rec_weight_and_bias(shape, size, layer_id, kaiming_rnn_init)
                slots.extend([w_slot, b_slot])
            self._hh_slots.append(slots[2])
            self._rec_slots.append(slots)
            prev = size
        self._fc_slots = []
        for i, size in enumerate(self._fc_layers):
            layer_id = 2 * (num_pre + num_rec + i) + 1
            self._fc_slots.append(self._add_weight_and_bias([size, prev], self._no_weights, layer_id))
            prev = size

    def _add_rec_weight_and_bias(self, shape, hidden_size, layer_id, kaiming_rnn_init):
        weight = bias = None
        if not self._no_weights:
            weight = nn.Parameter(torch.empty(*shape))
            bias = nn.Parameter(torch.empty(shape[0])) if self._has_bias else None
            if kaiming_rnn_init:
                init_params(weight, bias)
            else:
                # PyTorch's nn.RNN/nn.LSTM default: every tensor ~ U(-1/sqrt(H), 1/sqrt(H)).
                bound = 1.0 / math.sqrt(hidden_size)
                with torch.no_grad():
                    for p in (weight, bias):
                        if p is not None:
                            p.uniform_(-bound, bound)
        w_slot = self._register_param(shape, 'weight', layer_id, weight)
        b_slot = self._register_param([shape[0]], 'bias', layer_id, bias) if self._has_bias else None
        return w_slot, b_slot

    # ------------------------------------------------------------------ attributes
    @property
    def bptt_depth(self):
        """Truncation depth of backprop through time: ``-1`` backpropagates through all steps; otherwise
        states of steps :math:`t < T - \\text{bptt\\_depth}` are detached (truncated BPTT).

        :type: int
        """
        return self._bptt_depth

    @bptt_depth.setter
    def bptt_depth(self, value):
        if isinstance(value, bool) or not isinstance(value, int) or not (value == -1 or value >= 0):
            raise ValueError(f'bptt_depth: expected -1 or a non-negative int, got {value!r}')
        self._bptt_depth = value

    @property
    def num_rec_layers(self):
        """Number of recurrent layers.

        :type: int
        """
        return len(self._rnn_layers)

    @property
    def use_lstm(self):
        """Whether recurrent layers are LSTMs.

        :type: bool
        """
        return self._use_lstm

    def distillation_targets(self):
        """This network has no distillation targets: ``None``."""
        return None

    def get_output_weight_mask(self, out_inds=None, device=None):
        """See :meth:`MainNetInterface.get_output_weight_mask`; only for a fully-connected output layer (a
        recurrent output unit depends on all weights of its layer through the recurrence)."""
        if not self._fc_layers:
            raise NotImplementedError('get_output_weight_mask: the output layer is recurrent, so no weights '
                                      'connect to single output units only')
        return MainNetInterface.get_output_weight_mask(self, out_inds=out_inds, device=device)

    def get_cm_inds(self):
        """Indices of :attr:`param_shapes` that belong to context-mod layers."""
        return [i for i, d in enumerate(self.param_shapes_meta) if d['name'] in ('cm_scale', 'cm_shift')]

    def get_cm_weights(self):
        """Internally held context-mod weights (a list)."""
        if not self._use_context_mod or self._context_mod_no_weights:
            raise ValueError('get_cm_weights: the network holds no context-modulation weights')
        return [self.internal_params[self.param_shapes_meta[i]['index']] for i in self.get_cm_inds()]

    def get_non_cm_weights(self):
        """Internally held weights that are not context-mod weights (a list)."""
        cm = set(self.get_cm_inds())
        return [self.internal_params[d['index']] for i, d in enumerate(self.param_shapes_meta)
                if i not in cm and d['index'] != -1]

    def init_hh_weights_orthogonal(self):
        """Re-initialise internally held hidden-to-hidden weights orthogonally (each LSTM gate block
        separately), which keeps :math:`W_{hh}^t` from shrinking or blowing up the state early in training."""
        for slot in self._hh_slots:
            index = self.param_shapes_meta[slot]['index']
            if index == -1:
                continue
            weight = self.internal_params[index]
            with torch.no_grad():
                for block in weight.chunk(4 if self._use_lstm else 1, dim=0):
                    nn.init.orthogonal_(block)

    # ------------------------------------------------------------------ forward
    def forward(self, x, weights=None, distilled_params=None, condition=None, return_hidden=False,
                return_hidden_int=False):
        """Compute the output sequence for input ``x`` of shape ``[T, N, n_in]``.

        Args:
            x: Input sequences, time first: ``[T, N, n_in]``.
            weights: ``None``, a list in :attr:`param_shapes` order, a list in
                :attr:`hyper_shapes_learned` order, a list of only the context-mod tensors, or a dict with
                ``'internal_weights'`` and/or ``'mod_weights'``. Context-mod tensors may carry a leading
                per-sample dim ``N``.
            distilled_params: Not supported (the network has no distillation targets); must be ``None``.
            condition (int, optional): Use the context-mod checkpoint with this id (see
                :meth:`utils.context_mod_layer.ContextModLayer.checkpoint_weights`) instead of the current
                context-mod weights.
            return_hidden (bool): Also return the output of every hidden layer, each ``[T, N, size]``.
            return_hidden_int (bool): Also return, per hidden layer, the internal recurrent state (the cell
                state :math:`c_t` of an LSTM, :math:`h_t` of a vanilla layer; ``None`` for fc layers).

        Returns:
            ``[T, N, n_out]``; with ``return_hidden`` the tuple ``(output, hidden)``, with
            ``return_hidden_int`` ``(output, hidden, hidden_int)``.
        """
        if distilled_params is not None:
            raise ValueError('distilled_params: SimpleRNN has no distillation targets, expected None')
        if return_hidden_int and not return_hidden:
            raise ValueError('return_hidden_int: requires return_hidden=True')
        if condition is not None and (isinstance(condition, bool) or not isinstance(condition, int)):
            raise TypeError(f'condition: expected None or an int (context-mod checkpoint id), got '
                            f'{type(condition).__name__}')
        self._check_input(x)
        params = self._resolve_weights(weights)
        cm = _Modulator(self, params, condition)

        hidden, hidden_int = [], []
        h = cm.apply(self._cm_input, x, bs_dim=1)
        for slots, cm_index in zip(self._fc_pre_slots, self._cm_fc_pre):
            h = self._fc_layer(h, params, slots, cm, cm_index, nonlinear=True)
            hidden.append(h)
            hidden_int.append(None)
        for d, slots in enumerate(self._rec_slots):
            if self._use_lstm:
                h, internal = self._lstm_layer(h, params, slots, cm, self._cm_rec[d])
            else:
                h, internal = self._elman_layer(h, params, slots, cm, self._cm_rec[d])
            hidden.append(h)
            hidden_int.append(internal)
        num_post = len(self._fc_slots)
        for i, (slots, cm_index) in enumerate(zip(self._fc_slots, self._cm_fc)):
            h = self._fc_layer(h, params, slots, cm, cm_index, nonlinear=i < num_post - 1)
            hidden.append(h)
            hidden_int.append(None)

        if not return_hidden:
            return h
        if return_hidden_int:
            return h, hidden[:-1], hidden_int[:-1]
        return h, hidden[:-1]

    def _check_input(self, x):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f'x: expected a tensor of shape [T, N, {self._n_in}], got {type(x).__name__}')
        if x.dim() != 3 or x.shape[2] != self._n_in:
            raise ValueError(f'x: expected shape [T, N, {self._n_in}] (time first), got {list(x.shape)}')
        if x.shape[0] == 0:
            raise ValueError('x: expected at least one time step, got T=0')
        if self._context_mod_num_ts != -1 and self._use_context_mod and x.shape[0] > self._context_mod_num_ts:
            raise ValueError(f'x: sequences may have at most context_mod_num_ts={self._context_mod_num_ts} '
                             f'time steps, got T={x.shape[0]}')

    def _fc_layer(self, h, params, slots, cm, cm_index, nonlinear):
        w_slot, b_slot = slots
        h = F.linear(h, params[w_slot], None if b_slot is None else params[b_slot])
        post = self._context_mod_post_activation
        if not post:
            h = cm.apply(cm_index, h, bs_dim=1)
        if nonlinear and self._a_fun is not None:
            h = self._a_fun(h)
        if post:
            h = cm.apply(cm_index, h, bs_dim=1)
        return h

    def _cm_at_step(self, cm_layers, t, num_steps):
        """The context-mod (layer index, time index) to apply at step ``t``, or ``None``."""
        if cm_layers is None or (self._context_mod_last_step and t != num_steps - 1):
            return None
        if self._cm_per_ts_layers:
            return cm_layers[t], None
        return cm_layers[0], (t if self._cm_stacked_ts else None)

    def _recurrence_inputs(self, x, params, slots):
        """Input projections of all steps at once, with both biases folded in: ``[T, N, G*H]``."""
        w_ih, b_ih, _, b_hh = slots[:4]
        a = F.linear(x, params[w_ih], None if b_ih is None else params[b_ih])
        return a if b_hh is None else a + params[b_hh]

    def _truncate(self, state, t, num_steps):
        if self._bptt_depth != -1 and t < num_steps - self._bptt_depth:
            return state.detach()
        return state

    def _elman_layer(self, x, params, slots, cm, cm_layers):
        """Vanilla layer: returns outputs :math:`y_{1:T}` and hidden states :math:`h_{1:T}`."""
        num_steps, batch = x.shape[0], x.shape[1]
        a_in = self._recurrence_inputs(x, params, slots)
        w_hh = params[slots[2]]
        post = self._context_mod_post_activation
        h = a_in.new_zeros(batch, w_hh.shape[1])
        states = []
        for t in range(num_steps):
            step_cm = self._cm_at_step(cm_layers, t, num_steps)
            h = a_in[t] + F.linear(h, w_hh)
            if not post:
                h = cm.apply_step(step_cm, h)
            if self._a_fun is not None:
                h = self._a_fun(h)
            if post:
                h = cm.apply_step(step_cm, h)
            h = self._truncate(h, t, num_steps)
            states.append(h)
        states = torch.stack(states)
        # y_t does not feed back, so all outputs are one matrix product; the modulation of step t reuses
        # that step's gains/shifts.
        w_ho, b_ho = slots[4], slots[5]
        y = F.linear(states, params[w_ho], None if b_ho is None else params[b_ho])
        if not post:
            y = cm.apply_sequence(cm_layers, y, self)
        if self._a_fun is not None:
            y = self._a_fun(y)
        if post:
            y = cm.apply_sequence(cm_layers, y, self)
        return y, states

    def _lstm_layer(self, x, params, slots, cm, cm_layers):
        """LSTM layer: returns outputs :math:`h_{1:T}` and cell states :math:`c_{1:T}`."""
        num_steps, batch = x.shape[0], x.shape[1]
        a_in = self._recurrence_inputs(x, params, slots)
        w_hh = params[slots[2]]
        size = w_hh.shape[1]
        post = self._context_mod_post_activation
        h = a_in.new_zeros(batch, size)
        c = a_in.new_zeros(batch, size)
        outputs, cells = [], []
        for t in range(num_steps):
            step_cm = self._cm_at_step(cm_layers, t, num_steps)
            gates = a_in[t] + F.linear(h, w_hh)
            in_gate, forget_gate, cell_gate, out_gate = gates.chunk(4, dim=-1)
            c = torch.sigmoid(forget_gate) * c + torch.sigmoid(in_gate) * torch.tanh(cell_gate)
            c_read = c if post else cm.apply_step(step_cm, c)
            h = torch.sigmoid(out_gate) * (c_read if self._a_fun is None else self._a_fun(c_read))
            if post:
                h = cm.apply_step(step_cm, h)
            h = self._truncate(h, t, num_steps)
            c = self._truncate(c, t, num_steps)
            outputs.append(h)
            cells.append(c)
        return torch.stack(outputs), torch.stack(cells)


class _Modulator:
    """Applies the network's context-mod layers with the resolved weights of one forward call."""

    def __init__(self, net, params, ckpt_id):
        self._net = net
        self._params = params
        self._ckpt_id = ckpt_id

    def _layer_and_weights(self, index, time_index):
        layer = self._net.context_mod_layers[index]
        if self._ckpt_id is not None:
            # A checkpoint id selects the layer's stored gains/shifts instead of the passed ones.
            return layer, None
        weights = [self._params[s] for s in self._net._cm_slots[index]]
        if time_index is not None:
            # Stacked per-step weights: [T, H], or per sample [N, T, H].
            weights = [w[time_index] if w.dim() == 2 else w[:, time_index] for w in weights]
        return layer, weights

    def apply(self, index, h, bs_dim):
        if index is None:
            return h
        layer, weights = self._layer_and_weights(index, None)
        return layer(h, weights=weights, ckpt_id=self._ckpt_id, bs_dim=bs_dim)

    def apply_step(self, step_cm, h):
        """Modulate one time step ``[N, H]``; ``step_cm`` is ``(layer index, time index)`` or ``None``."""
        if step_cm is None:
            return h
        layer, weights = self._layer_and_weights(*step_cm)
        return layer(h, weights=weights, ckpt_id=self._ckpt_id)

    def apply_sequence(self, cm_layers, y, net):
        """Modulate a whole sequence ``[T, N, H]`` as :meth:`apply_step` would step by step."""
        if cm_layers is None:
            return y
        num_steps = y.shape[0]
        if not net._context_mod_last_step and net._context_mod_num_ts == -1:
            return self.apply(cm_layers[0], y, bs_dim=1)
        steps = [self.apply_step(net._cm_at_step(cm_layers, t, num_steps), y[t]) for t in range(num_steps)]
        return torch.stack(steps)
