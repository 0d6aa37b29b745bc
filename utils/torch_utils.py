r"""Small PyTorch helpers: default layer initialisation, optimizer factory, learning-rate schedule, Cutout.

:func:`init_params` reproduces the default initialisation of ``torch.nn.Linear``/``ConvNd``
(``reset_parameters``) for weight tensors that are *not* owned by such a module, as in main networks whose
weights live in a flat list. For a weight :math:`W` with fan-in :math:`n`, Kaiming-uniform with
:math:`a = \sqrt{5}` gives :math:`W_{ij} \sim U(-1/\sqrt{n}, 1/\sqrt{n})` (gain
:math:`\sqrt{2 / (1 + a^2)} = \sqrt{1/3}`, bound :math:`\sqrt{3}\,\mathrm{gain}/\sqrt{n}`), and the bias uses
the same bound.
"""
import math

import torch
from torch import nn

__all__ = ['init_params', 'get_optimizer', 'lambda_lr_schedule', 'CutoutTransform']


def _fan_in(weights):
    if weights.dim() < 2:
        raise ValueError(f'weights: expected a tensor with at least 2 dims, got shape {list(weights.shape)}')
    return weights.shape[1] * math.prod(weights.shape[2:])


@torch.no_grad()
def init_params(weights, bias=None):
    r"""Initialise a linear/(transposed) conv weight and bias in place as torch's layers do by default.

    Args:
        weights (torch.Tensor): ``[out, in, *kernel]`` (``[in, out / groups, *kernel]`` for transposed conv,
            where torch uses the same formula on that layout).
        bias (torch.Tensor, optional): ``[out]``; drawn from :math:`U(-1/\sqrt{n}, 1/\sqrt{n})` with
            :math:`n` the fan-in of ``weights``.
    """
    fan_in = _fan_in(weights)
    nn.init.kaiming_uniform_(weights, a=math.sqrt(5))
    if bias is not None:
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.
        nn.init.uniform_(bias, -bound, bound)


def _per_group(value, name, num_groups):
    """Expand a hyperparameter that may be given once or per parameter group."""
    if isinstance(value, (list, tuple)):
        if len(value) != num_groups:
            raise ValueError(f'{name}: expected one value per parameter group ({num_groups}), '
                             f'got {len(value)} values')
        return list(value)
    return [value] * num_groups


def get_optimizer(params, lr, momentum=0, weight_decay=0, use_adam=False, adam_beta1=0.9, use_rmsprop=False,
                  use_adadelta=False, use_adagrad=False, pgroup_ids=None):
    """Build a ``torch.optim`` optimizer (SGD unless one of the ``use_*`` flags is set).

    Args:
        params (iterable): Parameters to optimise (a list or a generator such as ``net.parameters()``).
        lr (float or list): Learning rate, one per parameter group if a list.
        momentum (float or list): Momentum of SGD and RMSprop (ignored by the others).
        weight_decay (float or list): L2 penalty.
        use_adam (bool): ``torch.optim.Adam`` with ``betas=(adam_beta1, 0.999)``.
        adam_beta1 (float or list): First Adam beta.
        use_rmsprop (bool): ``torch.optim.RMSprop``.
        use_adadelta (bool): ``torch.optim.Adadelta``.
        use_adagrad (bool): ``torch.optim.Adagrad``.
        pgroup_ids (list, optional): For each parameter the index of its parameter group (``0..G-1``); list
            hyperparameters then give one value per group (e.g. a smaller ``lr`` for task embeddings).

    Returns:
        torch.optim.Optimizer
    """
    chosen = [name for name, flag in (('use_adam', use_adam), ('use_rmsprop', use_rmsprop),
                                      ('use_adadelta', use_adadelta), ('use_adagrad', use_adagrad)) if flag]
    if len(chosen) > 1:
        raise ValueError(f'use_adam/use_rmsprop/use_adadelta/use_adagrad: expected at most one to be True, '
                         f'got {chosen}')
    if isinstance(params, torch.Tensor):
        raise TypeError('params: expected an iterable of tensors, got a single tensor')
    params = list(params)  # generators (e.g. net.parameters()) are consumed once

    if pgroup_ids is None:
        pgroup_ids = [0] * len(params)
        num_groups = 1
    else:
        pgroup_ids = list(pgroup_ids)
        if len(pgroup_ids) != len(params):
            raise ValueError(f'pgroup_ids: expected one group id per parameter ({len(params)}), '
                             f'got {len(pgroup_ids)}')
        if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in pgroup_ids):
            raise ValueError(f'pgroup_ids: expected non-negative ints, got {pgroup_ids}')
        num_groups = max(pgroup_ids) + 1 if pgroup_ids else 1

    lrs = _per_group(lr, 'lr', num_groups)
    decays = _per_group(weight_decay, 'weight_decay', num_groups)
    momenta = _per_group(momentum, 'momentum', num_groups)
    betas1 = _per_group(adam_beta1, 'adam_beta1', num_groups)

    groups = []
    for g in range(num_groups):
        group = {'params': [], 'lr': lrs[g], 'weight_decay': decays[g]}
        if use_adam:
            group['betas'] = (betas1[g], 0.999)
        elif not (use_adadelta or use_adagrad):
            group['momentum'] = momenta[g]
        groups.append(group)
    for group_id, param in zip(pgroup_ids, params):
        groups[group_id]['params'].append(param)
    # torch rejects empty groups; a gap in the ids (e.g. only groups 0 and 2) is not an error for the caller.
    groups = [group for group in groups if group['params']]

    if use_adam:
        return torch.optim.Adam(groups)
    if use_rmsprop:
        return torch.optim.RMSprop(groups)
    if use_adadelta:
        return torch.optim.Adadelta(groups)
    if use_adagrad:
        return torch.optim.Adagrad(groups)
    return torch.optim.SGD(groups)


def lambda_lr_schedule(epoch):
    """Learning-rate factor of the ResNet/CIFAR-10 step schedule, for ``torch.optim.lr_scheduler.LambdaLR``.

    The factor is 1 up to epoch 80, then 1e-1 (after 80), 1e-2 (after 120), 1e-3 (after 160) and 5e-4
    (after 180).
    """
    for last_epoch, factor in ((180, 0.5e-3), (160, 1e-3), (120, 1e-2), (80, 1e-1)):
        if epoch > last_epoch:
            return factor
    return 1.


class CutoutTransform:
    """Cutout augmentation (DeVries & Taylor 2017): zero ``n_holes`` square patches of an image.

    Each patch is ``length x length`` pixels centred at a uniformly drawn pixel and clipped at the image
    border, so patches near the edge are smaller. Random numbers come from torch's global generator.

    Args:
        n_holes (int): Number of patches per image.
        length (int): Side of each patch in pixels.
    """

    def __init__(self, n_holes, length):
        if isinstance(n_holes, bool) or not isinstance(n_holes, int) or n_holes < 0:
            raise ValueError(f'n_holes: expected a non-negative int, got {n_holes!r}')
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f'length: expected a non-negative int, got {length!r}')
        self.n_holes = n_holes
        self.length = length

    def __call__(self, img):
        """Return ``img`` (``[C, H, W]``) with the patches set to zero (a new tensor)."""
        if img.dim() != 3:
            raise ValueError(f'img: expected a [C, H, W] tensor, got shape {list(img.shape)}')
        h, w = img.shape[1], img.shape[2]
        centres_y = torch.randint(h, (self.n_holes, 1), device=img.device)
        centres_x = torch.randint(w, (self.n_holes, 1), device=img.device)
        rows = torch.arange(h, device=img.device)
        cols = torch.arange(w, device=img.device)
        half = self.length // 2
        # Patch rows are [y - half, y + half), clipped to the image, likewise for columns.
        in_rows = (rows >= centres_y - half) & (rows < centres_y + half)
        in_cols = (cols >= centres_x - half) & (cols < centres_x + half)
        covered = (in_rows[:, :, None] & in_cols[:, None, :]).any(dim=0)
        return img * (~covered).to(img.dtype)
