r"""A chunked transposed-convolution hypernetwork.

The deconvolutional trunk of :class:`hnets.deconv_hnet.HDeconv` produces one hyper-image of
``chunk_size = prod(hyper_img_shape)`` pixels per chunk; a learned chunk embedding :math:`c_j` in its input
tells the chunks apart (as in :class:`hnets.chunked_mlp_hnet.ChunkedHMLP`):

.. math::

    \mathrm{vec}(W_{\text{main}}) = \big[g([z, c_1, e]),\ \dots,\ g([z, c_n, e])\big]_{:\text{num\_outputs}},
    \qquad n = \lceil \text{num\_outputs} / \text{chunk\_size} \rceil

The chunking ignores the main network's structure. All chunks of all ``K`` conditions are one batch of
``K n`` images.
"""
import math

import torch
from torch import nn

from hnets.deconv_hnet import _check_input_args, _DeconvTrunkMixin, _is_int, _join_inputs
from hnets.hnet_interface import HyperNetInterface
from hnets.mlp_hnet import _RELU

__all__ = ['ChunkedHDeconv']


class ChunkedHDeconv(nn.Module, _DeconvTrunkMixin, HyperNetInterface):
    """Chunked deconvolutional hypernetwork.

    Args:
        (....): as :class:`hnets.deconv_hnet.HDeconv`, except that ``hyper_img_shape`` is the shape of ONE
            chunk (any size; the last chunk is cropped).
        chunk_emb_size (int): size of a chunk embedding (N(0, 1) initialised).
        cond_chunk_embs (bool): chunk embeddings per condition (conditional parameters, after the input
            embeddings); then ``uncond_in_size`` and ``cond_in_size`` may both be 0.

    Parameter order: conditional input embeddings, trunk (as :class:`HDeconv`), chunk embeddings.
    """

    def __init__(self, target_shapes, hyper_img_shape, chunk_emb_size=8, cond_chunk_embs=False, uncond_in_size=0,
                 cond_in_size=8, num_layers=5, num_filters=None, kernel_size=5, sa_units=(1, 3), verbose=True,
                 activation_fn=_RELU, use_bias=True, no_uncond_weights=False, no_cond_weights=False,
                 num_cond_embs=1, use_spectral_norm=False, use_batch_norm=False):
        nn.Module.__init__(self)
        HyperNetInterface.__init__(self)
        self._target_shapes = self._check_target_shapes(target_shapes)
        img_shape = self._check_img_shape(hyper_img_shape)
        _check_input_args(uncond_in_size, cond_in_size, num_cond_embs)
        if not _is_int(chunk_emb_size) or chunk_emb_size <= 0:
            raise ValueError('chunk_emb_size: expected a positive int, got %r' % (chunk_emb_size,))
        if cond_chunk_embs and num_cond_embs == 0:
            raise ValueError('num_cond_embs: expected > 0 with cond_chunk_embs=True, got 0')
        if not cond_chunk_embs and uncond_in_size + cond_in_size == 0:
            raise ValueError('uncond_in_size, cond_in_size: expected a positive total input size unless '
                             'cond_chunk_embs=True (otherwise the output could not depend on anything), got 0')
        if cond_in_size == 0 and not cond_chunk_embs:
            num_cond_embs = 0
        self._chunk_size = math.prod(img_shape)
        self._chunk_emb_size = chunk_emb_size
        self._cond_chunk_embs = cond_chunk_embs
        self._uncond_in_size = uncond_in_size
        self._cond_in_size = cond_in_size
        self._no_cond_weights = no_cond_weights
        self._num_cond_embs = num_cond_embs
        self._num_known_conds = num_cond_embs
        if cond_in_size > 0:
            for _ in range(num_cond_embs):
                self._register_param([cond_in_size], 'embedding', 0, conditional=True,
                                     internal=not no_cond_weights, init_fn=nn.init.normal_)
        self._build_deconv_trunk(uncond_in_size + chunk_emb_size + cond_in_size, img_shape, num_layers,
                                 num_filters, kernel_size, sa_units, use_bias, use_batch_norm, use_spectral_norm,
                                 activation_fn, no_uncond_weights)
        n_sets = num_cond_embs if cond_chunk_embs else 1
        held = not (no_cond_weights if cond_chunk_embs else no_uncond_weights)
        self._cemb_refs = [self._register_param([self.num_chunks, chunk_emb_size], 'embedding', 0,
                                                conditional=cond_chunk_embs, internal=held, init_fn=nn.init.normal_,
                                                info='chunk embeddings')
                           for _ in range(n_sets)]
        self._finish_trunk_positions()
        if verbose:
            print('%d chunk(s) of a %s image each. %s' % (self.num_chunks, img_shape, self))

    @property
    def num_chunks(self):
        """Number of chunks, ``ceil(num_outputs / prod(hyper_img_shape))``."""
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

        With ``cond_chunk_embs=True``, ``weights`` may be a dict with the extra key ``'chunk_embs'``, a tensor
        ``[K, num_chunks, chunk_emb_size]`` (then without ``cond_id``).
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
        uncond_input, cond_input, uncond_w, cond_w, cond_ids = self._preprocess_forward_args(
            uncond_input=uncond_input, cond_input=cond_input, cond_id=cond_id, weights=weights,
            ret_format=ret_format, input_required=not self._cond_chunk_embs, select_cond_inputs=False)
        if cond_ids is not None:
            if cond_w is None:
                raise ValueError("cond_id: needs conditional weights held or given via weights['cond_weights'], "
                                 'got neither')
            if self._cond_in_size > 0:
                cond_input = torch.stack([cond_w[i] for i in cond_ids])
            if self._cond_chunk_embs:
                n = self._num_cond_embs
                chunk_embs = torch.stack([cond_w[len(cond_w) - n + i] for i in cond_ids])
        trunk_w = uncond_w
        if not self._cond_chunk_embs:
            trunk_w, chunk_embs = uncond_w[:-1], uncond_w[-1].unsqueeze(0)
        sizes = [chunk_embs.shape[0]] + [t.shape[0] for t in (uncond_input, cond_input) if t is not None]
        batch, n = max(sizes), self.num_chunks
        if any(k not in (1, batch) for k in sizes):
            raise ValueError("uncond_input, cond_input, weights['chunk_embs']: expected equal batch sizes K (or 1), "
                             'got %s' % sizes)

        def per_chunk(t):
            return None if t is None else t.unsqueeze(1).expand(batch, n, t.shape[-1]).reshape(batch * n, -1)

        h = _join_inputs(self, per_chunk(uncond_input), per_chunk(cond_input),
                         middle=chunk_embs.expand(batch, n, -1).reshape(batch * n, -1))
        images = self._deconv_forward(h, trunk_w, condition)
        flat = images.reshape(batch, n * self._chunk_size)[:, :self.num_outputs]
        return self._flat_to_ret_format(flat, ret_format)

    def get_cond_in_emb(self, cond_id):
        """The held conditional input embedding of condition ``cond_id``."""
        self._parse_cond_ids(cond_id)
        if self._cond_in_size == 0 or self._no_cond_weights:
            raise RuntimeError('get_cond_in_emb: this hypernetwork holds no conditional input embeddings')
        return self.internal_params[self.param_shapes_meta[cond_id]['index']]

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
        if not _is_int(chunk_id) or not 0 <= chunk_id < self.num_chunks:
            raise ValueError('chunk_id: expected an int in [0, %d), got %r' % (self.num_chunks, chunk_id))
        return cembs[chunk_id]
