r"""A wrapper that pre-processes hypernetwork inputs and post-processes its outputs.

Its default use: an implicit distribution :math:`w = h_\theta(z)`, :math:`z \sim p(z)`, lives on a
low-dimensional manifold of weight space when :math:`\dim z < \dim w`, so divergences such as the KL are
undefined. Perturbing the output with full-dimensional noise gives the distribution full support:

.. math::

    w = h_\theta(z_{:n}) + \sigma_\text{noise}\, z, \qquad z \sim p(z),\ \dim z = \text{num\_outputs}

where the first :math:`n` (``hnet_uncond_in_size``) entries of :math:`z` drive the wrapped hypernetwork.
Custom ``input_handler``/``output_handler`` replace either step.
"""
from torch import nn

from hnets.hnet_interface import HyperNetInterface


class HPerturbWrapper(nn.Module, HyperNetInterface):
    """Wrap ``hnet`` to perturb (or otherwise transform) its outputs.

    Args:
        hnet (HyperNetInterface): the wrapped hypernetwork (its parameters are this network's parameters).
        hnet_uncond_in_size (int, optional): :math:`n`, how many leading entries of ``uncond_input`` the
            wrapped hypernetwork receives (ignored with ``input_handler``).
        sigma_noise (float): :math:`\\sigma_\\text{noise}` (ignored with ``output_handler``).
        input_handler (callable, optional): ``(uncond_input, cond_input, cond_id) = input_handler(
            uncond_input=..., cond_input=..., cond_id=...)``, the inputs handed to ``hnet``.
        output_handler (callable, optional): ``output_handler(hnet_out, uncond_input=..., cond_input=...,
            cond_id=...)`` maps ``hnet``'s flattened output ``[K, num_outputs]`` (and the original inputs)
            to the flattened output of this wrapper.
        verbose (bool): print a summary.
    """

    def __init__(self, hnet, hnet_uncond_in_size=None, sigma_noise=0.02, input_handler=None,
                 output_handler=None, verbose=True):
        nn.Module.__init__(self)
        HyperNetInterface.__init__(self)
        if not isinstance(hnet, HyperNetInterface):
            raise TypeError('hnet: expected a HyperNetInterface, got %s' % type(hnet).__name__)
        if input_handler is None and hnet_uncond_in_size is None:
            raise ValueError('hnet_uncond_in_size, input_handler: expected one of them, got neither')
        if input_handler is None and (isinstance(hnet_uncond_in_size, bool) or
                                      not isinstance(hnet_uncond_in_size, int) or hnet_uncond_in_size <= 0):
            raise ValueError('hnet_uncond_in_size: expected a positive int, got %r' % (hnet_uncond_in_size,))
        self._hnet = hnet
        self._hnet_uncond_in_size = hnet_uncond_in_size
        self._sigma_noise = sigma_noise
        self._input_handler = input_handler
        self._output_handler = output_handler
        # Same parameters as the wrapped network: share its bookkeeping.
        self._target_shapes = hnet.target_shapes
        self._num_known_conds = hnet.num_known_conds
        self._param_shapes = hnet.param_shapes
        self._param_shapes_meta = hnet.param_shapes_meta
        self._unconditional_param_shapes_ref = hnet.unconditional_param_shapes_ref
        self._hyper_shapes_learned = hnet.hyper_shapes_learned
        self._hyper_shapes_learned_ref = hnet.hyper_shapes_learned_ref
        self._has_bias = hnet.has_bias
        # A perturbed output is neither a plain fully-connected nor a (known) linear output.
        self._has_fc_out = False
        self._mask_fc_out = hnet.mask_fc_out
        self._has_linear_out = False
        if verbose:
            print('Perturbation wrapper around: %s' % hnet)

    @property
    def internal_params(self):
        """The wrapped hypernetwork's held parameters."""
        return self._hnet.internal_params

    @property
    def batchnorm_layers(self):
        """The wrapped hypernetwork's batch-norm layers."""
        return self._hnet.batchnorm_layers

    @property
    def internal_hnet(self):
        """The wrapped hypernetwork."""
        return self._hnet

    def distillation_targets(self):
        """Those of the wrapped hypernetwork."""
        return self._hnet.distillation_targets()

    def forward(self, uncond_input=None, cond_input=None, cond_id=None, weights=None, distilled_params=None,
                condition=None, ret_format='squeezed'):
        """Run the handlers around the wrapped hypernetwork; see :meth:`HyperNetInterface.forward`.

        By default ``uncond_input`` ``[K, num_outputs]`` is required: its first ``hnet_uncond_in_size``
        columns are the wrapped network's input and ``sigma_noise * uncond_input`` is added to its output.
        """
        self._check_ret_format(ret_format)
        if self._input_handler is not None:
            inner_uncond, inner_cond, inner_id = self._input_handler(uncond_input=uncond_input,
                                                                     cond_input=cond_input, cond_id=cond_id)
        else:
            if uncond_input is None:
                raise ValueError('uncond_input: expected a tensor [K, %d] (the noise z), got None'
                                 % self.num_outputs)
            inner_uncond = uncond_input[:, :self._hnet_uncond_in_size]
            inner_cond, inner_id = cond_input, cond_id
        out = self._hnet.forward(uncond_input=inner_uncond, cond_input=inner_cond, cond_id=inner_id,
                                 weights=weights, distilled_params=distilled_params, condition=condition,
                                 ret_format='flattened')
        if self._output_handler is not None:
            out = self._output_handler(out, uncond_input=uncond_input, cond_input=cond_input, cond_id=cond_id)
        else:
            if uncond_input.dim() != 2 or uncond_input.shape[1] != self.num_outputs:
                raise ValueError('uncond_input: expected shape [K, %d] (one noise value per output), got %s'
                                 % (self.num_outputs, list(uncond_input.shape)))
            out = out + self._sigma_noise * uncond_input
        return self._flat_to_ret_format(out, ret_format)
