"""Effective samples per second on a BNN posterior: hnetkit (adapted NUTS and batched HMC) vs hypnettorch NUTS.

usage: python benchmarks/ess_per_second.py --impl project|hypnettorch [--warmup 100] [--samples 200]
(run the hypnettorch side with /tmp/hnt_venv/bin/python).

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
- ``*_per_s``: those divided by the wall time, and ``rhat_pred_max`` (split R-hat of those outputs).
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


def report(name, chains, seconds):
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
    for key in ('ess_param_min', 'ess_param_median', 'ess_pred_min'):
        row[key + '_per_s'] = round(row[key] / seconds, 3)
    print(json.dumps(row), flush=True)


if args.impl == 'hypnettorch':
    start = time.perf_counter()
    mc = hmc.MultiChainHMC([i.clone() for i in init], pe, chain_type='nuts', stepsize=1e-2)
    mc.simulate_chains(args.warmup + args.samples)
    report('nuts', mc.chains, time.perf_counter() - start)
else:
    for chain_type, kwargs in (('nuts', {'max_tree_depth': 8}), ('hmc', {'num_steps': 30})):
        start = time.perf_counter()
        mc = hmc.MultiChainHMC([i.clone() for i in init], pe, chain_type=chain_type, stepsize=1e-2, **kwargs)
        mc.warmup(args.warmup)
        mc.simulate_chains(args.samples)
        report(chain_type, mc.chains, time.perf_counter() - start)
