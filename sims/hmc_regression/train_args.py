"""Command-line options of ``sims/hmc_regression/train.py``: shared groups from ``utils.cli_args`` plus the
sampler and data options of this experiment."""
import argparse

from utils import cli_args


def sampler_args(parser):
    """Add the group "Sampler options"."""
    group = parser.add_argument_group('Sampler options')
    group.add_argument('--sampler', choices=['hmc', 'nuts'], default='hmc', help='Default: %(default)s.')
    group.add_argument('--num_chains', type=int, default=4, help='Chains from different starts (default 4).')
    group.add_argument('--num_warmup', type=int, default=300,
                       help='Adaptive warm-up transitions (step size, diagonal mass), discarded.')
    group.add_argument('--num_samples', type=int, default=1000, help='Transitions per chain after warm-up.')
    group.add_argument('--burn_in', type=int, default=0, help='Further states dropped after warm-up.')
    group.add_argument('--thin', type=int, default=2, help='Keep every k-th state.')
    group.add_argument('--stepsize', type=float, default=1e-3, help='Initial leapfrog step size.')
    group.add_argument('--num_steps', type=int, default=30, help='HMC: leapfrog steps per transition.')
    group.add_argument('--max_tree_depth', type=int, default=8, help='NUTS: cap on trajectory doublings.')
    group.add_argument('--target_accept', type=float, default=0.8, help='Warm-up target acceptance.')
    group.add_argument('--tau_pred', type=float, default=100., help='Likelihood precision 1/sigma^2.')
    group.add_argument('--prior_std', type=float, default=1., help='Std of the Gaussian weight prior.')
    group.add_argument('--hidden_layers', type=str, default='10,10', help='Hidden layer sizes of the MLP.')
    group.add_argument('--num_train', type=int, default=20, help='Training points of the toy data.')
    group.add_argument('--no_plots', action='store_true', help='Do not write plots.')
    return group


def parse_cmd_arguments(argv=None):
    """Parse and validate the options (``argv`` defaults to ``sys.argv``)."""
    parser = argparse.ArgumentParser(description='BNN posterior sampling with HMC/NUTS on 1D regression data.')
    cli_args.miscellaneous_args(parser, big_data=False, synthetic_data=True, no_cuda=True,
                                dout_dir='./out_hmc_regression/run')
    sampler_args(parser)
    config = parser.parse_args(argv)
    for name in ('num_chains', 'num_samples', 'thin', 'num_steps', 'max_tree_depth', 'num_train'):
        if getattr(config, name) < 1:
            parser.error(f'--{name}: expected a value >= 1, got {getattr(config, name)}')
    for name in ('num_warmup', 'burn_in'):
        if getattr(config, name) < 0:
            parser.error(f'--{name}: expected a value >= 0, got {getattr(config, name)}')
    if not config.stepsize > 0 or not config.tau_pred > 0 or not config.prior_std > 0:
        parser.error('--stepsize, --tau_pred, --prior_std: expected positive values')
    if not 0 < config.target_accept < 1:
        parser.error(f'--target_accept: expected a value in (0, 1), got {config.target_accept}')
    try:
        config.hidden_layers = [int(h) for h in config.hidden_layers.split(',') if h.strip()]
    except ValueError:
        parser.error(f'--hidden_layers: expected comma-separated ints, got {config.hidden_layers!r}')
    return config
