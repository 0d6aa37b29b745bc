r"""Hamiltonian Monte Carlo and friends for Bayesian neural networks.

Sample :math:`\pi(q) \propto \exp(-U(q))`, e.g. a network's weight posterior with
:math:`U(W) = -\log p(\mathcal{D} \mid W) - \log p(W)` (:func:`nn_pot_energy`), with

- :class:`HMC`: fixed-length leapfrog trajectories (Neal 2011); :meth:`HMC.warmup` tunes the step size by dual
  averaging and a diagonal mass matrix over Stan's windows;
- :class:`NUTS`: the No-U-Turn Sampler (Hoffman & Gelman 2014), slice or multinomial, with a tree-depth cap;
- :class:`MCMC` (alias :class:`MetropolisHastings`): gradient-free random-walk Metropolis-Hastings;
- :class:`MultiChainHMC`: several chains advancing as one batch, one potential call per leapfrog step (NUTS:
  for the chains still building their trees).

For a plain MLP, :func:`nn_pot_energy` gives the gradient in closed form (``MLP.forward_batch_vjp``), no autograd.

Diagnostics: :func:`effective_sample_size`, :func:`split_rhat`, :func:`mcse_mean`, and each chain's
``num_divergent``. The implementation lives in the :mod:`utils.mcmc` package; this module is its public face,
named as in hypnettorch.

Example::

    pe = nn_pot_energy(net, x, y, log_prob_standard_normal_prior, tau_pred=100.)
    sampler = MultiChainHMC([0.1 * torch.randn(net.num_params) for _ in range(4)], pe, stepsize=1e-3,
                            num_steps=20)
    sampler.warmup(200)
    sampler.simulate_chains(500)
    samples = torch.stack([torch.stack(c.position_trajectory[1:]) for c in sampler.chains])  # [C, N, D]
    print(split_rhat(samples).max(), effective_sample_size(samples).min())
"""
from utils.mcmc.adaptation import DualAveraging, WelfordVariance, find_reasonable_stepsize, mass_windows
from utils.mcmc.diagnostics import effective_sample_size, mcse_mean, split_rhat
from utils.mcmc.hmc_kernel import HMC, hmc_transition
from utils.mcmc.leapfrog import leapfrog
from utils.mcmc.metropolis import MCMC, MetropolisHastings
from utils.mcmc.multichain import MultiChainHMC
from utils.mcmc.nuts import NUTS
from utils.mcmc.potentials import log_prob_standard_normal_prior, nn_pot_energy
from utils.mcmc.trajectory import load_streamed_trajectory

__all__ = ['HMC', 'NUTS', 'MCMC', 'MetropolisHastings', 'MultiChainHMC', 'leapfrog', 'hmc_transition',
           'nn_pot_energy', 'log_prob_standard_normal_prior', 'effective_sample_size', 'split_rhat', 'mcse_mean',
           'DualAveraging', 'WelfordVariance', 'find_reasonable_stepsize', 'mass_windows',
           'load_streamed_trajectory']
