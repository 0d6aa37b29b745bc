"""The contract every hypernetwork implements.

A hypernetwork :math:`h` maps an input -- a conditional embedding :math:`e` (e.g. a task embedding), an
unconditional input :math:`z` (e.g. noise), or both -- to the weights of another network (the *main* or
*target* network, see :mod:`mnets.mnet_interface`):

.. math::

    W = h(z, e; \\theta)

:math:`\\theta` are the *unconditional* parameters (shared by all conditions), the embeddings :math:`e_i` are
*conditional* parameters (one set per condition :math:`i`). Both may be held by the hypernetwork itself
(:attr:`HyperNetInterface.internal_params`) or be supplied by the caller (``weights`` of ``forward``), which is
what makes ``torch.func.vmap``/``grad`` over :math:`\\theta` possible.

One forward produces the weights of ``K`` conditions at once (``cond_id=[i, j, ...]`` or a batch of inputs),
returned in one of four formats, all convertible into each other by
:meth:`HyperNetInterface.convert_out_format`:

- ``'flattened'``: a tensor ``[K, num_outputs]``;
- ``'stacked'``: a list with one tensor ``[K, *s]`` per target shape ``s`` -- the input of
  :meth:`mnets.mnet_interface.MainNetInterface.forward_batch`;
- ``'sequential'``: a list of ``K`` lists of tensors with the target shapes;
- ``'squeezed'``: like ``'sequential'``, but a single list of tensors when ``K == 1``.
"""
import numbers
from math import prod
from warnings import warn

import torch
from torch import nn

RET_FORMATS = ('flattened', 'sequential', 'squeezed', 'stacked')
_WEIGHT_DICT_KEYS = ('uncond_weights', 'cond_weights')


def _shape_list(shape):
    return [int(d) for d in shape]


class HyperNetInterface:
    """Mixin for hypernetworks: ``class HMLP(nn.Module, HyperNetInterface)``.

    Implementations call :meth:`_register_param` in their constructor for every parameter tensor (in a fixed
    order), set :attr:`target_shapes` and :attr:`num_known_conds`, and implement :meth:`forward` on top of
    :meth:`_preprocess_forward_args` and :meth:`_flat_to_ret_format`.

    Bookkeeping (the *why*): :attr:`param_shapes` lists every tensor the hypernetwork needs, held or not, so
    that a caller can supply any subset from outside. :attr:`param_shapes_meta` says what each is
    (``name`` in ``'embedding'``, ``'weight'``, ``'bias'``, ``'bn_scale'``, ``'bn_shift'``; ``index`` into
    :attr:`internal_params` or ``-1`` when supplied from outside; ``layer``), and
    :attr:`unconditional_param_shapes_ref` splits the list into :math:`\\theta` and the conditional rest.
    """

    def __init__(self):
        self._target_shapes = None
        self._num_known_conds = 0
        self._param_shapes = []
        self._param_shapes_meta = []
        self._internal_params = None
        self._hyper_shapes_learned = None
        self._hyper_shapes_learned_ref = None
        self._hyper_shapes_distilled = None
        self._unconditional_param_shapes_ref = []
        self._has_bias = False
        self._has_fc_out = True
        self._mask_fc_out = True
        self._has_linear_out = True
        self._batchnorm_layers = None
        self._context_mod_layers = None

    # ------------------------------------------------------------------ construction helpers
    def _register_param(self, shape, name, layer, conditional, internal, init_fn=None, **extra_meta):
        """Append one parameter tensor to the bookkeeping; returns its index in :attr:`param_shapes`.

        ``internal`` decides whether the tensor is created here (then ``init_fn(tensor)`` initialises it
        in place) or expected from outside (then it joins :attr:`hyper_shapes_learned`).
        """
        shape = _shape_list(shape)
        ps_index = len(self._param_shapes)
        self._param_shapes.append(shape)
        index = -1
        if internal:
            if self._internal_params is None:
                self._internal_params = nn.ParameterList()
            param = nn.Parameter(torch.empty(shape))
            if init_fn is not None:
                with torch.no_grad():
                    init_fn(param)
            self._internal_params.append(param)
            index = len(self._internal_params) - 1
        else:
            if self._hyper_shapes_learned is None:
                self._hyper_shapes_learned = []
                self._hyper_shapes_learned_ref = []
            self._hyper_shapes_learned.append(shape)
            self._hyper_shapes_learned_ref.append(ps_index)
        self._param_shapes_meta.append({'name': name, 'index': index, 'layer': layer, **extra_meta})
        if not conditional:
            self._unconditional_param_shapes_ref.append(ps_index)
        return ps_index

    @staticmethod
    def _check_target_shapes(target_shapes):
        """Validate ``target_shapes`` (non-empty list of non-empty lists of positive ints); return a copy."""
        if not isinstance(target_shapes, (list, tuple)) or len(target_shapes) == 0:
            raise ValueError('target_shapes: expected a non-empty list of shapes, got %r' % (target_shapes,))
        out = []
        for s in target_shapes:
            if not isinstance(s, (list, tuple, torch.Size)) or len(s) == 0 or \
                    not all(isinstance(d, numbers.Integral) and d > 0 for d in s):
                raise ValueError('target_shapes: expected every shape to be a non-empty list of positive ints, '
                                 'got %r' % (s,))
            out.append(_shape_list(s))
        return out

    # ------------------------------------------------------------------ main-network style attributes
    @property
    def internal_params(self):
        """Parameters held by this network (``nn.ParameterList``), ``None`` when it holds none."""
        return self._internal_params

    @property
    def weights(self):
        """Alias of :attr:`internal_params`."""
        return self.internal_params

    @property
    def param_shapes(self):
        """Shapes of all parameter tensors, held or supplied from outside, in a fixed order."""
        return self._param_shapes

    @property
    def param_shapes_meta(self):
        """One dict per entry of :attr:`param_shapes`: ``name``, ``index`` (into :attr:`internal_params`,
        ``-1`` if supplied from outside) and ``layer``."""
        return self._param_shapes_meta

    @property
    def hyper_shapes_learned(self):
        """Shapes of the tensors that must be supplied via ``weights`` (``None`` when all are held)."""
        return self._hyper_shapes_learned

    @property
    def hyper_shapes_learned_ref(self):
        """Indices into :attr:`param_shapes` of :attr:`hyper_shapes_learned`."""
        return self._hyper_shapes_learned_ref

    @property
    def hyper_shapes_distilled(self):
        """Hypernetworks here have no distilled tensors: ``None``."""
        return self._hyper_shapes_distilled

    @property
    def has_bias(self):
        """Whether the fully-connected layers of the hypernetwork have biases."""
        return self._has_bias

    @property
    def has_fc_out(self):
        """Whether the output is produced by a fully-connected layer."""
        return self._has_fc_out

    @property
    def mask_fc_out(self):
        """Whether the output layer's weights are the last entries of :attr:`param_shapes`."""
        return self._mask_fc_out

    @property
    def has_linear_out(self):
        """Whether no nonlinearity follows the output layer."""
        return self._has_linear_out

    @property
    def num_params(self):
        """Total number of scalars in :attr:`param_shapes`."""
        return self.shapes_to_num_weights(self.param_shapes)

    @property
    def num_internal_params(self):
        """Number of scalars held in :attr:`internal_params`."""
        if self.internal_params is None:
            return 0
        return sum(p.numel() for p in self.internal_params)

    def _params_named(self, name):
        params = self.internal_params
        return [params[m['index']] for m in self.param_shapes_meta
                if m['name'] == name and m['index'] != -1 and m.get('layer', -1) != -1]

    @property
    def layer_weight_tensors(self):
        """Held weight matrices of the fully-connected layers, input to output."""
        return self._params_named('weight')

    @property
    def layer_bias_vectors(self):
        """Held bias vectors of the fully-connected layers, input to output."""
        return self._params_named('bias')

    @property
    def batchnorm_layers(self):
        """Batch-norm layers (``nn.ModuleList``) or ``None``."""
        return self._batchnorm_layers

    @property
    def context_mod_layers(self):
        """Hypernetworks have no context-modulation layers: ``None``."""
        return self._context_mod_layers

    def distillation_targets(self):
        """Hypernetworks here have nothing to distill: ``None``."""
        return None

    @staticmethod
    def shapes_to_num_weights(dims):
        """Number of scalars in a list of shapes."""
        return int(sum(prod(s) for s in dims))

    @staticmethod
    def flatten_params(params, param_shapes=None, unflatten=False):
        """Concatenate a list of tensors into one vector, or (``unflatten=True``) split a vector (or a batch
        ``[K, n]``) back into tensors of ``param_shapes``."""
        if not unflatten:
            return torch.cat([p.reshape(-1) for p in params])
        if param_shapes is None:
            raise ValueError('param_shapes: expected a list of shapes when unflatten=True, got None')
        sizes = [prod(s) for s in param_shapes]
        lead = list(params.shape[:-1])
        return [c.reshape(*lead, *s) for c, s in zip(torch.split(params, sizes, dim=-1), param_shapes)]

    def overwrite_internal_params(self, new_params):
        """Copy ``new_params`` (same order and shapes as :attr:`internal_params`) into the held tensors."""
        if self.internal_params is None or len(new_params) != len(self.internal_params):
            n = 0 if self.internal_params is None else len(self.internal_params)
            raise ValueError('new_params: expected %d tensors, got %d' % (n, len(new_params)))
        with torch.no_grad():
            for p, q in zip(self.internal_params, new_params):
                p.copy_(q)

    # ------------------------------------------------------------------ hypernetwork attributes
    @property
    def target_shapes(self):
        """Shapes of the produced tensors (usually the main network's :attr:`param_shapes` or
        :attr:`hyper_shapes_learned`)."""
        return self._target_shapes

    @property
    def num_outputs(self):
        """Number of produced scalars per condition: the sum of the sizes of :attr:`target_shapes`."""
        return self.shapes_to_num_weights(self.target_shapes)

    @property
    def num_known_conds(self):
        """Number of discrete conditions; valid ``cond_id`` values are ``0 .. num_known_conds - 1``."""
        return self._num_known_conds

    @property
    def unconditional_param_shapes_ref(self):
        """Indices into :attr:`param_shapes` of the unconditional parameters :math:`\\theta`."""
        return self._unconditional_param_shapes_ref

    @property
    def unconditional_param_shapes(self):
        """Shapes of :math:`\\theta`, held or not."""
        return [self.param_shapes[i] for i in self.unconditional_param_shapes_ref]

    @property
    def conditional_param_shapes_ref(self):
        """Indices into :attr:`param_shapes` of the conditional parameters (the complement of :math:`\\theta`)."""
        uncond = set(self.unconditional_param_shapes_ref)
        return [i for i in range(len(self.param_shapes)) if i not in uncond]

    @property
    def conditional_param_shapes(self):
        """Shapes of the conditional parameters (e.g. task embeddings), held or not."""
        return [self.param_shapes[i] for i in self.conditional_param_shapes_ref]

    @property
    def unconditional_params_ref(self):
        """Indices into :attr:`internal_params` of the held part of :math:`\\theta` (``None`` if none)."""
        ref = [self.param_shapes_meta[i]['index'] for i in self.unconditional_param_shapes_ref
               if self.param_shapes_meta[i]['index'] != -1]
        return ref if ref else None

    @property
    def unconditional_params(self):
        """The held unconditional parameters :math:`\\theta` (``None`` if none are held)."""
        ref = self.unconditional_params_ref
        if ref is None:
            return None
        return [self.internal_params[i] for i in ref]

    @property
    def conditional_params(self):
        """The held conditional parameters, e.g. task embeddings (``None`` if none are held)."""
        params = [self.internal_params[self.param_shapes_meta[i]['index']]
                  for i in self.conditional_param_shapes_ref if self.param_shapes_meta[i]['index'] != -1]
        return params if params else None

    def get_task_embs(self):
        """Deprecated alias of :attr:`conditional_params` (one embedding per condition)."""
        warn('get_task_embs is deprecated: use the attribute conditional_params', DeprecationWarning)
        params = self.conditional_params
        if params is None or len(params) != self.num_known_conds:
            raise RuntimeError('get_task_embs: conditional parameters are not one embedding per condition '
                               '(%d conditions)' % self.num_known_conds)
        return params

    def get_task_emb(self, task_id):
        """Deprecated: the ``task_id``-th entry of :attr:`conditional_params`."""
        self._parse_cond_ids(task_id, arg='task_id')
        return self.get_task_embs()[task_id]

    def add_to_uncond_params(self, dparams, params=None):
        """Return ``[p + dp]`` for :math:`\\theta` (or ``params``) and the perturbations ``dparams``."""
        if params is None:
            params = self.unconditional_params
            if params is None:
                raise ValueError('params: expected a list of tensors, since this hypernetwork holds no '
                                 'unconditional parameters; got None')
        if len(params) != len(dparams):
            raise ValueError('dparams: expected %d tensors, got %d' % (len(params), len(dparams)))
        return [p + dp for p, dp in zip(params, dparams)]

    # ------------------------------------------------------------------ forward argument handling
    def forward(self, uncond_input=None, cond_input=None, cond_id=None, weights=None, distilled_params=None,
                condition=None, ret_format='squeezed'):
        """Produce main-network weights.

        Args:
            uncond_input (torch.Tensor, optional): ``[K, uncond_in_size]``.
            cond_input (torch.Tensor, optional): ``[K, cond_in_size]`` conditional embeddings; mutually
                exclusive with ``cond_id``.
            cond_id (int or list): condition(s) whose held (or supplied) embeddings are used; a list of
                ``K`` ids yields ``K`` weight sets in one batched pass.
            weights (list or dict, optional): a list in :attr:`hyper_shapes_learned` order (when some tensors
                are supplied from outside) or in :attr:`param_shapes` order; or a dict with keys
                ``'uncond_weights'`` (:math:`\\theta` in :attr:`unconditional_param_shapes` order) and/or
                ``'cond_weights'`` (in :attr:`conditional_param_shapes` order). Missing parts are taken
                from :attr:`internal_params`.
            distilled_params: unused by the hypernetworks here.
            condition: passed to batch-norm layers as statistics id.
            ret_format (str): ``'flattened'``, ``'stacked'``, ``'sequential'`` or ``'squeezed'`` (see the
                module docstring).
        """
        raise NotImplementedError('%s must implement forward' % type(self).__name__)

    def _parse_cond_ids(self, cond_id, arg='cond_id'):
        """Validate ``cond_id`` (int or list of ints in ``[0, num_known_conds)``); return a list of ints."""
        ids = [cond_id] if isinstance(cond_id, numbers.Integral) else cond_id
        if isinstance(ids, torch.Tensor) or not isinstance(ids, (list, tuple)) or len(ids) == 0 or \
                not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in ids):
            raise TypeError('%s: expected an int or a non-empty list of ints, got %r' % (arg, cond_id))
        n = self.num_known_conds
        for i in ids:
            if i < 0 or i >= n:
                raise ValueError('%s: expected values in [0, %d), got %d' % (arg, n, i))
        return [int(i) for i in ids]

    def _check_tensor_list(self, tensors, shapes, arg):
        if not isinstance(tensors, (list, tuple)):
            raise TypeError('%s: expected a list of tensors, got %s' % (arg, type(tensors).__name__))
        if len(tensors) != len(shapes):
            raise ValueError('%s: expected %d tensors, got %d' % (arg, len(shapes), len(tensors)))
        for i, (t, s) in enumerate(zip(tensors, shapes)):
            if not isinstance(t, torch.Tensor) or list(t.shape) != list(s):
                got = list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError('%s[%d]: expected shape %s, got %s' % (arg, i, list(s), got))
        return list(tensors)

    def _resolve_weights(self, weights):
        """Split/merge ``weights`` with the held tensors into (uncond_weights, cond_weights).

        Either part is ``None`` when it is neither held nor supplied.
        """
        uncond_shapes = self.unconditional_param_shapes
        cond_shapes = self.conditional_param_shapes
        uncond_w = self.unconditional_params
        cond_w = self.conditional_params
        if uncond_w is not None and len(uncond_w) != len(uncond_shapes):
            uncond_w = None
        if cond_w is not None and len(cond_w) != len(cond_shapes):
            cond_w = None
        if weights is None:
            pass
        elif isinstance(weights, dict):
            unknown = set(weights) - set(_WEIGHT_DICT_KEYS)
            if unknown:
                raise ValueError('weights: expected dict keys among %s, got %s'
                                 % (list(_WEIGHT_DICT_KEYS), sorted(unknown)))
            if weights.get('uncond_weights') is not None:
                uncond_w = self._check_tensor_list(weights['uncond_weights'], uncond_shapes,
                                                   "weights['uncond_weights']")
            if weights.get('cond_weights') is not None:
                cond_w = self._check_tensor_list(weights['cond_weights'], cond_shapes,
                                                 "weights['cond_weights']")
        elif isinstance(weights, (list, tuple)):
            full = self._full_weight_list(weights)
            uncond_w = [full[i] for i in self.unconditional_param_shapes_ref]
            cond_w = [full[i] for i in self.conditional_param_shapes_ref]
        else:
            raise TypeError('weights: expected a list or dict of tensors, got %s' % type(weights).__name__)
        if uncond_w is None and len(uncond_shapes) > 0:
            raise ValueError('weights: this hypernetwork holds no unconditional weights (no_uncond_weights=True);'
                             " expected %d tensors of shapes %s via weights or weights['uncond_weights'], got %s"
                             % (len(uncond_shapes), uncond_shapes,
                                'None' if weights is None else 'no unconditional weights'))
        if uncond_w is None:
            uncond_w = []
        if cond_w is not None and len(cond_w) == 0:
            cond_w = None
        return uncond_w, cond_w

    def _full_weight_list(self, weights):
        """A list in :attr:`param_shapes` order from a list in that order or in
        :attr:`hyper_shapes_learned` order (filled up with held tensors)."""
        learned = self.hyper_shapes_learned
        if learned is not None and len(weights) == len(learned) and len(learned) != len(self.param_shapes):
            given = self._check_tensor_list(weights, learned, 'weights')
            full = [None] * len(self.param_shapes)
            for t, ref in zip(given, self.hyper_shapes_learned_ref):
                full[ref] = t
            for i, m in enumerate(self.param_shapes_meta):
                if full[i] is None:
                    full[i] = self.internal_params[m['index']]
            return full
        if len(weights) != len(self.param_shapes):
            counts = sorted({len(self.param_shapes)} | ({len(learned)} if learned else set()))
            raise ValueError('weights: expected %s tensors, got %d'
                             % (' or '.join(str(c) for c in counts), len(weights)))
        return self._check_tensor_list(weights, self.param_shapes, 'weights')

    def _check_ret_format(self, ret_format):
        if ret_format not in RET_FORMATS:
            raise ValueError('ret_format: expected one of %s, got %r' % (list(RET_FORMATS), ret_format))

    def _check_input(self, tensor, size, arg):
        if not isinstance(tensor, torch.Tensor) or tensor.dim() != 2 or tensor.shape[1] != size:
            got = list(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ValueError('%s: expected a tensor of shape [K, %d], got %s' % (arg, size, got))

    def _preprocess_forward_args(self, uncond_input=None, cond_input=None, cond_id=None, weights=None,
                                 ret_format='squeezed', input_required=True, select_cond_inputs=True):
        """Validate and resolve the common ``forward`` arguments.

        Returns ``(uncond_input, cond_input, uncond_weights, cond_weights, cond_ids)``: ``cond_ids`` is the
        validated list of ids (or ``None``); with ``select_cond_inputs`` the embeddings of ``cond_ids`` are
        stacked into ``cond_input`` ``[K, ...]`` (one embedding per condition is assumed). When both inputs
        are given their leading dims must agree, except that a leading dim of 1 is broadcast.
        """
        self._check_ret_format(ret_format)
        uncond_weights, cond_weights = self._resolve_weights(weights)
        if cond_input is not None and cond_id is not None:
            raise ValueError('cond_input, cond_id: expected at most one of them, got both')
        if input_required and uncond_input is None and cond_input is None and cond_id is None:
            raise ValueError('uncond_input, cond_input, cond_id: expected at least one hypernetwork input, '
                             'got none')
        if cond_input is not None and (not isinstance(cond_input, torch.Tensor) or cond_input.dim() < 2):
            got = list(cond_input.shape) if isinstance(cond_input, torch.Tensor) else type(cond_input).__name__
            raise ValueError('cond_input: expected a batch [K, ...] of embeddings, got %s' % (got,))
        cond_ids = None
        if cond_id is not None:
            cond_ids = self._parse_cond_ids(cond_id)
            if select_cond_inputs:
                if cond_weights is None:
                    raise ValueError('cond_id: needs conditional embeddings held by the hypernetwork or given '
                                     "via weights['cond_weights'], got neither")
                if len(cond_weights) != self.num_known_conds:
                    raise ValueError('cond_id: expected one conditional tensor per condition (%d), got %d'
                                     % (self.num_known_conds, len(cond_weights)))
                cond_input = torch.stack([cond_weights[i] for i in cond_ids])
        if cond_input is not None and uncond_input is not None:
            uncond_input, cond_input = self._broadcast_batch(uncond_input, cond_input)
        return uncond_input, cond_input, uncond_weights, cond_weights, cond_ids

    @staticmethod
    def _broadcast_batch(a, b):
        if a.shape[0] == b.shape[0]:
            return a, b
        if a.shape[0] == 1:
            return a.expand(b.shape[0], *a.shape[1:]), b
        if b.shape[0] == 1:
            return a, b.expand(a.shape[0], *b.shape[1:])
        raise ValueError('uncond_input, cond_input: expected equal batch sizes (or one of them 1), got %d and %d'
                         % (a.shape[0], b.shape[0]))

    # ------------------------------------------------------------------ output formats
    def _flat_to_ret_format(self, flat_out, ret_format):
        """Turn ``[K, num_outputs]`` into ``ret_format`` using views (no copies for 'stacked')."""
        self._check_ret_format(ret_format)
        if ret_format == 'flattened':
            return flat_out
        shapes = self.target_shapes
        k = flat_out.shape[0]
        stacked = [c.reshape(k, *s) for c, s in
                   zip(torch.split(flat_out, [prod(s) for s in shapes], dim=1), shapes)]
        return self._stacked_to(stacked, ret_format)

    @staticmethod
    def _stacked_to(stacked, ret_format):
        if ret_format == 'stacked':
            return stacked
        seq = [list(ws) for ws in zip(*[t.unbind(0) for t in stacked])]
        if ret_format == 'squeezed' and len(seq) == 1:
            return seq[0]
        return seq

    def convert_out_format(self, hnet_out, src_format, trgt_format):
        """Convert a hypernetwork output between any two of the formats in :data:`RET_FORMATS`.

        Args:
            hnet_out: the output of :meth:`forward` in ``src_format``.
            src_format (str): its format.
            trgt_format (str): the wanted format.

        Returns:
            ``hnet_out`` in ``trgt_format`` (sharing memory where reshapes allow).
        """
        for arg, fmt in (('src_format', src_format), ('trgt_format', trgt_format)):
            if fmt not in RET_FORMATS:
                raise ValueError('%s: expected one of %s, got %r' % (arg, list(RET_FORMATS), fmt))
        shapes = self.target_shapes
        if src_format == 'flattened':
            if not isinstance(hnet_out, torch.Tensor) or hnet_out.dim() != 2 or \
                    hnet_out.shape[1] != self.num_outputs:
                raise ValueError('hnet_out: expected a tensor [K, %d] in format "flattened", got %s'
                                 % (self.num_outputs, getattr(hnet_out, 'shape', type(hnet_out).__name__)))
            return self._flat_to_ret_format(hnet_out, trgt_format)
        if src_format == 'stacked':
            self._check_tensor_list([t[0] for t in hnet_out], shapes, 'hnet_out')
            stacked = list(hnet_out)
        else:
            seq = hnet_out
            if src_format == 'squeezed' and len(seq) > 0 and isinstance(seq[0], torch.Tensor):
                seq = [seq]
            for ws in seq:
                self._check_tensor_list(ws, shapes, 'hnet_out')
            stacked = [torch.stack(ts) for ts in zip(*seq)]
        if trgt_format == 'flattened':
            k = stacked[0].shape[0]
            return torch.cat([t.reshape(k, -1) for t in stacked], dim=1)
        return self._stacked_to(stacked, trgt_format)

    def __str__(self):
        n_uncond = self.shapes_to_num_weights(self.unconditional_param_shapes)
        n_cond = self.shapes_to_num_weights(self.conditional_param_shapes)
        held_u = sum(p.numel() for p in (self.unconditional_params or []))
        held_c = sum(p.numel() for p in (self.conditional_params or []))
        return ('%s with %d weights producing %d outputs (compression ratio %.2f): %d unconditional (%d held) '
                'and %d conditional (%d held) weights.'
                % (type(self).__name__, self.num_params, self.num_outputs, self.num_params / self.num_outputs,
                   n_uncond, held_u, n_cond, held_c))
