r"""Random-walk Metropolis-Hastings (the reference calls it ``MCMC``).

Proposal :math:`\tilde q = q + \sigma \xi`, :math:`\xi \sim \mathcal{N}(0, I)`; it is symmetric, so the acceptance
probability is :math:`\min(1, \exp(U(q) - U(\tilde q)))`. No gradients are needed, which is the point of this
sampler, but in :math:`D` dimensions :math:`\sigma` must shrink like :math:`D^{-1/2}` and the chain mixes slowly.
The potential of the current state is cached, so each transition costs one potential evaluation.
"""
import torch

from .chain import MarkovChain, check_num_states
from .energy import _check_finite_positive, standard_normal, uniform


class MCMC(MarkovChain):
    r"""Random-walk Metropolis-Hastings with Gaussian proposals of standard deviation ``proposal_std``.

    Args:
        initial_position (torch.Tensor): ``[D]``.
        pot_energy_func (callable): :math:`U(q)`, scalar for ``[D]`` (need not be differentiable).
        proposal_std (float): :math:`\sigma > 0`.
        logger, log_interval, writer, writer_tag, thin, stream_dir, generator: see
            :class:`utils.mcmc.chain.MarkovChain`.
    """
    _tag = 'mh'

    def __init__(self, initial_position, pot_energy_func, proposal_std=1., logger=None, log_interval=100,
                 writer=None, writer_tag='', thin=1, stream_dir=None, generator=None):
        super().__init__(initial_position, pot_energy_func, logger=logger, log_interval=log_interval,
                         writer=writer, writer_tag=writer_tag, thin=thin, stream_dir=stream_dir,
                         generator=generator)
        self.proposal_std = proposal_std
        with torch.no_grad():
            self._potential = self._evaluator.value(self._position.unsqueeze(0))
        if not bool(torch.isfinite(self._potential).all()):
            raise ValueError(f'initial_position: the potential there is not finite ({float(self._potential[0])})')

    @property
    def proposal_std(self):
        r"""The proposal standard deviation :math:`\sigma` (may be changed at any time)."""
        return self._proposal_std

    @proposal_std.setter
    def proposal_std(self, value):
        _check_finite_positive('proposal_std', value)
        self._proposal_std = float(value)

    def simulate_chain(self, n):
        """Simulate the next ``n`` states and append them to :attr:`position_trajectory` (thinned)."""
        check_num_states(n)
        position, potential = self._position.unsqueeze(0), self._potential
        generators = self._generators
        with torch.no_grad():
            for _ in range(n):
                proposal = position + self._proposal_std * standard_normal(position, generators)
                proposal_potential = self._evaluator.value(proposal)
                log_ratio = potential - proposal_potential
                finite = torch.isfinite(log_ratio)
                log_accept = torch.where(finite, log_ratio.clamp(max=0.), torch.full_like(log_ratio, -torch.inf))
                accepted = torch.log(uniform(1, position, generators)) < log_accept
                position = torch.where(accepted.unsqueeze(1), proposal, position)
                potential = torch.where(accepted, proposal_potential, potential)
                accept_stat = log_accept.exp()[0]
                self._commit(position[0], accept_stat, (~finite)[0],
                             lambda u=potential, a=accept_stat: {'potential': u[0], 'accept': a})
        self._potential = potential
        self._flush_log()


MetropolisHastings = MCMC
