r"""Energies of the Hamiltonian system and batched potential evaluation.

HMC samples :math:`q \sim \pi(q) \propto \exp(-U(q))` by simulating a particle with potential energy
:math:`U(q)` and kinetic energy :math:`K(p) = \frac{1}{2} p^T M^{-1} p`, momentum :math:`p \sim \mathcal{N}(0, M)`.

All samplers in :mod:`utils.mcmc` keep a *batch of chains*: positions and momenta are ``[C, D]`` tensors (``C``
chains, ``D`` dimensions). A single chain is the batch ``C = 1``. This module provides

- :class:`InverseMass`: the inverse mass matrix :math:`M^{-1}` (scalar, diagonal per dimension, diagonal per
  chain, or dense), with the velocity :math:`M^{-1} p`, the kinetic energy and momentum sampling;
- :class:`PotentialEvaluator`: wraps a user's ``pot_energy_func`` so that the potential and its gradient of all
  ``C`` chains come from one call (the function's own batching, ``torch.func.vmap``, or, as a last resort, a loop);
- random draws that follow one ``torch.Generator`` per chain when given, so that a batch of chains reproduces
  the chains run one by one.
"""
import math

import torch


def _check_finite_positive(name, value):
    """Raise ``ValueError`` unless the python number ``value`` is finite and positive."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f'{name}: expected a positive float, got {type(value).__name__}')
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f'{name}: expected a finite positive number, got {value}')


class InverseMass:
    r"""The inverse mass matrix :math:`M^{-1}` of the kinetic energy :math:`K(p) = \frac{1}{2} p^T M^{-1} p`.

    Args:
        inv_mass (float or torch.Tensor): a positive scalar (isotropic), a vector ``[D]`` (diagonal), a matrix
            ``[C, D]`` with ``per_chain=True`` (one diagonal per chain), or a symmetric positive-definite matrix
            ``[D, D]`` (dense).
        dim (int): the dimension ``D`` of the position.
        per_chain (bool): whether a 2-D ``inv_mass`` holds one diagonal per chain rather than a dense matrix.
    """

    def __init__(self, inv_mass, dim, per_chain=False):
        self.dense = False
        if isinstance(inv_mass, torch.Tensor):
            inv_mass = inv_mass.detach()
            if inv_mass.ndim == 0:
                inv_mass = inv_mass.reshape(1)
            if inv_mass.ndim == 1 and inv_mass.numel() in (1, dim):
                self.diag = inv_mass
            elif inv_mass.ndim == 2 and per_chain and inv_mass.shape[1] == dim:
                self.diag = inv_mass
            elif inv_mass.ndim == 2 and tuple(inv_mass.shape) == (dim, dim):
                self.dense = True
                self.matrix = inv_mass
                try:
                    # p ~ N(0, M) with M^{-1} = L L^T is p = L^{-T} z, z ~ N(0, I).
                    self.cholesky = torch.linalg.cholesky(inv_mass)
                except RuntimeError as err:
                    raise ValueError('inv_mass: expected a symmetric positive-definite matrix') from err
            else:
                raise ValueError(f'inv_mass: expected a scalar, a vector of {dim} entries or a [{dim}, {dim}] '
                                 f'matrix, got shape {list(inv_mass.shape)}')
            if not self.dense and not bool((self.diag > 0).all()):
                raise ValueError('inv_mass: expected positive entries')
        else:
            _check_finite_positive('inv_mass', inv_mass)
            self.diag = torch.tensor([float(inv_mass)])

    def to(self, like):
        """Move to the device and dtype of the tensor ``like``; returns ``self``."""
        if self.dense:
            self.matrix = self.matrix.to(like)
            self.cholesky = self.cholesky.to(like)
        else:
            self.diag = self.diag.to(like)
        return self

    def select(self, index):
        """The metric of the chains ``index`` (a ``LongTensor``) of a batch: ``self`` unless it holds one
        diagonal per chain."""
        if self.dense or self.diag.ndim == 1:
            return self
        subset = object.__new__(InverseMass)  # already validated: skip the checks of __init__
        subset.dense, subset.diag = False, self.diag.index_select(0, index)
        return subset

    def velocity(self, momentum):
        r"""The time derivative of the position, :math:`M^{-1} p`, for ``momentum`` ``[C, D]``."""
        if self.dense:
            return momentum @ self.matrix
        return self.diag * momentum

    def kinetic(self, momentum):
        r"""The kinetic energy :math:`\frac{1}{2} p^T M^{-1} p` per chain: ``[C, D] -> [C]``."""
        return 0.5 * (momentum * self.velocity(momentum)).sum(-1)

    def sample_momentum(self, like, generators=None):
        r"""Draw :math:`p \sim \mathcal{N}(0, M)` per chain, shaped like ``like`` ``[C, D]``."""
        z = standard_normal(like, generators)
        if self.dense:
            return torch.linalg.solve_triangular(self.cholesky.mT, z.mT, upper=True).mT
        return z * self.diag.rsqrt()


def standard_normal(like, generators=None):
    """Standard-normal draws shaped like ``like`` ``[C, D]``; row ``c`` from ``generators[c]`` when given."""
    if generators is None:
        return torch.randn_like(like)
    return torch.stack([torch.randn(like.shape[1:], generator=g, device=like.device, dtype=like.dtype)
                        for g in generators])


def uniform(num_chains, like, generators=None):
    """Uniform draws on ``[0, 1)``, shape ``[C]``; entry ``c`` from ``generators[c]`` when given."""
    if generators is None:
        return torch.rand(num_chains, device=like.device, dtype=like.dtype)
    return torch.cat([torch.rand(1, generator=g, device=like.device, dtype=like.dtype) for g in generators])


class PotentialEvaluator:
    r"""Evaluate :math:`U` and :math:`\nabla U` for a batch of positions ``[C, D]`` in one call.

    ``pot_energy_func`` receives a position ``[D]`` and returns a scalar. If it also accepts a batch ``[C, D]``
    and returns ``[C]`` (as :func:`utils.mcmc.potentials.nn_pot_energy` does), that is used directly;
    otherwise ``torch.func.vmap`` maps it over the chains; if the function is not vmap-able (e.g. it calls
    ``.item()``), the chains are looped. The mode is decided once, on the first batch with ``C > 1``, by
    comparing the batched result with single-position calls, so a function that merely *accepts* a batch but
    mixes the chains is never mistaken for a batched one.

    The gradient is :math:`\nabla_q \sum_c U(q_c)`, which equals the per-chain gradients because the chains do
    not interact: one backward pass for all chains.
    """

    def __init__(self, pot_energy_func):
        if not callable(pot_energy_func):
            raise TypeError(f'pot_energy_func: expected a callable, got {type(pot_energy_func).__name__}')
        self.func = pot_energy_func
        # A function that declares ``supports_batch`` (as nn_pot_energy's does) is trusted without probing.
        self.mode = 'batched' if getattr(pot_energy_func, 'supports_batch', False) else None
        self._closed_form = getattr(pot_energy_func, 'value_and_grad', None) if self.mode == 'batched' else None

    def _single(self, position):
        value = self.func(position)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            shape = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f'pot_energy_func: expected a scalar tensor for a position of shape '
                             f'{list(position.shape)}, got {shape}')
        return value.reshape(())

    def _decide_mode(self, positions):
        singles = torch.stack([self._single(q) for q in positions])
        try:
            batched = self.func(positions)
            if (isinstance(batched, torch.Tensor) and tuple(batched.shape) == (positions.shape[0],)
                    and torch.allclose(batched, singles, rtol=1e-4, atol=1e-5, equal_nan=True)):
                return 'batched'
        except (RuntimeError, ValueError, TypeError, IndexError):
            pass
        try:
            mapped = torch.func.vmap(self._single)(positions)
            if torch.allclose(mapped, singles, rtol=1e-4, atol=1e-5, equal_nan=True):
                return 'vmap'
        except (RuntimeError, ValueError, TypeError, IndexError):
            pass
        return 'loop'

    def value(self, positions):
        """The potentials ``[C]`` of ``positions`` ``[C, D]``, without a graph unless the input has one."""
        if self.mode == 'batched':
            return self.func(positions)
        if positions.shape[0] == 1:
            return self._single(positions[0]).reshape(1)
        if self.mode is None:
            with torch.no_grad():
                self.mode = self._decide_mode(positions)
        if self.mode == 'batched':
            return self.func(positions)
        if self.mode == 'vmap':
            return torch.func.vmap(self._single)(positions)
        return torch.stack([self._single(q) for q in positions])

    def value_and_grad(self, positions):
        """Potentials ``[C]`` and their gradients ``[C, D]`` at ``positions`` ``[C, D]``, both detached.

        A potential that carries its own ``value_and_grad(positions)`` (as :func:`nn_pot_energy`'s does for
        plain MLPs) supplies both in closed form; when that returns None, or there is none, autograd does.
        """
        if self._closed_form is not None:
            result = self._closed_form(positions.detach())
            if result is not None:
                return result
        with torch.enable_grad():
            positions = positions.detach().requires_grad_(True)
            values = self.value(positions)
            if not values.requires_grad:
                raise ValueError('pot_energy_func: the potential does not depend differentiably on the position')
            # d/dq of sum_c U(q_c): the chains are independent, so one backward gives every chain's gradient.
            grad, = torch.autograd.grad(values, positions, grad_outputs=torch.ones_like(values))
        return values.detach(), grad
