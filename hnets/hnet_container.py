"""A hypernetwork assembled from several hypernetworks and plain parameter tensors.

Example: the first main-network layer comes from a hypernetwork, batch-norm weights are plain shared
tensors and the output layer is a plain per-condition tensor::

    fl_hnet = HMLP([[10, 5], [10]], num_cond_embs=5)
    hnet = HContainer([[10, 5], [10], [10], [10], [3, 10]], None, hnets=[fl_hnet],
                      uncond_param_shapes=[[10], [10]], uncond_param_names=['bn_scale', 'bn_shift'],
                      cond_param_shapes=[[3, 10]], num_cond_embs=5)

Without ``assembly_fct`` the outputs are concatenated in the order: each hypernetwork's targets, the plain
unconditional tensors, the plain conditional tensors.
"""
import torch
from torch import nn

from hnets.hnet_interface import HyperNetInterface


class HContainer(nn.Module, HyperNetInterface):
    """Wrap hypernetworks and plain (unconditional / per-condition) tensors into one hypernetwork.

    Args:
        target_shapes (list): shapes of the assembled output.
        assembly_fct (callable or None): ``assembly_fct(list_of_hnet_tensors, uncond_tensors, cond_tensors)``
            maps the outputs of ONE condition (a list per hypernetwork, the plain unconditional tensors and
            the plain tensors of that condition) to a list of tensors with ``target_shapes``. It is mapped
            over the ``K`` conditions with ``torch.func.vmap``, so it must be a pure tensor function
            (slicing, concatenation, reordering). ``None``: concatenate in order (see module docstring).
        hnets (list, optional): hypernetworks (:class:`HyperNetInterface`); they receive the same inputs
            and ``cond_id``, so they must agree on :attr:`num_known_conds`.
        uncond_param_shapes, cond_param_shapes (list, optional): shapes of plain tensors; conditional ones
            exist once per condition. Initialised from N(0, 0.02).
        uncond_param_names, cond_param_names (list, optional): their ``param_shapes_meta`` names (default
            ``'weight'`` for tensors with more than one dimension, else ``'bias'``).
        verbose (bool): print a summary.
        no_uncond_weights, no_cond_weights (bool): plain tensors are supplied from outside.
        num_cond_embs (int): number of conditions when there are plain conditional tensors (otherwise
            taken from the hypernetworks).
    """

    def __init__(self, target_shapes, assembly_fct=None, hnets=None, uncond_param_shapes=None,
                 cond_param_shapes=None, uncond_param_names=None, cond_param_names=None, verbose=True,
                 no_uncond_weights=False, no_cond_weights=False, num_cond_embs=1):
        nn.Module.__init__(self)
        HyperNetInterface.__init__(self)
        self._target_shapes = self._check_target_shapes(target_shapes)
        hnets = list(hnets or [])
        uncond_ps = [list(s) for s in (uncond_param_shapes or [])]
        cond_ps = [list(s) for s in (cond_param_shapes or [])]
        if not hnets and not uncond_ps and not cond_ps:
            raise ValueError('hnets, uncond_param_shapes, cond_param_shapes: expected at least one source of '
                             'outputs, got none')
        for i, h in enumerate(hnets):
            if not isinstance(h, HyperNetInterface):
                raise TypeError('hnets[%d]: expected a HyperNetInterface, got %s' % (i, type(h).__name__))
        if assembly_fct is not None and not callable(assembly_fct):
            raise TypeError('assembly_fct: expected a callable or None, got %s' % type(assembly_fct).__name__)
        for arg, names, shapes in (('uncond_param_names', uncond_param_names, uncond_ps),
                                   ('cond_param_names', cond_param_names, cond_ps)):
            if names is not None and len(names) != len(shapes):
                raise ValueError('%s: expected %d names, got %d' % (arg, len(shapes), len(names)))
        n_conds = num_cond_embs if cond_ps or not hnets else hnets[0].num_known_conds
        for i, h in enumerate(hnets):
            if h.num_known_conds != n_conds:
                raise ValueError('hnets[%d]: expected num_known_conds == %d, got %d'
                                 % (i, n_conds, h.num_known_conds))
        self._assembly_fct = assembly_fct
        self._hnets = nn.ModuleList(hnets)
        self._plain_params = nn.ParameterList()
        self._num_known_conds = n_conds
        self._num_plain_uncond = len(uncond_ps)
        self._num_plain_cond = len(cond_ps)
        self._has_bias = all(h.has_bias for h in hnets) if hnets else False
        self._has_fc_out = bool(hnets) and not uncond_ps and not cond_ps and all(h.has_fc_out for h in hnets)
        self._has_linear_out = self._has_fc_out and all(h.has_linear_out for h in hnets)
        self._mask_fc_out = False

        # Bookkeeping: each hnet's entries (indices shifted), then the plain tensors.
        self._source = []   # per param_shapes entry: ('hnet', i) | ('uncond', j) | ('cond', cond, j)
        offset = 0
        self._hnet_bases = []
        for i, h in enumerate(hnets):
            base = len(self._param_shapes)
            self._hnet_bases.append(base)
            uncond = set(h.unconditional_param_shapes_ref)
            for k, (s, m) in enumerate(zip(h.param_shapes, h.param_shapes_meta)):
                meta = dict(m, celement_type='hnet', celement_ind=i)
                meta['index'] = -1 if m['index'] == -1 else m['index'] + offset
                self._param_shapes.append(list(s))
                self._param_shapes_meta.append(meta)
                self._source.append(('hnet', i))
                if k in uncond:
                    self._unconditional_param_shapes_ref.append(base + k)
                if m['index'] == -1:
                    self._append_learned(base + k, s)
            offset += 0 if h.internal_params is None else len(h.internal_params)
        self._num_hnet_internal = offset
        for j, s in enumerate(uncond_ps):
            name = uncond_param_names[j] if uncond_param_names else ('weight' if len(s) > 1 else 'bias')
            self._add_plain(s, name, not no_uncond_weights, {'celement_type': 'uncond'}, ('uncond', j), False)
        for cond in range(n_conds):
            for j, s in enumerate(cond_ps):
                name = cond_param_names[j] if cond_param_names else ('weight' if len(s) > 1 else 'bias')
                self._add_plain(s, name, not no_cond_weights,
                                {'celement_type': 'cond', 'celement_cind': cond}, ('cond', cond, j), True)
        if verbose:
            print('Container of %d hypernetwork(s), %d plain unconditional and %d plain conditional tensors. %s'
                  % (len(hnets), len(uncond_ps), len(cond_ps), self))

    def _append_learned(self, ref, shape):
        if self._hyper_shapes_learned is None:
            self._hyper_shapes_learned, self._hyper_shapes_learned_ref = [], []
        self._hyper_shapes_learned.append(list(shape))
        self._hyper_shapes_learned_ref.append(ref)

    def _add_plain(self, shape, name, held, extra, source, conditional):
        ref = len(self._param_shapes)
        index = -1
        if held:
            self._plain_params.append(nn.Parameter(torch.empty(shape).normal_(0., .02)))
            index = self._num_hnet_internal + len(self._plain_params) - 1
        else:
            self._append_learned(ref, shape)
        self._param_shapes.append(list(shape))
        self._param_shapes_meta.append({'name': name, 'index': index, 'layer': -1, **extra})
        self._source.append(source)
        if not conditional:
            self._unconditional_param_shapes_ref.append(ref)

    @property
    def internal_params(self):
        """Held tensors of all wrapped hypernetworks (in order), then the held plain tensors."""
        params = [p for h in self._hnets for p in (h.internal_params or [])] + list(self._plain_params)
        return nn.ParameterList(params) if params else None

    @property
    def internal_hnets(self):
        """The wrapped hypernetworks."""
        return list(self._hnets)

    def forward(self, uncond_input=None, cond_input=None, cond_id=None, weights=None, distilled_params=None,
                condition=None, ret_format='squeezed'):
        """Produce ``K`` assembled weight sets; see :meth:`HyperNetInterface.forward`.

        ``uncond_input``, ``cond_input``, ``cond_id`` and ``condition`` go to every wrapped hypernetwork.
        ``weights`` may be a dict with the extra key ``'hnets'``: one dict per wrapped hypernetwork merged
        into what it receives (e.g. ``'chunk_embs'`` of a :class:`ChunkedHMLP`). Plain conditional tensors
        need ``cond_id``.
        """
        extra = None
        if isinstance(weights, dict) and 'hnets' in weights:
            weights = dict(weights)
            extra = weights.pop('hnets')
            if not isinstance(extra, (list, tuple)) or len(extra) != len(self._hnets):
                raise ValueError("weights['hnets']: expected a list of %d dicts, got %r" % (len(self._hnets), extra))
        if self._num_plain_cond > 0 and cond_id is None:
            raise ValueError('cond_id: expected an int or list (the container holds per-condition tensors), '
                             'got None')
        _, _, uncond_w, cond_w, cond_ids = self._preprocess_forward_args(
            cond_id=cond_id, weights=weights, ret_format=ret_format, input_required=False,
            select_cond_inputs=False)
        if cond_input is not None and cond_id is not None:
            raise ValueError('cond_input, cond_id: expected at most one of them, got both')
        full = [None] * len(self.param_shapes)
        for t, ref in zip(uncond_w, self.unconditional_param_shapes_ref):
            full[ref] = t
        if cond_w is not None:
            for t, ref in zip(cond_w, self.conditional_param_shapes_ref):
                full[ref] = t

        outs = []
        for i, h in enumerate(self._hnets):
            base = self._hnet_bases[i]
            hw = {'uncond_weights': [full[base + k] for k in h.unconditional_param_shapes_ref],
                  'cond_weights': [full[base + k] for k in h.conditional_param_shapes_ref]}
            hw = {k: v for k, v in hw.items() if v and all(t is not None for t in v)}
            if extra is not None:
                hw.update(extra[i])
            outs.append(h.forward(uncond_input=uncond_input, cond_input=cond_input, cond_id=cond_id,
                                  weights=hw or None, condition=condition, ret_format='stacked'))
        plain_uncond = [full[ref] for ref, src in enumerate(self._source) if src[0] == 'uncond']
        plain_cond = []
        if self._num_plain_cond > 0:
            by_cond = {}
            for ref, src in enumerate(self._source):
                if src[0] == 'cond':
                    by_cond[(src[1], src[2])] = full[ref]
            plain_cond = [torch.stack([by_cond[(c, j)] for c in cond_ids]) for j in range(self._num_plain_cond)]

        batch = max([o[0].shape[0] for o in outs] + [t.shape[0] for t in plain_cond] + [1])
        outs = [[t.expand(batch, *t.shape[1:]) for t in o] for o in outs]
        plain_cond = [t.expand(batch, *t.shape[1:]) for t in plain_cond]
        if self._assembly_fct is None:
            stacked = [t for o in outs for t in o] + \
                [t.unsqueeze(0).expand(batch, *t.shape) for t in plain_uncond] + plain_cond
        else:
            stacked = list(torch.func.vmap(self._assembly_fct, in_dims=(0, None, 0))(outs, plain_uncond,
                                                                                     plain_cond))
        if [list(t.shape[1:]) for t in stacked] != self.target_shapes:
            raise ValueError('assembly_fct: expected outputs of shapes %s, got %s'
                             % (self.target_shapes, [list(t.shape[1:]) for t in stacked]))
        if ret_format == 'flattened':
            return torch.cat([t.reshape(batch, -1) for t in stacked], dim=1)
        return self._stacked_to(stacked, ret_format)
