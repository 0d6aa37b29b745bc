"""A structured chunked hypernetwork: chunks that follow the main network's layer structure.

:class:`hnets.chunked_mlp_hnet.ChunkedHMLP` cuts the flattened weight vector into equal pieces and ignores
which piece belongs to which layer. Here the caller says what a chunk *is* -- a list of tensor shapes, e.g.
``[[C_out, C_in, 3, 3], [C_out]]`` (one conv layer with its bias) -- and how often each kind of chunk is
needed. Chunk kind :math:`i` is produced by its own fully-connected hypernetwork :math:`f_i`
(:class:`hnets.mlp_hnet.HMLP`); its :math:`j`-th copy is told apart by a chunk embedding :math:`c_{ij}`:

.. math::

    \\text{chunk}_{ij} = f_i([z, c_{ij}, e]; \\theta_i), \\qquad
    W_{\\text{main}} = \\mathrm{assembly}(\\{\\text{chunk}_{ij}\\})

An ``assembly_fct`` maps the list of chunks of ONE condition to tensors of ``target_shapes`` (reordering,
concatenating pieces of a layer, dropping unused pieces). Layers of equal shape then share :math:`\\theta_i`
and differ only by their chunk embedding, which is what makes the hypernetwork small (see
:mod:`hnets.structured_hmlp_examples` for ResNets and wide ResNets).

All chunks of kind :math:`i` of all ``K`` conditions go through :math:`f_i` as one batch ``[K n_i, ...]``;
``assembly_fct`` is mapped over the ``K`` conditions with ``torch.func.vmap``.
"""
import math
import numbers

import torch
from torch import nn

from hnets.hnet_interface import HyperNetInterface
from hnets.mlp_hnet import HMLP

# Arguments of the internal HMLPs that this class decides itself.
_FORBIDDEN_HMLP_KWARGS = ('uncond_in_size', 'cond_in_size', 'no_uncond_weights', 'no_cond_weights',
                          'num_cond_embs')


def _is_int(val):
    return isinstance(val, numbers.Integral) and not isinstance(val, bool)


class StructuredHMLP(nn.Module, HyperNetInterface):
    """Structured chunked fully-connected hypernetwork.

    Args:
        target_shapes (list): shapes of the assembled output.
        chunk_shapes (list): one list of shapes per chunk kind; kind ``i`` is produced by an internal
            :class:`hnets.mlp_hnet.HMLP` with ``target_shapes=chunk_shapes[i]``.
        num_per_chunk (list): how many chunks of each kind (positive ints).
        chunk_emb_sizes (int or list): chunk embedding size per kind (an int applies to all). ``0`` means
            no chunk embedding, allowed only where ``num_per_chunk`` is 1 and some other input exists.
            Chunk embeddings are initialised from N(0, 1).
        hmlp_kwargs (dict or list): keyword arguments of the internal HMLPs (one dict for all or one per
            kind), e.g. ``layers``, ``activation_fn``, ``use_bias``, ``use_batch_norm``. The input sizes,
            ``no_*_weights`` and ``num_cond_embs`` are set by this class and may not appear.
        assembly_fct (callable): ``assembly_fct(list_of_chunks)`` gets the chunks of ONE condition -- a list
            with ``sum(num_per_chunk)`` entries, kind by kind, each a list of tensors of ``chunk_shapes[i]``
            -- and returns a list of tensors of ``target_shapes``. It is mapped over conditions with
            ``torch.func.vmap``, so it must be a pure tensor function (indexing, ``torch.cat``, ...); it is
            checked once at construction.
        cond_chunk_embs (bool): chunk embeddings per condition (conditional parameters) instead of one
            shared set in :math:`\\theta`; then ``uncond_in_size`` and ``cond_in_size`` may both be 0.
        uncond_in_size, cond_in_size, verbose, no_uncond_weights, no_cond_weights, num_cond_embs: as
            :class:`hnets.mlp_hnet.HMLP`.

    Parameter order: conditional input embeddings, the trunks of the internal HMLPs kind by kind, then the
    chunk embeddings (one ``[n_i, c_i]`` tensor per kind with ``c_i > 0``; per condition with
    ``cond_chunk_embs``). Meta entries carry ``hnet_ind`` (the kind); trunk layer ids are offset so that
    they are unique across kinds.
    """

    def __init__(self, target_shapes, chunk_shapes, num_per_chunk, chunk_emb_sizes, hmlp_kwargs, assembly_fct,
                 cond_chunk_embs=False, uncond_in_size=0, cond_in_size=8, verbose=True, no_uncond_weights=False,
                 no_cond_weights=False, num_cond_embs=1):
        nn.Module.__init__(self)
        HyperNetInterface.__init__(self)
        target_shapes = self._check_target_shapes(target_shapes)
        chunk_shapes, num_per_chunk, chunk_emb_sizes, hmlp_kwargs = self._check_chunk_args(
            chunk_shapes, num_per_chunk, chunk_emb_sizes, hmlp_kwargs, assembly_fct)
        for arg, val in (('uncond_in_size', uncond_in_size), ('cond_in_size', cond_in_size),
                         ('num_cond_embs', num_cond_embs)):
            if not _is_int(val) or val < 0:
                raise ValueError('%s: expected an int >= 0, got %r' % (arg, val))
        no_input = uncond_in_size + cond_in_size == 0
        if no_input and not cond_chunk_embs:
            raise ValueError('uncond_in_size, cond_in_size: expected a positive total input size unless '
                             'cond_chunk_embs=True (otherwise the output could not depend on anything), got 0')
        if no_input and 0 in chunk_emb_sizes:
            raise ValueError('chunk_emb_sizes: expected no 0 when uncond_in_size and cond_in_size are 0 (that '
                             'internal hypernetwork would have no input), got %s' % (chunk_emb_sizes,))
        if cond_chunk_embs and num_cond_embs == 0:
            raise ValueError('num_cond_embs: expected > 0 with cond_chunk_embs=True, got 0')
        if cond_in_size == 0 and not cond_chunk_embs:
            num_cond_embs = 0
        self._target_shapes = target_shapes
        self._chunk_shapes = chunk_shapes
        self._num_per_chunk = num_per_chunk
        self._chunk_emb_sizes = chunk_emb_sizes
        self._assembly_fct = assembly_fct
        self._cond_chunk_embs = cond_chunk_embs
        self._uncond_in_size = uncond_in_size
        self._cond_in_size = cond_in_size
        self._no_cond_weights = no_cond_weights
        self._num_cond_embs = num_cond_embs
        self._num_known_conds = num_cond_embs
        self._mask_fc_out = False  # outputs are chunks spread over several trunks, not per-target heads
        self._check_assembly()

        if cond_in_size > 0:
            for _ in range(num_cond_embs):
                self._register_param([cond_in_size], 'embedding', 0, conditional=True,
                                     internal=not no_cond_weights, init_fn=nn.init.normal_)
        # The internal HMLPs hold nothing: their weights live in this network's bookkeeping (so that
        # `weights=` covers them uniformly) and are passed to them on every forward.
        self._hnets = nn.ModuleList()
        self._trunk_refs = []
        layer_offset = 1
        for i, shapes in enumerate(chunk_shapes):
            kwargs = {'verbose': False, **hmlp_kwargs[i]}
            hnet = HMLP(shapes, uncond_in_size=uncond_in_size + chunk_emb_sizes[i], cond_in_size=cond_in_size,
                        no_uncond_weights=True, no_cond_weights=True, num_cond_embs=0, **kwargs)
            self._hnets.append(hnet)
            self._trunk_refs.append(self._register_trunk(hnet, i, layer_offset, not no_uncond_weights))
            layer_offset += 1 + max(m['layer'] for m in hnet.param_shapes_meta)
        self._has_bias = all(h.has_bias for h in self._hnets)

        self._chunk_emb_kinds = [i for i, c in enumerate(chunk_emb_sizes) if c > 0]
        n_sets = num_cond_embs if cond_chunk_embs else 1
        held = not (no_cond_weights if cond_chunk_embs else no_uncond_weights)
        self._cemb_refs = [[self._register_param(
            [num_per_chunk[i], chunk_emb_sizes[i]], 'embedding', 0, conditional=cond_chunk_embs, internal=held,
            init_fn=nn.init.normal_, info='chunk embeddings', hnet_ind=i, cond_id=s if cond_chunk_embs else -1)
            for i in self._chunk_emb_kinds] for s in range(n_sets)]
        if verbose:
            print('Structured chunked hypernetwork: %d internal HMLPs produce %d chunks (%d outputs) assembled '
                  'into %d outputs. %s' % (len(chunk_shapes), self.num_chunks,
                                           sum(n * self.shapes_to_num_weights(s)
                                               for n, s in zip(num_per_chunk, chunk_shapes)),
                                           self.num_outputs, self))

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _check_chunk_args(chunk_shapes, num_per_chunk, chunk_emb_sizes, hmlp_kwargs, assembly_fct):
        if not isinstance(chunk_shapes, (list, tuple)) or len(chunk_shapes) == 0:
            raise ValueError('chunk_shapes: expected a non-empty list of lists of shapes, got %r' % (chunk_shapes,))
        chunk_shapes = [HyperNetInterface._check_target_shapes(s) for s in chunk_shapes]
        n = len(chunk_shapes)
        if not isinstance(num_per_chunk, (list, tuple)) or len(num_per_chunk) != n or \
                not all(_is_int(v) and v > 0 for v in num_per_chunk):
            raise ValueError('num_per_chunk: expected a list of %d positive ints (one per chunk kind), got %r'
                             % (n, num_per_chunk))
        if _is_int(chunk_emb_sizes):
            chunk_emb_sizes = [chunk_emb_sizes] * n
        if not isinstance(chunk_emb_sizes, (list, tuple)) or len(chunk_emb_sizes) != n or \
                not all(_is_int(v) and v >= 0 for v in chunk_emb_sizes):
            raise ValueError('chunk_emb_sizes: expected an int >= 0 or a list of %d of them, got %r'
                             % (n, chunk_emb_sizes))
        for i, (c, k) in enumerate(zip(chunk_emb_sizes, num_per_chunk)):
            if c == 0 and k != 1:
                raise ValueError('chunk_emb_sizes[%d]: expected > 0 since num_per_chunk[%d] = %d chunks must be '
                                 'told apart, got 0' % (i, i, k))
        if isinstance(hmlp_kwargs, dict):
            hmlp_kwargs = [hmlp_kwargs] * n
        if not isinstance(hmlp_kwargs, (list, tuple)) or len(hmlp_kwargs) != n or \
                not all(isinstance(d, dict) for d in hmlp_kwargs):
            raise ValueError('hmlp_kwargs: expected a dict or a list of %d dicts, got %r' % (n, hmlp_kwargs))
        for i, d in enumerate(hmlp_kwargs):
            bad = sorted(set(d) & set(_FORBIDDEN_HMLP_KWARGS))
            if bad:
                raise ValueError('hmlp_kwargs[%d]: expected none of %s (set by StructuredHMLP), got %s'
                                 % (i, list(_FORBIDDEN_HMLP_KWARGS), bad))
        if not callable(assembly_fct):
            raise TypeError('assembly_fct: expected a callable, got %s' % type(assembly_fct).__name__)
        return chunk_shapes, [int(v) for v in num_per_chunk], [int(v) for v in chunk_emb_sizes], \
            [dict(d) for d in hmlp_kwargs]

    def _check_assembly(self):
        """Run ``assembly_fct`` once on shape-only ('meta') chunks; mismatches surface here, not mid-training."""
        chunks = [[torch.empty(s, device='meta') for s in shapes]
                  for shapes, n in zip(self._chunk_shapes, self._num_per_chunk) for _ in range(n)]
        try:
            out = self._assembly_fct(chunks)
        except Exception as err:
            raise ValueError('assembly_fct: failed on %d chunks of shapes %s (counts %s): %s'
                             % (len(chunks), self._chunk_shapes, self._num_per_chunk, err)) from err
        got = [list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__ for t in out] \
            if isinstance(out, (list, tuple)) else type(out).__name__
        if got != self._target_shapes:
            raise ValueError('assembly_fct: expected tensors of target_shapes %s, got %s'
                             % (self._target_shapes, got))

    def _register_trunk(self, hnet, kind, layer_offset, held):
        """Register the trunk tensors of internal HMLP ``kind``, initialised like a held HMLP would be
        (``nn.Linear`` defaults, identity batch norm); return their :attr:`param_shapes` indices."""
        refs = []
        fan_in = None
        for shape, meta in zip(hnet.param_shapes, hnet.param_shapes_meta):
            name = meta['name']
            if name == 'weight':
                fan_in = shape[1]
                init = _kaiming_linear
            elif name == 'bias':
                init = _bias_init(fan_in)
            elif name == 'bn_scale':
                init = nn.init.ones_
            else:
                init = nn.init.zeros_
            refs.append(self._register_param(shape, name, meta['layer'] + layer_offset, False, held, init,
                                             hnet_ind=kind))
        return refs

    # ------------------------------------------------------------------ attributes
    @property
    def num_chunks(self):
        """Total number of chunks, ``sum(num_per_chunk)``."""
        return sum(self._num_per_chunk)

    @property
    def chunk_emb_shapes(self):
        """Shapes ``[n_i, c_i]`` of the chunk embeddings of one forward (kinds with ``c_i > 0`` only)."""
        return [[self._num_per_chunk[i], self._chunk_emb_sizes[i]] for i in self._chunk_emb_kinds]

    @property
    def cond_chunk_embs(self):
        """Whether chunk embeddings are conditional parameters."""
        return self._cond_chunk_embs

    @property
    def internal_hnets(self):
        """The internal :class:`hnets.mlp_hnet.HMLP` per chunk kind (they hold no weights)."""
        return list(self._hnets)

    @property
    def batchnorm_layers(self):
        """Batch-norm layers of the internal HMLPs, kind by kind (``None`` without batch norm)."""
        layers = [bn for h in self._hnets for bn in (h.batchnorm_layers or [])]
        return nn.ModuleList(layers) if layers else None

    def get_cond_in_emb(self, cond_id):
        """The held conditional input embedding of condition ``cond_id``."""
        self._parse_cond_ids(cond_id)
        if self._cond_in_size == 0 or self._no_cond_weights:
            raise RuntimeError('get_cond_in_emb: this hypernetwork holds no conditional input embeddings')
        return self.internal_params[self.param_shapes_meta[cond_id]['index']]

    def get_chunk_embs(self, cond_id=None):
        """The held chunk embeddings (a list with shapes :attr:`chunk_emb_shapes`), of condition ``cond_id``
        when they are conditional."""
        if self._cond_chunk_embs:
            if cond_id is None:
                raise ValueError('cond_id: expected an int since chunk embeddings are conditional, got None')
            refs = self._cemb_refs[self._parse_cond_ids(cond_id)[0]]
        else:
            if cond_id is not None:
                raise ValueError('cond_id: expected None since chunk embeddings are unconditional, got %r'
                                 % (cond_id,))
            refs = self._cemb_refs[0]
        if any(self.param_shapes_meta[r]['index'] == -1 for r in refs):
            raise RuntimeError('get_chunk_embs: chunk embeddings are not held by this hypernetwork')
        return [self.internal_params[self.param_shapes_meta[r]['index']] for r in refs]

    # ------------------------------------------------------------------ forward
    def forward(self, uncond_input=None, cond_input=None, cond_id=None, weights=None, distilled_params=None,
                condition=None, ret_format='squeezed'):
        """Produce ``K`` assembled weight sets; see :meth:`HyperNetInterface.forward`.

        With ``cond_chunk_embs=True``, ``weights`` may be a dict with the extra key ``'chunk_embs'``: a list
        of tensors ``[K, *s]`` for ``s`` in :attr:`chunk_emb_shapes` (then ``cond_id`` must not be given).
        ``condition`` is the batch-norm statistics id of the internal HMLPs.
        """
        if distilled_params is not None:
            raise ValueError('distilled_params: this hypernetwork has nothing to distill, expected None')
        chunk_embs = None
        if isinstance(weights, dict) and 'chunk_embs' in weights:
            weights = dict(weights)
            chunk_embs = self._check_given_chunk_embs(weights.pop('chunk_embs'), cond_id)
        needs_cembs = self._cond_chunk_embs and len(self._chunk_emb_kinds) > 0
        if needs_cembs and cond_id is None and chunk_embs is None:
            raise ValueError("cond_id, weights['chunk_embs']: conditional chunk embeddings need one of them, "
                             'got none')
        uncond_input, cond_input, uncond_w, cond_w, cond_ids = self._preprocess_forward_args(
            uncond_input=uncond_input, cond_input=cond_input, cond_id=cond_id, weights=weights,
            ret_format=ret_format, input_required=not self._cond_chunk_embs, select_cond_inputs=False)
        full = [None] * len(self.param_shapes)
        for t, ref in zip(uncond_w, self.unconditional_param_shapes_ref):
            full[ref] = t
        for t, ref in zip(cond_w or [], self.conditional_param_shapes_ref):
            full[ref] = t

        if cond_ids is not None:
            if cond_w is None:
                raise ValueError("cond_id: needs conditional weights held or given via weights['cond_weights'], "
                                 'got neither')
            if self._cond_in_size > 0:
                cond_input = torch.stack([full[i] for i in cond_ids])
            if self._cond_chunk_embs:
                chunk_embs = [torch.stack([full[self._cemb_refs[c][j]] for c in cond_ids])
                              for j in range(len(self._chunk_emb_kinds))]
        if not self._cond_chunk_embs:
            chunk_embs = [full[r].unsqueeze(0) for r in self._cemb_refs[0]]
        for arg, val, size in (('uncond_input', uncond_input, self._uncond_in_size),
                               ('cond_input', cond_input, self._cond_in_size)):
            if size > 0 and val is None:
                raise ValueError('%s: expected a tensor [K, %d] (or cond_id for cond_input), got None' % (arg, size))
            if size > 0:
                self._check_input(val, size, arg)
        sizes = [t.shape[0] for t in chunk_embs or []] + \
            [t.shape[0] for t in (uncond_input, cond_input) if t is not None]
        batch = max(sizes)
        if any(k not in (1, batch) for k in sizes):
            raise ValueError("uncond_input, cond_input, weights['chunk_embs']: expected equal batch sizes K (or "
                             '1), got %s' % sizes)

        per_kind = []
        cemb_pos = {kind: j for j, kind in enumerate(self._chunk_emb_kinds)}
        for i, hnet in enumerate(self._hnets):
            n = self._num_per_chunk[i]
            parts = []
            if uncond_input is not None and self._uncond_in_size > 0:
                parts.append(uncond_input.unsqueeze(1).expand(batch, n, -1))
            if i in cemb_pos:
                cembs = chunk_embs[cemb_pos[i]]
                parts.append(cembs.expand(batch, *cembs.shape[1:]))
            hnet_uncond = torch.cat(parts, dim=2).reshape(batch * n, -1) if parts else None
            hnet_cond = None
            if self._cond_in_size > 0:
                hnet_cond = cond_input.unsqueeze(1).expand(batch, n, -1).reshape(batch * n, -1)
            out = hnet.forward(uncond_input=hnet_uncond, cond_input=hnet_cond,
                               weights={'uncond_weights': [full[r] for r in self._trunk_refs[i]]},
                               condition=condition, ret_format='stacked')
            per_kind.append([t.reshape(batch, n, *t.shape[1:]) for t in out])
        stacked = list(torch.func.vmap(self._assemble_one)(per_kind))
        if ret_format == 'flattened':
            return torch.cat([t.reshape(batch, -1) for t in stacked], dim=1)
        return self._stacked_to(stacked, ret_format)

    def _assemble_one(self, per_kind):
        """Chunks of one condition (per kind: tensors ``[n_i, *s]``) -> ``assembly_fct`` output."""
        chunks = []
        for tensors in per_kind:
            chunks.extend([list(c) for c in zip(*[t.unbind(0) for t in tensors])])
        return tuple(self._assembly_fct(chunks))

    def _check_given_chunk_embs(self, chunk_embs, cond_id):
        if not self._cond_chunk_embs:
            raise ValueError("weights['chunk_embs']: only allowed with cond_chunk_embs=True")
        if cond_id is not None:
            raise ValueError("cond_id, weights['chunk_embs']: expected at most one of them, got both")
        shapes = self.chunk_emb_shapes
        if not isinstance(chunk_embs, (list, tuple)) or len(chunk_embs) != len(shapes):
            raise ValueError("weights['chunk_embs']: expected a list of %d tensors, got %r"
                             % (len(shapes), type(chunk_embs).__name__))
        for j, (t, s) in enumerate(zip(chunk_embs, shapes)):
            if not isinstance(t, torch.Tensor) or t.dim() != 3 or list(t.shape[1:]) != s or \
                    t.shape[0] != chunk_embs[0].shape[0]:
                raise ValueError("weights['chunk_embs'][%d]: expected a tensor [K, %d, %d] (same K for all), got %s"
                                 % (j, *s, getattr(t, 'shape', type(t).__name__)))
        return list(chunk_embs)


def _kaiming_linear(weight):
    """``nn.Linear``'s default weight init, U(+-1/sqrt(fan_in))."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))


def _bias_init(fan_in):
    bound = 1. / math.sqrt(fan_in) if fan_in else 0.
    return lambda bias: nn.init.uniform_(bias, -bound, bound)
