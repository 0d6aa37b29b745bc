"""A chunked fully-connected hypernetwork.

The flattened main-network weight vector (length ``num_outputs``) is cut into ``num_chunks =
ceil(num_outputs / chunk_size)`` chunks. One small fully-connected hypernetwork produces every chunk; what
tells the chunks apart is a learned *chunk embedding* :math:`c_j` appended to the input:

.. math::

    \\mathrm{vec}(W_{\\text{main}}) = \\big[f([z, c_1, e]),\\ \\dots,\\ f([z, c_n, e])\\big]_{:\\text{num\\_outputs}}

so the hypernetwork can be far smaller than the main network (the output layer has ``chunk_size`` rows, not
``num_outputs``). The tail of the last chunk beyond ``num_outputs`` is cropped.

All chunks of all ``K`` conditions go through the trunk as one batch ``[K * num_chunks, in]``.
"""
import math
from warnings import warn

import torch
from torch import nn

from hnets.hnet_interface import HyperNetInterface
from hnets.mlp_hnet import _RELU, HMLP, _MLPTrunkMixin, _uniform_with, fan_in_and_out, target_shapes_meta


class ChunkedHMLP(nn.Module, _MLPTrunkMixin, HyperNetInterface):
    """Chunked fully-connected hypernetwork.

    Args:
        (....): as :class:`hnets.mlp_hnet.HMLP`.
        chunk_size (int): number of outputs produced per chunk embedding.
        chunk_emb_size (int or list): size of a chunk embedding (a one-element list, as the command line
            gives it, is accepted too).
        cond_chunk_embs (bool): ``False``: one set of ``[num_chunks, chunk_emb_size]`` chunk embeddings,
            part of :math:`\\theta`. ``True``: one set per condition (conditional parameters, appended after
            the conditional input embeddings); then ``cond_in_size`` may be 0.

    Parameter order: conditional input embeddings, trunk (as :class:`HMLP`), chunk embeddings. Chunk
    embeddings are initialised from N(0, 1).
    """

    def __init__(self, target_shapes, chunk_size, chunk_emb_size=8, cond_chunk_embs=False, uncond_in_size=0,
                 cond_in_size=8, layers=(100, 100), verbose=True, activation_fn=_RELU, use_bias=True,
                 no_uncond_weights=False, no_cond_weights=False, num_cond_embs=1, dropout_rate=-1,
                 use_spectral_norm=False, use_batch_norm=False):
        nn.Module.__init__(self)
        HyperNetInterface.__init__(self)
        target_shapes = self._check_target_shapes(target_shapes)
        self._check_mlp_args(uncond_in_size, cond_in_size, layers, num_cond_embs, dropout_rate)
        if isinstance(chunk_emb_size, (list, tuple)):
            if len(chunk_emb_size) != 1:
                raise ValueError('chunk_emb_size: expected an int or a one-element list, got %r'
                                 % (chunk_emb_size,))
            chunk_emb_size = chunk_emb_size[0]
        for arg, val in (('chunk_size', chunk_size), ('chunk_emb_size', chunk_emb_size)):
            if isinstance(val, bool) or not isinstance(val, int) or val <= 0:
                raise ValueError('%s: expected a positive int, got %r' % (arg, val))
        if cond_chunk_embs and num_cond_embs == 0:
            raise ValueError('num_cond_embs: expected > 0 with cond_chunk_embs=True (chunk embeddings per '
                             'condition), got 0')
        if not cond_chunk_embs and uncond_in_size + cond_in_size == 0:
            raise ValueError('uncond_in_size, cond_in_size: expected a positive total input size unless '
                             'cond_chunk_embs=True (otherwise the output could not depend on anything), got 0')
        self._target_shapes = target_shapes
        self._chunk_size = chunk_size
        self._chunk_emb_size = chunk_emb_size
        self._cond_chunk_embs = cond_chunk_embs
        self._uncond_in_size = uncond_in_size
        self._cond_in_size = cond_in_size
        self._no_uncond_weights = no_uncond_weights
        self._no_cond_weights = no_cond_weights
        self._num_cond_embs = num_cond_embs
        self._num_known_conds = num_cond_embs

        if cond_in_size > 0:
            self._add_cond_embeddings(cond_in_size, num_cond_embs, no_cond_weights)
        self._build_trunk(uncond_in_size + chunk_emb_size + cond_in_size, layers, chunk_size, use_bias,
                          use_batch_norm, no_uncond_weights, activation_fn, dropout_rate, use_spectral_norm)
        # The trunk produces chunks, never whole main-network tensors: its output rows are not per target.
        self._mask_fc_out = False
        cemb_shape = [self.num_chunks, chunk_emb_size]
        n_sets = num_cond_embs if cond_chunk_embs else 1
        held = not (no_cond_weights if cond_chunk_embs else no_uncond_weights)
        self._cemb_refs = [self._register_param(cemb_shape, 'embedding', 0, conditional=cond_chunk_embs,
                                                internal=held, init_fn=nn.init.normal_, info='chunk embeddings')
                           for _ in range(n_sets)]
        self._finish_trunk_positions()
        if verbose:
            print('%d chunk(s) of size %d. %s' % (self.num_chunks, chunk_size, self))

    @property
    def num_chunks(self):
        """Number of chunks, ``ceil(num_outputs / chunk_size)``."""
        return -(-self.num_outputs // self._chunk_size)

    @property
    def chunk_emb_size(self):
        """Size of one chunk embedding."""
        return self._chunk_emb_size

    @property
    def cond_chunk_embs(self):
        """Whether chunk embeddings are per condition."""
        return self._cond_chunk_embs

    def forward(self, uncond_input=None, cond_input=None, cond_id=None, weights=None, distilled_params=None,
                condition=None, ret_format='squeezed'):
        """Produce ``K`` weight sets; see :meth:`HyperNetInterface.forward`.

        With ``cond_chunk_embs=True``, ``weights`` may be a dict with the extra key ``'chunk_embs'``: a
        tensor ``[K, num_chunks, chunk_emb_size]`` (then ``cond_id`` must not be given); with ``cond_id``
        the chunk embeddings of those conditions are used.
        """
        chunk_embs = None
        if isinstance(weights, dict) and 'chunk_embs' in weights:
            weights = dict(weights)
            chunk_embs = weights.pop('chunk_embs')
            if not self._cond_chunk_embs:
                raise ValueError("weights['chunk_embs']: only allowed with cond_chunk_embs=True")
            if cond_id is not None:
                raise ValueError("cond_id, weights['chunk_embs']: expected at most one of them, got both")
            expected = [self.num_chunks, self._chunk_emb_size]
            if not isinstance(chunk_embs, torch.Tensor) or chunk_embs.dim() != 3 or \
                    list(chunk_embs.shape[1:]) != expected:
                raise ValueError("weights['chunk_embs']: expected a tensor [K, %d, %d], got %s"
                                 % (*expected, getattr(chunk_embs, 'shape', type(chunk_embs).__name__)))
        if self._cond_chunk_embs and cond_id is None and chunk_embs is None:
            raise ValueError("cond_id, weights['chunk_embs']: conditional chunk embeddings need one of them, "
                             'got none')
        uncond_input, cond_input, uncond_weights, cond_weights, cond_ids = self._preprocess_forward_args(
            uncond_input=uncond_input, cond_input=cond_input, cond_id=cond_id, weights=weights,
            ret_format=ret_format, input_required=not self._cond_chunk_embs,
            select_cond_inputs=not self._cond_chunk_embs)

        if self._cond_chunk_embs:
            uncond_trunk = uncond_weights
            if cond_ids is not None:
                if cond_weights is None:
                    raise ValueError("cond_id: needs conditional weights held or given via "
                                     "weights['cond_weights'], got neither")
                n = self._num_cond_embs
                chunk_embs = torch.stack([cond_weights[len(cond_weights) - n + i] for i in cond_ids])
                if self._cond_in_size > 0:
                    cond_input = torch.stack([cond_weights[i] for i in cond_ids])
        else:
            uncond_trunk = uncond_weights[:-1]
            chunk_embs = uncond_weights[-1].unsqueeze(0)

        parts = []
        if self._uncond_in_size > 0:
            if uncond_input is None:
                raise ValueError('uncond_input: expected a tensor [K, %d], got None' % self._uncond_in_size)
            self._check_input(uncond_input, self._uncond_in_size, 'uncond_input')
            parts.append(uncond_input)
        parts.append(None)  # slot of the chunk embeddings, between the two input parts
        if self._cond_in_size > 0:
            if cond_input is None:
                raise ValueError('cond_input, cond_id: expected one of them (embeddings of size %d), got none'
                                 % self._cond_in_size)
            self._check_input(cond_input, self._cond_in_size, 'cond_input')
            parts.append(cond_input)
        batch = max([chunk_embs.shape[0]] + [p.shape[0] for p in parts if p is not None])
        n, c = self.num_chunks, self._chunk_emb_size
        if chunk_embs.shape[0] not in (1, batch):
            raise ValueError("weights['chunk_embs']: expected %d (or 1) embedding sets to match the inputs, "
                             'got %d' % (batch, chunk_embs.shape[0]))
        # Every chunk sees the same shared inputs: broadcast them along the chunk axis, [K, n, *].
        h = torch.cat([chunk_embs.expand(batch, n, c) if p is None else p.unsqueeze(1).expand(batch, n, -1)
                       for p in parts], dim=2)
        chunks = self._trunk_forward(h.reshape(batch * n, -1), uncond_trunk, condition)
        flat = chunks.reshape(batch, n * self._chunk_size)[:, :self.num_outputs]
        return self._flat_to_ret_format(flat, ret_format)

    def get_chunk_emb(self, chunk_id=None, cond_id=None):
        """The held chunk embeddings ``[num_chunks, chunk_emb_size]`` (of condition ``cond_id`` when they are
        conditional), or row ``chunk_id`` of them."""
        if self._cond_chunk_embs:
            if cond_id is None:
                raise ValueError('cond_id: expected an int since chunk embeddings are conditional, got None')
            ref = self._cemb_refs[self._parse_cond_ids(cond_id)[0]]
        else:
            if cond_id is not None:
                raise ValueError('cond_id: expected None since chunk embeddings are unconditional, got %r'
                                 % (cond_id,))
            ref = self._cemb_refs[0]
        index = self.param_shapes_meta[ref]['index']
        if index == -1:
            raise RuntimeError('get_chunk_emb: chunk embeddings are not held by this hypernetwork')
        cembs = self.internal_params[index]
        if chunk_id is None:
            return cembs
        if isinstance(chunk_id, bool) or not isinstance(chunk_id, int) or not 0 <= chunk_id < self.num_chunks:
            raise ValueError('chunk_id: expected an int in [0, %d), got %r' % (self.num_chunks, chunk_id))
        return cembs[chunk_id]

    def apply_chunked_hyperfan_init(self, method='in', use_xavier=False, uncond_var=1., cond_var=1., eps=1e-5,
                                    cemb_normal_init=False, mnet=None, target_vars=None):
        r"""Chunked hyperfan init: produced tensors get the variance Kaiming/Xavier would give them.

        Hyperfan (see :meth:`HMLP.apply_hyperfan_init`) tunes one output head per target tensor; here one
        head produces every chunk, so the per-chunk knob is the variance of the chunk embedding instead.
        All layers get fan-in init with zero biases (hidden: gain :math:`c`; output: gain 1, nothing
        follows it), so every output of chunk :math:`j` has the variance of the mean input second moment

        .. math::

            \mathrm{Var}(\text{out}_j) = \frac{n\, v + d_c\, \mathrm{Var}(c_j)}{n + d_c}

        with :math:`n = ` ``uncond_in_size + cond_in_size``, :math:`v` their variance-weighted mean and
        :math:`d_c` = ``chunk_emb_size``. Solving for :math:`\mathrm{Var}(c_j)` to hit the chunk's target
        :math:`t_j` (the mean target variance of the outputs in chunk :math:`j`) gives
        :math:`\mathrm{Var}(c_j) = ((n + d_c) t_j - n v) / d_c`, clipped to ``eps`` (with a warning) when
        :math:`v` is too large.

        Targets: weights :math:`c/\mathrm{fan\_in}` (``'in'``), :math:`c/\mathrm{fan\_out}` (``'out'``) or
        their harmonic mean, with :math:`c = 2` (Kaiming) or 1 (Xavier); biases :math:`1 / (3\,
        \mathrm{fan\_in})` (PyTorch's default bias init); everything else 1. ``target_vars`` (list per
        target or dict by tensor name) overrides them.

        Args:
            eps (float): smallest chunk-embedding variance.
            cemb_normal_init (bool): normal instead of uniform chunk embeddings.
            (....): as :meth:`HMLP.apply_hyperfan_init`.
        """
        if method not in ('in', 'out', 'harmonic'):
            raise ValueError("method: expected 'in', 'out' or 'harmonic', got %r" % (method,))
        if self.unconditional_params is None:
            raise ValueError('apply_chunked_hyperfan_init: needs held unconditional weights, but '
                             'no_uncond_weights=True')
        if any(self.param_shapes_meta[r]['index'] == -1 for r in self._cemb_refs):
            raise ValueError('apply_chunked_hyperfan_init: needs held chunk embeddings')
        if self._use_batch_norm:
            raise ValueError('apply_chunked_hyperfan_init: batch norm would whiten the chunk-embedding '
                             'variance away; not applicable with use_batch_norm=True')
        targets = self._chunked_targets(method, use_xavier, mnet, target_vars)
        n_in = self._uncond_in_size + self._cond_in_size
        in_var = self._input_variance(uncond_var, cond_var)
        d_c = self._chunk_emb_size
        # Mean target per chunk over its valid (uncropped) outputs.
        per_output = torch.cat([torch.full((math.prod(s),), float(t), dtype=torch.float64)
                                for s, t in zip(self.target_shapes, targets)])
        padded = torch.cat([per_output, per_output.new_zeros(self.num_chunks * self._chunk_size
                                                             - self.num_outputs)])
        counts = torch.full((self.num_chunks,), float(self._chunk_size), dtype=torch.float64)
        counts[-1] -= padded.numel() - self.num_outputs
        chunk_targets = padded.view(self.num_chunks, self._chunk_size).sum(1) / counts
        cemb_vars = ((n_in + d_c) * chunk_targets - n_in * in_var) / d_c
        n_clipped = int((cemb_vars < eps).sum())
        if n_clipped > 0:
            warn('apply_chunked_hyperfan_init: %d/%d chunk-embedding variances clipped to eps=%g; keep the input '
                 'variance below %g' % (n_clipped, self.num_chunks, eps,
                                        float((n_in + d_c) / max(n_in, 1) * chunk_targets.min())))
        cemb_stds = cemb_vars.clamp(min=eps).sqrt().to(torch.get_default_dtype())

        n_fc = len(self._fc_pos)
        self._init_trunk_fan_in(use_xavier, n_fc - 1)
        with torch.no_grad():
            head_w, head_b = self._fc_params(n_fc - 1)
            _uniform_with(head_w, 0., 1. / head_w.shape[1])
            if head_b is not None:
                head_b.zero_()
            for ref in self._cemb_refs:
                cembs = self.internal_params[self.param_shapes_meta[ref]['index']]
                noise = torch.randn_like(cembs) if cemb_normal_init else \
                    (torch.rand_like(cembs) * 2. - 1.) * math.sqrt(3.)
                cembs.copy_(noise * cemb_stds.to(cembs.device).unsqueeze(1))

    def _chunked_targets(self, method, use_xavier, mnet, target_vars):
        """Target variance of every target tensor (see :meth:`apply_chunked_hyperfan_init`)."""
        meta = target_shapes_meta(self.target_shapes, mnet)
        n = len(self.target_shapes)
        if target_vars is None:
            given = [None] * n
        elif isinstance(target_vars, dict):
            given = [target_vars.get(m['name']) for m in meta]
        elif isinstance(target_vars, (list, tuple)) and len(target_vars) == n:
            given = list(target_vars)
        else:
            raise ValueError('target_vars: expected None, a dict or a list of %d values, got %r' % (n, target_vars))
        layer_shapes = {m['layer']: s for m, s in zip(meta, self.target_shapes) if m['name'] == 'weight'}
        c = 1. if use_xavier else 2.
        out = []
        for g, m, s in zip(given, meta, self.target_shapes):
            if g is not None:
                out.append(float(g))
            elif m['name'] == 'weight':
                out.append(HMLP._hyperfan_target(method, c, 'weight', s, None, False))
            elif m['name'] == 'bias':
                w_shape = layer_shapes.get(m['layer'])
                fan_in = fan_in_and_out(w_shape)[0] if w_shape is not None else s[0]
                out.append(1. / (3. * fan_in))
            else:
                out.append(1.)
        return out
