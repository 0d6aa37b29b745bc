r"""Output regularizer for task-conditioned hypernetworks (von Oswald et al., ICLR 2020).

While a hypernetwork :math:`h(c, \theta)` learns task :math:`T`, the weights it produced for earlier tasks
are pinned to targets recorded before training on :math:`T` started:

.. math::
    R = \frac{1}{|\mathcal{J}|} \sum_{j \in \mathcal{J}} s_j \sum_k F_{j,k}\, M_{j,k}
        \big(W^\text{target}_{j,k} - h(c_j + \Delta c_j, \theta + \Delta\theta)_k\big)^2,

with :math:`\mathcal{J} \subseteq \{0, \dots, T-1\}` (all previous tasks or a random subset),
optional lookahead :math:`\Delta\theta` (see :mod:`utils.optim_step`) and embedding changes
:math:`\Delta c_j`, per-task scalings :math:`s_j`, per-weight importances :math:`F_j` (e.g. Fisher
estimates of the main network) and masks :math:`M_j` that keep only the output-head weights task :math:`j`
uses. All :math:`h(c_j, \cdot)` come from **one** batched forward (``cond_id`` is the list
:math:`\mathcal{J}`), and so do targets recomputed on the fly from a checkpoint
:math:`(\theta^*, c^*)` — instead of one forward per task.

Hypernetworks and main networks are used by duck typing through the ``HyperNetInterface`` /
``MainNetInterface`` contracts; nothing here imports them.
"""
import torch

__all__ = ['get_current_targets', 'calc_fix_target_reg', 'flatten_and_remove_out_heads']


def get_current_targets(task_id, hnet):
    r"""The hypernetwork outputs :math:`h(c_j, \theta)` for all :math:`j < \text{task\_id}`, detached.

    Computed in eval mode (restored afterwards) without gradients, in one batched forward. Store them
    before training task ``task_id`` and pass them as ``targets`` to :func:`calc_fix_target_reg`.
    (Storing :math:`\theta` and the embeddings instead, via ``prev_theta``/``prev_task_embs``, costs
    constant memory but a second forward per regularizer call.)

    Args:
        task_id (int): The task about to be learned.
        hnet: Hypernetwork (``HyperNetInterface``).

    Returns:
        (list): ``task_id`` lists of tensors of shapes ``hnet.target_shapes``; empty for ``task_id == 0``.
    """
    if not isinstance(task_id, int) or task_id < 0:
        raise ValueError(f'task_id: expected an int >= 0, got {task_id!r}')
    if task_id == 0:
        return []
    was_training = hnet.training
    hnet.eval()
    try:
        with torch.no_grad():
            outputs = hnet.forward(cond_id=list(range(task_id)), ret_format='sequential')
    finally:
        hnet.train(was_training)
    return [[w.detach() for w in task_weights] for task_weights in outputs]


def calc_fix_target_reg(hnet, task_id, targets=None, dTheta=None, dTembs=None, mnet=None,
                        inds_of_out_heads=None, fisher_estimates=None, prev_theta=None, prev_task_embs=None,
                        batch_size=None, reg_scaling=None, *, predicted=None):
    r"""The output regularizer :math:`R` (see the module docstring) for the tasks before ``task_id``.

    Args:
        hnet: Hypernetwork (``HyperNetInterface``) with unconditional weights :math:`\theta`.
        task_id (int): Current task; tasks ``0 .. task_id-1`` are regularized.
        targets (list or torch.Tensor, optional): ``task_id`` entries, each a list of tensors in
            ``hnet.target_shapes`` (as from :func:`get_current_targets`) or a flat tensor ``[num_outputs]``;
            or all of them stacked, ``[task_id, num_outputs]`` (then nothing is concatenated per call). Used
            as given (detach them yourself if they should be constants).
        dTheta (list, optional): Change :math:`\Delta\theta` added to the unconditional weights (not
            detached: it may carry gradient, e.g. from :func:`utils.optim_step.calc_delta_theta`).
        dTembs (list, optional): Changes added to all ``hnet.conditional_params`` (task embeddings).
        mnet (optional): Main network; needed with ``inds_of_out_heads``.
        inds_of_out_heads (list, optional): Per task, the output units of its head; only the main-network
            weights feeding them are regularized (``mnet.get_output_weight_mask``).
        fisher_estimates (list, optional): Per task, tensors in ``hnet.target_shapes`` weighting each output.
        prev_theta (list, optional): :math:`\theta^*` to recompute the targets from (with
            ``prev_task_embs``, instead of ``targets``); computed in eval mode and detached.
        prev_task_embs (list, optional): Task embeddings :math:`c^*` belonging to ``prev_theta``.
        batch_size (int, optional): Regularize a random subset of this many previous tasks (all tasks if
            it is ``None``, non-positive, or not smaller than ``task_id``).
        reg_scaling (list, optional): Per-task factors :math:`s_j`.
        predicted (torch.Tensor, optional): hnetkit addition: the hypernetwork's outputs for all tasks
            ``0 .. task_id-1`` in format ``'flattened'`` (``[task_id, num_outputs]``), when the caller has them
            already -- e.g. from one forward with ``cond_id=[task_id, 0, ..., task_id - 1]`` that also yields
            the current task's weights, saving a hypernetwork forward and backward per training step. No
            forward is done here then, so ``dTheta``, ``dTembs`` and ``batch_size`` cannot be given with it.

    Returns:
        (torch.Tensor): Scalar :math:`R`, differentiable w.r.t. the hypernetwork (and ``dTheta``...).

    Raises:
        ValueError: inconsistent arguments (each message names the argument).
    """
    _check_reg_args(hnet, task_id, targets, dTheta, dTembs, mnet, inds_of_out_heads, fisher_estimates,
                    prev_theta, prev_task_embs, reg_scaling)
    task_ids = list(range(task_id))
    if predicted is not None:
        _check_predicted(hnet, task_id, predicted, dTheta, dTembs, batch_size)
    else:
        if batch_size is not None and 0 < batch_size < task_id:
            task_ids = torch.randperm(task_id)[:batch_size].tolist()
        weights = {'uncond_weights': _shifted(hnet.unconditional_params, dTheta)}
        if dTembs is not None:
            weights['cond_weights'] = _shifted(hnet.conditional_params, dTembs)
        predicted = hnet.forward(cond_id=task_ids, weights=weights, ret_format='flattened')

    if targets is not None:
        target = _stack_flat(targets, task_ids, predicted)
    else:
        target = _recompute_targets(hnet, task_ids, prev_theta, prev_task_embs)

    importance = None
    if fisher_estimates is not None:
        importance = _stack_flat(fisher_estimates, task_ids, predicted, name='fisher_estimates')
    if inds_of_out_heads is not None:
        masks = torch.stack([_flat_output_mask(mnet, hnet.target_shapes, inds_of_out_heads[j],
                                               predicted.device, predicted.dtype) for j in task_ids])
        importance = masks if importance is None else importance * masks

    squared = (target - predicted).pow(2)
    per_task = (squared if importance is None else importance * squared).sum(dim=1)
    if reg_scaling is not None:
        scaling = torch.stack([torch.as_tensor(reg_scaling[j], dtype=per_task.dtype, device=per_task.device)
                               for j in task_ids])
        per_task = scaling * per_task
    return per_task.sum() / len(task_ids)


def flatten_and_remove_out_heads(mnet, weights, allowed_outputs):
    """Concatenate main-network weights into one vector, dropping output weights of other heads.

    Args:
        mnet: Main network with a fully-connected output layer (``get_output_weight_mask``).
        weights (list): Tensors in ``mnet.param_shapes`` order, or in ``mnet.hyper_shapes_learned`` order
            (mapped through ``mnet.hyper_shapes_learned_ref``).
        allowed_outputs (list): Output units of the current head.

    Returns:
        (torch.Tensor): 1-D vector of the kept entries, tensor by tensor in row-major order.
    """
    masks = _output_masks(mnet, [tuple(w.shape) for w in weights], allowed_outputs,
                          weights[0].device if weights else None)
    return torch.cat([w.flatten() if m is None else w[m].flatten() for w, m in zip(weights, masks)])


def _output_masks(mnet, shapes, allowed_outputs, device):
    """Per-tensor boolean masks (or None) for tensors of ``shapes``, which follow ``param_shapes`` or
    ``hyper_shapes_learned`` of ``mnet``."""
    if mnet is None:
        raise ValueError('mnet: expected a main network to mask output heads, got None')
    full_masks = mnet.get_output_weight_mask(out_inds=allowed_outputs, device=device)
    if len(shapes) == len(mnet.param_shapes):
        return full_masks
    refs = getattr(mnet, 'hyper_shapes_learned_ref', None)
    if refs is None or len(refs) != len(shapes):
        raise ValueError(f'weights: expected {len(mnet.param_shapes)} tensors (param_shapes) or as many as '
                         f'mnet.hyper_shapes_learned_ref, got {len(shapes)}')
    return [full_masks[r] for r in refs]


def _flat_output_mask(mnet, shapes, allowed_outputs, device, dtype):
    """Mask over the flattened hypernetwork output: 1 where a weight is kept, 0 where it is dropped."""
    masks = _output_masks(mnet, shapes, allowed_outputs, device)
    parts = []
    for shape, mask in zip(shapes, masks):
        numel = 1
        for size in shape:
            numel *= size
        parts.append(torch.ones(numel, dtype=dtype, device=device) if mask is None
                     else mask.reshape(-1).to(dtype))
    return torch.cat(parts)


def _recompute_targets(hnet, task_ids, prev_theta, prev_task_embs):
    was_training = hnet.training
    hnet.eval()
    try:
        with torch.no_grad():
            target = hnet.forward(cond_id=task_ids, ret_format='flattened',
                                  weights={'uncond_weights': list(prev_theta),
                                           'cond_weights': list(prev_task_embs)})
    finally:
        hnet.train(was_training)
    return target.detach()


def _shifted(params, deltas):
    if deltas is None:
        return list(params)
    return [p + d for p, d in zip(params, deltas)]


def _check_predicted(hnet, task_id, predicted, dTheta, dTembs, batch_size):
    given = [name for name, value in (('dTheta', dTheta), ('dTembs', dTembs)) if value is not None]
    if batch_size is not None and 0 < batch_size < task_id:
        given.append('batch_size')
    if given:
        raise ValueError(f'predicted: the outputs are given, so {", ".join(given)} cannot be applied to them; '
                         f'pass either predicted or {", ".join(given)}')
    expected = (task_id, hnet.num_outputs)
    if not isinstance(predicted, torch.Tensor) or tuple(predicted.shape) != expected:
        shape = list(predicted.shape) if isinstance(predicted, torch.Tensor) else type(predicted).__name__
        raise ValueError(f'predicted: expected a tensor of shape {list(expected)} (format "flattened"), '
                         f'got {shape}')


def _stack_flat(per_task, task_ids, like, name='targets'):
    """``[len(task_ids), num_outputs]`` from per-task lists of tensors (or flat tensors), or rows of a stack."""
    if isinstance(per_task, torch.Tensor) and per_task.dim() == 2:
        if tuple(per_task.shape[1:]) != tuple(like.shape[1:]) or per_task.shape[0] <= max(task_ids):
            raise ValueError(f'{name}: expected a tensor [{max(task_ids) + 1}, {like.shape[1]}] '
                             f'(one row per previous task), got {list(per_task.shape)}')
        if len(task_ids) == per_task.shape[0] and task_ids == list(range(len(task_ids))):
            return per_task
        return per_task[task_ids]
    pieces = []
    for j in task_ids:
        entry = per_task[j]
        pieces.extend(t.reshape(-1) for t in (entry if isinstance(entry, (list, tuple)) else [entry]))
    flat = torch.cat(pieces)
    if flat.numel() != like.numel():
        raise ValueError(f'{name}: expected {like.shape[1]} values per task (hnet.num_outputs), '
                         f'got {flat.numel() // len(task_ids)}')
    return flat.view_as(like)


def _check_reg_args(hnet, task_id, targets, dTheta, dTembs, mnet, inds_of_out_heads, fisher_estimates,
                    prev_theta, prev_task_embs, reg_scaling):
    if not isinstance(task_id, int) or task_id < 1:
        raise ValueError(f'task_id: expected an int >= 1 (tasks before it are regularized), got {task_id!r}')
    uncond = getattr(hnet, 'unconditional_params', None)
    if not uncond:
        raise ValueError('hnet: expected a hypernetwork holding unconditional weights, got none')
    if (targets is None) == (prev_theta is None):
        raise ValueError('targets, prev_theta: expected exactly one of them, got '
                         f'{"both" if targets is not None else "neither"}')
    if prev_theta is not None and prev_task_embs is None:
        raise ValueError('prev_task_embs: expected the task embeddings belonging to prev_theta, got None')
    _check_length('targets', targets, task_id, exact=True)
    _check_length('fisher_estimates', fisher_estimates, task_id)
    _check_length('inds_of_out_heads', inds_of_out_heads, task_id)
    _check_length('reg_scaling', reg_scaling, task_id)
    if inds_of_out_heads is not None and mnet is None:
        raise ValueError('mnet: expected the main network when inds_of_out_heads is given, got None')
    if dTheta is not None and len(dTheta) != len(uncond):
        raise ValueError(f'dTheta: expected {len(uncond)} tensors (one per unconditional weight), '
                         f'got {len(dTheta)}')
    if dTembs is not None:
        cond = getattr(hnet, 'conditional_params', None) or []
        if len(dTembs) != len(cond):
            raise ValueError(f'dTembs: expected {len(cond)} tensors (one per task embedding), got {len(dTembs)}')


def _check_length(name, value, task_id, exact=False):
    if value is None:
        return
    if len(value) < task_id or (exact and len(value) != task_id):
        expected = f'{task_id}' if exact else f'at least {task_id}'
        raise ValueError(f'{name}: expected {expected} entries (one per previous task), got {len(value)}')
