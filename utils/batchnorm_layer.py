r"""Batch normalisation whose statistics and affine parameters may come from outside.

Batch normalisation computes, per feature (dim 1 of ``[B, F]``, ``[B, C, L]`` or ``[B, C, H, W]`` inputs),

.. math::

    y = \frac{x - m}{\sqrt{v + \epsilon}} \, \gamma + \beta ,

where :math:`(m, v)` are either the mean and (biased) variance of the current batch or stored running
statistics. With hypernetworks the weights of the main network can change abruptly (a new task embedding
yields a new weight set), so running statistics estimated for one weight set are wrong for another. This
layer therefore supports:

- several stored statistics sets, one per task/condition (:meth:`BatchNormLayer.checkpoint_stats`, selected
  by ``stats_id``);
- statistics passed to :meth:`BatchNormLayer.forward` (e.g. distilled into, or produced by, a hypernetwork),
  as well as externally supplied :math:`\gamma` and :math:`\beta`;
- frozen statistics (:math:`m = 0`, :math:`v = 1`, so the layer is a pure per-feature affine map) and
  learnable statistics (parameters trained by gradient descent).

Whenever stored or given statistics are used (evaluation mode, frozen or learnable statistics), the output is
the closed form above; it composes with ``torch.func.vmap`` (e.g. over K tasks' statistics and affine
parameters). Statistics that require gradients (learnable ones, hypernetwork outputs) go through broadcasting
ops, since torch's fused kernel cannot differentiate with respect to them; constant ones use the kernel.

Training mode with running statistics uses the batch statistics and updates the running estimates in place
(:math:`m \leftarrow (1 - \mu) m + \mu \hat{m}`, with the *unbiased* batch variance for :math:`v`), exactly as
``torch.nn.BatchNorm``. That in-place update can be vmapped only if the statistics being updated carry the
vmapped dim themselves (pass a stack of K statistics sets with ``in_dims=0``): a single stored buffer cannot
absorb K different updates, so vmapping the layer's *internal* buffers in training mode raises an error in
torch (use evaluation mode, external statistics or ``track_running_stats=False`` there).
"""
import warnings

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['BatchNormLayer']


class BatchNormLayer(nn.Module):
    r"""Hypernetwork-compatible batch normalisation :math:`y = (x - m) / \sqrt{v + \epsilon}\,\gamma + \beta`.

    Args:
        num_features (int): Number of features :math:`F` (size of dim 1 of the input).
        momentum (float): Weight :math:`\mu \in [0, 1]` of the current batch in the running-statistics update.
        affine (bool): Hold learnable :math:`\gamma` (``scale``, init 1) and :math:`\beta` (``bias``, init 0).
            Without them, the input is only whitened unless ``weight``/``bias`` are passed to :meth:`forward`.
        track_running_stats (bool): Keep running estimates of mean and variance (one set per
            :meth:`checkpoint_stats`) and use them in evaluation mode. Without them, batch statistics are
            always used (also in evaluation mode).
        frozen_stats (bool): Use fixed statistics :math:`m = 0, v = 1` in both modes (no whitening). Requires
            ``track_running_stats=False``.
        learnable_stats (bool): Hold :math:`m` and :math:`v` as trainable parameters (``mean_0``, ``var_0``;
            not part of :attr:`weights`) and use them in both modes. Requires ``track_running_stats=False``.
            (hypnettorch 0.0.4 declares but does not implement this option.)
    """

    #: The :math:`\epsilon` of the normalisation (that of ``torch.nn.functional.batch_norm``).
    eps = 1e-5

    def __init__(self, num_features, momentum=0.1, affine=True, track_running_stats=True, frozen_stats=False,
                 learnable_stats=False):
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features <= 0:
            raise ValueError(f'num_features: expected a positive int, got {num_features!r}')
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
            raise ValueError(f'momentum: expected a float in [0, 1], got {momentum!r}')
        if frozen_stats and learnable_stats:
            raise ValueError('frozen_stats, learnable_stats: expected at most one of them to be True, got both')
        for flag, value in (('frozen_stats', frozen_stats), ('learnable_stats', learnable_stats)):
            if value and track_running_stats:
                raise ValueError(f'track_running_stats: expected False when {flag}=True, got True')

        self._num_features = num_features
        self._momentum = float(momentum)
        self._affine = affine
        self._track_running_stats = track_running_stats
        self._frozen_stats = frozen_stats
        self._learnable_stats = learnable_stats

        self._param_shapes = [[num_features], [num_features]]
        self._hyper_shapes = None if affine else [[num_features], [num_features]]

        # The count is a buffer so that it travels with ``state_dict``; the Python int mirrors it so that
        # reading it (in every forward) never needs a device sync.
        self.register_buffer('_num_stats', torch.tensor(0, dtype=torch.long))
        self._num_stats_int = 0

        self._weights = None
        self.scale = None
        self.bias = None
        if affine:
            self.scale = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
            self._weights = nn.ParameterList([self.scale, self.bias])

        if learnable_stats:
            mname, vname = self._stats_names(0)
            self.register_parameter(mname, nn.Parameter(torch.zeros(num_features)))
            self.register_parameter(vname, nn.Parameter(torch.ones(num_features)))
            self._set_num_stats(1)
        elif track_running_stats or frozen_stats:
            self.checkpoint_stats()

    # ------------------------------------------------------------------ attributes
    @property
    def weights(self):
        r"""The internal affine parameters ``[scale, bias]`` (:math:`\gamma, \beta`), or ``None`` if not
        ``affine``.

        :type: torch.nn.ParameterList or None
        """
        return self._weights

    @property
    def param_shapes(self):
        r"""Shapes of :math:`\gamma` and :math:`\beta`, ``[[F], [F]]``, whether held internally or not.
        Statistics are not included.

        :type: list
        """
        return self._param_shapes

    @property
    def hyper_shapes(self):
        r"""Shapes of the affine parameters that must come from outside: ``None`` if ``affine`` (they are
        held internally), else ``[[F], [F]]``.

        :type: list or None
        """
        return self._hyper_shapes

    @property
    def num_stats(self):
        """Number of stored statistics sets (one per :meth:`checkpoint_stats` call; 1 for frozen or learnable
        statistics, 0 without running statistics).

        :type: int
        """
        return self._num_stats_int

    def _set_num_stats(self, n):
        self._num_stats_int = n
        self._num_stats.fill_(n)

    # ------------------------------------------------------------------ statistics sets
    @staticmethod
    def _stats_names(stats_id):
        return f'mean_{stats_id}', f'var_{stats_id}'

    @torch.no_grad()
    def checkpoint_stats(self, device=None):
        """Register a new set of running statistics (mean 0, variance 1) as set number :attr:`num_stats`.

        Typically called once per new task, so that each task keeps its own estimates.

        Args:
            device (optional): Device of the new buffers; defaults to that of the latest statistics, else of
                the affine parameters, else torch's default device. The dtype follows the same rule.
        """
        if not (self._track_running_stats or (self._frozen_stats and self.num_stats == 0)):
            raise ValueError('checkpoint_stats: expected a layer with track_running_stats=True, got '
                             f'track_running_stats=False (frozen_stats={self._frozen_stats}, '
                             f'learnable_stats={self._learnable_stats})')
        # New sets follow the latest set (or the affine parameters), so that a layer moved with .to() or
        # .double() stays consistent.
        template = self.get_stats()[0] if self.num_stats > 0 else self.scale
        dtype = None if template is None else template.dtype
        if device is None and template is not None:
            device = template.device
        mname, vname = self._stats_names(self.num_stats)
        self.register_buffer(mname, torch.zeros(self._num_features, device=device, dtype=dtype))
        self.register_buffer(vname, torch.ones(self._num_features, device=device, dtype=dtype))
        self._set_num_stats(self.num_stats + 1)

    def get_stats(self, stats_id=None):
        """The stored statistics ``(running_mean, running_var)`` of set ``stats_id`` (default: the latest)."""
        if self.num_stats == 0:
            raise ValueError('get_stats: the layer stores no statistics (track_running_stats=False)')
        if stats_id is None:
            stats_id = self.num_stats - 1
        if isinstance(stats_id, bool) or not isinstance(stats_id, int) or not 0 <= stats_id < self.num_stats:
            raise ValueError(f'stats_id: expected an int in [0, {self.num_stats - 1}], got {stats_id!r}')
        mname, vname = self._stats_names(stats_id)
        return getattr(self, mname), getattr(self, vname)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # Statistics buffers are created on demand, so a fresh layer must create them before loading a
        # state_dict holding more sets than it has.
        count_key = prefix + '_num_stats'
        if count_key in state_dict and not self._learnable_stats:
            num_stats = int(state_dict[count_key])
            for stats_id in range(num_stats):
                for name in self._stats_names(stats_id):
                    if prefix + name in state_dict and name not in self._buffers:
                        self.register_buffer(name, torch.empty_like(state_dict[prefix + name]))
            self._num_stats_int = num_stats
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    # ------------------------------------------------------------------ forward
    def _check_vector(self, tensor, name):
        if tensor is not None and list(tensor.shape) != [self._num_features]:
            raise ValueError(f'{name}: expected shape [{self._num_features}], got {list(tensor.shape)}')

    def _normalize_with(self, inputs, mean, var, weight, bias):
        r"""Closed form with given statistics, folded into one multiply-add per element:
        :math:`y = x a + c` with :math:`a = \gamma / \sqrt{v + \epsilon}`, :math:`c = \beta - m a`."""
        factor = torch.rsqrt(var + self.eps)
        if weight is not None:
            factor = factor * weight
        offset = -mean * factor
        if bias is not None:
            offset = offset + bias
        # Statistics are per feature (dim 1); trailing singleton dims broadcast them over length/space.
        feature_view = (-1,) + (1,) * (inputs.dim() - 2)
        return torch.addcmul(offset.view(feature_view), inputs, factor.view(feature_view))

    def forward(self, inputs, running_mean=None, running_var=None, weight=None, bias=None, stats_id=None):
        r"""Normalise ``inputs`` per feature.

        Which statistics are used (the stored ones are set ``stats_id``, or 0 if not given):

        ===========================  =====================================  ========================
        case                         training mode                          evaluation mode
        ===========================  =====================================  ========================
        given stats                  batch stats; given ones updated [1]_   given stats
        track_running_stats          batch stats; stored ones updated       stored stats
        frozen / learnable stats     stored (0 and 1) / learned stats       same
        no running stats             batch stats                            batch stats
        ===========================  =====================================  ========================

        .. [1] Given statistics that require gradients (e.g. hypernetwork outputs) are treated as parameters
           and never updated in place.

        Args:
            inputs (torch.Tensor): ``[B, F]``, ``[B, F, L]`` or ``[B, F, H, W]``.
            running_mean (torch.Tensor, optional): ``[F]``; has priority over stored statistics. Must be given
                together with ``running_var``.
            running_var (torch.Tensor, optional): ``[F]``.
            weight (torch.Tensor, optional): :math:`\gamma`, ``[F]``; replaces the internal ``scale``.
            bias (torch.Tensor, optional): :math:`\beta`, ``[F]``; replaces the internal ``bias``.
            stats_id (int, optional): Stored statistics set to use; required when more than one exists and no
                statistics are given.

        Returns:
            torch.Tensor: Shaped like ``inputs``.
        """
        if inputs.dim() < 2 or inputs.shape[1] != self._num_features:
            raise ValueError(f'inputs: expected shape [B, {self._num_features}, ...], got {list(inputs.shape)}')
        if (running_mean is None) != (running_var is None):
            raise ValueError('running_mean, running_var: expected both or neither, got only '
                             + ('running_mean' if running_var is None else 'running_var'))
        for tensor, name in ((running_mean, 'running_mean'), (running_var, 'running_var'),
                             (weight, 'weight'), (bias, 'bias')):
            self._check_vector(tensor, name)
        if weight is None:
            weight = self.scale
        if bias is None:
            bias = self.bias

        stats_given = running_mean is not None
        if stats_given:
            if stats_id is not None:
                warnings.warn(f'BatchNormLayer.forward: stats_id={stats_id!r} is ignored because running stats '
                              'were given', stacklevel=2)
        elif self.num_stats > 0:
            if stats_id is None and self.num_stats > 1:
                raise ValueError(f'stats_id: expected an int in [0, {self.num_stats - 1}] since the layer '
                                 f'stores {self.num_stats} statistics sets, got None')
            running_mean, running_var = self.get_stats(0 if stats_id is None else stats_id)

        fixed_stats = self._frozen_stats or self._learnable_stats
        use_batch_stats = running_mean is None or (self.training and not (fixed_stats and not stats_given))
        if not use_batch_stats:
            if running_mean.requires_grad or running_var.requires_grad:
                return self._normalize_with(inputs, running_mean, running_var, weight, bias)
            # Constant statistics: torch's fused kernel computes the same closed form faster.
            return F.batch_norm(inputs, running_mean, running_var, weight=weight, bias=bias, training=False,
                                eps=self.eps)

        update_stats = running_mean is not None and not (running_mean.requires_grad or running_var.requires_grad)
        return F.batch_norm(inputs, running_mean if update_stats else None, running_var if update_stats else None,
                            weight=weight, bias=bias, training=True, momentum=self._momentum, eps=self.eps)

    def extra_repr(self):
        flags = [f'{self._num_features}', f'momentum={self._momentum}', f'affine={self._affine}',
                 f'track_running_stats={self._track_running_stats}']
        if self._frozen_stats:
            flags.append('frozen_stats=True')
        if self._learnable_stats:
            flags.append('learnable_stats=True')
        return ', '.join(flags)
