r"""The No-U-Turn Sampler (Hoffman & Gelman 2014, efficient NUTS, alg. 3), with optional multinomial sampling.

From :math:`(q_0, p_0)` NUTS doubles a leapfrog trajectory, each time in a random direction of time, until the
trajectory turns back on itself — the U-turn criterion on its ends :math:`(q^-, p^-)`, :math:`(q^+, p^+)`

.. math::

    (q^+ - q^-) \cdot M^{-1} p^- < 0 \quad \text{or} \quad (q^+ - q^-) \cdot M^{-1} p^+ < 0,

checked for every balanced sub-tree as well — or until ``max_tree_depth`` doublings (at most
:math:`2^{\text{depth}} - 1` gradient evaluations). The next state is drawn from the trajectory's points:

- *slice* (alg. 3, default): a slice variable :math:`u \sim \mathcal{U}(0, e^{-H_0})` and uniform weights on the
  points with :math:`e^{-H} \geq u`;
- *multinomial* (``multinomial=True``, as in Stan): weights :math:`e^{-H}` on all points, which uses more of
  the trajectory and needs no slice variable.

Both use progressive sampling: inside a sub-tree the two halves are merged in proportion to their weights,
and at the top the new half replaces the current sample with probability :math:`\min(1, w_{new} / w_{old})`,
which favours moving far. A point whose energy exceeds the start by ``delta_max`` (or is not finite) stops
the doubling: a divergence, counted, never raised. The acceptance statistic for step-size adaptation is the mean
of :math:`\min(1, e^{H_0 - H})` over all points built (alg. 6).

The doubling decisions depend on the values, so each leapfrog step ends with one host synchronisation (the
energy) — cheap on a CPU; on an accelerator a batch of fixed-length HMC chains is the faster sampler.
"""
import math

import torch

from .energy import _check_finite_positive
from .hmc_kernel import HMC, Transition
from .leapfrog import integrate


class _Leaf:
    """One point of the trajectory: position, momentum, gradient, potential, kinetic energy (all batch C=1)."""
    __slots__ = ('position', 'momentum', 'grad', 'potential', 'kinetic')

    def __init__(self, position, momentum, grad, potential, kinetic):
        self.position, self.momentum, self.grad = position, momentum, grad
        self.potential, self.kinetic = potential, kinetic


class _Subtree:
    """A balanced sub-trajectory: its ends, its drawn sample, its log weight and statistics."""
    __slots__ = ('left', 'right', 'sample', 'log_weight', 'accept_sum', 'num_leaves', 'stop', 'divergent')

    def __init__(self, left, right, sample, log_weight, accept_sum, num_leaves, stop, divergent):
        self.left, self.right, self.sample, self.log_weight = left, right, sample, log_weight
        self.accept_sum, self.num_leaves, self.stop, self.divergent = accept_sum, num_leaves, stop, divergent


def _log_add(a, b):
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    high = max(a, b)
    return high + math.log(math.exp(a - high) + math.exp(b - high))


class NUTS(HMC):
    r"""The No-U-Turn Sampler; the number of leapfrog steps adapts to the target per transition.

    Args:
        initial_position, pot_energy_func, stepsize, inv_mass, logger, log_interval, writer, writer_tag, thin,
            stream_dir, generator: see :class:`utils.mcmc.hmc_kernel.HMC`.
        delta_max (float): :math:`\Delta_{max}`, the energy increase that marks a divergence (eq. 8 of the
            paper).
        max_tree_depth (int): cap on the number of trajectory doublings.
        multinomial (bool): multinomial instead of slice sampling of the next state.

    :attr:`acceptance_probability` is the mean acceptance statistic (the quantity :meth:`warmup` steers to
    ``target_accept``); :attr:`tree_depths` lists the depth of each transition.
    """
    _tag = 'nuts'

    def __init__(self, initial_position, pot_energy_func, stepsize=.02, delta_max=1000., inv_mass=1., logger=None,
                 log_interval=100, writer=None, writer_tag='', max_tree_depth=10, multinomial=False, thin=1,
                 stream_dir=None, generator=None):
        super().__init__(initial_position, pot_energy_func, stepsize=stepsize, num_steps=1, inv_mass=inv_mass,
                         logger=logger, log_interval=log_interval, writer=writer, writer_tag=writer_tag, thin=thin,
                         stream_dir=stream_dir, generator=generator, divergence_threshold=delta_max)
        _check_finite_positive('delta_max', delta_max)
        if isinstance(max_tree_depth, bool) or not isinstance(max_tree_depth, int) or max_tree_depth < 1:
            raise ValueError(f'max_tree_depth: expected an int >= 1, got {max_tree_depth!r}')
        self._delta_max = float(delta_max)
        self._max_tree_depth = max_tree_depth
        self._multinomial = bool(multinomial)
        self.tree_depths = []

    @property
    def num_steps(self):
        """NUTS chooses the number of leapfrog steps itself; reading or setting it is an error."""
        raise RuntimeError('NUTS has no attribute "num_steps": the trajectory length is chosen per transition')

    @num_steps.setter
    def num_steps(self, value):
        raise RuntimeError('NUTS has no attribute "num_steps": the trajectory length is chosen per transition')

    def _record(self, out, index):
        super()._record(out, index)
        self.tree_depths.append(int(out.tree_depth[index]))

    def _transition(self, position, potential, grad, stepsize, inv_mass, generators):
        """One NUTS transition of a single chain (batch ``C = 1``); see the module docstring."""
        generator = None if generators is None else generators[0]
        like = position

        def draw():
            return float(torch.rand(1, generator=generator, device=like.device, dtype=like.dtype))

        stepsize = float(stepsize)
        momentum = inv_mass.sample_momentum(position, generators)
        kinetic = inv_mass.kinetic(momentum)
        start = _Leaf(position, momentum, grad, potential, kinetic)
        energy0 = float(potential[0] + kinetic[0])
        # u ~ U(0, exp(-H0)) on the log scale; unused by multinomial sampling.
        log_slice = math.log(max(draw(), 1e-300)) - energy0

        def leaf_from(edge, direction):
            q, p, u, g = integrate(edge.position, edge.momentum, edge.grad, direction * stepsize, 1, inv_mass,
                                   self._evaluator)
            k = inv_mass.kinetic(p)
            energy = float(u[0] + k[0])
            if not math.isfinite(energy):
                energy = math.inf
            delta = energy - energy0
            if self._multinomial:
                log_weight, divergent = -delta, delta > self._delta_max
            else:
                log_weight = 0. if log_slice <= -energy else -math.inf
                divergent = not log_slice < self._delta_max - energy
            leaf = _Leaf(q, p, g, u, k)
            accept = 0. if delta == math.inf else min(1., math.exp(-delta))
            return _Subtree(leaf, leaf, leaf, log_weight, accept, 1, divergent, divergent)

        def u_turn(left, right):
            span = right.position - left.position
            ahead = torch.stack([(span * inv_mass.velocity(left.momentum)).sum(),
                                 (span * inv_mass.velocity(right.momentum)).sum()]).tolist()
            return not (ahead[0] >= 0 and ahead[1] >= 0)

        def build(edge, direction, depth):
            if depth == 0:
                return leaf_from(edge, direction)
            first = build(edge, direction, depth - 1)
            if first.stop:
                return first
            second = build(first.right if direction > 0 else first.left, direction, depth - 1)
            total = _log_add(first.log_weight, second.log_weight)
            sample = first.sample
            if second.log_weight > -math.inf and draw() < math.exp(second.log_weight - total):
                sample = second.sample
            left, right = (first.left, second.right) if direction > 0 else (second.left, first.right)
            stop = second.stop or u_turn(left, right)
            return _Subtree(left, right, sample, total, first.accept_sum + second.accept_sum,
                            first.num_leaves + second.num_leaves, stop, second.divergent)

        left = right = sample = start
        log_weight, accept_sum, num_leaves, divergent, depth = 0., 0., 0, False, 0
        while depth < self._max_tree_depth:
            direction = -1. if draw() < 0.5 else 1.
            sub = build(right if direction > 0 else left, direction, depth)
            accept_sum, num_leaves = accept_sum + sub.accept_sum, num_leaves + sub.num_leaves
            divergent = divergent or sub.divergent
            depth += 1
            if sub.stop:
                break
            # Biased progressive sampling: jump to the new half with probability min(1, w_new / w_old).
            if sub.log_weight > -math.inf and math.log(max(draw(), 1e-300)) < sub.log_weight - log_weight:
                sample = sub.sample
            log_weight = _log_add(log_weight, sub.log_weight)
            left, right = (left, sub.right) if direction > 0 else (sub.left, right)
            if u_turn(left, right):
                break

        def as_tensor(value, dtype):
            return torch.tensor([value], device=like.device, dtype=dtype)

        return Transition(sample.position, sample.potential, sample.grad,
                          as_tensor(accept_sum / max(num_leaves, 1), like.dtype),
                          as_tensor(sample is not start, torch.bool), as_tensor(divergent, torch.bool),
                          sample.kinetic, as_tensor(depth, torch.long))
