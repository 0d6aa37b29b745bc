"""Command-line options shared by the continual-learning MNIST experiments (on top of utils.cli_args)."""
import argparse

from sims.common.cl_methods import METHODS
from utils import cli_args
from utils.cli_arg_types import nonneg_int, positive_float, positive_int, positive_int_or_minus_one


def _unit_open(text):
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError('expected a number in (0, 1], got %s' % text)
    return value


def cl_experiment_args(parser, dmethod='hnet', dn_fisher=-1):
    """Add the group "Continual-learning method options": ``method``, ``lr_schedule``, ``ewc_gamma``, ``n_fisher``,
    ``si_epsilon``, ``resume``, ``stop_after_task``, ``eval_batch_size``, ``log_interval``."""
    agroup = parser.add_argument_group('Continual-learning method options')
    agroup.add_argument('--method', type=str, default=dmethod, choices=METHODS,
                        help='How tasks are learned one after another: "hnet" task-conditioned hypernetwork '
                             'with output regularizer; "ewc"/"online_ewc" elastic weight consolidation; '
                             '"si" synaptic intelligence; "fine_tune" no protection; "from_scratch" a new '
                             'network per task. Default: %(default)s.')
    agroup.add_argument('--lr_schedule', type=str, default='cosine', choices=['constant', 'cosine'],
                        help='Learning rate within each task: constant, or cosine-annealed from --lr to 0. '
                             'Default: %(default)s.')
    agroup.add_argument('--ewc_gamma', type=_unit_open, default=1.0,
                        help='Decay of earlier Fisher estimates in online EWC. Default: %(default)s.')
    agroup.add_argument('--n_fisher', type=positive_int_or_minus_one, default=dn_fisher,
                        help='Training samples used for the Fisher estimate; -1 = all. Default: %(default)s.')
    agroup.add_argument('--si_epsilon', type=positive_float, default=1e-3,
                        help='Damping of the SI importance normalisation. Default: %(default)s.')
    agroup.add_argument('--resume', action='store_true',
                        help='Continue the run in --out_dir from its last checkpoint (written after each '
                             'task); the result equals an uninterrupted run with the same seed.')
    agroup.add_argument('--stop_after_task', type=nonneg_int, default=0, metavar='N',
                        help='Stop (with a checkpoint) after training N tasks; 0 = train all. '
                             'Default: %(default)s.')
    agroup.add_argument('--eval_batch_size', type=positive_int, default=2000, metavar='N',
                        help='Test samples evaluated per forward pass. Default: %(default)s.')
    return agroup


def finish_parsing(parser, argv=None):
    """Parse ``argv`` and check option combinations; bad values end in a one-line usage error."""
    config = parser.parse_args(argv)
    cli_args.check_invalid_argument_usage(config, parser)
    return config
