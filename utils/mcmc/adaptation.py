r"""Warm-up adaptation of the step size and the diagonal mass matrix, as Stan does it.

**Step size: dual averaging** (Hoffman & Gelman 2014, sec. 3.2, after Nesterov 2009). With the acceptance
statistic :math:`\alpha_m` of warm-up iteration :math:`m` and the target :math:`\delta` (0.8),

.. math::

    \bar H_m = (1 - \tfrac{1}{m + t_0}) \bar H_{m-1} + \tfrac{1}{m + t_0} (\delta - \alpha_m), \quad
    \log \epsilon_m = \mu - \tfrac{\sqrt m}{\gamma} \bar H_m, \quad
    \log \bar\epsilon_m = m^{-\kappa} \log \epsilon_m + (1 - m^{-\kappa}) \log \bar\epsilon_{m-1},

with :math:`\mu = \log(10 \epsilon_0)`, :math:`t_0 = 10`, :math:`\gamma = 0.05`, :math:`\kappa = 0.75`.
:math:`\epsilon_m` drives :math:`\bar H` to zero, i.e. the mean acceptance to :math:`\delta`; after warm-up
the smoother average :math:`\bar\epsilon` is used. Everything is a ``[C]`` tensor, one entry per chain, so a
batch of chains adapts without host synchronisation.

**Mass matrix: windowed Welford variance.** The warm-up of :math:`W` iterations is split into an initial
buffer (75, step size only), slow windows of 25, 50, 100, ... iterations (the last one stretched to the
terminal buffer) and a terminal buffer (50, step size only). In each slow window the positions' variance is
accumulated with Welford's algorithm; at its end :math:`M^{-1}` becomes the regularised variance
:math:`\frac{n}{n + 5} \hat\sigma^2 + 10^{-3} \frac{5}{n + 5}`, the step size is re-initialised by the heuristic of
Hoffman & Gelman (alg. 4) and dual averaging restarts, because the old step size belonged to the old metric.
"""
import math

import torch

from .energy import InverseMass
from .leapfrog import integrate


class DualAveraging:
    """Dual-averaging step-size adaptation for ``C`` chains at once; see the module docstring.

    Args:
        initial_stepsize (torch.Tensor): ``[C]``, positive.
        target_accept (float): the target mean acceptance statistic :math:`\\delta`.
        t0 (float), gamma (float), kappa (float): the constants of the scheme.
    """

    def __init__(self, initial_stepsize, target_accept=0.8, t0=10., gamma=0.05, kappa=0.75):
        self.target_accept = target_accept
        self.t0, self.gamma, self.kappa = t0, gamma, kappa
        self.restart(initial_stepsize)

    def restart(self, initial_stepsize):
        """Start over from ``initial_stepsize`` ``[C]`` (after the metric changed)."""
        self.mu = torch.log(10 * initial_stepsize)
        self.iteration = 0
        self.error_avg = torch.zeros_like(initial_stepsize)
        self.log_stepsize = torch.log(initial_stepsize)
        self.log_stepsize_avg = torch.zeros_like(initial_stepsize)

    def update(self, accept_stat):
        """Feed the acceptance statistics ``[C]`` of one iteration; returns the next step sizes ``[C]``."""
        self.iteration += 1
        m = self.iteration
        weight = 1. / (m + self.t0)
        accept_stat = torch.nan_to_num(accept_stat, nan=0.).clamp(0., 1.)
        self.error_avg = (1 - weight) * self.error_avg + weight * (self.target_accept - accept_stat)
        self.log_stepsize = self.mu - math.sqrt(m) / self.gamma * self.error_avg
        eta = m ** -self.kappa
        self.log_stepsize_avg = eta * self.log_stepsize + (1 - eta) * self.log_stepsize_avg
        return self.log_stepsize.exp()

    @property
    def final_stepsize(self):
        r"""The averaged step size :math:`\bar\epsilon` ``[C]`` to sample with after warm-up."""
        if self.iteration == 0:
            return self.log_stepsize.exp()
        return self.log_stepsize_avg.exp()


class WelfordVariance:
    """Running per-dimension mean and variance of ``[C, D]`` samples (Welford's numerically stable update)."""

    def __init__(self, like):
        self.count = 0
        self.mean = torch.zeros_like(like)
        self.sum_sq = torch.zeros_like(like)

    def update(self, sample):
        self.count += 1
        delta = sample - self.mean
        self.mean = self.mean + delta / self.count
        self.sum_sq = self.sum_sq + delta * (sample - self.mean)

    def regularized_variance(self):
        """Stan's shrinkage of the sample variance towards ``1e-3``, shape ``[C, D]``."""
        n = self.count
        variance = self.sum_sq / max(n - 1, 1)
        return (n / (n + 5.)) * variance + 1e-3 * (5. / (n + 5.))


def mass_windows(num_warmup, init_buffer=75, base_window=25, term_buffer=50):
    """The slow mass-matrix windows as ``(start, end)`` pairs: iterations ``start < m <= end`` (1-based).

    Stan's schedule; when the warm-up is too short for the default buffers they shrink to 15% / 10% of it,
    and below 20 iterations no mass matrix is adapted at all.
    """
    if num_warmup < 20:
        return []
    if init_buffer + base_window + term_buffer > num_warmup:
        init_buffer = int(0.15 * num_warmup)
        term_buffer = int(0.1 * num_warmup)
        base_window = num_warmup - init_buffer - term_buffer
    windows = []
    start, window = init_buffer, base_window
    slow_end = num_warmup - term_buffer
    while start < slow_end:
        end = start + window
        # A window that would leave less than twice its size stretches to the terminal buffer.
        if end + 2 * window > slow_end:
            end = slow_end
        windows.append((start, end))
        start, window = end, 2 * window
    return windows


def find_reasonable_stepsize(position, potential, grad, inv_mass, evaluator, generators=None,
                             initial_stepsize=None, max_iterations=50):
    r"""Heuristic initial step size (Hoffman & Gelman, alg. 4), for a batch of chains.

    From fresh momenta, one leapfrog step of size :math:`\epsilon` changes the density by the factor
    :math:`r = \exp(H_0 - H_1)`. :math:`\epsilon` is doubled while :math:`r > 1/2`, or halved while
    :math:`r < 1/2`, until :math:`r` crosses :math:`1/2`; each chain follows its own direction.

    Args:
        position, potential, grad (torch.Tensor): the chains' state: ``[C, D]``, ``[C]``, ``[C, D]``.
        inv_mass (InverseMass): the metric.
        evaluator (PotentialEvaluator): the potential.
        generators (list, optional): one ``torch.Generator`` per chain.
        initial_stepsize (torch.Tensor, optional): ``[C]`` start values, 1 when not given.
        max_iterations (int): bound on the doublings/halvings (a flat or pathological target stops there).

    Returns:
        (torch.Tensor): ``[C]`` step sizes.
    """
    num_chains = position.shape[0]
    stepsize = torch.ones(num_chains, device=position.device, dtype=position.dtype) if initial_stepsize is None \
        else initial_stepsize.clone()
    momentum = inv_mass.sample_momentum(position, generators)
    energy0 = potential + inv_mass.kinetic(momentum)

    def log_ratio(eps):
        _, p1, u1, _ = integrate(position, momentum, grad, eps.unsqueeze(1), 1, inv_mass, evaluator)
        delta = energy0 - (u1 + inv_mass.kinetic(p1))
        return torch.nan_to_num(delta, nan=-math.inf)

    log_half = math.log(0.5)
    direction = torch.where(log_ratio(stepsize) > log_half, 1., -1.).to(stepsize)
    active = torch.ones(num_chains, dtype=torch.bool, device=position.device)
    for _ in range(max_iterations):
        candidate = stepsize * torch.pow(2., direction)
        crossed = direction * log_ratio(candidate) <= direction * log_half
        # The last doubling that still gave r > 1/2 is kept; a halving is kept once r reaches 1/2.
        stepsize = torch.where(active & ~(crossed & (direction > 0)), candidate, stepsize)
        active = active & ~crossed
        if not bool(active.any()):
            break
    return stepsize


def run_warmup(position, potential, grad, stepsize, inv_mass, transition, evaluator, generators, num_warmup,
               target_accept=0.8, adapt_mass=True):
    """Run ``num_warmup`` adaptive transitions of a batch of chains; see the module docstring.

    Args:
        position, potential, grad (torch.Tensor): the chains' state ``[C, D]``, ``[C]``, ``[C, D]``.
        stepsize (torch.Tensor): ``[C]`` current step sizes (start of the heuristic search).
        inv_mass (InverseMass): the current metric.
        transition (callable): ``transition(position, potential, grad, stepsize [C, 1], inv_mass, generators)``
            returning a :class:`utils.mcmc.hmc_kernel.Transition`.
        evaluator (PotentialEvaluator): the potential (for the step-size heuristic).
        generators (list, optional): per-chain generators.
        num_warmup (int), target_accept (float), adapt_mass (bool): see ``HMC.warmup``.

    Returns:
        (tuple): ``(position, potential, grad, stepsize [C], inv_mass, accept_mean [C])``: the state to continue
        sampling with, and the mean acceptance statistic since the last restart of dual averaging (what the
        adaptation steered to ``target_accept``).
    """
    stepsize = find_reasonable_stepsize(position, potential, grad, inv_mass, evaluator, generators, stepsize)
    averaging = DualAveraging(stepsize, target_accept)
    windows = mass_windows(num_warmup) if adapt_mass else []
    window_index, welford = 0, None
    accept_total, accept_count = torch.zeros_like(stepsize), 0
    for iteration in range(1, num_warmup + 1):
        out = transition(position, potential, grad, stepsize.unsqueeze(1), inv_mass, generators)
        position, potential, grad = out.position, out.potential, out.grad
        stepsize = averaging.update(out.accept_stat)
        accept_total, accept_count = accept_total + torch.nan_to_num(out.accept_stat, nan=0.), accept_count + 1
        if window_index >= len(windows):
            continue
        start, end = windows[window_index]
        if iteration > start:
            welford = welford if welford is not None else WelfordVariance(position)
            welford.update(position)
        if iteration == end:
            inv_mass = InverseMass(welford.regularized_variance(), position.shape[1], per_chain=True)
            stepsize = find_reasonable_stepsize(position, potential, grad, inv_mass, evaluator, generators,
                                                stepsize)
            averaging.restart(stepsize)
            window_index, welford = window_index + 1, None
            accept_total, accept_count = torch.zeros_like(stepsize), 0
    return (position, potential, grad, averaging.final_stepsize, inv_mass,
            accept_total / max(accept_count, 1))
