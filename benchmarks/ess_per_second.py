"""Effective samples per second on a BNN posterior: hnetkit (adapted NUTS and batched HMC) vs hypnettorch NUTS.

usage: python benchmarks/ess_per_second.py --impl project|hypnettorch [--warmup 100] [--samples 200]
(run the hypnettorch side with benchmarks/.venv/bin/python, which python -m benchmarks creates).

A fair comparison: the same posterior (MLP 1-10-10-1, 50 points, tau_pred=100, standard-normal prior), the same
4 initial positions, the same number of iterations before the kept states (hnetkit: adaptive warm-up;
hypnettorch, which has no adaptation: burn-in at its default step size) and the same number of kept states per
chain. Both sides' samples go through the same function, ``utils.mcmc.diagnostics.effective_sample_size``: the
multi-chain, split-chain ESS, so chains that disagree or barely move get a LOW ESS. The wall time covers
warm-up/burn-in and sampling. Prints one JSON line per sampler with

- ``ess_param_min`` / ``ess_param_median``: per-weight bulk ESS (weights are not identifiable, so the minimum
  is mostly a mixing-between-modes figure),
- ``ess_pred_min``: the minimum over 5 inputs of the ESS of the network's output f(x; W), the quantity whose
  mean is the posterior-predictive mean a researcher reports,
- ``*_per_s``: those divided by the wall time, and ``rhat_pred_max`` (split R-hat of those outputs),
- ``fit_rmse_*``: the RMS residual of the kept states on the training data. The likelihood's sigma is 0.1, so
  posterior states fit to ~0.1. This is the check that the sampler samples the posterior at all.

Read the hypnettorch row with that check. Its NUTS draws the slice variable as ``u = rand() * exp(-U - K)`` in
float32, which underflows to 0 once U + K > ~104 (here U + K > 200 in every state): ``log u = -inf``, so every
leapfrog point lies in the slice, the Delta_max divergence test never fires, and the next state is drawn
uniformly from the trajectory whatever its energy error — there is no Metropolis correction. At its fixed
step 1e-2 (about 5x the unit-mass step that gives 0.8 acceptance in equilibrium, ~0.002) the chains then sit
far from the posterior (fit RMSE ~0.7 instead of ~0.1) where large gradients make trajectories U-turn after a
few steps: its trees are short because of that bug, and its high prediction ESS measures a fast random walk
over bad fits, not posterior samples. At equal step size (1e-2) and unit mass, hnetkit's trees are shorter
than hypnettorch's (mean depth ~3 vs ~4 from the same start); hnetkit's NUTS builds long trees (depth cap 8 on
every transition) because the step size that reaches 0.8 acceptance on this posterior is small (0.003-0.006
with the adapted diagonal mass), i.e. the posterior is stiff even after diagonal preconditioning.

hnetkit's 4 NUTS chains build their trees as one batch (every chain still building shares one potential
call per leapfrog step), and the potential's gradient comes in closed form for this plain MLP. The recommended
hnetkit sampler here is still batched multi-chain HMC (all chains in one potential call per leapfrog step;
4 chains cost ~1.2x one chain) with an adapted step size and mass, 100 leapfrog steps and a +-50 % step-size
jitter (which about doubles the prediction ESS over a fixed step): it spends no host synchronisation on
tree decisions.
"""
import argparse
import importlib
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from utils.mcmc.diagnostics import effective_sample_size, split_rhat  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument('--impl', required=True, choices=['project', 'hypnettorch'])
parser.add_argument('--warmup', type=int, default=100, help='warm-up (hnetkit) / burn-in (hypnettorch) iterations')
parser.add_argument('--samples', type=int, default=200, help='kept states per chain')
parser.add_argument('--chains', type=int, default=4)
parser.add_argument('--samplers', default='hmc,nuts', help='hnetkit samplers to run, comma-separated')
parser.add_argument('--hmc_steps', type=int, default=100, help='hnetkit HMC: leapfrog steps per transition')
parser.add_argument('--hmc_jitter', type=float, default=0.5,
                    help='hnetkit HMC: stepsize_jitter (step size drawn from eps * U(1 - j, 1 + j) per transition)')
parser.add_argument('--nuts_depth', type=int, default=8, help='hnetkit NUTS: max_tree_depth')
args = parser.parse_args()
prefix = 'hypnettorch.' if args.impl == 'hypnettorch' else ''
MLP = importlib.import_module(prefix + 'mnets.mlp').MLP
hmc = importlib.import_module(prefix + 'utils.hmc')
torch.manual_seed(1)
xs = torch.linspace(-4, 4, 50).view(-1, 1)
ys = torch.sin(xs) + 0.1 * torch.randn_like(xs)
net = MLP(n_in=1, n_out=1, hidden_layers=[10, 10], no_weights=True, verbose=False)
pe = hmc.nn_pot_energy(net, xs, ys, hmc.log_prob_standard_normal_prior, tau_pred=100.)
probe_inputs = torch.tensor([-3., -1.5, 0., 1.5, 3.]).view(-1, 1)
shapes = net.param_shapes
sizes = [int(torch.tensor(s).prod()) for s in shapes]
init_gen = torch.Generator().manual_seed(2)
init = [torch.randn(net.num_params, generator=init_gen) * 0.1 for _ in range(args.chains)]


def predictions(samples):
    """Network outputs at the probe inputs for samples ``[C, N, D]``: ``[C, N, 5]``."""
    flat = samples.reshape(-1, samples.shape[-1])
    with torch.no_grad():
        outs = [net.forward(probe_inputs, weights=[t.view(s) for t, s in zip(torch.split(q, sizes), shapes)])
                for q in flat]
    return torch.stack(outs).view(samples.shape[0], samples.shape[1], -1)


def training_fit(samples):
    """Root-mean-square residual on the training data, per kept state ``[C, N]``.

    The posterior's likelihood has sigma = tau_pred^(-1/2) = 0.1, so states from the posterior fit to about
    0.1; a sampler that is not sampling the posterior (e.g. one whose energy exploded) shows up here, where
    an ESS alone would not: a chain that jumps between far-apart bad states has a HIGH ESS.
    """
    flat = samples.reshape(-1, samples.shape[-1])
    with torch.no_grad():
        outs = torch.stack([net.forward(xs, weights=[t.view(s) for t, s in zip(torch.split(q, sizes), shapes)])
                            for q in flat])
    return (outs - ys).square().mean((1, 2)).sqrt().view(samples.shape[0], samples.shape[1])


def report(name, chains, seconds, extra=None):
    # The last `samples` states of each chain (for both implementations the trajectories hold more).
    samples = torch.stack([torch.stack([p.detach() for p in c.position_trajectory[-args.samples:]])
                           for c in chains])
    ess_param = effective_sample_size(samples)
    preds = predictions(samples)
    ess_pred = effective_sample_size(preds)
    row = {'impl': args.impl, 'sampler': name, 'chains': samples.shape[0], 'kept_per_chain': samples.shape[1],
           'seconds': round(seconds, 2), 'ess_param_min': round(float(ess_param.min()), 1),
           'ess_param_median': round(float(ess_param.median()), 1),
           'ess_pred_min': round(float(ess_pred.min()), 1),
           'rhat_pred_max': round(float(split_rhat(preds).max()), 3)}
    fit = training_fit(samples)
    row['fit_rmse_median'] = round(float(fit.median()), 4)
    row['fit_rmse_max_per_chain'] = [round(float(v), 4) for v in fit.max(1).values]
    row.update(extra or {})
    for key in ('ess_param_min', 'ess_param_median', 'ess_pred_min'):
        row[key + '_per_s'] = round(row[key] / seconds, 3)
    print(json.dumps(row), flush=True)


if args.impl == 'hypnettorch':
    start = time.perf_counter()
    mc = hmc.MultiChainHMC([i.clone() for i in init], pe, chain_type='nuts', stepsize=1e-2)
    mc.simulate_chains(args.warmup + args.samples)
    report('nuts', mc.chains, time.perf_counter() - start)
else:
    configs = {'nuts': {'max_tree_depth': args.nuts_depth}, 'hmc': {'num_steps': args.hmc_steps,
                                                                 'stepsize_jitter': args.hmc_jitter}}
    for chain_type in args.samplers.split(','):
        start = time.perf_counter()
        mc = hmc.MultiChainHMC([i.clone() for i in init], pe, chain_type=chain_type, stepsize=1e-2,
                               **configs[chain_type])
        mc.warmup(args.warmup)
        mc.simulate_chains(args.samples)
        seconds = time.perf_counter() - start
        extra = {'stepsize': [round(c.stepsize, 5) for c in mc.chains], **configs[chain_type]}
        if chain_type == 'nuts':
            depths = [d for c in mc.chains for d in c.tree_depths]
            extra['mean_tree_depth'] = round(sum(depths) / len(depths), 2)
        report(chain_type, mc.chains, seconds, extra)
