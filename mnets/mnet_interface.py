"""The contract every main network fulfils.

A *main network* computes :math:`y = f(x; \\theta)` where the weights
:math:`\\theta` either live inside the module (``internal_params``) or are
handed to :meth:`MainNetInterface.forward` from outside, typically produced by
a hypernetwork :math:`\\theta = h(e)`. Everything a hypernetwork or a
regularizer needs to know about the target network is described by
:attr:`MainNetInterface.param_shapes` (all tensors, in a fixed order) and its
companion :attr:`MainNetInterface.param_shapes_meta` (what each tensor is).

Forwards are *functional*: they only combine the tensors they are given with
``torch.nn.functional`` ops. Hence :func:`torch.func.vmap` composes with them,
and :meth:`MainNetInterface.forward_batch` evaluates ``K`` weight sets (tasks,
posterior samples, MCMC chains) in one vectorised call instead of a Python
loop.
"""
from abc import ABC, abstractmethod
from math import prod

import torch
from torch import nn

from mnets.mnet_weights import ExternalWeightsMixin, shape_str
from utils.batchnorm_layer import BatchNormLayer
from utils.context_mod_layer import ContextModLayer
from utils.torch_utils import init_params

#: Context-modulation keyword arguments shared by all networks and their
#: defaults (they equal the defaults of :class:`mnets.mlp.MLP`).
CONTEXT_MOD_DEFAULTS = {
    'use_context_mod': False,
    'context_mod_inputs': False,
    'no_last_layer_context_mod': False,
    'context_mod_no_weights': False,
    'context_mod_post_activation': False,
    'context_mod_gain_offset': False,
    'context_mod_gain_softplus': False,
}

_META_NAMES = ('weight', 'bias', 'bn_scale', 'bn_shift', 'cm_scale', 'cm_shift', 'embedding', None)


class MainNetInterface(ExternalWeightsMixin, ABC):
    """Mixin for networks that may receive (some of) their weights from outside.

    Use it as ``class Net(nn.Module, MainNetInterface)``; call both
    ``__init__`` methods, register every weight through :meth:`_register_param`
    (or the ``_add_*_layers`` helpers built on it) in the order it should have
    in :attr:`param_shapes`, and finish the constructor with
    :meth:`_is_properly_setup`. Inside ``forward``, :meth:`_resolve_weights`
    turns whatever the caller passed into one tensor per entry of
    :attr:`param_shapes`.

    How ``forward`` accepts its ``weights`` (and :meth:`forward_batch`) is
    inherited from :class:`mnets.mnet_weights.ExternalWeightsMixin`.
    """

    def __init__(self):
        self._internal_params = None
        self._param_shapes = None
        self._param_shapes_meta = None
        self._hyper_shapes_learned = None
        self._hyper_shapes_learned_ref = None
        self._hyper_shapes_distilled = None
        self._has_bias = None
        self._has_fc_out = None
        self._mask_fc_out = None
        self._has_linear_out = None
        self._layer_weight_tensors = None
        self._layer_bias_vectors = None
        self._batchnorm_layers = None
        self._context_mod_layers = None

    # ------------------------------------------------------------------
    # Construction helpers
    # ------------------------------------------------------------------
    def _init_param_bookkeeping(self, any_internal, any_external):
        """Start empty shape lists; call before registering any parameter."""
        self._param_shapes = []
        self._param_shapes_meta = []
        self._internal_params = nn.ParameterList() if any_internal else None
        self._hyper_shapes_learned = [] if any_external else None
        self._hyper_shapes_learned_ref = [] if any_external else None
        if self._layer_weight_tensors is None:
            self._layer_weight_tensors = nn.ParameterList()
        if self._layer_bias_vectors is None:
            self._layer_bias_vectors = nn.ParameterList()

    def _register_param(self, shape, name, layer, param=None):
        """Append one weight tensor to :attr:`param_shapes`.

        Args:
            shape (list): Shape of the tensor.
            name (str): Its ``param_shapes_meta`` name.
            layer (int): Its ``param_shapes_meta`` layer.
            param (nn.Parameter, optional): The internally held tensor; ``None``
                means the tensor must come from outside (hypernetwork).

        Returns:
            int: The index of the tensor in :attr:`param_shapes`.
        """
        slot = len(self._param_shapes)
        self._param_shapes.append(list(shape))
        if param is None:
            index = -1
            self._hyper_shapes_learned.append(list(shape))
            self._hyper_shapes_learned_ref.append(slot)
        else:
            index = len(self._internal_params)
            self._internal_params.append(param)
            if name == 'weight':
                self._layer_weight_tensors.append(param)
            elif name == 'bias':
                self._layer_bias_vectors.append(param)
        self._param_shapes_meta.append({'name': name, 'index': index, 'layer': layer})
        return slot

    def _add_context_mod_layers(self, cm_shapes, cm_layers=None):
        """Create one :class:`ContextModLayer` per shape and register its weights.

        Reads the options ``self._context_mod_no_weights``,
        ``self._context_mod_gain_offset`` and ``self._context_mod_gain_softplus``.

        Returns:
            list: For each layer, the list of its slots in :attr:`param_shapes`.
        """
        if self._context_mod_layers is None:
            self._context_mod_layers = nn.ModuleList()
        all_slots = []
        for i, shape in enumerate(cm_shapes):
            cm_layer = ContextModLayer(shape, no_weights=self._context_mod_no_weights,
                                       apply_gain_offset=self._context_mod_gain_offset,
                                       apply_gain_softplus=self._context_mod_gain_softplus)
            self._context_mod_layers.append(cm_layer)
            layer = -1 if cm_layers is None else cm_layers[i]
            own = None if self._context_mod_no_weights else list(cm_layer.weights)
            slots = []
            for j, (kind, s) in enumerate(zip(cm_layer.param_shapes_meta, cm_layer.param_shapes)):
                name = 'cm_scale' if kind == 'gain' else 'cm_shift'
                slots.append(self._register_param(s, name, layer, None if own is None else own[j]))
            all_slots.append(slots)
        return all_slots

    def _add_batchnorm_layers(self, bn_sizes, bn_no_weights, bn_layers=None, distill_bn_stats=False,
                              bn_track_stats=True):
        """Create one :class:`BatchNormLayer` per size and register scale and shift.

        Returns:
            list: For each layer, its ``(scale_slot, shift_slot)``.
        """
        if self._batchnorm_layers is None:
            self._batchnorm_layers = nn.ModuleList()
        if distill_bn_stats and self._hyper_shapes_distilled is None:
            self._hyper_shapes_distilled = []
        all_slots = []
        for i, n in enumerate(bn_sizes):
            bn_layer = BatchNormLayer(n, affine=not bn_no_weights, track_running_stats=bn_track_stats)
            self._batchnorm_layers.append(bn_layer)
            layer = -1 if bn_layers is None else bn_layers[i]
            own = None if bn_no_weights else list(bn_layer.weights)
            slots = tuple(self._register_param(s, name, layer, None if own is None else own[j])
                          for j, (name, s) in enumerate(zip(('bn_scale', 'bn_shift'),
                                                            bn_layer.param_shapes)))
            all_slots.append(slots)
            if distill_bn_stats:
                self._hyper_shapes_distilled.extend([[n], [n]])
        return all_slots

    def _add_fc_layers(self, in_sizes, out_sizes, no_weights, fc_layers=None):
        """Register weight ``[n_out, n_in]`` (and bias ``[n_out]``) per layer.

        Internally held tensors get PyTorch's default ``nn.Linear`` init.

        Returns:
            list: For each layer, ``(weight_slot, bias_slot or None)``.
        """
        all_slots = []
        for i, (n_in, n_out) in enumerate(zip(in_sizes, out_sizes)):
            layer = -1 if fc_layers is None else fc_layers[i]
            all_slots.append(self._add_weight_and_bias([n_out, n_in], no_weights, layer))
        return all_slots

    def _add_weight_and_bias(self, weight_shape, no_weights, layer):
        """Register a weight tensor of any shape (linear or conv) and its bias."""
        weight = None if no_weights else nn.Parameter(torch.empty(*weight_shape))
        bias = None
        if self._has_bias and not no_weights:
            bias = nn.Parameter(torch.empty(weight_shape[0]))
        if weight is not None:
            init_params(weight, bias)
        w_slot = self._register_param(weight_shape, 'weight', layer, weight)
        b_slot = None
        if self._has_bias:
            b_slot = self._register_param([weight_shape[0]], 'bias', layer, bias)
        return w_slot, b_slot

    def _load_init_weights(self, init_weights):
        """Copy ``init_weights`` (one tensor per internal parameter) in place."""
        if init_weights is None:
            return
        internal = self._internal_params
        if internal is None:
            raise ValueError('init_weights: the network holds no internal weights to initialise')
        if len(init_weights) != len(internal):
            raise ValueError(f'init_weights: expected {len(internal)} tensors (one per internal '
                             f'parameter), got {len(init_weights)}')
        for i, (p, v) in enumerate(zip(internal, init_weights)):
            if tuple(v.shape) != tuple(p.shape):
                raise ValueError(f'init_weights: tensor {i} should have shape {shape_str(p.shape)}, '
                                 f'got {shape_str(v.shape)}')
        with torch.no_grad():
            for p, v in zip(internal, init_weights):
                p.copy_(v)

    def _is_properly_setup(self, check_has_bias=True):
        """Check the bookkeeping of a finished constructor (a developer error otherwise)."""
        problems = []
        if self._param_shapes is None:
            problems.append('_param_shapes is not set')
        if self._internal_params is None and self._hyper_shapes_learned is None:
            problems.append('neither internal_params nor hyper_shapes_learned is set')
        meta = self._param_shapes_meta
        if meta is not None and self._param_shapes is not None:
            if len(meta) != len(self._param_shapes):
                problems.append('param_shapes_meta and param_shapes differ in length')
            n_int = 0 if self._internal_params is None else len(self._internal_params)
            for d in meta:
                if not {'name', 'index', 'layer'} <= set(d) or d['name'] not in _META_NAMES:
                    problems.append(f'bad param_shapes_meta entry {d}')
                elif not (d['index'] == -1 or 0 <= d['index'] < n_int):
                    problems.append(f'param_shapes_meta index out of range in {d}')
        for attr in ('_has_fc_out', '_mask_fc_out', '_has_linear_out'):
            if not isinstance(getattr(self, attr), bool):
                problems.append(f'{attr} must be a bool')
        if self._layer_weight_tensors is None or self._layer_bias_vectors is None:
            problems.append('layer_weight_tensors / layer_bias_vectors are not set')
        if check_has_bias and not isinstance(self._has_bias, bool):
            problems.append('_has_bias must be a bool')
        if problems:
            raise RuntimeError(f'{type(self).__name__} is not properly set up: ' + '; '.join(problems))
        self._slot_of_internal = [d['index'] for d in meta] if meta is not None else None
        self._cm_slot_flags = [d['name'] in ('cm_scale', 'cm_shift') for d in meta] \
            if meta is not None else [False] * len(self._param_shapes)

    @staticmethod
    def _parse_context_mod_args(cm_kwargs):
        """Fill missing context-mod options in ``cm_kwargs`` (in place) with defaults.

        Returns:
            list: The keys of ``cm_kwargs`` that are not context-mod options.
        """
        for key, default in CONTEXT_MOD_DEFAULTS.items():
            cm_kwargs.setdefault(key, default)
        return [k for k in cm_kwargs if k not in CONTEXT_MOD_DEFAULTS]

    def _store_context_mod_options(self, cm_kwargs):
        """Keep each context-mod option of ``cm_kwargs`` (completed by
        :meth:`_parse_context_mod_args`) as attribute ``self._<option>``, which
        :meth:`_add_context_mod_layers` and the forwards read."""
        for key in CONTEXT_MOD_DEFAULTS:
            setattr(self, f'_{key}', cm_kwargs[key])

    def _num_context_mod_weights(self):
        """Number of scalars in the context-mod tensors of :attr:`param_shapes`
        (for the constructors' summaries; call after :meth:`_is_properly_setup`)."""
        return self.shapes_to_num_weights([s for s, is_cm in zip(self._param_shapes, self._cm_slot_flags)
                                           if is_cm])

    def _num_context_mod_shapes(self):
        """Number of :attr:`param_shapes` entries that belong to context-mod layers."""
        if self._context_mod_layers is None:
            return 0
        return sum(len(layer.param_shapes) for layer in self._context_mod_layers)

    # ------------------------------------------------------------------
    # Public attributes
    # ------------------------------------------------------------------
    @property
    def internal_params(self):
        """Tensors the network holds itself (what an optimizer should get), or
        ``None`` when every weight comes from outside.

        :type: torch.nn.ParameterList or None
        """
        return self._internal_params

    @property
    def weights(self):
        """Alias of :attr:`internal_params`.

        :type: torch.nn.ParameterList or None
        """
        return self._internal_params

    @property
    def internal_params_ref(self):
        """For each internal parameter, its index in :attr:`param_shapes`.

        :type: list or None
        """
        if self._internal_params is None:
            return None
        ref = [-1] * len(self._internal_params)
        for slot, d in enumerate(self.param_shapes_meta):
            if d['index'] != -1:
                ref[d['index']] = slot
        return ref

    @property
    def param_shapes(self):
        """Shapes of *all* weight tensors, as if the network held every one of
        them; independent of which are held internally.

        :type: list of list of int
        """
        return self._param_shapes

    @property
    def param_shapes_meta(self):
        """One dict per entry of :attr:`param_shapes`: ``name`` (``'weight'``,
        ``'bias'``, ``'bn_scale'``, ``'bn_shift'``, ``'cm_scale'``,
        ``'cm_shift'``), ``index`` (position in :attr:`internal_params`, or
        ``-1`` when supplied from outside) and ``layer`` (tensors with the same
        value act in the same layer; ``-1`` if unspecified). A network may add
        keys of its own (hypnettorch's RNNs mark weight roles under ``'info'``).

        :type: list of dict
        """
        if self._param_shapes_meta is None:
            raise NotImplementedError(f'param_shapes_meta is not available for {type(self).__name__}')
        return self._param_shapes_meta

    @property
    def hyper_shapes_learned(self):
        """Shapes of the tensors ``forward`` expects from outside, or ``None``
        when the network holds all of its weights.

        :type: list or None
        """
        return self._hyper_shapes_learned

    @property
    def hyper_shapes_learned_ref(self):
        """For each entry of :attr:`hyper_shapes_learned`, its index in
        :attr:`param_shapes`.

        :type: list or None
        """
        return self._hyper_shapes_learned_ref

    @property
    def hyper_shapes_distilled(self):
        """Shapes of tensors the network estimates itself during training (e.g.
        batchnorm running statistics) that should afterwards be distilled into a
        hypernetwork; ``None`` if there are none.

        :type: list or None
        """
        return self._hyper_shapes_distilled

    @property
    def has_bias(self):
        """Whether layers have bias vectors.

        :type: bool
        """
        return self._has_bias

    @property
    def has_fc_out(self):
        """Whether the output layer is fully connected.

        :type: bool
        """
        return self._has_fc_out

    @property
    def mask_fc_out(self):
        """Whether the last two entries of :attr:`param_shapes` (or the last
        one without biases) are the output layer's weight and bias, which
        :meth:`get_output_weight_mask` relies on (multi-head settings).

        :type: bool
        """
        return self._mask_fc_out

    @property
    def has_linear_out(self):
        """Whether no nonlinearity is applied to the output.

        :type: bool
        """
        return self._has_linear_out

    @property
    def num_params(self):
        """Total number of scalars in all tensors of :attr:`param_shapes`.

        :type: int
        """
        return MainNetInterface.shapes_to_num_weights(self._param_shapes)

    @property
    def num_internal_params(self):
        """Number of scalars in :attr:`internal_params`.

        :type: int
        """
        if self._internal_params is None:
            return 0
        return int(sum(p.numel() for p in self._internal_params))

    @property
    def layer_weight_tensors(self):
        """Internally held weight matrices / kernels (targets of :meth:`custom_init`).

        :type: torch.nn.ParameterList
        """
        return self._layer_weight_tensors

    @property
    def layer_bias_vectors(self):
        """Internally held bias vectors, aligned with :attr:`layer_weight_tensors`.

        :type: torch.nn.ParameterList
        """
        return self._layer_bias_vectors

    @property
    def batchnorm_layers(self):
        """The :class:`utils.batchnorm_layer.BatchNormLayer` modules, or ``None``.

        :type: torch.nn.ModuleList or None
        """
        return self._batchnorm_layers

    @property
    def context_mod_layers(self):
        """The :class:`utils.context_mod_layer.ContextModLayer` modules, or ``None``.

        :type: torch.nn.ModuleList or None
        """
        return self._context_mod_layers

    @abstractmethod
    def distillation_targets(self):
        """Current values of the tensors in :attr:`hyper_shapes_distilled`
        (``None`` if there are none)."""

    @abstractmethod
    def forward(self, x, weights=None, distilled_params=None, condition=None):
        """Compute the network output for input ``x``.

        Args:
            x: Input batch.
            weights: See :meth:`_resolve_weights` for the accepted formats.
            distilled_params (list, optional): Tensors of
                :attr:`hyper_shapes_distilled` to use instead of the internal
                ones (e.g. batchnorm statistics of a given task).
            condition (optional): Network-specific conditioning (e.g. the
                batchnorm ``stats_id``).
        """

    # ------------------------------------------------------------------
    # Utilities
    # ------------------------------------------------------------------
    @staticmethod
    def shapes_to_num_weights(dims):
        """Number of scalars in tensors of the given shapes.

        Args:
            dims (list): List of shapes.

        Returns:
            int
        """
        return int(sum(prod(s) for s in dims))

    def custom_init(self, normal_init=False, normal_std=0.02, zero_bias=True):
        """Re-initialise :attr:`layer_weight_tensors` with Xavier-uniform
        (or :math:`\\mathcal{N}(0, \\sigma^2)` with ``normal_init``) and zero the
        biases (if ``zero_bias``)."""
        with torch.no_grad():
            for w in self._layer_weight_tensors:
                if normal_init:
                    nn.init.normal_(w, mean=0.0, std=normal_std)
                else:
                    nn.init.xavier_uniform_(w)
            if zero_bias:
                for b in self._layer_bias_vectors:
                    if b is not None:
                        nn.init.zeros_(b)

    def get_output_weight_mask(self, out_inds=None, device=None):
        """Boolean masks selecting the weights that connect only to the output
        units ``out_inds`` (all outputs if ``None``).

        Returns:
            list: One entry per :attr:`param_shapes` entry: ``None`` for tensors
            not in the output layer, a bool mask otherwise.
        """
        if not (self._has_fc_out and self._mask_fc_out):
            raise NotImplementedError(f'get_output_weight_mask: {type(self).__name__} has no maskable '
                                      f'fully-connected output layer')
        n = len(self._param_shapes)
        masks = [None] * n
        w_slot = n - 2 if self._has_bias else n - 1
        slots = [w_slot] + ([n - 1] if self._has_bias else [])
        for slot in slots:
            shape = self._param_shapes[slot]
            if out_inds is None:
                mask = torch.ones(*shape, dtype=torch.bool, device=device)
            else:
                mask = torch.zeros(*shape, dtype=torch.bool, device=device)
                mask[out_inds] = True
            masks[slot] = mask
        return masks

    def overwrite_internal_params(self, new_params):
        """Copy ``new_params`` (one tensor per internal parameter) into
        :attr:`internal_params`, e.g. a weight draw produced by a hypernetwork."""
        self._load_init_weights(new_params)

    @staticmethod
    def flatten_params(params, param_shapes=None, unflatten=False):
        """Concatenate tensors into one vector, or split a vector back.

        Args:
            params: List of tensors, or (``unflatten=True``) a vector whose last
                dimension holds the concatenated entries.
            param_shapes (list): Shapes to split into; required to unflatten.
            unflatten (bool): Split instead of concatenate.

        Returns:
            A vector, or a list of tensors of ``param_shapes``.
        """
        if not unflatten:
            return torch.cat([p.flatten() for p in params])
        if param_shapes is None:
            raise ValueError('param_shapes: required when unflatten=True, got None')
        sizes = [prod(s) for s in param_shapes]
        if params.shape[-1] != sum(sizes):
            raise ValueError(f'params: expected {sum(sizes)} entries to unflatten, got '
                             f'{params.shape[-1]}')
        lead = list(params.shape[:-1])
        return [chunk.reshape(*lead, *s) for chunk, s in zip(torch.split(params, sizes, dim=-1),
                                                             param_shapes)]
