"""Command-line options shared by the continual-learning MNIST experiments (on top of utils.cli_args)."""
import argparse

from sims.common.cl_methods import METHODS
from utils import cli_args
from utils.cli_arg_types import nonneg_float, nonneg_int, positive_float, positive_int, positive_int_or_minus_one


def _unit_open(text):
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError('expected a number in (0, 1], got %s' % text)
    return value


def _slope(text):
    value = positive_float(text)
    if value < 1:
        raise argparse.ArgumentTypeError('expected a number >= 1, got %s' % text)
    return value


def cl_experiment_args(parser, dmethod='hnet', dn_fisher=-1):
    """Add the group "Continual-learning method options": ``method``, ``lr_schedule``, ``ewc_gamma``, ``n_fisher``,
    ``si_epsilon``, ``hat_lambda``, ``hat_smax``, ``resume``, ``stop_after_task``, ``eval_batch_size``."""
    agroup = parser.add_argument_group('Continual-learning method options')
    agroup.add_argument('--method', type=str, default=dmethod, choices=METHODS,
                        help='How tasks are learned one after another: "hnet" task-conditioned hypernetwork '
                             'with output regularizer; "ewc"/"online_ewc" elastic weight consolidation; '
                             '"si" synaptic intelligence; "fine_tune" no protection; "from_scratch" a new '
                             'network per task; "hat" hard attention to the task (per-task unit masks of a '
                             'multi-head MLP; needs the task identity at test time, so CL1 only). '
                             'Default: %(default)s.')
    agroup.add_argument('--lr_schedule', type=str, default='cosine', choices=['constant', 'cosine'],
                        help='Learning rate within each task: constant, or cosine-annealed from --lr to 0. '
                             'Default: %(default)s.')
    agroup.add_argument('--ewc_gamma', type=_unit_open, default=1.0,
                        help='Decay of earlier Fisher estimates in online EWC. Default: %(default)s.')
    agroup.add_argument('--n_fisher', type=positive_int_or_minus_one, default=dn_fisher,
                        help='Training samples used for the Fisher estimate; -1 = all. Default: %(default)s.')
    agroup.add_argument('--si_epsilon', type=positive_float, default=1e-3,
                        help='Damping of the SI importance normalisation. Default: %(default)s.')
    agroup.add_argument('--hat_lambda', type=nonneg_float, default=0.75,
                        help='HAT: strength c of the mask sparsity regularizer (share of the free units a '
                             'task takes). Default: %(default)s.')
    agroup.add_argument('--hat_smax', type=_slope, default=400.0,
                        help='HAT: maximum slope s_max of the masks sigmoid(s * e); s is annealed from '
                             '1/s_max to s_max over the batches of each pass over a task. Default: %(default)s.')
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
    if config.method == 'hat':
        if getattr(config, 'cl_scenario', 1) != 1:
            parser.error('--method hat needs the task identity at test time: use --cl_scenario 1, got %d'
                         % config.cl_scenario)
        if config.net_type != 'mlp':
            parser.error("--method hat masks the hidden units of an MLP: use --net_type mlp, got '%s'"
                         % config.net_type)
        if config.weight_decay > 0:
            parser.error('--method hat needs --weight_decay 0 (decay would move the frozen weights), got %s'
                         % config.weight_decay)
    return config
