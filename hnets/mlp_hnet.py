"""A fully-connected hypernetwork (`full hypernet`).

The input -- an unconditional part :math:`z` and a conditional embedding :math:`e` -- passes through hidden
fully-connected layers; one linear output layer produces all main-network weights at once:

.. math::

    h_0 = [z, e], \\qquad h_l = \\phi(W_l h_{l-1} + b_l), \\qquad
    \\mathrm{vec}(W_{\\text{main}}) = H h_L + \\beta

Since every output unit is connected to the whole last hidden layer, one big output layer is the same model
as one output head per target tensor (rows of :math:`H` grouped by target tensor), and it is one matrix
product. ``K`` conditions are ``K`` rows of the input batch, so a single pass yields ``K`` weight sets.

The fully-connected trunk (:class:`_MLPTrunkMixin`) is shared with :class:`hnets.chunked_mlp_hnet.ChunkedHMLP`.
"""
import math
from collections import defaultdict
from warnings import warn

import torch
import torch.nn.functional as F
from torch import nn

from hnets.hnet_interface import HyperNetInterface
from utils.batchnorm_layer import BatchNormLayer

# Tensor types whose hypernet output is a constant (plus variance) by default: a hypernet should start by
# producing an identity batch-norm/context-mod and unit-variance embeddings.
_DEFAULT_OUT_DIST = {  # name: (w_val, w_var, b_val, b_var)
    'bn_scale': (0., 0., 1., 0.), 'bn_shift': (0., 0., 0., 0.),
    'cm_scale': (0., 0., 1., 0.), 'cm_shift': (0., 0., 0., 0.),
    'embedding': (0., 0., 0., 1.),
}
# Stateless, so one instance can serve as the default of every constructor.
_RELU = torch.nn.ReLU()


def fan_in_and_out(shape):
    """Fan-in and fan-out of a main-network weight of ``shape`` ``[out, in, *kernel]``."""
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def target_shapes_meta(target_shapes, mnet=None):
    """What each target tensor is: a list of ``{'name', 'layer'}`` dicts.

    Taken from ``mnet.param_shapes_meta`` when ``mnet`` is given and its :attr:`param_shapes` or
    :attr:`hyper_shapes_learned` match ``target_shapes``; otherwise guessed: tensors with more than one
    dimension are weights (one layer each), a 1-D tensor is the bias of the weight right before it.
    """
    meta = getattr(mnet, 'param_shapes_meta', None) if mnet is not None else None
    if meta is not None:
        shapes = [list(s) for s in target_shapes]
        if [list(s) for s in mnet.param_shapes] == shapes:
            return [dict(m) for m in meta]
        learned = getattr(mnet, 'hyper_shapes_learned', None)
        if learned is not None and [list(s) for s in learned] == shapes:
            return [dict(meta[i]) for i in mnet.hyper_shapes_learned_ref]
        warn('mnet: its param_shapes/hyper_shapes_learned do not match target_shapes; guessing the tensor '
             'types from their shapes')
    guessed = []
    layer = 0
    for s in target_shapes:
        if len(s) > 1:
            guessed.append({'name': 'weight', 'layer': layer})
            layer += 1
        else:
            prev = guessed[-1] if guessed else None
            owner = prev['layer'] if prev is not None and prev['name'] == 'weight' else -1
            guessed.append({'name': 'bias', 'layer': owner})
    return guessed


def _uniform_with(tensor, mean, var):
    """Fill ``tensor`` in place from a uniform distribution with the given mean and variance."""
    if var <= 0:
        tensor.fill_(mean)
    else:
        half_width = math.sqrt(3. * var)
        tensor.uniform_(mean - half_width, mean + half_width)


class _MLPTrunkMixin:
    """Embeddings plus a fully-connected trunk, registered through :class:`HyperNetInterface` bookkeeping.

    Parameter order: conditional embeddings, batch-norm scale/shift per hidden layer, then weight (and bias)
    per fully-connected layer. Fully-connected layers get odd layer ids ``1, 3, ...``, batch-norm layers
    the even ids between them.
    """

    def _check_mlp_args(self, uncond_in_size, cond_in_size, layers, num_cond_embs, dropout_rate):
        for arg, val in (('uncond_in_size', uncond_in_size), ('cond_in_size', cond_in_size),
                         ('num_cond_embs', num_cond_embs)):
            if isinstance(val, bool) or not isinstance(val, int) or val < 0:
                raise ValueError('%s: expected an int >= 0, got %r' % (arg, val))
        if not isinstance(layers, (list, tuple)) or \
                not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in layers):
            raise ValueError('layers: expected a list of positive ints, got %r' % (layers,))
        if dropout_rate != -1 and not 0 < dropout_rate < 1:
            raise ValueError('dropout_rate: expected -1 or a value in (0, 1), got %r' % (dropout_rate,))

    def _add_cond_embeddings(self, cond_in_size, num_cond_embs, no_cond_weights):
        """Register one embedding ``[cond_in_size]`` per condition, initialised from N(0, 1)."""
        for _ in range(num_cond_embs):
            self._register_param([cond_in_size], 'embedding', 0, conditional=True, internal=not no_cond_weights,
                                 init_fn=nn.init.normal_)

    def _build_trunk(self, in_size, layers, out_size, use_bias, use_batch_norm, no_weights, activation_fn,
                     dropout_rate, use_spectral_norm):
        self._layers = tuple(layers)
        self._act_fn = activation_fn
        self._dropout_rate = dropout_rate
        self._use_spectral_norm = use_spectral_norm
        self._use_batch_norm = use_batch_norm
        self._has_bias = use_bias
        bn_refs = []
        if use_batch_norm:
            self._batchnorm_layers = nn.ModuleList()
            for i, n in enumerate(layers):
                # The affine part lives in our own bookkeeping so that it can be supplied from outside.
                self._batchnorm_layers.append(BatchNormLayer(n, affine=False))
                bn_refs.append((
                    self._register_param([n], 'bn_scale', 2 * i + 2, False, not no_weights, nn.init.ones_),
                    self._register_param([n], 'bn_shift', 2 * i + 2, False, not no_weights, nn.init.zeros_)))
        fc_refs = []
        sizes = [in_size, *layers, out_size]
        for i in range(len(sizes) - 1):
            weight = torch.empty(sizes[i + 1], sizes[i])
            bias = torch.empty(sizes[i + 1]) if use_bias else None
            self._torch_linear_init(weight, bias)
            w_ref = self._register_param(weight.shape, 'weight', 2 * i + 1, False, not no_weights,
                                         lambda p, src=weight: p.copy_(src))
            b_ref = None
            if use_bias:
                b_ref = self._register_param(bias.shape, 'bias', 2 * i + 1, False, not no_weights,
                                             lambda p, src=bias: p.copy_(src))
            fc_refs.append((w_ref, b_ref))
        self._trunk_refs = (fc_refs, bn_refs)

    @staticmethod
    def _torch_linear_init(weight, bias):
        """The default of ``nn.Linear``: U(+-1/sqrt(fan_in)) for weights and biases."""
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        if bias is not None:
            bound = 1. / math.sqrt(weight.shape[1])
            nn.init.uniform_(bias, -bound, bound)

    def _finish_trunk_positions(self):
        """Translate trunk indices into :attr:`param_shapes` into positions in the unconditional list."""
        pos = {ref: i for i, ref in enumerate(self.unconditional_param_shapes_ref)}
        fc_refs, bn_refs = self._trunk_refs
        self._fc_pos = [(pos[w], None if b is None else pos[b]) for w, b in fc_refs]
        self._bn_pos = [(pos[s], pos[t]) for s, t in bn_refs]

    def _trunk_forward(self, h, uncond_weights, condition=None):
        """Map ``h`` ``[B, in_size]`` to ``[B, out_size]`` with the given unconditional weights."""
        n_fc = len(self._fc_pos)
        for i, (w_pos, b_pos) in enumerate(self._fc_pos):
            weight = uncond_weights[w_pos]
            if self._use_spectral_norm:
                # Exact largest singular value (differentiable, vmap-able) instead of a stateful power
                # iteration: the forward stays a pure function of the weights.
                weight = weight / torch.linalg.matrix_norm(weight, ord=2)
            h = F.linear(h, weight, None if b_pos is None else uncond_weights[b_pos])
            if i == n_fc - 1:
                break
            if self._use_batch_norm:
                s_pos, t_pos = self._bn_pos[i]
                h = self._batchnorm_layers[i].forward(h, weight=uncond_weights[s_pos],
                                                      bias=uncond_weights[t_pos], stats_id=condition)
            if self._dropout_rate != -1:
                h = F.dropout(h, p=self._dropout_rate, training=self.training)
            if self._act_fn is not None:
                h = self._act_fn(h)
        return h

    def _fc_params(self, layer_index):
        """The held (weight, bias) of fully-connected layer ``layer_index`` (bias ``None`` without bias)."""
        w_ref, b_ref = self._trunk_refs[0][layer_index]
        w = self.internal_params[self.param_shapes_meta[w_ref]['index']]
        b = None if b_ref is None else self.internal_params[self.param_shapes_meta[b_ref]['index']]
        return w, b

    def _init_trunk_fan_in(self, use_xavier, num_layers):
        """Fan-in init of the first ``num_layers`` fc layers, zero biases, identity batch norm.

        Kaiming (gain 2 for ReLU) keeps the second moment of every hidden activation equal to the input
        variance; Xavier fan-in (gain 1) does the same for (near) linear activations.
        """
        gain = 1. if use_xavier else 2.
        with torch.no_grad():
            for i in range(num_layers):
                w, b = self._fc_params(i)
                _uniform_with(w, 0., gain / w.shape[1])
                if b is not None:
                    b.zero_()
            for s_ref, t_ref in self._trunk_refs[1]:
                self.internal_params[self.param_shapes_meta[s_ref]['index']].fill_(1.)
                self.internal_params[self.param_shapes_meta[t_ref]['index']].zero_()

    def _input_variance(self, uncond_var, cond_var, extra=()):
        """Mean second moment of the input units, :math:`\\sum_j n_j \\mathrm{Var}_j / \\sum_j n_j`."""
        parts = [(self._uncond_in_size, uncond_var), (self._cond_in_size, cond_var), *extra]
        total = sum(n for n, _ in parts)
        return sum(n * v for n, v in parts) / total if total > 0 else 0.

    def get_cond_in_emb(self, cond_id):
        """The held conditional input embedding of condition ``cond_id`` (an ``nn.Parameter``)."""
        self._parse_cond_ids(cond_id)
        if self._cond_in_size == 0 or self._no_cond_weights or self._num_cond_embs == 0:
            raise RuntimeError('get_cond_in_emb: this hypernetwork holds no conditional input embeddings')
        return self.internal_params[self.param_shapes_meta[cond_id]['index']]


class HMLP(nn.Module, _MLPTrunkMixin, HyperNetInterface):
    """Fully-connected hypernetwork.

    Args:
        target_shapes (list): shapes of the produced tensors.
        uncond_in_size (int): size of the unconditional input (e.g. noise).
        cond_in_size (int): size of a conditional embedding.
        layers (list or tuple): hidden layer sizes (empty: a linear hypernetwork).
        verbose (bool): print a summary.
        activation_fn: hidden nonlinearity (``None``: linear).
        use_bias (bool): biases in all fully-connected layers.
        no_uncond_weights (bool): :math:`\\theta` is supplied via ``forward(weights=...)``.
        no_cond_weights (bool): embeddings are supplied from outside (``cond_input`` or ``weights``).
        num_cond_embs (int): number of conditions (embeddings ``N(0, 1)`` when held).
        dropout_rate (float): ``-1`` or the dropout rate of hidden layers.
        use_spectral_norm (bool): divide every fully-connected weight by its largest singular value.
        use_batch_norm (bool): batch norm before each hidden nonlinearity (statistics id ``condition``).
    """

    def __init__(self, target_shapes, uncond_in_size=0, cond_in_size=8, layers=(100, 100), verbose=True,
                 activation_fn=_RELU, use_bias=True, no_uncond_weights=False, no_cond_weights=False,
                 num_cond_embs=1, dropout_rate=-1, use_spectral_norm=False, use_batch_norm=False):
        nn.Module.__init__(self)
        HyperNetInterface.__init__(self)
        target_shapes = self._check_target_shapes(target_shapes)
        self._check_mlp_args(uncond_in_size, cond_in_size, layers, num_cond_embs, dropout_rate)
        if uncond_in_size + cond_in_size == 0:
            raise ValueError('uncond_in_size, cond_in_size: expected a positive total input size, got 0 and 0')
        if cond_in_size == 0 and num_cond_embs > 0:
            warn('num_cond_embs: set to 0 because cond_in_size is 0 (was %d)' % num_cond_embs)
            num_cond_embs = 0
        self._target_shapes = target_shapes
        self._uncond_in_size = uncond_in_size
        self._cond_in_size = cond_in_size
        self._no_uncond_weights = no_uncond_weights
        self._no_cond_weights = no_cond_weights
        self._num_cond_embs = num_cond_embs
        self._num_known_conds = num_cond_embs

        self._add_cond_embeddings(cond_in_size, num_cond_embs, no_cond_weights)
        self._build_trunk(uncond_in_size + cond_in_size, layers, self.num_outputs, use_bias, use_batch_norm,
                          no_uncond_weights, activation_fn, dropout_rate, use_spectral_norm)
        self._finish_trunk_positions()
        if verbose:
            print(self)

    def forward(self, uncond_input=None, cond_input=None, cond_id=None, weights=None, distilled_params=None,
                condition=None, ret_format='squeezed'):
        """Produce ``K`` weight sets; see :meth:`HyperNetInterface.forward`.

        ``cond_id=[i, j]`` stacks the embeddings of conditions ``i`` and ``j`` into a batch ``[2, E]`` so
        both weight sets come out of one pass; ``ret_format='flattened'`` gives ``[2, num_outputs]``,
        ``'stacked'`` one ``[2, *s]`` tensor per target shape. ``condition`` is the batch-norm statistics id.
        """
        uncond_input, cond_input, uncond_weights, _, _ = self._preprocess_forward_args(
            uncond_input=uncond_input, cond_input=cond_input, cond_id=cond_id, weights=weights,
            ret_format=ret_format)
        parts = []
        if self._uncond_in_size > 0:
            if uncond_input is None:
                raise ValueError('uncond_input: expected a tensor [K, %d], got None' % self._uncond_in_size)
            self._check_input(uncond_input, self._uncond_in_size, 'uncond_input')
            parts.append(uncond_input)
        if self._cond_in_size > 0:
            if cond_input is None:
                raise ValueError('cond_input, cond_id: expected one of them (embeddings of size %d), got none'
                                 % self._cond_in_size)
            self._check_input(cond_input, self._cond_in_size, 'cond_input')
            parts.append(cond_input)
        h = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        return self._flat_to_ret_format(self._trunk_forward(h, uncond_weights, condition), ret_format)

    def apply_hyperfan_init(self, method='in', use_xavier=False, uncond_var=1., cond_var=1., mnet=None,
                            w_val=None, w_var=None, b_val=None, b_var=None):
        r"""Hyperfan init (Chang et al., ICLR 2020, "Principled weight initialization for hypernetworks").

        Kaiming/Xavier applied to a hypernetwork give main-network weights of the wrong scale; hyperfan
        instead picks the variance of each output head so that the *produced* weights have the variance
        Kaiming (``use_xavier=False``, gain :math:`c = 2`) or Xavier (:math:`c = 1`) would give them.

        Hidden layers get fan-in init and zero biases, so the last hidden activation :math:`h \in
        \mathbb{R}^{d_k}` has second moment :math:`v`, the input variance
        :math:`v = (n_z \mathrm{Var}(z) + n_e \mathrm{Var}(e)) / (n_z + n_e)` (``1`` after batch norm).
        A produced tensor :math:`W = H h` then has :math:`\mathrm{Var}(W) = d_k \mathrm{Var}(H) v`, and
        its head gets :math:`\mathrm{Var}(H) = \sigma^2_{\text{target}} / (d_k v)` (head bias zero) with

        - weight, ``'in'``: :math:`c / (c_b\, \mathrm{fan\_in})`, :math:`c_b = 2` if the layer's bias is
          also produced (both then carry half the pre-activation variance), else 1;
        - weight, ``'out'``: :math:`c / \mathrm{fan\_out}`;
        - bias, ``'in'``: :math:`c / 2`; bias, ``'out'``: :math:`\max(0, c (1 - \mathrm{fan\_in} /
          \mathrm{fan\_out}))`;
        - ``'harmonic'``: the harmonic mean :math:`2 v_\text{in} v_\text{out} / (v_\text{in} + v_\text{out})`.

        Other tensor types (``bn_scale``, ``bn_shift``, ``cm_scale``, ``cm_shift``, ``embedding``) get
        head weights ``U`` with mean ``w_val`` / variance ``w_var`` and head biases with ``b_val`` /
        ``b_var`` (defaults: scales 1, shifts 0, embeddings N-like with variance 1). ``w_val``, ``w_var``,
        ``b_val``, ``b_var`` are lists (one entry per target, ``None`` = default) or dicts keyed by tensor
        name; for weights and biases they replace hyperfan only when all four are given.

        Args:
            method (str): ``'in'``, ``'out'`` or ``'harmonic'``.
            use_xavier (bool): Xavier instead of Kaiming (for non-ReLU activations).
            uncond_var, cond_var (float): variances of the unconditional and conditional inputs.
            mnet (optional): the main network; its ``param_shapes_meta`` says which target is what.
        """
        if method not in ('in', 'out', 'harmonic'):
            raise ValueError("method: expected 'in', 'out' or 'harmonic', got %r" % (method,))
        if self.unconditional_params is None:
            raise ValueError('apply_hyperfan_init: needs held unconditional weights, but no_uncond_weights=True')
        meta = target_shapes_meta(self.target_shapes, mnet)
        in_var = 1. if self._use_batch_norm else self._input_variance(uncond_var, cond_var)
        n_fc = len(self._fc_pos)
        self._init_trunk_fan_in(use_xavier, n_fc - 1)
        head_w, head_b = self._fc_params(n_fc - 1)
        d_k = head_w.shape[1]
        c = 1. if use_xavier else 2.
        layer_shapes = {m['layer']: s for m, s in zip(meta, self.target_shapes) if m['name'] == 'weight'}
        layer_has_bias = defaultdict(bool)
        for m in meta:
            if m['name'] == 'bias':
                layer_has_bias[m['layer']] = True

        def user_value(arg, i, name):
            if isinstance(arg, (list, tuple)):
                return arg[i]
            if isinstance(arg, dict):
                return arg.get(name)
            return None

        start = 0
        with torch.no_grad():
            for i, (m, shape) in enumerate(zip(meta, self.target_shapes)):
                end = start + math.prod(shape)
                name = m['name']
                user = [user_value(a, i, name) for a in (w_val, w_var, b_val, b_var)]
                if name in ('weight', 'bias') and None in user:
                    var = self._hyperfan_target(method, c, name, shape, layer_shapes.get(m['layer']),
                                                layer_has_bias[m['layer']])
                    _uniform_with(head_w[start:end], 0., var / (d_k * in_var))
                    if head_b is not None:
                        head_b[start:end].zero_()
                else:
                    default = _DEFAULT_OUT_DIST.get(name, (0., 0., 0., 0.))
                    wv, wvar, bv, bvar = [d if u is None else u for u, d in zip(user, default)]
                    _uniform_with(head_w[start:end], wv, wvar)
                    if head_b is not None:
                        _uniform_with(head_b[start:end], bv, bvar)
                    elif bv != 0 or bvar != 0:
                        warn('apply_hyperfan_init: target %d (%s) asks for output mean %g / variance %g from '
                             'the head bias, but use_bias=False' % (i, name, bv, bvar))
                start = end

    @staticmethod
    def _hyperfan_target(method, c, name, shape, layer_weight_shape, layer_has_bias):
        """Target variance of a produced weight or bias (see :meth:`apply_hyperfan_init`)."""
        if name == 'weight':
            fan_in, fan_out = fan_in_and_out(shape)
            var_in = c / ((2. if layer_has_bias else 1.) * fan_in)
            var_out = c / fan_out
        else:
            fan_out = shape[0]
            # Without the layer's weight shape the bias's fan-in is unknown; assume a square layer.
            fan_in = fan_in_and_out(layer_weight_shape)[0] if layer_weight_shape is not None else fan_out
            var_in = c / 2.
            var_out = max(0., c * (1. - fan_in / fan_out))
        if method == 'in':
            return var_in
        if method == 'out':
            return var_out
        return 0. if var_in + var_out == 0 else 2. * var_in * var_out / (var_in + var_out)
