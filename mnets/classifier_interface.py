"""Base class of classification networks and the losses used with them.

All helpers take *logits* ``h_Y`` of shape ``[B, C]`` and targets ``T`` of
shape ``[B, C]`` (1-hot or soft labels; the label of a sample is
``argmax(T)``). They are plain tensor functions, so they compose with
:func:`torch.func.vmap` over a leading weight-set dimension.
"""
import torch
import torch.nn.functional as F
from torch import nn

from mnets.mnet_interface import MainNetInterface

_REDUCTIONS = ('mean', 'sum', 'none')


def _check_logits_and_targets(h_Y, T, h_name='h_Y', t_name='T'):
    if h_Y.dim() != 2 or T.shape != h_Y.shape:
        raise ValueError(f'{t_name}: expected the shape of {h_name} {list(h_Y.shape)} ([batch, classes]), '
                         f'got {list(T.shape)}')


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f'reduction: expected one of {list(_REDUCTIONS)}, got {reduction!r}')


class Classifier(nn.Module, MainNetInterface):
    """A main network whose outputs are logits over ``num_classes`` classes.

    Args:
        num_classes (int): Number of output units.
        verbose (bool): Whether constructors may print a summary.
    """

    def __init__(self, num_classes, verbose):
        nn.Module.__init__(self)
        MainNetInterface.__init__(self)
        if not isinstance(num_classes, int) or num_classes <= 0:
            raise ValueError(f'num_classes: expected a positive int, got {num_classes!r}')
        self._num_classes = num_classes
        self._verbose = verbose

    @property
    def num_classes(self):
        """Number of output units.

        :type: int
        """
        return self._num_classes

    @staticmethod
    def logit_cross_entropy_loss(h_Y, T, reduction='mean'):
        """Cross-entropy :math:`-\\log \\mathrm{softmax}(h)_{y}` with the hard
        label :math:`y = \\arg\\max T`.

        Args:
            h_Y: Logits ``[B, C]``.
            T: 1-hot (or soft) targets ``[B, C]``.
            reduction (str): ``'mean'``, ``'sum'`` or ``'none'``.
        """
        _check_logits_and_targets(h_Y, T)
        _check_reduction(reduction)
        return F.cross_entropy(h_Y, T.argmax(dim=1), reduction=reduction)

    @staticmethod
    def knowledge_distillation_loss(logits, target_logits, target_mapping=None, device=None, T=2.):
        """Knowledge-distillation loss of Hinton et al. (2015):

        .. math::
            \\mathcal{L} = -T^2 \\frac{1}{B} \\sum_b \\sum_c
            \\mathrm{softmax}(z^{tgt}_b / T)_c \\log \\mathrm{softmax}(z_b / T)_c

        The factor :math:`T^2` keeps gradient magnitudes independent of the
        temperature. ``target_logits`` are not detached.

        Args:
            logits: Student logits ``[B, C]``.
            target_logits: Teacher logits ``[B, C']``.
            target_mapping (list, optional): For a grown output layer
                (``C' < C``): the columns of ``logits`` that the ``C'`` teacher
                outputs correspond to; the other columns get target 0.
            device: Kept for API compatibility; tensors are created on the
                device of ``logits``.
            T (float): Softmax temperature.
        """
        del device
        targets = F.softmax(target_logits / T, dim=1)
        if target_mapping is None:
            if targets.shape != logits.shape:
                raise ValueError(f'target_mapping: required when logits {list(logits.shape)} and '
                                 f'target_logits {list(target_logits.shape)} differ in shape, got None')
        else:
            if len(target_mapping) != targets.shape[1]:
                raise ValueError(f'target_mapping: expected {targets.shape[1]} indices (one per target '
                                 f'class), got {len(target_mapping)}')
            index = torch.as_tensor(target_mapping, device=logits.device, dtype=torch.long)
            targets = torch.zeros_like(logits).index_copy(1, index, targets)
        log_probs = F.log_softmax(logits / T, dim=1)
        return -(targets * log_probs).sum(dim=1).mean() * T ** 2

    @staticmethod
    def softmax_and_cross_entropy(h_Y, T, reduction='mean', *, reduction_sum=None):
        """Cross-entropy with soft targets, :math:`-\\sum_c T_c \\log
        \\mathrm{softmax}(h)_c` per sample.

        Args:
            h_Y: Logits ``[B, C]``.
            T: Target distributions ``[B, C]``.
            reduction (str): ``'mean'``, ``'sum'`` or ``'none'``.
            reduction_sum (bool, optional): hypnettorch's spelling;
                ``True`` means ``reduction='sum'``.
        """
        if reduction_sum is not None:
            reduction = 'sum' if reduction_sum else 'mean'
        _check_logits_and_targets(h_Y, T)
        _check_reduction(reduction)
        loss = -(T * F.log_softmax(h_Y, dim=1)).sum(dim=1)
        if reduction == 'mean':
            return loss.mean()
        if reduction == 'sum':
            return loss.sum()
        return loss

    @staticmethod
    def accuracy(y, t):
        """Fraction of samples with ``argmax(y) == argmax(t)`` (a 0-dim tensor)."""
        _check_logits_and_targets(y, t, h_name='y', t_name='t')
        return (y.argmax(dim=1) == t.argmax(dim=1)).float().mean()

    @staticmethod
    def num_hyper_weights(dims):
        """Number of scalars in tensors of shapes ``dims`` (same as
        :meth:`MainNetInterface.shapes_to_num_weights`)."""
        return MainNetInterface.shapes_to_num_weights(dims)
