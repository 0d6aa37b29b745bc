"""Effective samples per second on a BNN posterior: hnetkit (warmed-up, batched HMC and NUTS) vs hypnettorch NUTS.

usage: python benchmarks/ess_per_second.py --impl project|hypnettorch [--samples 200]
(run the hypnettorch side with /tmp/hnt_venv/bin/python). Prints one JSON line per sampler: the minimum over
test points of the ESS of the network's predictions (weights are not identifiable), divided by wall time.
"""
import argparse
import importlib
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from utils.mcmc.diagnostics import effective_sample_size  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument('--impl', required=True, choices=['project', 'hypnettorch'])
parser.add_argument('--samples', type=int, default=200)
args = parser.parse_args()
prefix = 'hypnettorch.' if args.impl == 'hypnettorch' else ''
MLP = importlib.import_module(prefix + 'mnets.mlp').MLP
hmc = importlib.import_module(prefix + 'utils.hmc')
torch.set_num_threads(2)
torch.manual_seed(1)
xs = torch.linspace(-4, 4, 50).view(-1, 1)
ys = torch.sin(xs) + 0.1 * torch.randn_like(xs)
net = MLP(n_in=1, n_out=1, hidden_layers=[10, 10], no_weights=True, verbose=False)
pe = hmc.nn_pot_energy(net, xs, ys, hmc.log_prob_standard_normal_prior, tau_pred=100.)
grid = torch.linspace(-4, 4, 9).view(-1, 1)
shapes = net.param_shapes
sizes = [int(torch.tensor(s).prod()) for s in shapes]


def predictions(samples):  # [C, N, D] -> [C, N, 9]
    flat = samples.reshape(-1, samples.shape[-1]).detach()
    outs = [net.forward(grid, weights=[t.view(s) for t, s in zip(torch.split(q, sizes), shapes)]).squeeze(-1)
            for q in flat]
    return torch.stack(outs).view(samples.shape[0], samples.shape[1], -1)


def report(name, chains, seconds):
    samples = torch.stack([torch.stack([p.detach() for p in c.position_trajectory[1:]]) for c in chains])
    ess = float(effective_sample_size(predictions(samples)).min())
    print(json.dumps({'impl': args.impl, 'sampler': name, 'seconds': round(seconds, 2), 'min_ess': round(ess, 1),
                      'ess_per_s': round(ess / seconds, 3)}), flush=True)


init = [torch.randn(net.num_params) * 0.1 for _ in range(4)]
if args.impl == 'hypnettorch':
    start = time.perf_counter()
    mc = hmc.MultiChainHMC([i.clone() for i in init], pe, chain_type='nuts', stepsize=1e-2)
    mc.simulate_chains(args.samples)
    for c in mc.chains:
        c.clear_position_trajectory(args.samples // 4)  # burn-in (it has no warm-up)
        c._positions.insert(0, c._positions[0])
    report('nuts', mc.chains, time.perf_counter() - start)
else:
    for chain_type, kwargs in (('nuts', {'max_tree_depth': 8}), ('hmc', {'num_steps': 30})):
        start = time.perf_counter()
        mc = hmc.MultiChainHMC([i.clone() for i in init], pe, chain_type=chain_type, stepsize=1e-2, **kwargs)
        mc.warmup(args.samples // 4)
        mc.simulate_chains(args.samples - args.samples // 4)
        report(chain_type, mc.chains, time.perf_counter() - start)
