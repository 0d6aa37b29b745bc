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
_WEIGHT_DICT_KEYS = ('internal_weights', 'mod_weights')


def _shape_str(shape):
    return str(list(shape))


class MainNetInterface(ABC):
    """Mixin for networks that may receive (some of) their weights from outside.

    Use it as ``class Net(nn.Module, MainNetInterface)``; call both
    ``__init__`` methods, register every weight through :meth:`_register_param`
    (or the ``_add_*_layers`` helpers built on it) in the order it should have
    in :attr:`param_shapes`, and finish the constructor with
    :meth:`_is_properly_setup`. Inside ``forward``, :meth:`_resolve_weights`
    turns whatever the caller passed into one tensor per entry of
    :attr:`param_shapes`.
    """

    #: Number of dimensions of an input batch ``x`` that is *shared* by all
    #: weight sets in :meth:`forward_batch` (e.g. ``(2,)`` for ``[B, n_in]``).
    #: A per-set input has one more dimension. ``None``: callers must say.
    _SHARED_INPUT_NDIMS = None

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
                raise ValueError(f'init_weights: tensor {i} should have shape {_shape_str(p.shape)}, '
                                 f'got {_shape_str(v.shape)}')
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

    def _num_context_mod_shapes(self):
        """Number of :attr:`param_shapes` entries that belong to context-mod layers."""
        if self._context_mod_layers is None:
            return 0
        return sum(len(layer.param_shapes) for layer in self._context_mod_layers)

    # ------------------------------------------------------------------
    # Resolving the ``weights`` argument of ``forward``
    # ------------------------------------------------------------------
    def _resolve_weights(self, weights):
        """Turn the ``weights`` argument of ``forward`` into one tensor per entry
        of :attr:`param_shapes`.

        Accepted formats:

        - ``None``: all internally held tensors (only when the net holds all);
        - a list of ``len(param_shapes)`` tensors;
        - a list of ``len(hyper_shapes_learned)`` tensors (the missing ones
          are taken from :attr:`internal_params`);
        - a list of only the context-mod tensors;
        - a dict with keys ``'internal_weights'`` (all but context-mod tensors)
          and/or ``'mod_weights'`` (context-mod tensors); a missing key means
          "use the internal ones".

        Context-mod tensors may carry a leading per-sample dimension (see
        :class:`utils.context_mod_layer.ContextModLayer`).

        Raises:
            ValueError: wrong number or shape of tensors, or tensors missing
                that the network does not hold itself.
        """
        shapes = self._param_shapes
        n_all = len(shapes)
        is_cm = self._cm_slot_flags
        cm_slots = [i for i in range(n_all) if is_cm[i]]
        rest_slots = [i for i in range(n_all) if not is_cm[i]]
        given = [None] * n_all

        if weights is None:
            pass
        elif isinstance(weights, dict):
            unknown = [k for k in weights if k not in _WEIGHT_DICT_KEYS]
            if unknown or not weights:
                raise ValueError(f"weights: dict keys must be among {list(_WEIGHT_DICT_KEYS)}, got "
                                 f'{list(weights)}')
            for key, slots in (('internal_weights', rest_slots), ('mod_weights', cm_slots)):
                if key in weights:
                    self._place(given, slots, weights[key], f"weights['{key}']")
        elif isinstance(weights, (list, tuple, nn.ParameterList)):
            n = len(weights)
            learned = self._hyper_shapes_learned_ref
            if n == n_all:
                self._place(given, range(n_all), weights, 'weights')
            elif learned is not None and n == len(learned):
                self._place(given, learned, weights, 'weights')
            elif cm_slots and n == len(cm_slots):
                self._place(given, cm_slots, weights, 'weights')
            else:
                options = {n_all}
                if learned is not None:
                    options.add(len(learned))
                if cm_slots:
                    options.add(len(cm_slots))
                raise ValueError(f'weights: expected a list of {" or ".join(map(str, sorted(options)))} '
                                 f'tensors, got {n}')
        else:
            raise TypeError(f'weights: expected None, a list of tensors or a dict, got '
                            f'{type(weights).__name__}')

        internal = self._internal_params
        missing = []
        for slot in range(n_all):
            if given[slot] is None:
                index = self._slot_of_internal[slot]
                if index == -1:
                    missing.append(slot)
                else:
                    given[slot] = internal[index]
        if missing:
            if weights is None:
                raise ValueError(f'weights: the network was built without (some) internal weights '
                                 f'(no_weights / context_mod_no_weights), so {len(missing)} tensors of '
                                 f'shapes {[shapes[i] for i in missing]} must be passed; got None')
            raise ValueError(f'weights: tensors for param_shapes entries {missing} are not held by the '
                             f'network and were not passed')
        return given

    def _place(self, given, slots, tensors, arg):
        slots = list(slots)
        if not isinstance(tensors, (list, tuple, nn.ParameterList)):
            raise TypeError(f'{arg}: expected a list of tensors, got {type(tensors).__name__}')
        if len(tensors) != len(slots):
            raise ValueError(f'{arg}: expected {len(slots)} tensors, got {len(tensors)}')
        is_cm = self._cm_slot_flags
        for pos, (slot, t) in enumerate(zip(slots, tensors)):
            expected = self._param_shapes[slot]
            if not isinstance(t, torch.Tensor):
                raise TypeError(f'{arg}[{pos}]: expected a tensor of shape {_shape_str(expected)}, got '
                                f'{type(t).__name__}')
            shape = list(t.shape)
            if shape != expected and not (is_cm[slot] and shape[1:] == expected):
                raise ValueError(f'{arg}[{pos}]: expected shape {_shape_str(expected)}, got '
                                 f'{_shape_str(shape)}')
            given[slot] = t

    def _check_distilled_params(self, distilled_params):
        """Validate ``distilled_params`` against :attr:`hyper_shapes_distilled`."""
        shapes = self._hyper_shapes_distilled
        if shapes is None:
            raise ValueError('distilled_params: this network has no distillation targets '
                             '(hyper_shapes_distilled is None), got a value')
        if len(distilled_params) != len(shapes):
            raise ValueError(f'distilled_params: expected {len(shapes)} tensors, got '
                             f'{len(distilled_params)}')
        for i, (t, s) in enumerate(zip(distilled_params, shapes)):
            if list(t.shape) != list(s):
                raise ValueError(f'distilled_params[{i}]: expected shape {_shape_str(s)}, got '
                                 f'{_shape_str(t.shape)}')

    # ------------------------------------------------------------------
    # Batched forward
    # ------------------------------------------------------------------
    def forward_batch(self, x, weights, distilled_params=None, condition=None, x_per_set=None):
        """Evaluate ``K`` weight sets in one vectorised call.

        Equivalent to ``torch.stack([self.forward(x_k, w_k) for k in range(K)])``
        but runs :func:`torch.func.vmap` over :meth:`forward`, so the ``K``
        sets share every kernel launch.

        Args:
            x: ``[B, ...]`` (shared by all sets) or ``[K, B, ...]`` (one batch
                per set).
            weights: Any format :meth:`forward` accepts, with every tensor
                carrying a leading dimension ``K``.
            distilled_params (list, optional): Each tensor either of the
                shape in :attr:`hyper_shapes_distilled` (shared) or with a
                leading ``K`` (one per set).
            condition (optional): Passed to :meth:`forward` unchanged.
            x_per_set (bool, optional): Whether ``x`` has the leading ``K``.
                Inferred from ``x.dim()`` when the network declares its input
                rank; required otherwise.

        Returns:
            The outputs of :meth:`forward` with a leading dimension ``K``
            (a tuple of such tensors if :meth:`forward` returns a tuple).
            Dropout masks differ between sets (``randomness='different'``).
        """
        leaves = list(weights.values()) if isinstance(weights, dict) else weights
        if isinstance(weights, dict):
            leaves = [t for group in leaves for t in group]
        if not isinstance(leaves, (list, tuple, nn.ParameterList)) or len(leaves) == 0:
            raise ValueError('weights: forward_batch needs a non-empty list (or dict) of tensors '
                             'with a leading K dimension')
        if any(not isinstance(t, torch.Tensor) or t.dim() == 0 for t in leaves):
            raise ValueError('weights: every tensor must carry a leading K dimension')
        num_sets = leaves[0].shape[0]
        bad = [list(t.shape) for t in leaves if t.shape[0] != num_sets]
        if bad:
            raise ValueError(f'weights: all tensors must share the leading K={num_sets}, got shapes '
                             f'{bad}')

        if x_per_set is None:
            x_per_set = self._infer_x_per_set(x)
        if x_per_set and x.shape[0] != num_sets:
            raise ValueError(f'x: a per-set input needs leading dimension K={num_sets}, got shape '
                             f'{_shape_str(x.shape)}')

        dist_dims = None
        if distilled_params is not None:
            shapes = self._hyper_shapes_distilled or []
            if len(distilled_params) != len(shapes):
                raise ValueError(f'distilled_params: expected {len(shapes)} tensors, got '
                                 f'{len(distilled_params)}')
            dist_dims = [None if t.dim() == len(s) else 0 for t, s in zip(distilled_params, shapes)]

        def single(w, x_k, d_k):
            return self.forward(x_k, weights=w, distilled_params=d_k, condition=condition)

        batched = torch.func.vmap(single, in_dims=(0, 0 if x_per_set else None, dist_dims),
                                  randomness='different')
        return batched(weights, x, distilled_params)

    def _infer_x_per_set(self, x):
        shared = self._SHARED_INPUT_NDIMS
        if shared is None:
            raise ValueError(f'x_per_set: {type(self).__name__} cannot infer whether x of shape '
                             f'{_shape_str(x.shape)} is shared or per set; pass x_per_set=True/False')
        if x.dim() in shared:
            return False
        if x.dim() - 1 in shared:
            return True
        raise ValueError(f'x: expected {sorted(shared)} dims (shared) or {sorted(d + 1 for d in shared)} '
                         f'dims (one batch per set), got shape {_shape_str(x.shape)}')

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
