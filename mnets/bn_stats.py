"""Which batchnorm statistics a forward uses, and which it offers for distillation.

A batchnorm layer normalises with :math:`(\\mu, \\sigma^2)` taken from one of three places: tensors passed as
``distilled_params`` (e.g. a hypernetwork's output for a task), the layer's own running statistics, or the
current batch. :class:`BatchNormStatsMixin` makes that choice the same way for every network built with
:meth:`mnets.mnet_interface.MainNetInterface._add_batchnorm_layers` and returns the running statistics as
distillation targets.
"""

__all__ = ['BatchNormStatsMixin']


class BatchNormStatsMixin:
    """Batchnorm-statistics selection for a :class:`mnets.mnet_interface.MainNetInterface`.

    Reads ``_bn_slots`` (one entry per batchnorm layer), ``_use_batch_norm``, ``_bn_track_stats``,
    ``_distill_bn_stats``, ``_batchnorm_layers`` and ``_hyper_shapes_distilled``, all set by the
    network's constructor. Put it before :class:`MainNetInterface` among the bases, so that its
    :meth:`distillation_targets` implements the abstract one.
    """

    def _running_stats(self, distilled_params, bn_stats_id):
        """Per batchnorm layer ``(mean, var)``; ``(None, None)`` lets the layer choose (``stats_id`` or
        batch statistics).

        ``distilled_params`` holds ``[mean_1, var_1, mean_2, var_2, ...]``, in the order of
        :attr:`hyper_shapes_distilled`.
        """
        num_bn = len(self._bn_slots)
        if distilled_params is not None:
            if not self._distill_bn_stats:
                raise ValueError('distilled_params: only accepted when the net was built with '
                                 'use_batch_norm=True and distill_bn_stats=True')
            self._check_distilled_params(distilled_params)
            return [(distilled_params[2 * i], distilled_params[2 * i + 1]) for i in range(num_bn)]
        if self._use_batch_norm and self._bn_track_stats and bn_stats_id is None:
            # The most recent statistics, also when several tasks' statistics are checkpointed.
            return [tuple(layer.get_stats()) for layer in self._batchnorm_layers]
        return [(None, None)] * num_bn

    def distillation_targets(self):
        """Current running means and variances of all batchnorm layers (``[mean_1, var_1, ...]``) if
        ``distill_bn_stats``, else ``None``."""
        if self._hyper_shapes_distilled is None:
            return None
        targets = []
        for layer in self._batchnorm_layers:
            targets.extend(layer.get_stats())
        return targets
