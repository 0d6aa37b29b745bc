"""How a main network accepts weights from outside.

``forward(x, weights=...)`` of every main network takes its weights in several formats (all tensors,
only the externally learned ones, only the context-mod ones, or a dict splitting the two groups);
:class:`ExternalWeightsMixin` turns any of them into one validated tensor per entry of ``param_shapes``,
validates ``distilled_params``, and evaluates ``K`` stacked weight sets in one
:func:`torch.func.vmap` call (:meth:`ExternalWeightsMixin.forward_batch`).

The mixin is a base of :class:`mnets.mnet_interface.MainNetInterface`, whose constructor bookkeeping fills
the attributes it reads: ``_param_shapes``, ``_internal_params``, ``_hyper_shapes_learned_ref``,
``_hyper_shapes_distilled`` and (set by ``_is_properly_setup``) ``_slot_of_internal`` and
``_cm_slot_flags``.
"""
import torch
from torch import nn

_WEIGHT_DICT_KEYS = ('internal_weights', 'mod_weights')


def shape_str(shape):
    """A shape as it appears in error messages: ``[2, 3]``."""
    return str(list(shape))


class ExternalWeightsMixin:
    """Resolution and validation of the ``weights`` / ``distilled_params`` arguments of ``forward``, and
    the batched forward over ``K`` weight sets."""

    #: Number of dimensions of an input batch ``x`` that is *shared* by all
    #: weight sets in :meth:`forward_batch` (e.g. ``(2,)`` for ``[B, n_in]``).
    #: A per-set input has one more dimension. ``None``: callers must say.
    _SHARED_INPUT_NDIMS = None

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
                raise TypeError(f'{arg}[{pos}]: expected a tensor of shape {shape_str(expected)}, got '
                                f'{type(t).__name__}')
            shape = list(t.shape)
            if shape != expected and not (is_cm[slot] and shape[1:] == expected):
                raise ValueError(f'{arg}[{pos}]: expected shape {shape_str(expected)}, got '
                                 f'{shape_str(shape)}')
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
                raise ValueError(f'distilled_params[{i}]: expected shape {shape_str(s)}, got '
                                 f'{shape_str(t.shape)}')

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
                             f'{shape_str(x.shape)}')

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
                             f'{shape_str(x.shape)} is shared or per set; pass x_per_set=True/False')
        if x.dim() in shared:
            return False
        if x.dim() - 1 in shared:
            return True
        raise ValueError(f'x: expected {sorted(shared)} dims (shared) or {sorted(d + 1 for d in shared)} '
                         f'dims (one batch per set), got shape {shape_str(x.shape)}')
