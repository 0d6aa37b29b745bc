"""Tests of utils.hmc: samplers on Gaussian targets with known moments, leapfrog numerics, batching, errors.

Moment checks use 4 Monte-Carlo standard errors computed from the chains' own effective sample size, so they
fail with probability < 1e-4 each for a correct sampler, and fixed seeds make them deterministic.
"""
import functools
import math

import pytest
import torch

from utils import hmc


def gaussian_potential(mean, cov):
    """U(q) = (q - mu)^T Sigma^{-1} (q - mu) / 2 for [D] or [C, D] positions."""
    precision = torch.linalg.inv(cov)

    def pot(q):
        z = q - mean
        return 0.5 * ((z @ precision) * z).sum(-1)
    return pot


TARGETS = {
    'isotropic': (torch.tensor([1., -2., 0.5]), torch.eye(3)),
    'badly_scaled': (torch.zeros(3), torch.diag(torch.tensor([0.1, 1., 10.]) ** 2)),
    'correlated': (torch.tensor([0.5, -0.5]), torch.tensor([[1., 0.95], [0.95, 1.]])),
}


def assert_moments(samples, mean, cov):
    """samples [C, N, D]: mean and marginal variance within 4 MCSE (ESS-based)."""
    assert torch.isfinite(samples).all()
    flat = samples.reshape(-1, samples.shape[-1]).double()
    est_mean = flat.mean(0)
    assert ((est_mean - mean.double()).abs() <= 4 * hmc.mcse_mean(samples)).all(), (est_mean, mean)
    sq_dev = (samples.double() - mean.double()) ** 2
    est_var = sq_dev.reshape(-1, samples.shape[-1]).mean(0)
    assert ((est_var - cov.diagonal().double()).abs() <= 4 * hmc.mcse_mean(sq_dev)).all(), (est_var, cov)


def stack_chains(chains, burn=1):
    return torch.stack([torch.stack(c.position_trajectory[burn:]) for c in chains])


@pytest.mark.parametrize('name', list(TARGETS))
def test_multichain_hmc_recovers_moments(name):
    mean, cov = TARGETS[name]
    gens = [torch.Generator().manual_seed(10 + i) for i in range(4)]
    init = [mean + torch.randn(len(mean), generator=g) for g in gens]
    sampler = hmc.MultiChainHMC(init, gaussian_potential(mean, cov), stepsize=0.1, num_steps=3, generator=gens)
    sampler.warmup(150)
    sampler.simulate_chains(400)
    samples = stack_chains(sampler.chains)
    assert_moments(samples, mean, cov)
    if name == 'isotropic':
        assert hmc.split_rhat(samples).max() < 1.01
    assert sum(c.num_divergent for c in sampler.chains) == 0


@pytest.mark.parametrize('name', list(TARGETS))
@pytest.mark.parametrize('multinomial', [False, True])
def test_nuts_recovers_moments(name, multinomial):
    mean, cov = TARGETS[name]
    gen = torch.Generator().manual_seed(3)
    chain = hmc.NUTS(mean.clone(), gaussian_potential(mean, cov), stepsize=0.1, multinomial=multinomial,
                     generator=gen)
    chain.warmup(150)
    chain.simulate_chain(500)
    assert_moments(stack_chains([chain]), mean, cov)


def test_single_hmc_and_mh_recover_moments():
    mean, cov = TARGETS['isotropic']
    pot = gaussian_potential(mean, cov)
    chain = hmc.HMC(mean.clone(), pot, stepsize=0.25, num_steps=5, generator=torch.Generator().manual_seed(1))
    chain.simulate_chain(1500)
    assert_moments(stack_chains([chain]), mean, cov)
    mh_chains = [hmc.MetropolisHastings(mean + 1., pot, proposal_std=1.2, generator=torch.Generator().manual_seed(s))
                 for s in range(4)]
    for c in mh_chains:
        c.simulate_chain(2500)
    samples = stack_chains(mh_chains, burn=100)
    assert_moments(samples, mean, cov)
    assert hmc.split_rhat(samples).max() < 1.01
    assert 0.2 < mh_chains[0].acceptance_probability < 0.6
    assert hmc.MCMC is hmc.MetropolisHastings


def test_nuts_adaptation_reaches_target_acceptance():
    mean, cov = torch.zeros(4), 0.8 * torch.ones(4, 4) + 0.2 * torch.eye(4)
    chain = hmc.NUTS(torch.ones(4), gaussian_potential(mean, cov), stepsize=1.,
                     generator=torch.Generator().manual_seed(0))
    chain.warmup(300, target_accept=0.8)
    # Dual averaging steers the mean acceptance statistic of the adaptive iterations to the target...
    assert abs(chain.warmup_acceptance - 0.8) <= 0.05
    # ...and the averaged step size used afterwards accepts at least as often (Jensen), as in Stan.
    chain.simulate_chain(200)
    assert 0.75 <= chain.acceptance_probability <= 0.95
    assert chain.inv_mass.shape == (4,)


def test_nuts_sampling_acceptance_after_long_step_size_adaptation():
    """After warm-up NUTS samples at the target acceptance 0.8 +- 0.05 once dual averaging had time to settle.

    Sampling uses the averaged step size exp(x_bar), not the last iterate. x_bar averages log step sizes that
    still oscillate around the target, and the acceptance is concave in log(eps) there, so a short adaptation
    window gives a smaller step and a higher acceptance (the test above: after Stan's 50-iteration terminal
    window it is ~0.9 for any warm-up length). With a long window the oscillation dies out and the acceptance
    converges to the target (measured on 5 seeds: 0.805-0.830 after 1000 iterations, 0.875 after 150).
    """
    mean, cov = torch.zeros(4), 0.8 * torch.ones(4, 4) + 0.2 * torch.eye(4)
    chain = hmc.NUTS(torch.ones(4), gaussian_potential(mean, cov), stepsize=1.,
                     generator=torch.Generator().manual_seed(0))
    chain.warmup(1000, target_accept=0.8, adapt_mass=False)
    assert abs(chain.warmup_acceptance - 0.8) <= 0.01
    chain.simulate_chain(400)
    assert abs(chain.acceptance_probability - 0.8) <= 0.05


def test_sampling_leaves_the_thread_count_alone():
    """A library must not change the caller's global torch settings (batched chains included)."""
    before = torch.get_num_threads()
    pot = gaussian_potential(*TARGETS['isotropic'])
    sampler = hmc.MultiChainHMC([torch.zeros(3), torch.ones(3)], pot, stepsize=0.1, num_steps=3)
    sampler.warmup(30)
    sampler.simulate_chains(5)
    assert torch.get_num_threads() == before


def test_leapfrog_reversible_and_second_order():
    mean, cov = TARGETS['correlated']
    pot = gaussian_potential(mean, cov)
    q0, p0 = torch.tensor([0.3, 1.2], dtype=torch.float64), torch.tensor([-0.7, 0.4], dtype=torch.float64)
    pot64 = gaussian_potential(mean.double(), cov.double())
    q1, p1 = hmc.leapfrog(q0, p0, 0.05, 20, 1., pot64)
    q2, p2 = hmc.leapfrog(q1, -p1, 0.05, 20, 1., pot64)
    assert torch.allclose(q2, q0, atol=1e-12) and torch.allclose(-p2, p0, atol=1e-12)

    def energy_error(eps):
        q, p = hmc.leapfrog(q0, p0, eps, int(round(1. / eps)), 1., pot64)
        return abs(float(pot64(q) + 0.5 * p @ p - pot64(q0) - 0.5 * p0 @ p0))
    ratio = energy_error(0.02) / energy_error(0.01)
    assert 3.5 < ratio < 4.5  # O(eps^2): halving eps quarters the error
    qb, _ = hmc.leapfrog(torch.stack([q0.float(), q0.float()]), torch.stack([p0.float(), p0.float()]), 0.05, 3, 1.,
                         pot)
    assert torch.allclose(qb[0], qb[1])


def test_jittered_step_size_recovers_moments():
    # A correlated target with a step-size jitter of +-50 % per transition and chain: still exact.
    mean, cov = TARGETS['correlated']
    gens = [torch.Generator().manual_seed(30 + i) for i in range(4)]
    init = [mean + torch.randn(len(mean), generator=g) for g in gens]
    sampler = hmc.MultiChainHMC(init, gaussian_potential(mean, cov), stepsize=0.1, num_steps=5, generator=gens,
                                stepsize_jitter=0.5)
    sampler.warmup(150)
    sampler.simulate_chains(400)
    assert_moments(stack_chains(sampler.chains), mean, cov)


@pytest.mark.parametrize('jitter', [0., 0.5])
def test_batched_chains_equal_chains_one_by_one(jitter):
    mean, cov = TARGETS['badly_scaled']
    pot = gaussian_potential(mean, cov)
    init = [torch.randn(3) for _ in range(3)]
    batched = hmc.MultiChainHMC([i.clone() for i in init], pot, stepsize=0.05, num_steps=4,
                                generator=[torch.Generator().manual_seed(s) for s in range(3)],
                                stepsize_jitter=jitter)
    batched.simulate_chains(30)
    for s, start in enumerate(init):
        alone = hmc.HMC(start.clone(), pot, stepsize=0.05, num_steps=4, generator=torch.Generator().manual_seed(s),
                        stepsize_jitter=jitter)
        alone.simulate_chain(30)
        assert torch.allclose(torch.stack(alone.position_trajectory),
                              torch.stack(batched.chains[s].position_trajectory), atol=1e-5)
        assert batched.chains[s].acceptance_probability == pytest.approx(alone.acceptance_probability, abs=1e-5)
    assert batched.chains[0]._evaluator.mode == 'batched'


def test_simulate_chains_picks_shortest_and_nuts_threads():
    pot = gaussian_potential(*TARGETS['isotropic'])
    sampler = hmc.MultiChainHMC([torch.zeros(3) for _ in range(3)], pot, stepsize=0.2, num_steps=3)
    sampler.simulate_chains(5, num_chains=[1])
    sampler.simulate_chains(2, num_chains=2)
    assert [c.num_states for c in sampler.chains] == [2, 5, 2]
    nuts = hmc.MultiChainHMC([torch.zeros(3) for _ in range(2)], pot, chain_type='nuts', stepsize=0.3)
    nuts.simulate_chains(5, num_parallel=2)
    assert [c.num_states for c in nuts.chains] == [5, 5]


def test_divergences_are_counted_not_raised():
    pot = gaussian_potential(*TARGETS['badly_scaled'])
    chain = hmc.HMC(torch.zeros(3), pot, stepsize=5., num_steps=10)
    chain.simulate_chain(10)
    assert chain.num_divergent == 10 and chain.acceptance_probability < 1e-3
    assert torch.equal(chain.current_position, torch.zeros(3))
    nuts = hmc.NUTS(torch.zeros(3), pot, stepsize=5.)
    nuts.simulate_chain(5)
    assert nuts.num_divergent >= 4 and nuts.acceptance_probability < 0.05

    def nan_outside(q):
        return torch.where(q.abs().max(-1).values < 1., 0.5 * (q ** 2).sum(-1), torch.nan * q.sum(-1))
    mh = hmc.MCMC(torch.zeros(2), nan_outside, proposal_std=3.)
    mh.simulate_chain(50)
    assert torch.isfinite(torch.stack(mh.position_trajectory)).all() and mh.num_divergent > 0


def test_thinning_streaming_and_clearing(tmp_path):
    pot = gaussian_potential(*TARGETS['isotropic'])
    chain = hmc.HMC(torch.zeros(3), pot, stepsize=0.2, num_steps=2, thin=5)
    chain.simulate_chain(50)
    assert len(chain.position_trajectory) == 11 and chain.num_states == 50
    chain.clear_position_trajectory(3)
    assert len(chain.position_trajectory) == 8
    streamed = hmc.HMC(torch.zeros(3), pot, stepsize=0.2, num_steps=2, stream_dir=str(tmp_path))
    streamed._recorder.chunk_size = 7
    streamed.simulate_chain(20)
    streamed.flush_trajectory()
    assert hmc.load_streamed_trajectory(str(tmp_path)).shape == (21, 3)


def test_diagnostics_on_known_chains():
    gen = torch.Generator().manual_seed(0)
    iid = torch.randn(4, 1000, 2, generator=gen)
    ess = hmc.effective_sample_size(iid)
    assert ((ess > 3000) & (ess < 5500)).all()
    assert hmc.split_rhat(iid).max() < 1.01
    shifted = iid + torch.arange(4.).view(4, 1, 1)
    assert hmc.split_rhat(shifted).min() > 1.2
    ar = torch.zeros(1, 4000)
    noise = torch.randn(4000, generator=gen)
    for t in range(1, 4000):
        ar[0, t] = 0.9 * ar[0, t - 1] + noise[t]
    # AR(1) with phi = 0.9: tau = (1 + phi) / (1 - phi) = 19.
    assert 4000 / 19 * 0.6 < float(hmc.effective_sample_size(ar)) < 4000 / 19 * 1.6


def test_nn_pot_energy_batch_matches_single_and_closed_form():
    from mnets.mlp import MLP
    net = MLP(n_in=2, n_out=3, hidden_layers=[5], no_weights=True, verbose=False)
    x, y = torch.randn(7, 2), torch.randn(7, 3)
    labels = torch.randint(0, 3, (7,))
    positions = torch.randn(4, net.num_params)
    reg = hmc.nn_pot_energy(net, x, y, hmc.log_prob_standard_normal_prior, tau_pred=3.)
    cls = hmc.nn_pot_energy(net, x, labels, lambda q: hmc.log_prob_standard_normal_prior(q, std=2.),
                            nll_type='classification')
    for pot in (reg, cls):
        batch = pot(positions)
        assert batch.shape == (4,)
        assert torch.allclose(batch, torch.stack([pot(q) for q in positions]), atol=1e-5)
    q = positions[0]
    weights = [t.view(s) for t, s in zip(torch.split(q, [math.prod(s) for s in net.param_shapes]),
                                         net.param_shapes)]
    out = net.forward(x, weights=weights)
    log_prior = torch.distributions.Normal(0., 1.).log_prob(q).sum()
    assert torch.allclose(reg(q), 1.5 * ((out - y) ** 2).sum() - log_prior, atol=1e-4)
    log_prior2 = torch.distributions.Normal(0., 2.).log_prob(q).sum()
    expected = torch.nn.functional.cross_entropy(out, labels, reduction='sum') - log_prior2
    assert torch.allclose(cls(q), expected, atol=1e-4)


def test_bad_input_raises_clear_errors():
    pot = gaussian_potential(*TARGETS['isotropic'])
    with pytest.raises(ValueError, match='pot_energy_func'):
        hmc.HMC(torch.zeros(3), lambda q: q * 2)
    with pytest.raises(ValueError, match='initial_position'):
        hmc.HMC(torch.zeros(3, 1), pot)
    with pytest.raises(TypeError, match='initial_position'):
        hmc.NUTS([0., 0., 0.], pot)
    for bad in (0., -0.1, math.nan):
        with pytest.raises(ValueError, match='stepsize'):
            hmc.HMC(torch.zeros(3), pot, stepsize=bad)
        with pytest.raises(ValueError, match='stepsize'):
            hmc.leapfrog(torch.zeros(3), torch.zeros(3), bad, 1, 1., pot)
    with pytest.raises(ValueError, match='num_steps'):
        hmc.HMC(torch.zeros(3), pot, num_steps=0)
    for bad in (-0.1, 1., math.nan):
        with pytest.raises(ValueError, match='stepsize_jitter'):
            hmc.HMC(torch.zeros(3), pot, stepsize_jitter=bad)
    with pytest.raises(ValueError, match='proposal_std'):
        hmc.MCMC(torch.zeros(3), pot, proposal_std=0.)
    with pytest.raises(ValueError, match='initial_positions'):
        hmc.MultiChainHMC([torch.zeros(3), torch.zeros(2)], pot)
    with pytest.raises(ValueError, match='chain_type'):
        hmc.MultiChainHMC([torch.zeros(3)], pot, chain_type='gibbs')
    with pytest.raises(RuntimeError, match='num_steps'):
        _ = hmc.NUTS(torch.zeros(3), pot).num_steps
    with pytest.raises(ValueError, match='nll_type'):
        hmc.nn_pot_energy(object(), torch.zeros(2, 1), torch.zeros(2, 1), hmc.log_prob_standard_normal_prior,
                          nll_type='poisson')
    with pytest.raises(ValueError, match='inv_mass'):
        hmc.HMC(torch.zeros(3), pot, inv_mass=torch.ones(2))


@pytest.mark.parametrize('nll_type', ['regression', 'classification'])
@pytest.mark.parametrize('prior', ['standard', 'partial', 'custom'])
def test_nn_pot_energy_closed_form_gradient_equals_autograd(nll_type, prior):
    from mnets.mlp import MLP
    torch.manual_seed(5)
    n_out = 1 if nll_type == 'regression' else 3
    net = MLP(n_in=2, n_out=n_out, hidden_layers=[6, 5], no_weights=True, verbose=False).double()
    x = torch.randn(20, 2, dtype=torch.float64)
    y = torch.randn(20, 1, dtype=torch.float64) if nll_type == 'regression' else torch.randint(0, 3, (20,))
    prior_func = {'standard': hmc.log_prob_standard_normal_prior,
                  # closed form with mean/std
                  'partial': functools.partial(hmc.log_prob_standard_normal_prior, mean=0.5, std=2.),
                  # autograd on the prior alone
                  'custom': lambda q: hmc.log_prob_standard_normal_prior(q, mean=0.5, std=2.)}[prior]
    pot = hmc.nn_pot_energy(net, x, y, prior_func, tau_pred=4. if nll_type == 'regression' else 1.,
                            nll_type=nll_type)
    positions = torch.randn(4, net.num_params, dtype=torch.float64)
    values, grads = pot.value_and_grad(positions)
    leaf = positions.clone().requires_grad_(True)
    expected = pot(leaf)
    expected_grads, = torch.autograd.grad(expected.sum(), leaf)
    assert torch.allclose(values, expected, atol=1e-10)
    assert torch.allclose(grads, expected_grads, atol=1e-10)
    # The samplers' evaluator takes the closed form and gives the same.
    from utils.mcmc.energy import PotentialEvaluator
    ev_values, ev_grads = PotentialEvaluator(pot).value_and_grad(positions)
    assert torch.equal(ev_values, values) and torch.equal(ev_grads, grads)


def test_nn_pot_energy_falls_back_to_autograd_without_closed_form():
    from mnets.mlp import MLP
    from utils.mcmc.energy import PotentialEvaluator
    net = MLP(n_in=1, n_out=1, hidden_layers=[4], activation_fn='elu', no_weights=True, verbose=False)
    x, y = torch.randn(9, 1), torch.randn(9, 1)
    pot = hmc.nn_pot_energy(net, x, y, hmc.log_prob_standard_normal_prior)
    positions = torch.randn(3, net.num_params)
    assert pot.value_and_grad(positions) is None
    values, grads = PotentialEvaluator(pot).value_and_grad(positions)
    leaf = positions.clone().requires_grad_(True)
    expected_grads, = torch.autograd.grad(pot(leaf).sum(), leaf)
    assert torch.allclose(values, pot(positions)) and torch.allclose(grads, expected_grads, atol=1e-5)


def test_hmc_chain_identical_with_closed_form_and_autograd_gradients():
    from mnets.mlp import MLP
    torch.manual_seed(6)
    net = MLP(n_in=1, n_out=1, hidden_layers=[8, 8], no_weights=True, verbose=False).double()
    x = torch.linspace(-2, 2, 30, dtype=torch.float64).view(-1, 1)
    y = torch.sin(x) + 0.1 * torch.randn_like(x)
    pot = hmc.nn_pot_energy(net, x, y, hmc.log_prob_standard_normal_prior, tau_pred=25.)

    def autograd_only(q):  # the same potential without the closed-form gradient
        return pot(q)
    autograd_only.supports_batch = True
    init = [0.1 * torch.randn(net.num_params, dtype=torch.float64) for _ in range(3)]
    runs = []
    for func in (pot, autograd_only):
        gens = [torch.Generator().manual_seed(10 + i) for i in range(3)]
        chains = hmc.MultiChainHMC([q.clone() for q in init], func, stepsize=5e-3, num_steps=10, generator=gens)
        chains.simulate_chains(15)
        runs.append(stack_chains(chains.chains, burn=0))
    assert 0.2 < chains.avg_acceptance_probability
    assert torch.allclose(runs[0], runs[1], atol=1e-9)


def test_standard_normal_prior_recognised_for_its_closed_form_gradient():
    from utils.mcmc.potentials import _standard_normal_parameters
    prior = hmc.log_prob_standard_normal_prior
    assert _standard_normal_parameters(prior) == (0., 1.)
    assert _standard_normal_parameters(functools.partial(prior, std=3.)) == (0., 3.)
    assert _standard_normal_parameters(functools.partial(prior, mean=1, std=2)) == (1., 2.)
    # Anything whose gradient is not known this way goes to autograd.
    assert _standard_normal_parameters(lambda q: prior(q)) is None
    assert _standard_normal_parameters(functools.partial(prior, std=torch.ones(3))) is None
    assert _standard_normal_parameters(functools.partial(prior, torch.zeros(3))) is None


class CountingPotential:
    """A batched Gaussian potential that counts the positions (rows) it is asked to evaluate."""
    supports_batch = True

    def __init__(self, mean, cov):
        self.pot = gaussian_potential(mean, cov)
        self.rows = 0

    def __call__(self, q):
        self.rows += 1 if q.ndim == 1 else q.shape[0]
        return self.pot(q)


@pytest.mark.parametrize('multinomial', [False, True])
def test_batched_nuts_equals_chains_one_by_one(multinomial):
    mean, cov = TARGETS['correlated']
    init = [torch.tensor([2., -1.]), torch.tensor([-0.3, 0.2]), torch.tensor([0.5, 3.])]
    batched_pot = CountingPotential(mean, cov)
    batched = hmc.MultiChainHMC([q.clone() for q in init], batched_pot, chain_type='nuts', stepsize=0.3,
                                multinomial=multinomial, max_tree_depth=6,
                                generator=[torch.Generator().manual_seed(20 + s) for s in range(3)])
    batched.warmup(40)
    rows_after_warmup = batched_pot.rows
    batched.simulate_chains(25)
    alone_rows = 0
    for s, start in enumerate(init):
        alone_pot = CountingPotential(mean, cov)
        alone = hmc.NUTS(start.clone(), alone_pot, stepsize=0.3, multinomial=multinomial, max_tree_depth=6,
                         generator=torch.Generator().manual_seed(20 + s))
        alone.warmup(40)
        before = alone_pot.rows
        alone.simulate_chain(25)
        alone_rows += alone_pot.rows - before
        chain = batched.chains[s]
        assert chain.tree_depths == alone.tree_depths
        assert chain.stepsize == pytest.approx(alone.stepsize, rel=1e-5)
        assert torch.allclose(torch.stack(chain.position_trajectory), torch.stack(alone.position_trajectory),
                              atol=1e-4)
        assert chain.acceptance_probability == pytest.approx(alone.acceptance_probability, abs=1e-4)
    # The trees differ in depth; the batch still evaluated exactly the points the lone chains did.
    assert len({d for c in batched.chains for d in c.tree_depths}) > 1
    assert batched_pot.rows - rows_after_warmup == alone_rows


@pytest.mark.parametrize('name', ['isotropic', 'badly_scaled'])
def test_multichain_nuts_recovers_moments(name):
    mean, cov = TARGETS[name]
    torch.manual_seed(7)
    sampler = hmc.MultiChainHMC([mean + torch.randn(3) for _ in range(4)], gaussian_potential(mean, cov),
                                chain_type='nuts', stepsize=0.1)
    sampler.warmup(150)
    sampler.simulate_chains(500)
    samples = stack_chains(sampler.chains)
    assert_moments(samples, mean, cov)
    assert hmc.split_rhat(samples).max() < 1.01
    assert all(c.tree_depths for c in sampler.chains) and sampler.chains[0]._evaluator.mode == 'batched'
