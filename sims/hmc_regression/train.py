#!/usr/bin/env python3
"""Sample the weight posterior of a small MLP on 1D regression toy data with several HMC or NUTS chains.

    python sims/hmc_regression/train.py [--sampler nuts] [--num_chains 4] ...

Writes to ``--out_dir``: ``predictive.png`` (posterior-predictive mean and bands over the data),
``traces.png`` (trace plots of a few weights), ``diagnostics.txt`` (ESS and split R-hat), ``samples.pt``,
and TensorBoard scalars (energy, acceptance, step size). Returns a dict with the held-out RMSE and R-hat.
"""
import functools
import os
import sys

import numpy as np
import torch

if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from data.special.regression1d_data import ToyRegression  # noqa: E402
from mnets.mlp import MLP  # noqa: E402
from sims.hmc_regression.train_args import parse_cmd_arguments  # noqa: E402
from utils import hmc, sim_utils  # noqa: E402


def make_data(config):
    """The toy task: y = sin(x) + noise with a gap in the training inputs."""
    return ToyRegression(train_inter=[(-4., -1.), (1., 4.)], num_train=config.num_train, test_inter=(-4., 4.),
                         num_test=50, map_function=np.sin, std=0.1, rseed=config.data_random_seed)


def predictive(net, samples, inputs):
    """Network outputs for all posterior samples ``[S, D]`` at ``inputs`` ``[M, 1]``: ``[S, M]`` (one vmap)."""
    shapes = net.param_shapes
    sizes = [int(np.prod(s)) for s in shapes]

    def forward(flat):
        return net.forward(inputs, weights=[t.view(s) for t, s in zip(torch.split(flat, sizes), shapes)])
    with torch.no_grad():
        return torch.func.vmap(forward)(samples).squeeze(-1)


def run(config):
    device, writer, logger = sim_utils.setup_environment(config, logger_name='hmc_regression')
    data = make_data(config)
    x = torch.as_tensor(data.get_train_inputs(), dtype=torch.float32, device=device)
    y = torch.as_tensor(data.get_train_outputs(), dtype=torch.float32, device=device)
    net = MLP(n_in=1, n_out=1, hidden_layers=config.hidden_layers, no_weights=True, verbose=False).to(device)
    # A partial (not a lambda) of the standard-normal prior: nn_pot_energy then knows its gradient in closed form.
    prior = functools.partial(hmc.log_prob_standard_normal_prior, std=config.prior_std)
    pot = hmc.nn_pot_energy(net, x, y, prior, tau_pred=config.tau_pred)
    init = [0.1 * torch.randn(net.num_params, device=device) for _ in range(config.num_chains)]
    kwargs = {'num_steps': config.num_steps} if config.sampler == 'hmc' else {'max_tree_depth':
                                                                              config.max_tree_depth}
    sampler = hmc.MultiChainHMC(init, pot, chain_type=config.sampler, stepsize=config.stepsize, thin=config.thin,
                                writer=writer, logger=logger, log_interval=100, **kwargs)
    logger.info(f'Warm-up: {config.num_warmup} transitions per chain ({config.num_chains} chains, '
                f'{net.num_params} weights).')
    sampler.warmup(config.num_warmup, target_accept=config.target_accept)
    for index, chain in enumerate(sampler.chains):
        writer.add_scalar(f'chain_{index}/stepsize', chain.stepsize, 0)
    try:
        from tqdm import tqdm
        progress = tqdm(total=config.num_samples, desc='sampling', disable=not sys.stderr.isatty())
    except ImportError:
        progress = None
    block = 50
    for start in range(0, config.num_samples, block):
        sampler.simulate_chains(min(block, config.num_samples - start))
        if progress is not None:
            progress.update(min(block, config.num_samples - start))
    if progress is not None:
        progress.close()
    burn = 1 + config.burn_in // config.thin
    samples = torch.stack([torch.stack(c.position_trajectory[burn:]) for c in sampler.chains])  # [C, N, D]
    rhat, ess = hmc.split_rhat(samples), hmc.effective_sample_size(samples)

    flat = samples.reshape(-1, samples.shape[-1])
    x_test = torch.as_tensor(data.get_test_inputs(), dtype=torch.float32, device=device)
    y_test = torch.as_tensor(data.get_test_outputs(), dtype=torch.float32, device=device).squeeze(-1)
    test_pred = predictive(net, flat, x_test)
    # Held-out error of the predictive mean, on test points inside the training intervals.
    inside = (x_test.squeeze(-1).abs() >= 1.) & (x_test.squeeze(-1).abs() <= 4.)
    rmse = float(((test_pred.mean(0) - y_test)[inside] ** 2).mean().sqrt())
    # R-hat of the predictions where there is data: weights are not identifiable (permutation symmetries),
    # and in the gap between the intervals the chains may legitimately sit in different modes.
    out_rhat = hmc.split_rhat(test_pred.view(samples.shape[0], samples.shape[1], -1)[:, :, inside])
    results = {'rmse_test': rmse, 'rhat_pred_max': float(out_rhat.max()), 'rhat_weights_median': float(rhat.median()),
               'ess_weights_median': float(ess.median()), 'acceptance': sampler.avg_acceptance_probability,
               'divergent': sum(c.num_divergent for c in sampler.chains)}
    for name, value in results.items():
        writer.add_scalar(f'summary/{name}', value, 0)
    lines = [f'{k}: {v:.4g}' for k, v in results.items()]
    lines += ['', 'weight  ess  split_rhat'] + [f'{i:5d} {float(e):8.1f} {float(r):8.4f}'
                                              for i, (e, r) in enumerate(zip(ess, rhat))]
    with open(os.path.join(config.out_dir, 'diagnostics.txt'), 'w') as file:
        file.write('\n'.join(lines) + '\n')
    torch.save({'samples': samples.cpu(), 'param_shapes': net.param_shapes}, os.path.join(config.out_dir,
                                                                                          'samples.pt'))
    if not config.no_plots:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        grid = torch.linspace(-5, 5, 200, device=device).view(-1, 1)
        grid_pred = predictive(net, flat, grid)
        data.plot_predictive_distribution(grid.cpu().numpy(), grid_pred.mean(0).cpu().numpy(),
                                          grid_pred.std(0).cpu().numpy(), show=False,
                                          filename=os.path.join(config.out_dir, 'predictive.png'),
                                          title=f'{config.sampler.upper()} posterior predictive')
        fig, axes = plt.subplots(3, 1, figsize=(8, 6), sharex=True)
        for ax, weight in zip(axes, range(min(3, samples.shape[-1]))):
            for chain in range(samples.shape[0]):
                ax.plot(samples[chain, :, weight].cpu().numpy(), linewidth=0.6)
            ax.set_ylabel(f'w[{weight}]')
        axes[-1].set_xlabel('kept state')
        fig.savefig(os.path.join(config.out_dir, 'traces.png'), bbox_inches='tight')
        plt.close(fig)
    logger.info(' - '.join(lines[:len(results)]))
    writer.close()
    return results


if __name__ == '__main__':
    run(parse_cmd_arguments())
