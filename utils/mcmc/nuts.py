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

**Batched chains.** The transition runs for ``C`` chains at once (one chain is ``C = 1``). Every chain draws its
own directions and builds its own tree; a leapfrog step evaluates the potential once for all chains still
building the sub-tree at hand, and a chain whose tree has stopped (U-turn or divergence) drops out of the batch
instead of being carried along masked. So a batch computes no gradient that the chains run one by one would not
compute: on a small network, where one call for C chains costs little more than for one, C chains of deep
trees cost about as much as one; a chain with a short tree never waits on work done for it. The doubling
decisions depend on the values, so each merge of sub-trees ends with a host synchronisation (which chains go
on) — cheap on a CPU; on an accelerator a batch of fixed-length HMC chains is the faster sampler. With one
``torch.Generator`` per chain the random draws of each chain follow the same order as when it runs alone, so
a batch reproduces the chains run one by one.
"""
import math

import torch

from .energy import _check_finite_positive
from .hmc_kernel import HMC, Transition
from .leapfrog import integrate


class _Points:
    """One trajectory point per chain: positions, momenta, gradients ``[n, D]``; potentials, kinetic energies
    ``[n]``."""
    __slots__ = ('position', 'momentum', 'grad', 'potential', 'kinetic')

    def __init__(self, position, momentum, grad, potential, kinetic):
        self.position, self.momentum, self.grad = position, momentum, grad
        self.potential, self.kinetic = potential, kinetic

    def _fields(self):
        return self.position, self.momentum, self.grad, self.potential, self.kinetic

    def select(self, index):
        """The points of the chains ``index`` (None: all)."""
        if index is None:
            return self
        return _Points(*(_take(t, index) for t in self._fields()))

    def where(self, mask, other):
        """Per chain: this point where ``mask`` ``[n]`` holds, else ``other``'s."""
        column = mask.unsqueeze(1)
        return _Points(*(torch.where(column if mine.dim() == 2 else mask, mine, theirs)
                         for mine, theirs in zip(self._fields(), other._fields())))

    def put(self, index, other):
        """A copy with the chains ``index`` replaced by ``other`` (None: all of them)."""
        if index is None:
            return other
        return _Points(*(_put(t, index, o) for t, o in zip(self._fields(), other._fields())))


class _Subtree:
    """Balanced sub-trajectories of ``n`` chains: their ends, drawn samples, log weights and statistics ``[n]``."""
    __slots__ = ('left', 'right', 'sample', 'log_weight', 'accept_sum', 'num_leaves', 'stop', 'divergent')

    def __init__(self, left, right, sample, log_weight, accept_sum, num_leaves, stop, divergent):
        self.left, self.right, self.sample, self.log_weight = left, right, sample, log_weight
        self.accept_sum, self.num_leaves, self.stop, self.divergent = accept_sum, num_leaves, stop, divergent

    def _stats(self):
        return self.log_weight, self.accept_sum, self.num_leaves, self.stop, self.divergent

    def select(self, index):
        """The sub-trees of the chains ``index`` (None: all)."""
        if index is None:
            return self
        return _Subtree(self.left.select(index), self.right.select(index), self.sample.select(index),
                        *(_take(t, index) for t in self._stats()))

    def put(self, index, other):
        """A copy with the chains ``index`` replaced by ``other`` (None: all of them)."""
        if index is None:
            return other
        return _Subtree(self.left.put(index, other.left), self.right.put(index, other.right),
                        self.sample.put(index, other.sample),
                        *(_put(t, index, o) for t, o in zip(self._stats(), other._stats())))


class _Chains:
    """What a transition needs to know per chain: step sizes ``[n, 1]``, metric, start energy ``H_0`` and log
    slice ``[n]``, and the random streams; :meth:`select` narrows it to the chains still building."""
    __slots__ = ('stepsize', 'inv_mass', 'energy0', 'log_slice', 'generators', 'like')

    def __init__(self, stepsize, inv_mass, energy0, log_slice, generators, like):
        self.stepsize, self.inv_mass, self.energy0, self.log_slice = stepsize, inv_mass, energy0, log_slice
        self.generators, self.like = generators, like

    def select(self, index):
        """The chains ``index`` (None: all)."""
        if index is None:
            return self
        generators = None if self.generators is None else [self.generators[i] for i in index.tolist()]
        return _Chains(_take(self.stepsize, index), self.inv_mass.select(index), _take(self.energy0, index),
                       None if self.log_slice is None else _take(self.log_slice, index), generators, self.like)

    def draw(self, mask=None):
        """Uniform draws ``[n]``. With per-chain generators only the chains where ``mask`` holds draw (the
        others get 1, a value no test below passes), so each chain's stream advances exactly as it would alone."""
        n = self.energy0.shape[0]
        like = self.like
        if self.generators is None:
            return torch.rand(n, device=like.device, dtype=like.dtype)
        wanted = [True] * n if mask is None else mask.tolist()
        return torch.cat([torch.rand(1, generator=g, device=like.device, dtype=like.dtype) if w
                          else torch.ones(1, device=like.device, dtype=like.dtype)
                          for g, w in zip(self.generators, wanted)])


def _take(values, index):
    """The rows ``index`` of a per-chain tensor (None: all)."""
    return values if index is None else values.index_select(0, index)


def _put(values, index, rows):
    """A copy of the per-chain tensor ``values`` with the rows ``index`` set to ``rows`` (None: all)."""
    return rows if index is None else values.index_copy(0, index, rows)


def _subset(mask):
    """Indices of the chains where ``mask`` holds, None when that is all of them, or an empty tensor."""
    index = mask.nonzero().squeeze(1)  # the one host synchronisation of a merge
    return None if index.numel() == mask.numel() else index


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

    def _batch_key(self):
        return ('nuts', self._delta_max, self._max_tree_depth, self._multinomial)

    def _leaf(self, chains, edge, direction):
        """One leapfrog step from ``edge`` in the time ``direction`` ``[n]`` (+-1): a sub-tree of depth 0."""
        q, p, u, g = integrate(edge.position, edge.momentum, edge.grad, direction.unsqueeze(1) * chains.stepsize,
                               1, chains.inv_mass, self._evaluator)
        k = chains.inv_mass.kinetic(p)
        energy = u + k
        energy = torch.where(torch.isfinite(energy), energy, torch.full_like(energy, math.inf))
        delta = energy - chains.energy0
        if self._multinomial:
            log_weight, divergent = -delta, delta > self._delta_max
        else:
            log_weight = torch.where(chains.log_slice <= -energy, torch.zeros_like(energy),
                                     torch.full_like(energy, -math.inf))
            divergent = ~(chains.log_slice < self._delta_max - energy)
        point = _Points(q, p, g, u, k)
        # min(1, exp(H0 - H)), 0 for a non-finite energy.
        accept = (-delta).exp().clamp(max=1.)
        return _Subtree(point, point, point, log_weight, accept, torch.ones_like(accept), divergent, divergent)

    @staticmethod
    def _u_turn(chains, left, right):
        span = right.position - left.position
        velocity = chains.inv_mass.velocity
        return ~(((span * velocity(left.momentum)).sum(-1) >= 0) & ((span * velocity(right.momentum)).sum(-1) >= 0))

    def _build(self, chains, edge, direction, depth):
        """A balanced sub-tree of ``2^depth`` leaves from ``edge`` for each chain (alg. 3's BuildTree)."""
        if depth == 0:
            return self._leaf(chains, edge, direction)
        first = self._build(chains, edge, direction, depth - 1)
        going = _subset(~first.stop)
        if going is not None and going.numel() == 0:
            return first
        # Only the chains whose first half did not stop build the second half.
        sub_chains, half, sub_direction = chains.select(going), first.select(going), _take(direction, going)
        forward = sub_direction > 0
        second = self._build(sub_chains, half.right.where(forward, half.left), sub_direction, depth - 1)
        total = torch.logaddexp(half.log_weight, second.log_weight)
        can_switch = second.log_weight > -math.inf
        switch = can_switch & (sub_chains.draw(can_switch) < (second.log_weight - total).exp())
        left, right = half.left.where(forward, second.left), second.right.where(forward, half.right)
        merged = _Subtree(left, right, second.sample.where(switch, half.sample), total,
                          half.accept_sum + second.accept_sum, half.num_leaves + second.num_leaves,
                          second.stop | self._u_turn(sub_chains, left, right), second.divergent)
        return first.put(going, merged)

    def _transition(self, position, potential, grad, stepsize, inv_mass, generators):
        """One NUTS transition of ``C`` chains (``[C, D]`` positions); see the module docstring."""
        num_chains, like = position.shape[0], position
        if not isinstance(stepsize, torch.Tensor):
            stepsize = torch.full((num_chains, 1), float(stepsize), device=like.device, dtype=like.dtype)
        momentum = inv_mass.sample_momentum(position, generators)
        kinetic = inv_mass.kinetic(momentum)
        everyone = _Chains(stepsize.reshape(num_chains, 1), inv_mass, potential + kinetic, None, generators, like)
        # u ~ U(0, exp(-H0)) on the log scale; unused by multinomial sampling.
        tiny = torch.finfo(like.dtype).tiny  # log of a uniform draw of exactly 0 stays finite
        everyone.log_slice = everyone.draw().clamp(min=tiny).log() - everyone.energy0

        start = _Points(position, momentum, grad, potential, kinetic)
        left = right = sample = start
        zeros = torch.zeros(num_chains, device=like.device, dtype=like.dtype)
        log_weight, accept_sum, num_leaves = zeros, zeros, zeros
        divergent = moved = torch.zeros(num_chains, device=like.device, dtype=torch.bool)
        depth = torch.zeros(num_chains, device=like.device, dtype=torch.long)
        active = torch.ones(num_chains, device=like.device, dtype=torch.bool)
        for tree_depth in range(self._max_tree_depth):
            index = _subset(active)
            if index is not None and index.numel() == 0:
                break
            chains = everyone.select(index)
            direction = torch.where(chains.draw() < 0.5, -1., 1.).to(like.dtype)
            forward = direction > 0
            ends = left.select(index), right.select(index)
            sub = self._build(chains, ends[1].where(forward, ends[0]), direction, tree_depth)
            going = ~sub.stop
            old_weight = _take(log_weight, index)
            # Biased progressive sampling: jump to the new half with probability min(1, w_new / w_old).
            can_jump = going & (sub.log_weight > -math.inf)
            jump = can_jump & (chains.draw(can_jump).clamp(min=tiny).log() < sub.log_weight - old_weight)
            # A stopped sub-tree is not joined: its chain keeps its ends, sample and weight.
            new_left = sub.left.where(going & ~forward, ends[0])
            new_right = sub.right.where(going & forward, ends[1])
            sample = sample.put(index, sub.sample.where(jump, sample.select(index)))
            log_weight = _put(log_weight, index, torch.where(going, torch.logaddexp(old_weight, sub.log_weight),
                                                             old_weight))
            left, right = left.put(index, new_left), right.put(index, new_right)
            active = _put(active, index, going & ~self._u_turn(chains, new_left, new_right))
            accept_sum = _put(accept_sum, index, _take(accept_sum, index) + sub.accept_sum)
            num_leaves = _put(num_leaves, index, _take(num_leaves, index) + sub.num_leaves)
            divergent = _put(divergent, index, _take(divergent, index) | sub.divergent)
            moved = _put(moved, index, _take(moved, index) | jump)
            depth = _put(depth, index, _take(depth, index) + 1)

        return Transition(sample.position, sample.potential, sample.grad, accept_sum / num_leaves.clamp(min=1.),
                          moved, divergent, sample.kinetic, depth)
