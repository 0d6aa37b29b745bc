r"""Context-modulation layer: element-wise gains and shifts applied to neural activity.

Context modulation (Masse et al. 2018; von Oswald et al. 2020, "Continual learning with hypernetworks")
lets a small, task-specific set of parameters re-purpose a shared network. Given the activity :math:`x`
of a layer (usually its pre-activation), the layer computes

.. math::

    y = x \odot \tilde{g} + s, \qquad
    \tilde{g} = \begin{cases}
        g & \text{plain gains,} \\
        1 + g & \text{gain offset (so that } g = 0 \text{ is the identity),} \\
        \tfrac{1}{\beta} \log\bigl(1 + e^{\beta g}\bigr) & \text{softplus gains (always positive).}
    \end{cases}

The gain :math:`g` and shift :math:`s` have shape ``num_features`` and act on ``x`` by broadcasting,
aligned with the trailing dims of ``x``. That is why a layer for a ``[B, F]`` activation has
``num_features = F`` while one for a ``[B, C, H, W]`` activation usually has ``num_features = [C, 1, 1]``
(one gain per feature map, shared over space, i.e. acting on dim 1) or ``[C, H, W]`` (one per unit).

Per-sample modulation: the weights passed to :meth:`ContextModLayer.forward` may carry a leading batch dim,
``[B, *num_features]``; sample ``b`` of ``x`` (counted along ``bs_dim``) is then modulated by gain ``b``.
This is how one forward pass can run several tasks' modulations at once.

The forward is purely functional (``mul``/``add``/``softplus`` on the given tensors), so it composes with
``torch.func.vmap`` (e.g. over a stack of K weight sets produced by a hypernetwork) and ``torch.func.grad``.
"""
import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['ContextModLayer']


def _as_shape(num_features):
    """Normalise ``num_features`` (int or sequence of ints) to a list of positive ints."""
    if isinstance(num_features, bool):
        raise TypeError(f'num_features: expected an int or a list of ints, got {num_features!r}')
    if isinstance(num_features, int):
        num_features = [num_features]
    if not isinstance(num_features, (list, tuple)) or len(num_features) == 0:
        raise TypeError(f'num_features: expected an int or a non-empty list of ints, got {num_features!r}')
    for n in num_features:
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ValueError(f'num_features: expected positive ints, got {list(num_features)}')
    return list(num_features)


class ContextModLayer(nn.Module):
    r"""Element-wise gain and shift modulation :math:`y = x \odot \tilde{g} + s` (see the module docstring).

    Args:
        num_features (int or list): Shape of the gain and shift tensors; they broadcast against the trailing
            dims of the input (``[C, 1, 1]`` for one gain per feature map of a ``[B, C, H, W]`` input).
        no_weights (bool): Hold no gains/shifts; they must then be passed to :meth:`forward` (e.g. by a
            hypernetwork).
        no_gains (bool): Only shifts, :math:`y = x + s`.
        no_shifts (bool): Only gains, :math:`y = x \odot \tilde{g}`. ``no_gains`` and ``no_shifts`` exclude
            each other.
        apply_gain_offset (bool): Use :math:`\tilde{g} = 1 + g`, so that weights near zero (the natural
            output of a freshly initialised hypernetwork) give the identity. Internal gains start at 0.
        apply_gain_softplus (bool): Use :math:`\tilde{g} = \mathrm{softplus}(\beta g) / \beta` to keep gains
            positive. Excludes ``apply_gain_offset``.
        softplus_scale (float): The scale :math:`\beta > 0` of the softplus.

    Attributes:
        gain (torch.nn.Parameter or None): Internal gains :math:`g`, shape ``num_features``.
        shift (torch.nn.Parameter or None): Internal shifts :math:`s`, shape ``num_features``.
    """

    def __init__(self, num_features, no_weights=False, no_gains=False, no_shifts=False,
                 apply_gain_offset=False, apply_gain_softplus=False, softplus_scale=1.):
        super().__init__()
        num_features = _as_shape(num_features)
        if no_gains and no_shifts:
            raise ValueError('no_gains, no_shifts: expected at most one of them to be True, got both True')
        if apply_gain_offset and apply_gain_softplus:
            raise ValueError('apply_gain_offset, apply_gain_softplus: expected at most one of them to be True, '
                             'got both True')
        if not isinstance(softplus_scale, (int, float)) or not softplus_scale > 0:
            raise ValueError(f'softplus_scale: expected a positive number, got {softplus_scale!r}')

        self._num_features = num_features
        self._no_weights = no_weights
        self._no_gains = no_gains
        self._no_shifts = no_shifts
        self._apply_gain_offset = apply_gain_offset
        self._apply_gain_softplus = apply_gain_softplus
        self._sps = float(softplus_scale)

        self._param_shapes_meta = ([] if no_gains else ['gain']) + ([] if no_shifts else ['shift'])
        self._param_shapes = [list(num_features) for _ in self._param_shapes_meta]

        # The count is a buffer so that it travels with ``state_dict``; the Python int mirrors it so that
        # reading it never needs a device sync.
        self.register_buffer('_num_ckpts', torch.tensor(0, dtype=torch.long))
        self._num_ckpts_int = 0

        self._weights = None
        self.gain = None
        self.shift = None
        if not no_weights:
            self._weights = nn.ParameterList()
            if not no_gains:
                self.gain = nn.Parameter(torch.empty(num_features))
                self._weights.append(self.gain)
            if not no_shifts:
                self.shift = nn.Parameter(torch.empty(num_features))
                self._weights.append(self.shift)
            self.reset_parameters()

    # ------------------------------------------------------------------ attributes
    @property
    def weights(self):
        """The internal weights ``[gain, shift]`` (those that exist), or ``None`` if ``no_weights``.

        :type: torch.nn.ParameterList or None
        """
        return self._weights

    @property
    def param_shapes(self):
        """Shapes of all weights of this layer (gain first, then shift), whether held internally or not.

        Weights passed to :meth:`forward` may in addition carry a leading batch dim.

        :type: list
        """
        return self._param_shapes

    @property
    def param_shapes_meta(self):
        """``'gain'`` or ``'shift'`` for each entry of :attr:`param_shapes`.

        :type: list
        """
        return self._param_shapes_meta

    @property
    def num_ckpts(self):
        """How many times :meth:`checkpoint_weights` was called.

        :type: int
        """
        return self._num_ckpts_int

    @property
    def gain_offset_applied(self):
        r"""Whether gains are used as :math:`1 + g` (``apply_gain_offset``).

        :type: bool
        """
        return self._apply_gain_offset

    @property
    def gain_softplus_applied(self):
        """Whether gains go through a scaled softplus (``apply_gain_softplus``).

        :type: bool
        """
        return self._apply_gain_softplus

    @property
    def has_gains(self):
        """Whether the layer has gains (``no_gains`` not set).

        :type: bool
        """
        return not self._no_gains

    @property
    def has_shifts(self):
        """Whether the layer has shifts (``no_shifts`` not set).

        :type: bool
        """
        return not self._no_shifts

    # ------------------------------------------------------------------ initialisation
    def _require_weights(self, method):
        if self._no_weights:
            raise ValueError(f'{method}: the layer was built with no_weights=True and holds no weights')

    def _identity_gain_value(self):
        # The raw gain whose effective gain is 1 without an offset, 0 with one. For softplus gains the
        # reference convention (raw gain 1) is kept; softplus(1) ~ 1.31 is a positive, well-scaled start.
        return 0. if self._apply_gain_offset else 1.

    @torch.no_grad()
    def reset_parameters(self):
        """Set internal gains to their neutral value (1, or 0 with a gain offset) and shifts to 0."""
        self._require_weights('reset_parameters')
        if self.gain is not None:
            self.gain.fill_(self._identity_gain_value())
        if self.shift is not None:
            self.shift.zero_()

    @torch.no_grad()
    def normal_init(self, std=1.):
        """Draw internal weights from normals of std ``std`` around their neutral values (see
        :meth:`reset_parameters`)."""
        self._require_weights('normal_init')
        if self.gain is not None:
            nn.init.normal_(self.gain, mean=self._identity_gain_value(), std=std)
        if self.shift is not None:
            nn.init.normal_(self.shift, std=std)

    @torch.no_grad()
    def uniform_init(self, width=1.):
        """Draw internal weights uniformly from ``[neutral - width, neutral + width]``."""
        self._require_weights('uniform_init')
        if self.gain is not None:
            center = self._identity_gain_value()
            nn.init.uniform_(self.gain, a=center - width, b=center + width)
        if self.shift is not None:
            nn.init.uniform_(self.shift, a=-width, b=width)

    @torch.no_grad()
    def sparse_init(self, sparsity=.8):
        """Switch off a random ``floor(sparsity * numel)`` of the gains (effective gain 0), the others are
        neutral (effective gain 1); shifts are set to 0."""
        self._require_weights('sparse_init')
        if not 0 <= sparsity <= 1:
            raise ValueError(f'sparsity: expected a value in [0, 1], got {sparsity!r}')
        if self.gain is not None:
            num_zeros = int(self.gain.numel() * sparsity)
            off = torch.zeros(self.gain.numel(), dtype=torch.bool, device=self.gain.device)
            off[torch.randperm(self.gain.numel(), device=self.gain.device)[:num_zeros]] = True
            neutral = self._identity_gain_value()
            self.gain.fill_(neutral)
            self.gain[off.view(self.gain.shape)] = neutral - 1.
        if self.shift is not None:
            self.shift.zero_()

    # ------------------------------------------------------------------ checkpoints
    @staticmethod
    def _weight_names(ckpt_id):
        return f'gain_ckpt_{ckpt_id}', f'shift_ckpt_{ckpt_id}'

    def _check_ckpt_id(self, ckpt_id):
        if isinstance(ckpt_id, bool) or not isinstance(ckpt_id, int) or not 0 <= ckpt_id <= self.num_ckpts:
            raise ValueError(f'ckpt_id: expected an int in [0, {self.num_ckpts}], got {ckpt_id!r}')

    @torch.no_grad()
    def checkpoint_weights(self, device=None, no_reinit=False):
        """Store a copy of the current internal weights as checkpoint number :attr:`num_ckpts`.

        The copies are buffers (saved in ``state_dict``, not returned by ``parameters()``), so they are not
        trained further. Afterwards the internal weights are reset to neutral values unless ``no_reinit``.

        Args:
            device (optional): Device of the copies; defaults to that of the current weights.
            no_reinit (bool): Keep the current weights instead of resetting them.
        """
        self._require_weights('checkpoint_weights')
        gname, sname = self._weight_names(self.num_ckpts)
        for name, param in ((gname, self.gain), (sname, self.shift)):
            if param is not None:
                self.register_buffer(name, param.detach().clone().to(param.device if device is None
                                                                     else device))
        self._num_ckpts_int += 1
        self._num_ckpts.fill_(self._num_ckpts_int)
        if not no_reinit:
            self.reset_parameters()

    def get_weights(self, ckpt_id=None):
        """The current or a checkpointed pair ``(gain, shift)``; an absent one is ``None``.

        Args:
            ckpt_id (int, optional): Checkpoint to return. ``None`` or ``num_ckpts`` (the checkpoint not yet
                taken) give the current weights.
        """
        if ckpt_id is None or ckpt_id == self.num_ckpts:
            return self.gain, self.shift
        self._check_ckpt_id(ckpt_id)
        gname, sname = self._weight_names(ckpt_id)
        return getattr(self, gname, None), getattr(self, sname, None)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # Checkpoint buffers are created lazily, so a fresh layer must create them before loading a
        # state_dict that contains checkpoints.
        count_key = prefix + '_num_ckpts'
        if count_key in state_dict:
            num_ckpts = int(state_dict[count_key])
            for ckpt_id in range(num_ckpts):
                for name in self._weight_names(ckpt_id):
                    if prefix + name in state_dict and name not in self._buffers:
                        self.register_buffer(name, torch.empty_like(state_dict[prefix + name]))
            self._num_ckpts_int = num_ckpts
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    # ------------------------------------------------------------------ forward
    def preprocess_gain(self, gain):
        r"""The effective gain :math:`\tilde{g}` for raw gains ``gain`` (offset or softplus applied)."""
        if self._apply_gain_softplus:
            return F.softplus(gain * self._sps) / self._sps
        if self._apply_gain_offset:
            return gain + 1.
        return gain

    def _align(self, param, x, bs_dim, name):
        """Check ``param``'s shape and give a per-sample ``[B, *num_features]`` tensor singleton dims so that
        its batch dim lines up with ``bs_dim`` of ``x`` under broadcasting."""
        nf = self._num_features
        if list(param.shape) == nf:
            return param
        if param.dim() == len(nf) + 1 and list(param.shape[1:]) == nf and param.shape[0] == x.shape[bs_dim]:
            num_between = x.dim() - bs_dim - 1 - len(nf)
            if num_between < 0:
                raise ValueError(f'bs_dim: per-sample {name} of shape {list(param.shape)} cannot align its batch '
                                 f'dim with dim {bs_dim} of an input of shape {list(x.shape)}')
            return param.reshape(param.shape[0], *([1] * num_between), *nf)
        raise ValueError(f'weights: expected {name} of shape {nf} or [{x.shape[bs_dim]}, *{nf}], '
                         f'got {list(param.shape)}')

    def forward(self, x, weights=None, ckpt_id=None, bs_dim=0):
        r"""Compute :math:`x \odot \tilde{g} + s`.

        Args:
            x (torch.Tensor): Input activity; its trailing dims broadcast against ``num_features``.
            weights (list, optional): ``[gain, shift]`` (or the one of them the layer has) to use instead of
                the internal weights; required if ``no_weights``. Each is shaped ``num_features`` (shared by
                all samples) or ``[B, *num_features]`` (one per sample, ``B = x.shape[bs_dim]``).
            ckpt_id (int, optional): Use checkpointed weights (see :meth:`checkpoint_weights`). Ignored,
                with a warning, when ``weights`` are given.
            bs_dim (int): The batch dim of ``x`` (e.g. 1 for ``[T, B, F]`` sequences); it only matters for
                per-sample weights.

        Returns:
            torch.Tensor: The modulated activity, shaped like ``x`` (broadcast shape).
        """
        if weights is None:
            if self._no_weights:
                raise ValueError('weights: expected gain/shift tensors since the layer has no_weights=True, '
                                 'got None')
            gain, shift = self.get_weights(ckpt_id=ckpt_id)
        else:
            if ckpt_id is not None:
                # Callers such as task-conditioned main networks forward both; the explicit weights win.
                warnings.warn(f'ContextModLayer.forward: ckpt_id={ckpt_id!r} is ignored because weights were '
                              'given', stacklevel=2)
            if isinstance(weights, torch.Tensor) or len(weights) != len(self._param_shapes):
                got = 'a tensor' if isinstance(weights, torch.Tensor) else f'{len(weights)} tensors'
                raise ValueError(f'weights: expected a list of {len(self._param_shapes)} tensors '
                                 f'({self._param_shapes_meta}), got {got}')
            if not -x.dim() <= bs_dim < x.dim():
                raise ValueError(f'bs_dim: expected a dim of the {x.dim()}-d input, got {bs_dim}')
            bs_dim = bs_dim % x.dim()
            weights = [self._align(w, x, bs_dim, name) for w, name in zip(weights, self._param_shapes_meta)]
            gain = None if self._no_gains else weights[0]
            shift = None if self._no_shifts else weights[-1]

        if gain is not None:
            x = x * self.preprocess_gain(gain)
        if shift is not None:
            x = x + shift
        return x

    def extra_repr(self):
        flags = [f'num_features={self._num_features}']
        for flag in ('no_weights', 'no_gains', 'no_shifts', 'apply_gain_offset', 'apply_gain_softplus'):
            if getattr(self, '_' + flag):
                flags.append(f'{flag}=True')
        if self._apply_gain_softplus and not math.isclose(self._sps, 1.):
            flags.append(f'softplus_scale={self._sps}')
        return ', '.join(flags)
