"""Fully-connected network whose weights may come from a hypernetwork.

Hidden layer :math:`l` computes

.. math::
    h_l = \\phi\\big(\\mathrm{BN}(\\mathrm{CM}(W_l h_{l-1} + b_l))\\big)

where the context-modulation :math:`\\mathrm{CM}(a) = g \\odot a + s` (applied
after :math:`\\phi` instead with ``context_mod_post_activation``) and batchnorm
are optional. The output layer is linear (then ``out_fn`` if given).

Order of :attr:`param_shapes` (as in hypnettorch): all context-mod gains and
shifts, then all batchnorm scales and shifts, then weight and bias of every
linear layer from input to output.
"""
import torch
import torch.nn.functional as F
from torch import nn

from mnets.bn_stats import BatchNormStatsMixin
from mnets.mnet_interface import MainNetInterface

#: Activation names accepted (besides any callable) for ``activation_fn``.
ACTIVATIONS = {
    'relu': F.relu,
    'tanh': torch.tanh,
    'sigmoid': torch.sigmoid,
    'elu': F.elu,
    'gelu': F.gelu,
    'softplus': F.softplus,
    'leaky_relu': F.leaky_relu,
}


#: Default hidden nonlinearity (hypnettorch's default ``torch.nn.ReLU()``);
#: stateless, so one instance can be shared by all networks.
DEFAULT_ACTIVATION = torch.nn.ReLU()

#: Activation modules known to act elementwise (so they may see any tensor layout).
_ELEMENTWISE_MODULES = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.GELU, nn.Softplus, nn.LeakyReLU, nn.SiLU,
                        nn.Identity)


#: Parameter-free activation modules and the functions they compute (used by the direct batched forward).
_FUNCTIONAL_FORMS = {nn.ReLU: F.relu, nn.Tanh: torch.tanh, nn.Sigmoid: torch.sigmoid, nn.SiLU: F.silu}

_BLOCK_MASKS = {}


#: Activations whose derivative :meth:`MLP.forward_batch_vjp` writes in closed form, as a function of the
#: activation's *output* ``h`` (so no pre-activation needs keeping): ReLU ``1[h > 0]``, tanh ``1 - h^2``,
#: sigmoid ``h (1 - h)``; keyed by module type or by function.
_OUTPUT_DERIVATIVES = {
    nn.ReLU: lambda grad, h: torch.ops.aten.threshold_backward(grad, h, 0.),
    nn.Tanh: torch.ops.aten.tanh_backward,
    nn.Sigmoid: torch.ops.aten.sigmoid_backward,
}
_OUTPUT_DERIVATIVES.update({F.relu: _OUTPUT_DERIVATIVES[nn.ReLU], torch.relu: _OUTPUT_DERIVATIVES[nn.ReLU],
                            torch.tanh: _OUTPUT_DERIVATIVES[nn.Tanh], torch.sigmoid: _OUTPUT_DERIVATIVES[nn.Sigmoid]})


def _output_derivative(activation):
    """The closed-form backward ``(grad, h) -> grad * phi'(z)`` of ``activation``, or None if not known."""
    key = type(activation) if isinstance(activation, nn.Module) else activation
    try:
        return _OUTPUT_DERIVATIVES.get(key)
    except TypeError:  # an unhashable callable
        return None


def _block_mask(num_sets, like):
    """The identity ``[K, 1, K, 1]`` (dtype and device of ``like``) that zeroes the off-diagonal blocks.

    Cached per (K, dtype, device): it is needed in every batched forward, and creating a tensor costs as much
    as the small layer it serves.
    """
    key = (num_sets, like.dtype, like.device)
    mask = _BLOCK_MASKS.get(key)
    if mask is None:
        mask = torch.eye(num_sets, dtype=like.dtype, device=like.device).view(num_sets, 1, num_sets, 1)
        _BLOCK_MASKS[key] = mask
    return mask


def resolve_activation(activation_fn, arg='activation_fn'):
    """Map ``activation_fn`` (``None``, a name in :data:`ACTIVATIONS` or a
    callable) to a callable or ``None``."""
    if activation_fn is None:
        return None
    if isinstance(activation_fn, str):
        if activation_fn not in ACTIVATIONS:
            raise ValueError(f'{arg}: unknown activation {activation_fn!r}, expected one of '
                             f'{sorted(ACTIVATIONS)} or a callable')
        return ACTIVATIONS[activation_fn]
    if not callable(activation_fn):
        raise TypeError(f'{arg}: expected None, a name or a callable, got {type(activation_fn).__name__}')
    return activation_fn


def _check_positive_int(value, arg):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f'{arg}: expected a positive int, got {value!r}')


class MLP(nn.Module, BatchNormStatsMixin, MainNetInterface):
    """Multi-layer perceptron with optional dropout, spectral norm, batchnorm
    and context-modulation; all of its weights may be supplied to
    :meth:`forward`.

    Args:
        n_in (int): Input size.
        n_out (int): Output size.
        hidden_layers (list or tuple): Sizes of the hidden layers.
        activation_fn: Hidden nonlinearity: a callable, a name in
            :data:`ACTIVATIONS`, or ``None`` (identity).
        use_bias (bool): Whether linear layers have biases.
        no_weights (bool): Hold no linear/batchnorm weights; they must be
            passed to :meth:`forward`.
        init_weights (list, optional): Initial values, one tensor per entry of
            :attr:`internal_params`.
        dropout_rate (float): Dropout probability after each hidden
            batchnorm; ``-1`` disables dropout.
        use_spectral_norm (bool): Divide every weight matrix by its largest
            singular value, :math:`W / \\sigma_{max}(W)` (exact, computed in the
            forward, so it also applies to generated weights).
        use_batch_norm (bool): Batchnorm in every hidden layer (before the
            nonlinearity).
        bn_track_stats (bool): Whether batchnorm tracks running statistics;
            otherwise batch statistics are used even in eval mode.
        distill_bn_stats (bool): Expose the running statistics through
            :attr:`hyper_shapes_distilled` / :meth:`distillation_targets`.
            Requires ``bn_track_stats``.
        use_context_mod (bool): Context-modulation after every linear layer.
        context_mod_inputs (bool): Also modulate the network input.
        no_last_layer_context_mod (bool): Do not modulate the output layer.
        context_mod_no_weights (bool): Gains and shifts come from outside,
            independent of ``no_weights``.
        context_mod_post_activation (bool): Modulate hidden layers after the
            nonlinearity instead of before.
        context_mod_gain_offset (bool): Use gains :math:`1 + g`.
        context_mod_gain_softplus (bool): Use gains :math:`\\mathrm{softplus}(g)`.
        out_fn (callable, optional): Output nonlinearity; then :meth:`forward`
            returns ``(out_fn(h), h)``.
        verbose (bool): Print the number of weights.
    """

    _SHARED_INPUT_NDIMS = (2,)

    def __init__(self, n_in=1, n_out=1, hidden_layers=(10, 10), activation_fn=DEFAULT_ACTIVATION,
                 use_bias=True, no_weights=False, init_weights=None, dropout_rate=-1,
                 use_spectral_norm=False, use_batch_norm=False, bn_track_stats=True,
                 distill_bn_stats=False, use_context_mod=False, context_mod_inputs=False,
                 no_last_layer_context_mod=False, context_mod_no_weights=False,
                 context_mod_post_activation=False, context_mod_gain_offset=False,
                 context_mod_gain_softplus=False, out_fn=None, verbose=True):
        nn.Module.__init__(self)
        MainNetInterface.__init__(self)

        _check_positive_int(n_in, 'n_in')
        _check_positive_int(n_out, 'n_out')
        hidden_layers = list(hidden_layers)
        for size in hidden_layers:
            _check_positive_int(size, 'hidden_layers')
        if dropout_rate != -1 and not 0.0 <= dropout_rate <= 1.0:
            raise ValueError(f'dropout_rate: expected -1 or a value in [0, 1], got {dropout_rate!r}')
        if use_spectral_norm and no_weights:
            raise ValueError('use_spectral_norm: cannot be True together with no_weights=True')
        if use_batch_norm and distill_bn_stats and not bn_track_stats:
            raise ValueError('distill_bn_stats: requires bn_track_stats=True, got bn_track_stats=False')
        if context_mod_gain_offset and context_mod_gain_softplus:
            raise ValueError('context_mod_gain_offset: cannot be combined with context_mod_gain_softplus')
        if out_fn is not None and not callable(out_fn):
            raise TypeError(f'out_fn: expected None or a callable, got {type(out_fn).__name__}')

        self._a_fun = resolve_activation(activation_fn)
        self._no_weights = no_weights
        self._dropout_rate = dropout_rate
        self._use_spectral_norm = use_spectral_norm
        self._use_batch_norm = use_batch_norm
        self._bn_track_stats = bn_track_stats
        self._distill_bn_stats = distill_bn_stats and use_batch_norm
        self._use_context_mod = use_context_mod
        self._context_mod_inputs = context_mod_inputs
        self._no_last_layer_context_mod = no_last_layer_context_mod
        self._context_mod_no_weights = context_mod_no_weights
        self._context_mod_post_activation = context_mod_post_activation
        self._context_mod_gain_offset = context_mod_gain_offset
        self._context_mod_gain_softplus = context_mod_gain_softplus
        self._out_fn = out_fn

        self._has_bias = use_bias
        self._has_fc_out = True
        self._mask_fc_out = True
        self._has_linear_out = out_fn is None

        cm_external = use_context_mod and context_mod_no_weights
        self._init_param_bookkeeping(any_internal=not (no_weights and context_mod_no_weights),
                                     any_external=no_weights or cm_external)

        cm_sizes, cm_layer_ids, bn_layer_ids, fc_layer_ids = self._plan_layers(n_in, n_out, hidden_layers)
        self._cm_slots = self._add_context_mod_layers(cm_sizes, cm_layer_ids) if cm_sizes else []
        self._bn_slots = []
        if use_batch_norm and hidden_layers:
            self._bn_slots = self._add_batchnorm_layers(hidden_layers, no_weights, bn_layer_ids,
                                                        distill_bn_stats=self._distill_bn_stats,
                                                        bn_track_stats=bn_track_stats)
        sizes = [n_in] + hidden_layers + [n_out]
        self._fc_slots = self._add_fc_layers(sizes[:-1], sizes[1:], no_weights, fc_layer_ids)
        if not cm_sizes:
            self._use_context_mod = False

        self._is_properly_setup()
        self._load_init_weights(init_weights)

        if verbose:
            cm_count = self._num_context_mod_weights()
            print(f'Creating an MLP with {self.num_params} weights'
                  + (f' (including {cm_count} weights associated with context modulation)'
                     if self._use_context_mod else '') + '.'
                  + (' The network uses dropout.' if dropout_rate != -1 else '')
                  + (' The network uses batchnorm.' if use_batch_norm else ''))

    def _plan_layers(self, n_in, n_out, hidden_layers):
        """Context-mod sizes and the ``param_shapes_meta`` layer id of each op.

        Ops are numbered in the order the forward applies them: [input CM],
        then per hidden layer linear, CM and BN (BN before CM when modulating
        post activation), then the output linear and its CM.
        """
        use_cm = self._use_context_mod
        cm_sizes, cm_ids, bn_ids, fc_ids = [], [], [], []
        layer = 0
        if use_cm and self._context_mod_inputs:
            cm_sizes.append(n_in)
            cm_ids.append(layer)
            layer += 1
        for size in hidden_layers:
            fc_ids.append(layer)
            layer += 1
            ops = ['bn', 'cm'] if self._context_mod_post_activation else ['cm', 'bn']
            for op in ops:
                if op == 'cm' and use_cm:
                    cm_sizes.append(size)
                    cm_ids.append(layer)
                    layer += 1
                elif op == 'bn' and self._use_batch_norm:
                    bn_ids.append(layer)
                    layer += 1
        fc_ids.append(layer)
        if use_cm and not self._no_last_layer_context_mod:
            cm_sizes.append(n_out)
            cm_ids.append(layer + 1)
        return cm_sizes, cm_ids, bn_ids, fc_ids

    def forward(self, x, weights=None, distilled_params=None, condition=None):
        """Compute the output for inputs ``x`` of shape ``[B, n_in]``.

        Args:
            x: Input ``[B, n_in]`` (any leading dims work for a net without
                batchnorm).
            weights: ``None``, a list in :attr:`param_shapes` order, a list in
                :attr:`hyper_shapes_learned` order, a list of only the
                context-mod tensors, or a dict with ``'internal_weights'`` and/or
                ``'mod_weights'``.
            distilled_params (list, optional): Batchnorm running means and
                variances ``[mean_1, var_1, mean_2, ...]`` to use instead of the
                internal ones.
            condition (int or dict, optional): An int, or ``{'bn_stats_id': int}``,
                selects checkpointed batchnorm statistics.

        Returns:
            ``[B, n_out]``, or ``(out_fn(y), y)`` when ``out_fn`` is set.
        """
        params = self._resolve_weights(weights)
        bn_stats_id = self._parse_condition(condition)
        running_stats = self._running_stats(distilled_params, bn_stats_id)

        cm_index = 0

        def modulate(h):
            nonlocal cm_index
            slots = self._cm_slots[cm_index]
            h = self._context_mod_layers[cm_index](h, weights=[params[s] for s in slots])
            cm_index += 1
            return h

        h = x
        if self._use_context_mod and self._context_mod_inputs:
            h = modulate(h)
        num_linear = len(self._fc_slots)
        for l, (w_slot, b_slot) in enumerate(self._fc_slots):
            weight = params[w_slot]
            if self._use_spectral_norm:
                # Exact spectral normalisation, ||W / sigma_max(W)||_2 = 1. The full SVD
                # (not svdvals) keeps the result independent of whether W requires grad.
                weight = weight / torch.linalg.svd(weight, full_matrices=False)[1][..., 0]
            h = F.linear(h, weight, None if b_slot is None else params[b_slot])
            if l == num_linear - 1:
                break
            if self._use_context_mod and not self._context_mod_post_activation:
                h = modulate(h)
            if self._use_batch_norm:
                scale_slot, shift_slot = self._bn_slots[l]
                mean, var = running_stats[l]
                h = self._batchnorm_layers[l](h, running_mean=mean, running_var=var,
                                              weight=params[scale_slot], bias=params[shift_slot],
                                              stats_id=bn_stats_id if mean is None else None)
            if self._dropout_rate != -1:
                h = F.dropout(h, p=self._dropout_rate, training=self.training)
            if self._a_fun is not None:
                h = self._a_fun(h)
            if self._use_context_mod and self._context_mod_post_activation:
                h = modulate(h)
        if self._use_context_mod and not self._no_last_layer_context_mod:
            h = modulate(h)

        if self._out_fn is not None:
            return self._out_fn(h), h
        return h

    #: Largest block-diagonal weight (entries) a layer of :meth:`forward_batch` builds; larger layers use one
    #: batched matmul instead (see :meth:`_linear_batch`).
    BLOCK_DIAG_MAX_ENTRIES = 1 << 16

    def forward_batch(self, x, weights, distilled_params=None, condition=None, x_per_set=None):
        """Evaluate ``K`` weight sets in one call (see ``MainNetInterface.forward_batch``).

        A plain MLP (no context-mod, batchnorm, dropout, spectral norm or ``out_fn``, an elementwise
        activation) given all of its weights with a leading ``K`` takes a direct path: the ``K`` sets'
        layers as single 2-D matmuls on the layout ``[B, K * width]`` (:meth:`_linear_batch`). Everything
        else goes through the generic ``torch.func.vmap`` over :meth:`forward`. Both give the same values.
        """
        if not self._plain_batch_ok(x, weights, distilled_params, condition, x_per_set):
            return super().forward_batch(x, weights, distilled_params=distilled_params, condition=condition,
                                         x_per_set=x_per_set)
        num_sets = weights[0].shape[0]
        if x.dim() == 3:
            # [K, B, n_in] -> [B, K * n_in]: each set's input in its own column block.
            h = x.transpose(0, 1).reshape(x.shape[1], -1)
            shared_input = False
        else:
            h, shared_input = x, True
        num_linear = len(self._fc_slots)
        # nn.ReLU() and friends as their functional form: the module call costs more than these tiny layers.
        activation = _FUNCTIONAL_FORMS.get(type(self._a_fun), self._a_fun)
        for l, (w_slot, b_slot) in enumerate(self._fc_slots):
            bias = None if b_slot is None else weights[b_slot]
            h = self._linear_batch(h, weights[w_slot], bias, shared_input and l == 0)
            if l < num_linear - 1 and activation is not None:
                h = activation(h)
        return h.view(h.shape[0], num_sets, -1).transpose(0, 1)

    def _plain_batch_ok(self, x, weights, distilled_params, condition, x_per_set):
        """Whether :meth:`forward_batch` may take the direct path (decided from options and shapes only)."""
        if (self._use_context_mod or self._use_batch_norm or self._use_spectral_norm or self._out_fn is not None
                or (self._dropout_rate != -1 and self.training) or distilled_params is not None
                or condition is not None):
            return False
        if self._a_fun is not None and not isinstance(self._a_fun, _ELEMENTWISE_MODULES) \
                and self._a_fun not in ACTIVATIONS.values():
            return False
        if not isinstance(weights, (list, tuple)) or len(weights) != len(self._param_shapes) \
                or not isinstance(x, torch.Tensor):
            return False
        if any(not isinstance(w, torch.Tensor) or list(w.shape[1:]) != list(shape) or w.shape[0] != weights[0].shape[0]
               for w, shape in zip(weights, self._param_shapes)):
            return False
        per_set = x.dim() == 3 if x_per_set is None else x_per_set
        expected_dim = 3 if per_set else 2
        return x.dim() == expected_dim and (not per_set or x.shape[0] == weights[0].shape[0])

    def _linear_batch(self, h, weight, bias, shared_input):
        """One linear layer of ``K`` sets: ``h`` ``[B, K * n_in]`` (or ``[B, n_in]`` shared) -> ``[B, K * n_out]``.

        A shared input meets the ``K`` weight matrices stacked to ``[K * n_out, n_in]`` in one matmul.
        Otherwise the sets' matrices form the block-diagonal ``[K * n_out, K * n_in]``, built by one
        broadcast product with the identity, so the layer is again one 2-D matmul. A batched matmul
        (``bmm``) over ``K`` would be the natural op, but on CPU it splits the batch over the intra-op
        thread pool, which costs more than the work for small layers (and far more on a busy machine);
        2-D matmuls of this size run on one thread. Above :attr:`BLOCK_DIAG_MAX_ENTRIES` entries the
        ``K``-fold redundant block-diagonal is no longer cheap and ``baddbmm`` is used.
        """
        num_sets, n_out, n_in = weight.shape
        flat_bias = None if bias is None else bias.reshape(num_sets * n_out)
        if shared_input:
            return F.linear(h, weight.reshape(num_sets * n_out, n_in), flat_bias)
        if num_sets * num_sets * n_out * n_in <= self.BLOCK_DIAG_MAX_ENTRIES:
            block_diag = (weight.unsqueeze(2) * _block_mask(num_sets, weight)).reshape(num_sets * n_out,
                                                                                     num_sets * n_in)
            return F.linear(h, block_diag, flat_bias)
        per_set = h.view(h.shape[0], num_sets, n_in).transpose(0, 1)
        if bias is None:
            out = torch.bmm(per_set, weight.transpose(1, 2))
        else:
            out = torch.baddbmm(bias.unsqueeze(1), per_set, weight.transpose(1, 2))
        return out.transpose(0, 1).reshape(h.shape[0], num_sets * n_out)

    @property
    def batch_vjp_supported(self):
        """Whether :meth:`forward_batch_vjp` applies: a plain MLP (no context-mod, batchnorm, spectral norm,
        active dropout or ``out_fn``) whose activation is ``None``, ReLU, tanh or sigmoid."""
        if (self._use_context_mod or self._use_batch_norm or self._use_spectral_norm or self._out_fn is not None
                or (self._dropout_rate != -1 and self.training)):
            return False
        return self._a_fun is None or _output_derivative(self._a_fun) is not None

    def forward_batch_vjp(self, x, weights):
        r"""Outputs of ``K`` weight sets and their vector-Jacobian product in closed form, without autograd.

        For a small network the autograd graph costs more than the arithmetic: an HMC leapfrog step on a
        1-10-10-1 MLP dispatches ~130 ops through autograd and ~40 with the backward pass written out, as
        here (a torch profile of benchmark W5: 342 vs ~110 ms of CPU). With
        :math:`a_0 = x`, :math:`z_l = W_l a_{l-1} + b_l`, :math:`a_l = \phi(z_l)` (the last layer linear) and
        :math:`\delta_L = \partial \mathcal{L} / \partial z_L` given, it returns for every layer

        .. math::
            \frac{\partial \mathcal{L}}{\partial W_l} = \delta_l^T a_{l-1}, \qquad
            \frac{\partial \mathcal{L}}{\partial b_l} = \textstyle\sum_n \delta_l, \qquad
            \delta_{l-1} = (\delta_l W_l) \odot \phi'(z_{l-1}),

        each a batched matmul over the ``K`` sets, with :math:`\phi'` written in terms of :math:`a_l`.

        Args:
            x (torch.Tensor): ``[B, n_in]`` shared by all sets, or ``[K, B, n_in]`` one batch per set.
            weights (list): the tensors of :attr:`param_shapes`, each with a leading ``K``.

        Returns:
            (tuple): ``outputs`` ``[K, B, n_out]`` and ``vjp(grad_outputs)``, which maps
            :math:`\partial \mathcal{L} / \partial \text{outputs}` (``[K, B, n_out]``) to the gradients
            of :math:`\mathcal{L}` with respect to ``weights`` (a list shaped like ``weights``). Neither
            records an autograd graph.
        """
        if not self.batch_vjp_supported:
            raise ValueError('forward_batch_vjp: needs a plain MLP (no context-mod, batchnorm, spectral norm, '
                             'active dropout or out_fn) with a None/ReLU/tanh/sigmoid activation; '
                             'use forward_batch with autograd instead')
        if not isinstance(weights, (list, tuple)) or len(weights) != len(self._param_shapes):
            raise ValueError(f'weights: expected a list of {len(self._param_shapes)} tensors, got '
                             f'{len(weights) if isinstance(weights, (list, tuple)) else type(weights).__name__}')
        num_sets = weights[0].shape[0]
        for index, (w, shape) in enumerate(zip(weights, self._param_shapes)):
            if list(w.shape) != [num_sets] + list(shape):
                raise ValueError(f'weights[{index}]: expected shape {[num_sets] + list(shape)}, '
                                 f'got {list(w.shape)}')
        if x.dim() not in (2, 3) or (x.dim() == 3 and x.shape[0] != num_sets):
            raise ValueError(f'x: expected [B, n_in] or [{num_sets}, B, n_in], got {list(x.shape)}')
        derivative = None if self._a_fun is None else _output_derivative(self._a_fun)
        activation = None if self._a_fun is None else _FUNCTIONAL_FORMS.get(type(self._a_fun), self._a_fun)
        with torch.no_grad():
            # Forward in the layout [K, B, width], keeping each layer's input a_{l-1}. A shared input is
            # expanded (a stride-0 view, no copy); the weights may be strided views of one flat vector per set
            # (as HMC positions are), which bmm reads as they are.
            h = x.expand(num_sets, *x.shape) if x.dim() == 2 else x
            layer_inputs = []
            last = len(self._fc_slots) - 1
            for l, (w_slot, b_slot) in enumerate(self._fc_slots):
                weight, bias = weights[w_slot], None if b_slot is None else weights[b_slot]
                layer_inputs.append(h)
                if bias is None:
                    h = torch.bmm(h, weight.transpose(1, 2))
                else:
                    h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
                if l < last and activation is not None:
                    h = activation(h)
        outputs = h

        def vjp(grad_outputs):
            if tuple(grad_outputs.shape) != tuple(outputs.shape):
                raise ValueError(f'grad_outputs: expected shape {list(outputs.shape)}, '
                                 f'got {list(grad_outputs.shape)}')
            grads = [None] * len(weights)
            with torch.no_grad():
                delta = grad_outputs
                for l in range(last, -1, -1):
                    w_slot, b_slot = self._fc_slots[l]
                    a_prev = layer_inputs[l]
                    grads[w_slot] = torch.bmm(delta.transpose(1, 2), a_prev)
                    if b_slot is not None:
                        grads[b_slot] = delta.sum(1)
                    if l > 0:
                        delta = torch.bmm(delta, weights[w_slot])
                        if derivative is not None:
                            delta = derivative(delta, a_prev)
            return grads

        return outputs, vjp

    @staticmethod
    def _parse_condition(condition):
        """Return the batchnorm ``stats_id`` encoded in ``condition``."""
        if condition is None or isinstance(condition, int):
            return condition
        if isinstance(condition, dict):
            unknown = [k for k in condition if k not in ('bn_stats_id', 'cmod_ckpt_id')]
            if unknown:
                raise ValueError(f"condition: allowed keys are 'bn_stats_id', 'cmod_ckpt_id', got {unknown}")
            if 'cmod_ckpt_id' in condition:
                raise ValueError("condition: 'cmod_ckpt_id' is not supported; pass the checkpointed "
                                 "context-mod weights via weights={'mod_weights': ...}")
            return condition.get('bn_stats_id')
        raise TypeError(f'condition: expected None, an int or a dict, got {type(condition).__name__}')

    @staticmethod
    def weight_shapes(n_in=1, n_out=1, hidden_layers=(10, 10), use_bias=True):
        """Shapes of the linear layers' weights (and biases), input to output.

        Returns:
            list: ``[[h1, n_in], [h1], ..., [n_out, h_last], [n_out]]``.
        """
        shapes = []
        sizes = [n_in] + list(hidden_layers) + [n_out]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            shapes.append([fan_out, fan_in])
            if use_bias:
                shapes.append([fan_out])
        return shapes
