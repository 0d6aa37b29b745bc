r"""Hard Attention to the Task (HAT; Serra et al., ICML 2018): per-task unit masks that protect old tasks.

Each task :math:`t` owns an embedding :math:`e^t_l \in \mathbb{R}^{N_l}` per masked layer :math:`l`. The units
of layer :math:`l` are multiplied by the almost-binary attention mask

.. math::  a^t_l = \sigma(s\,e^t_l),

whose slope :math:`s` is annealed over the batches :math:`b = 1..B` of every epoch (paper eq. 3),

.. math::  s = \frac{1}{s_{max}} + \Big(s_{max} - \frac{1}{s_{max}}\Big)\frac{b - 1}{B - 1},

and set to :math:`s_{max}` for evaluation. After task :math:`t` the masks at :math:`s_{max}` are merged into
the cumulative masks :math:`a^{\le t}_l = \max(a^{< t}_l, a^t_l)`. While a later task trains, the gradient of
the weight :math:`w_{l,ij}` from unit :math:`j` of layer :math:`l-1` to unit :math:`i` of layer :math:`l` is
multiplied by

.. math::  1 - \min\big(a^{<t}_{l,i},\, a^{<t}_{l-1,j}\big),

so connections between units that earlier tasks use are frozen: their outputs do not change. Because
:math:`\sigma(s e)` saturates, the embedding gradients are rescaled (paper eq. 5) by

.. math::  \frac{s_{max}}{s}\,\frac{\cosh(\mathrm{clamp}(s e, \pm c)) + 1}{\cosh(e) + 1}

(:math:`c = 50` keeps the cosh finite), and the embeddings are clamped to :math:`\pm 6` after every step so
that :math:`\sigma(s_{max} e)` stays differentiable. Capacity is kept free for later tasks by the mask
sparsity regulariser :class:`HATMaskSparsityReg` (paper eq. 6, with :math:`c = 0.75` by default).

Use with an ``mnets`` MLP whose context-mod gains carry the masks (``use_context_mod=True,
context_mod_no_weights=True, no_last_layer_context_mod=True, context_mod_post_activation=True``)::

    hat = HATMasks(num_tasks, hidden_layers)
    reg = HATMaskSparsityReg(0.75)
    for b, (x, y) in enumerate(batches):                  # b counted from 0
        s = s_schedule(b, num_batches, hat.s_max)
        masks = hat.get_masks(task_id, s)
        out = mnet(x, weights={'mod_weights': hat.context_mod_weights(task_id, s)})
        loss = task_loss(out, y) + reg(masks, hat.prev_masks)[0]
        loss.backward()
        hat.adjust_grads_(mnet.layer_weight_tensors, mnet.layer_bias_vectors, s)
        optimizer.step()                                  # plain SGD (or a fresh Adam per task)
        hat.clamp_embeddings_()
    hat.update_cumulative_masks(task_id)                  # once the task is learned

This is a ``utils`` tool: it imports nothing from ``mnets`` or ``hnets``.
"""
from collections.abc import Mapping, Sequence

import torch
from torch import nn

__all__ = ['HAT_S_MAX', 'HAT_LAMBDA', 'HAT_EMB_CLAMP', 'HAT_COSH_CLAMP', 's_schedule',
           'weight_grad_multiplier', 'embedding_grad_compensation', 'HATMasks', 'HATMaskSparsityReg']

HAT_S_MAX = 400.0
"""Maximum mask slope :math:`s_{max}` (paper default)."""
HAT_LAMBDA = 0.75
"""Strength :math:`c` of the mask sparsity regulariser (paper default)."""
HAT_EMB_CLAMP = 6.0
"""Embeddings are kept in :math:`[-6, 6]`."""
HAT_COSH_CLAMP = 50.0
"""Bound of :math:`s e` inside the cosh of the gradient compensation."""


def _check_positive_number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError('%s: expected a number, got %s' % (name, type(value).__name__))
    if not value > 0:
        raise ValueError('%s: expected a number > 0, got %r' % (name, value))


def s_schedule(batch_idx, num_batches, s_max=HAT_S_MAX):
    r"""Mask slope for the batch with 0-based index ``batch_idx`` of ``num_batches`` in an epoch.

    Implements :math:`s = 1/s_{max} + (s_{max} - 1/s_{max})(b - 1)/(B - 1)` with :math:`b = \text{batch\_idx}
    + 1`, so the first batch gets :math:`1/s_{max}` and the last :math:`s_{max}`; a single-batch epoch gets
    :math:`s_{max}`. The result always lies in :math:`[1/s_{max}, s_{max}]`.
    """
    for name, value in (('batch_idx', batch_idx), ('num_batches', num_batches)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError('%s: expected an int, got %s' % (name, type(value).__name__))
    _check_positive_number('s_max', s_max)
    if s_max < 1:
        raise ValueError('s_max: expected a number >= 1, got %r' % s_max)
    if num_batches < 1:
        raise ValueError('num_batches: expected an integer >= 1, got %d' % num_batches)
    if not 0 <= batch_idx < num_batches:
        raise ValueError('batch_idx: expected a 0-based index in [0, %d], got %d'
                         % (num_batches - 1, batch_idx))
    if num_batches == 1:
        return float(s_max)
    return 1.0 / s_max + (s_max - 1.0 / s_max) * batch_idx / (num_batches - 1)


def weight_grad_multiplier(out_prev, in_prev, weight_shape):
    r"""Factor :math:`1 - \min(a^{<t}_{out,i}, a^{<t}_{in,j})` for the gradient of a weight
    ``[n_out, n_in, ...]``.

    Args:
        out_prev (torch.Tensor): Cumulative mask of the layer's output units ``[n_out]``, or a 0-dim tensor
            for a layer without unit masks (1 once any task is learned: every unit counts as used).
        in_prev (torch.Tensor): Cumulative mask of the input units ``[n_in]``, or ``None`` for network
            inputs, which are never masked (only ``out_prev`` then decides).
        weight_shape (sequence of int): Shape of the weight; trailing dimensions (e.g. conv kernels) share
            the factor of their ``(i, j)`` pair.

    Returns:
        torch.Tensor: Broadcastable to ``weight_shape``.
    """
    trailing = [1] * (len(weight_shape) - 2)
    out_side = out_prev.reshape(-1, 1, *trailing)
    if in_prev is None:
        return 1.0 - out_side
    return 1.0 - torch.minimum(out_side, in_prev.reshape(1, -1, *trailing))


def embedding_grad_compensation(task_embs, s, s_max=HAT_S_MAX, cosh_clamp=HAT_COSH_CLAMP):
    r"""Factor :math:`\frac{s_{max}}{s}\frac{\cosh(\mathrm{clamp}(s e, \pm c)) + 1}{\cosh(e) + 1}`.

    The gradient of :math:`\sigma(s e)` w.r.t. :math:`e` is :math:`s\,\sigma'(s e)`, tiny once
    :math:`|s e|` is large and of very different size across the annealing. Since
    :math:`\sigma'(x) = 1 / (2(\cosh x + 1))`, the factor turns it into :math:`s_{max}\,\sigma'(e)`: the
    same step size for every :math:`s` (as long as :math:`|s e|` stays below the cosh clamp).
    """
    scaled = (s * task_embs).clamp(-cosh_clamp, cosh_clamp)
    return (s_max / s) * (torch.cosh(scaled) + 1.0) / (torch.cosh(task_embs) + 1.0)


class HATMasks(nn.Module):
    r"""Task embeddings, their masks and the cumulative masks of earlier tasks, for several layers.

    Args:
        num_tasks (int): Number of tasks (one embedding row each).
        layer_sizes (sequence of int): Units :math:`N_l` of every masked layer (e.g. the hidden layers).
        s_max (float): Maximum slope :math:`s_{max} \ge 1`, used at evaluation.
        emb_clamp (float): Embeddings are clamped to ``[-emb_clamp, emb_clamp]`` by :meth:`clamp_embeddings_`.
        cosh_clamp (float): See :func:`embedding_grad_compensation`.
        init_std (float): Embeddings start as :math:`N(0, \text{init\_std}^2)`, as in the paper.

    Attributes:
        task_embs (nn.ParameterList): Per layer ``[num_tasks, N_l]``; row ``t`` is :math:`e^t_l`. Only row
            ``t`` gets gradients while task ``t`` trains; use plain SGD or a fresh optimizer per task so that
            no optimizer state moves earlier rows.
        prev_masks (list of torch.Tensor): Cumulative masks :math:`a^{<t}_l` ``[N_l]`` (zeros at the start).
        num_learned_tasks (torch.Tensor): Count of :meth:`update_cumulative_masks` calls (0-dim buffer).
    """

    def __init__(self, num_tasks, layer_sizes, s_max=HAT_S_MAX, emb_clamp=HAT_EMB_CLAMP,
                 cosh_clamp=HAT_COSH_CLAMP, init_std=1.0):
        super().__init__()
        if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 1:
            raise ValueError('num_tasks: expected an integer >= 1, got %r' % (num_tasks,))
        layer_sizes = list(layer_sizes)
        if not layer_sizes or any(isinstance(n, bool) or not isinstance(n, int) or n < 1
                                  for n in layer_sizes):
            raise ValueError('layer_sizes: expected a non-empty list of integers >= 1, got %r'
                             % (layer_sizes,))
        _check_positive_number('s_max', s_max)
        if s_max < 1:
            raise ValueError('s_max: expected a number >= 1, got %r' % s_max)
        for name, value in (('emb_clamp', emb_clamp), ('cosh_clamp', cosh_clamp), ('init_std', init_std)):
            _check_positive_number(name, value)
        self.num_tasks = num_tasks
        self.layer_sizes = layer_sizes
        self.s_max = float(s_max)
        self.emb_clamp = float(emb_clamp)
        self.cosh_clamp = float(cosh_clamp)
        self.task_embs = nn.ParameterList([nn.Parameter(init_std * torch.randn(num_tasks, n))
                                           for n in layer_sizes])
        for l, n in enumerate(layer_sizes):
            self.register_buffer('prev_mask_%d' % l, torch.zeros(n))
        self.register_buffer('num_learned_tasks', torch.zeros((), dtype=torch.long))

    @property
    def prev_masks(self):
        return [getattr(self, 'prev_mask_%d' % l) for l in range(len(self.layer_sizes))]

    def _check_task_id(self, task_id):
        ids = [task_id] if isinstance(task_id, int) and not isinstance(task_id, bool) else task_id
        if not isinstance(ids, Sequence) or not ids or not all(
                isinstance(t, int) and not isinstance(t, bool) for t in ids):
            raise TypeError('task_id: expected an int or a non-empty list of ints, got %r' % (task_id,))
        bad = [t for t in ids if not 0 <= t < self.num_tasks]
        if bad:
            raise ValueError('task_id: expected ids in [0, %d], got %s' % (self.num_tasks - 1, bad))

    def get_masks(self, task_id, s=None):
        r"""Masks :math:`\sigma(s e^t_l)` per layer: ``[N_l]`` for an int ``task_id``, ``[K, N_l]`` for K ids.

        ``s=None`` means :math:`s_{max}` (evaluation).
        """
        self._check_task_id(task_id)
        s = self.s_max if s is None else s
        return [torch.sigmoid(s * embs[task_id]) for embs in self.task_embs]

    def context_mod_weights(self, task_id, s=None):
        """``[a_1, 0_1, a_2, 0_2, ...]``: the masks as context-mod (gain, shift) pairs of an ``mnets`` MLP.

        Pass as ``weights={'mod_weights': ...}`` to a net built with ``use_context_mod=True,
        context_mod_no_weights=True, no_last_layer_context_mod=True`` (and
        ``context_mod_post_activation=True`` for the paper's mask after the nonlinearity; for ReLU both
        placements agree since a >= 0).
        """
        weights = []
        for mask in self.get_masks(task_id, s):
            weights.extend([mask, torch.zeros_like(mask)])
        return weights

    def update_cumulative_masks(self, task_id):
        r"""After learning task ``task_id``: :math:`a^{<t+1}_l = \max(a^{<t}_l, \sigma(s_{max} e^t_l))`."""
        if isinstance(task_id, bool) or not isinstance(task_id, int):
            raise TypeError('task_id: expected an int, got %s' % type(task_id).__name__)
        with torch.no_grad():
            for prev, mask in zip(self.prev_masks, self.get_masks(task_id)):
                prev.copy_(torch.maximum(prev, mask))
            self.num_learned_tasks += 1

    def mask_weight_grads_(self, weights, biases=None, out_prev=None):
        r"""Multiply the ``.grad`` of every layer's weight (and bias) by :math:`1 - \min(a^{<t}_{l,i},
        a^{<t}_{l-1,j})` in place.

        Args:
            weights (sequence of torch.Tensor): The layers' weights ``[N_l, N_{l-1}, ...]`` in forward order;
                either one per masked layer, or one more for an unmasked output layer (the usual case).
            biases (sequence of torch.Tensor or None, optional): The matching biases ``[N_l]`` (entries may
                be ``None``).
            out_prev (torch.Tensor, optional): For an unmasked output layer, which output units earlier tasks
                use ``[n_out]`` (e.g. the heads of learned tasks in a multi-head net). By default every output
                unit counts as used once a task is learned: a shared head stays exactly as it was.
        """
        weights = list(weights)
        num_masked = len(self.layer_sizes)
        if len(weights) not in (num_masked, num_masked + 1):
            raise ValueError('weights: expected %d or %d tensors (one per masked layer, plus an optional '
                             'unmasked output layer), got %d' % (num_masked, num_masked + 1, len(weights)))
        biases = [None] * len(weights) if biases is None else list(biases)
        if len(biases) != len(weights):
            raise ValueError('biases: expected %d entries (one per weight), got %d'
                             % (len(weights), len(biases)))
        prev = self.prev_masks
        if len(weights) > num_masked:
            if out_prev is None:
                out_prev = (self.num_learned_tasks > 0).to(prev[0].dtype)
            prev = prev + [out_prev]
        for l, (weight, bias) in enumerate(zip(weights, biases)):
            n_out = prev[l].shape[0] if prev[l].dim() else weight.shape[0]
            n_in = prev[l - 1].shape[0] if l > 0 else None
            if weight.dim() < 2 or weight.shape[0] != n_out or (n_in is not None and weight.shape[1] != n_in):
                raise ValueError('weights[%d]: expected shape [%d, %s, ...], got %s'
                                 % (l, n_out, n_in if n_in is not None else 'n_in', list(weight.shape)))
            if weight.grad is not None:
                weight.grad.mul_(weight_grad_multiplier(prev[l], prev[l - 1] if l > 0 else None,
                                                        weight.shape))
            if bias is not None and bias.grad is not None:
                bias.grad.mul_(1.0 - prev[l])

    def compensate_embedding_grads_(self, s):
        """Rescale the embeddings' ``.grad`` in place by :func:`embedding_grad_compensation` at ``s``."""
        _check_positive_number('s', s)
        with torch.no_grad():
            for embs in self.task_embs:
                if embs.grad is not None:
                    embs.grad.mul_(embedding_grad_compensation(embs, s, self.s_max, self.cosh_clamp))

    def adjust_grads_(self, weights, biases, s, out_prev=None):
        """Both HAT gradient rules after ``backward()``: weight masking and embedding compensation."""
        self.mask_weight_grads_(weights, biases, out_prev=out_prev)
        self.compensate_embedding_grads_(s)

    def clamp_embeddings_(self):
        """Keep every embedding in ``[-emb_clamp, emb_clamp]`` (call after each optimizer step)."""
        with torch.no_grad():
            for embs in self.task_embs:
                embs.clamp_(-self.emb_clamp, self.emb_clamp)

    def extra_repr(self):
        return 'num_tasks=%d, layer_sizes=%s, s_max=%s' % (self.num_tasks, self.layer_sizes, self.s_max)


class HATMaskSparsityReg(nn.Module):
    r"""Mask sparsity regulariser of HAT, returning ``(reg, network_sparsity)``.

    ``mode='original'`` (paper eq. 6): the share of the still-free units that the current task takes,

    .. math::  R_{orig} = \frac{\sum_{l,i} a^t_{l,i}(1 - a^{<t}_{l,i})}{\sum_{l,i}(1 - a^{<t}_{l,i})}.

    ``mode='cross'`` averages it with the share of already-taken units that the task does *not* reuse,

    .. math::  R_{cross} = \frac{1}{2}\Big(R_{orig} + 1 - \frac{\sum_{l,i} a^t_{l,i} a^{<t}_{l,i}}
               {\sum_{l,i} a^{<t}_{l,i}}\Big),

    which pushes a new task to reuse old units rather than claim free ones. A ratio whose denominator is at
    most ``min_units`` (e.g. almost no free units left, or nothing learned yet in the cross term) is 0 rather
    than a noisy quotient of tiny numbers, the reference's ``> 10`` guard. ``reg`` is ``factor`` times the
    ratio over all layers; ``network_sparsity`` holds the same ratios per layer (without ``factor``), in the
    container type of ``masks`` (list or dict). All values are tensors; no host synchronisation occurs.

    Args:
        factor (float): :math:`c`, the strength (paper default 0.75).
        mode (str): ``'original'`` or ``'cross'``.
        min_units (float): Guard on the denominators.
    """

    def __init__(self, factor=HAT_LAMBDA, mode='original', min_units=10):
        super().__init__()
        if isinstance(factor, bool) or not isinstance(factor, (int, float)):
            raise TypeError('factor: expected a number, got %s' % type(factor).__name__)
        if factor < 0:
            raise ValueError('factor: expected a number >= 0, got %r' % factor)
        if mode not in ('original', 'cross'):
            raise ValueError("mode: expected 'original' or 'cross', got %r" % (mode,))
        if isinstance(min_units, bool) or not isinstance(min_units, (int, float)) or min_units < 0:
            raise ValueError('min_units: expected a number >= 0, got %r' % (min_units,))
        self.factor = factor
        self.mode = mode
        self.min_units = min_units

    def _guarded_ratio(self, numerator, denominator):
        safe = denominator.clamp_min(1e-12)
        return torch.where(denominator > self.min_units, numerator / safe, torch.zeros_like(numerator))

    def forward(self, masks, prev_masks):
        """``masks``: the task's :math:`a^t_l`; ``prev_masks``: :math:`a^{<t}_l` (lists or dicts)."""
        if isinstance(masks, Mapping):
            if not isinstance(prev_masks, Mapping) or set(masks) != set(prev_masks):
                raise ValueError('prev_masks: expected a dict with the keys %s of masks, got %s'
                                 % (sorted(masks), sorted(prev_masks) if isinstance(prev_masks, Mapping)
                                    else type(prev_masks).__name__))
            keys = list(masks)
            current, previous = [masks[k] for k in keys], [prev_masks[k] for k in keys]
        else:
            current, previous = list(masks), list(prev_masks)
            if len(current) != len(previous):
                raise ValueError('prev_masks: expected %d tensors (one per mask), got %d'
                                 % (len(current), len(previous)))
            keys = None
        if not current:
            raise ValueError('masks: expected at least one layer, got none')
        for l, (a, a_prev) in enumerate(zip(current, previous)):
            if a.shape != a_prev.shape:
                raise ValueError('prev_masks[%s]: expected shape %s, got %s'
                                 % (keys[l] if keys else l, list(a.shape), list(a_prev.shape)))

        free = torch.stack([(1 - a_prev).sum() for a_prev in previous])
        taken_new = torch.stack([(a * (1 - a_prev)).sum() for a, a_prev in zip(current, previous)])
        per_layer = self._guarded_ratio(taken_new, free)
        ratio = self._guarded_ratio(taken_new.sum(), free.sum())
        if self.mode == 'cross':
            used = torch.stack([a_prev.sum() for a_prev in previous])
            reused = torch.stack([(a * a_prev).sum() for a, a_prev in zip(current, previous)])
            per_layer = 0.5 * (per_layer + self._guarded_ratio(used - reused, used))
            ratio = 0.5 * (ratio + self._guarded_ratio(used.sum() - reused.sum(), used.sum()))
        network_sparsity = list(per_layer.unbind(0))
        if keys is not None:
            network_sparsity = dict(zip(keys, network_sparsity))
        return self.factor * ratio, network_sparsity

    def extra_repr(self):
        return 'factor=%s, mode=%r, min_units=%s' % (self.factor, self.mode, self.min_units)
