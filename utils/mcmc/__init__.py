"""MCMC samplers for Bayesian neural networks, batched over chains (see :mod:`utils.hmc` for the public API).

Modules: ``energy`` (metric, batched potential evaluation), ``leapfrog``, ``chain`` (state and records),
``hmc_kernel`` (HMC), ``nuts`` (NUTS), ``metropolis`` (random-walk MH), ``multichain`` (MultiChainHMC),
``adaptation`` (dual averaging, windowed mass matrix), ``trajectory`` (thinning, streaming to disk),
``potentials`` (Bayesian-network potentials), ``diagnostics`` (ESS, split R-hat).
"""
