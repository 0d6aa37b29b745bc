r"""Hamiltonian Monte Carlo with a fixed number of leapfrog steps (Neal 2011, fig. 2), batched over chains.

One transition from :math:`q`: draw :math:`p \sim \mathcal{N}(0, M)`, integrate :math:`L` leapfrog steps to
:math:`(q', p')`, accept :math:`q'` with probability :math:`\min(1, \exp(H(q, p) - H(q', p')))`, else stay.
All chains of a batch take the step together — one potential-and-gradient call per leapfrog step for all of
them — and accept or reject per chain with tensor ops (no host synchronisation). A proposal whose energy is
non-finite or grows by more than ``divergence_threshold`` is a *divergence*: rejected and counted.
"""
from collections import namedtuple

import torch

from .adaptation import run_warmup
from .chain import MarkovChain, check_num_states
from .energy import InverseMass, _check_finite_positive, uniform
from .leapfrog import integrate

Transition = namedtuple('Transition', ['position', 'potential', 'grad', 'accept_stat', 'accepted', 'divergent',
                                       'kinetic', 'tree_depth'])
Transition.__doc__ = """Result of one transition of a batch of ``C`` chains: new ``position`` ``[C, D]``,
``potential`` ``[C]``, ``grad`` ``[C, D]``; ``accept_stat`` ``[C]`` (the Metropolis acceptance probability, or NUTS'
mean over the tree), ``accepted`` / ``divergent`` ``[C]`` bool, ``kinetic`` ``[C]`` energy of the kept momentum,
``tree_depth`` ``[C]`` (NUTS only, else None)."""


def hmc_transition(position, potential, grad, stepsize, num_steps, inv_mass, evaluator, generators=None,
                   divergence_threshold=1000., stepsize_jitter=0.):
    r"""One HMC transition of ``C`` chains at once.

    Random draws per chain, in this order: the momentum, the step-size jitter (only when ``stepsize_jitter > 0``),
    then the acceptance uniform — so a chain with its own generator follows the same stream whether it runs
    alone or in a batch.

    Args:
        position, potential, grad (torch.Tensor): the current state ``[C, D]``, ``[C]``, ``[C, D]``.
        stepsize (float or torch.Tensor): scalar or ``[C, 1]``.
        num_steps (int): leapfrog steps.
        inv_mass (InverseMass): the metric.
        evaluator (PotentialEvaluator): the potential.
        generators (list, optional): one generator per chain (entries may be None: global stream).
        divergence_threshold (float): energy error above which a proposal counts as divergent.
        stepsize_jitter (float): in ``[0, 1)``; each chain's step size is drawn per transition from
            :math:`\epsilon\,\mathcal{U}(1 - j, 1 + j)` (Neal 2011, sec. 5.4.2.2): the trajectory length
            varies, so no chain keeps returning near where it started when ``L \epsilon`` hits a period of the
            target. The draw does not depend on the state, so detailed balance holds for each drawn value.

    Returns:
        (Transition)
    """
    momentum = inv_mass.sample_momentum(position, generators)
    kinetic0 = inv_mass.kinetic(momentum)
    if stepsize_jitter > 0.:
        spread = 2. * uniform(position.shape[0], position, generators) - 1.
        stepsize = stepsize * (1. + stepsize_jitter * spread).unsqueeze(1)
    new_q, new_p, new_u, new_grad = integrate(position, momentum, grad, stepsize, num_steps, inv_mass, evaluator)
    kinetic1 = inv_mass.kinetic(new_p)
    energy_error = (new_u + kinetic1) - (potential + kinetic0)
    finite = torch.isfinite(energy_error)
    # -inf for non-finite errors so that such a proposal is never accepted (nan would compare False anyway,
    # but exp(nan) would poison the acceptance statistics).
    log_accept = torch.where(finite, (-energy_error).clamp(max=0.), torch.full_like(energy_error, -torch.inf))
    accepted = torch.log(uniform(position.shape[0], position, generators)) < log_accept
    divergent = ~finite | (energy_error > divergence_threshold)
    keep = accepted.unsqueeze(1)
    return Transition(torch.where(keep, new_q, position), torch.where(accepted, new_u, potential),
                      torch.where(keep, new_grad, grad), log_accept.exp(), accepted, divergent,
                      torch.where(accepted, kinetic1, kinetic0), None)


def initial_state(chain):
    """Potential and gradient at a chain's current position, validated: ``([1], [1, D])``."""
    potential, grad = chain._evaluator.value_and_grad(chain.current_position.unsqueeze(0))
    if not bool(torch.isfinite(potential).all()):
        raise ValueError(f'initial_position: the potential there is not finite ({float(potential[0])})')
    return potential, grad


class HMC(MarkovChain):
    r"""Hamiltonian Monte Carlo with ``num_steps`` leapfrog steps of size ``stepsize``.

    Args:
        initial_position (torch.Tensor): :math:`q(0)`, ``[D]`` (flatten network weights first).
        pot_energy_func (callable): :math:`U(q)`, scalar for ``[D]``; differentiable. May also accept ``[C, D]``
            and return ``[C]`` (e.g. :func:`utils.mcmc.potentials.nn_pot_energy`) — then many chains are
            evaluated in one call by :class:`utils.mcmc.multichain.MultiChainHMC`.
        stepsize (float): :math:`\epsilon > 0`; :meth:`warmup` tunes it.
        num_steps (int): :math:`L \geq 1`.
        inv_mass (float or torch.Tensor): :math:`M^{-1}`: scalar, diagonal ``[D]`` or dense ``[D, D]``.
        logger, log_interval, writer, writer_tag, thin, stream_dir, generator: see
            :class:`utils.mcmc.chain.MarkovChain`.
        divergence_threshold (float): energy error that counts a proposal as divergent.
        stepsize_jitter (float): in ``[0, 1)``: draw each transition's step size from
            ``stepsize * U(1 - jitter, 1 + jitter)`` (see :func:`hmc_transition`); 0 keeps it fixed.
    """
    _tag = 'hmc'

    def __init__(self, initial_position, pot_energy_func, stepsize=.02, num_steps=1, inv_mass=1., logger=None,
                 log_interval=100, writer=None, writer_tag='', thin=1, stream_dir=None, generator=None,
                 divergence_threshold=1000., stepsize_jitter=0.):
        super().__init__(initial_position, pot_energy_func, logger=logger, log_interval=log_interval,
                         writer=writer, writer_tag=writer_tag, thin=thin, stream_dir=stream_dir,
                         generator=generator)
        self.stepsize = stepsize
        self._set_num_steps(num_steps)
        _check_finite_positive('divergence_threshold', divergence_threshold)
        self._divergence_threshold = divergence_threshold
        if isinstance(stepsize_jitter, bool) or not isinstance(stepsize_jitter, (int, float)) \
                or not 0. <= stepsize_jitter < 1.:
            raise ValueError(f'stepsize_jitter: expected a number in [0, 1), got {stepsize_jitter!r}')
        self._stepsize_jitter = float(stepsize_jitter)
        self._inv_mass = InverseMass(inv_mass, self._position.numel()).to(self._position)
        self._potential, self._grad = initial_state(self)
        self.warmup_acceptance = None

    @property
    def stepsize(self):
        r"""The leapfrog step size :math:`\epsilon` (may be changed at any time)."""
        return self._stepsize

    @stepsize.setter
    def stepsize(self, value):
        _check_finite_positive('stepsize', value)
        self._stepsize = float(value)

    @property
    def num_steps(self):
        """The number of leapfrog steps :math:`L` per transition (may be changed at any time)."""
        return self._num_steps

    @num_steps.setter
    def num_steps(self, value):
        self._set_num_steps(value)

    def _set_num_steps(self, value):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f'num_steps: expected an int >= 1, got {value!r}')
        self._num_steps = value

    @property
    def inv_mass(self):
        """The inverse mass matrix as a tensor: ``[1]`` (isotropic), ``[D]`` (diagonal) or ``[D, D]``."""
        return self._inv_mass.matrix if self._inv_mass.dense else self._inv_mass.diag

    @property
    def current_potential(self):
        """:math:`U` at :attr:`current_position` (0-d tensor), cached — never recomputed."""
        return self._potential[0]

    def _batch_key(self):
        """Chains with equal keys (and the same potential and kind of metric) can share one batch."""
        return ('hmc', self._num_steps, self._divergence_threshold, self._stepsize_jitter)

    def _transition(self, position, potential, grad, stepsize, inv_mass, generators):
        return hmc_transition(position, potential, grad, stepsize, self._num_steps, inv_mass, self._evaluator,
                              generators, self._divergence_threshold, self._stepsize_jitter)

    def _record(self, out, index):
        """Commit chain ``index`` of the batched transition ``out``."""
        def scalars():
            values = {'potential': out.potential[index], 'kinetic': out.kinetic[index],
                      'hamiltonian': out.potential[index] + out.kinetic[index], 'accept': out.accept_stat[index]}
            if out.tree_depth is not None:
                values['tree_depth'] = out.tree_depth[index]
            return values
        self._commit(out.position[index], out.accept_stat[index], out.divergent[index], scalars)

    def simulate_chain(self, n):
        """Simulate the next ``n`` states and append them to :attr:`position_trajectory` (thinned)."""
        check_num_states(n)
        position, potential, grad = self._position.unsqueeze(0), self._potential, self._grad
        for _ in range(n):
            out = self._transition(position, potential, grad, self._stepsize, self._inv_mass, self._generators)
            position, potential, grad = out.position, out.potential, out.grad
            self._record(out, 0)
        self._potential, self._grad = potential, grad
        self._flush_log()

    def warmup(self, num_warmup, target_accept=0.8, adapt_mass=True):
        """Tune :attr:`stepsize` (dual averaging) and a diagonal mass matrix (Stan's windows).

        The warm-up states move the chain but are not recorded or counted; see :mod:`utils.mcmc.adaptation`.
        Afterwards :attr:`warmup_acceptance` holds the mean acceptance statistic of the warm-up iterations since
        the last step-size restart (what dual averaging steered to ``target_accept``). Sampling uses the
        averaged step size eps_bar = exp(x_bar), which accepts more often when the last adaptation window was
        short: its log step sizes still oscillate and the acceptance is concave in log(eps) there.
        After Stan's 50-iteration terminal window (mass adaptation on) expect ~0.9 for a target of 0.8; with
        ``adapt_mass=False`` and ~1000 warm-up iterations the sampling acceptance is within 0.05 of the target.

        Args:
            num_warmup (int): warm-up transitions.
            target_accept (float): target mean acceptance statistic in ``(0, 1)``.
            adapt_mass (bool): also adapt a diagonal :math:`M^{-1}` (replaces the given one).
        """
        warmup_chains([self], num_warmup, target_accept, adapt_mass)


def warmup_chains(chains, num_warmup, target_accept=0.8, adapt_mass=True):
    """Warm up chains of the same kind, potential and metric type together as one batch (see ``HMC.warmup``)."""
    if isinstance(num_warmup, bool) or not isinstance(num_warmup, int) or num_warmup < 0:
        raise ValueError(f'num_warmup: expected an int >= 0, got {num_warmup!r}')
    if not 0. < target_accept < 1.:
        raise ValueError(f'target_accept: expected a value in (0, 1), got {target_accept}')
    if num_warmup == 0:
        return
    lead = chains[0]
    position, potential, grad = stack_state(chains)
    stepsize = torch.tensor([c.stepsize for c in chains], device=position.device, dtype=position.dtype)
    position, potential, grad, stepsize, inv_mass, accept_mean = run_warmup(
        position, potential, grad, stepsize, stack_inv_mass(chains), lead._transition, lead._evaluator,
        chain_generators(chains), num_warmup, target_accept, adapt_mass)
    for index, (chain, eps, accept) in enumerate(zip(chains, stepsize.tolist(), accept_mean.tolist())):
        chain.stepsize = eps
        chain.warmup_acceptance = accept
        chain._position, chain._potential = position[index], potential[index:index + 1]
        chain._grad = grad[index:index + 1]
        if adapt_mass and not inv_mass.dense and inv_mass.diag.ndim == 2:
            chain._inv_mass = InverseMass(inv_mass.diag[index], position.shape[1])


def stack_state(chains):
    """The chains' current states stacked: ``[C, D]``, ``[C]``, ``[C, D]``."""
    return (torch.stack([c._position for c in chains]), torch.cat([c._potential for c in chains]),
            torch.cat([c._grad for c in chains]))


def stack_inv_mass(chains):
    """One :class:`InverseMass` for a batch: the shared dense one, or the diagonals stacked to ``[C, D]``."""
    if chains[0]._inv_mass.dense:
        return chains[0]._inv_mass
    dim = chains[0]._position.numel()
    if len(chains) == 1:
        return chains[0]._inv_mass
    return InverseMass(torch.stack([c._inv_mass.diag.expand(dim) for c in chains]), dim, per_chain=True)


def chain_generators(chains):
    """Per-chain generators for the batch, or None when all chains use the global stream (one batched draw)."""
    if all(c._generator is None for c in chains):
        return None
    return [c._generator for c in chains]
