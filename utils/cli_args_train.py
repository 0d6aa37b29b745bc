"""Command-line option groups for running a simulation: output/device, evaluation, training, continual
learning and data options, plus :func:`check_invalid_argument_usage` for combinations argparse cannot check.

Option names and the helpers' keyword arguments (``d<option>`` = default, ``show_<option>`` = offered) follow
hypnettorch's ``utils.cli_args``. Each helper adds one titled group (so ``--help`` lists options grouped) and
returns it. Values are validated while parsing, so a bad value ends in a one-line argparse error.
"""
import argparse
import warnings
from datetime import datetime

from utils.cli_arg_types import (
    dropout_rate,
    int_or_minus_one,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
    positive_int_or_minus_one,
)

__all__ = ['SimArgumentParser', 'miscellaneous_args', 'eval_args', 'train_args', 'cl_args', 'data_args',
           'check_invalid_argument_usage', 'default_out_dir']


class SimArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are exactly one line on stderr (exit status 2).

    The stock parser prints the whole usage synopsis before the error; with a simulation's hundred options
    that buries the one line that matters. ``--help`` is unchanged.
    """

    def error(self, message):
        self.exit(2, '%s: error: %s (see --help)\n' % (self.prog, message))


def default_out_dir(root='./out'):
    """``<root>/run_<YYYY>-<MM>-<DD>_<hh>-<mm>-<ss>``: a fresh folder name per run."""
    return root.rstrip('/') + '/run_' + datetime.now().strftime('%Y-%m-%d_%H-%M-%S')


def miscellaneous_args(parser, big_data=True, synthetic_data=False, show_plots=False, no_cuda=False,
                       dout_dir=None, show_publication_style=False, show_overwrite=True):
    """Add the group "Miscellaneous options".

    Options: ``num_workers`` (``big_data``), ``out_dir``, ``overwrite`` (``show_overwrite``), ``use_cuda``
    (when ``no_cuda``: CUDA is off unless asked for) or else ``no_cuda`` (CUDA is on where available unless
    switched off), ``loglevel_info``, ``deterministic_run``, ``publication_style``, ``show_plots``,
    ``data_random_seed`` (``synthetic_data``: data generation gets its own seed) and ``random_seed``.

    Args:
        dout_dir (str, optional): Default of ``out_dir``; ``None`` gives ``./out/run_<date>_<time>``.

    Returns:
        argparse._ArgumentGroup: the created group.
    """
    if dout_dir is None:
        dout_dir = default_out_dir()
    agroup = parser.add_argument_group('Miscellaneous options')
    if big_data:
        agroup.add_argument('--num_workers', type=nonneg_int, metavar='N', default=8,
                            help='Worker processes per data loader. Default: %(default)s.')
    agroup.add_argument('--out_dir', type=str, default=dout_dir,
                        help='Folder for the outputs of this run (config, results, logs, checkpoints). If it '
                             'exists and is not empty, a new folder "<out_dir>_<date>_<time>" is used '
                             'instead, unless "--overwrite" is given. Default: %(default)s.')
    if show_overwrite:
        agroup.add_argument('--overwrite', action='store_true',
                            help='Reuse an existing "out_dir", deleting its previous contents.')
    if no_cuda:
        agroup.add_argument('--use_cuda', action='store_true',
                            help='Run on the GPU (when one is available).')
    else:
        agroup.add_argument('--no_cuda', action='store_true',
                            help='Run on the CPU even when a GPU is available.')
    agroup.add_argument('--loglevel_info', action='store_true',
                        help='Log to the console at level INFO instead of DEBUG.')
    agroup.add_argument('--deterministic_run', action='store_true',
                        help='Ask torch for deterministic algorithms (cuDNN included), so reruns with the '
                             'same seed reproduce bit for bit; this may slow training down.')
    if show_publication_style:
        agroup.add_argument('--publication_style', action='store_true',
                            help='Style plots for publication.')
    if show_plots:
        agroup.add_argument('--show_plots', action='store_true',
                            help='Show plots in a window besides saving them.')
    if synthetic_data:
        agroup.add_argument('--data_random_seed', type=int, metavar='N', default=42,
                            help='Seed of the data generation, kept apart from the training seed so '
                                 'different training seeds see the same data. Default: %(default)s.')
    agroup.add_argument('--random_seed', type=int, metavar='N', default=42,
                        help='Seed of torch, numpy and random. Default: %(default)s.')
    return agroup


def eval_args(parser, dval_iter=500, show_val_batch_size=False, dval_batch_size=256, show_val_set_size=False,
              dval_set_size=0, show_test_with_val_set=False):
    """Add the group "Evaluation options": ``val_iter``, ``val_batch_size``, ``val_set_size``,
    ``test_with_val_set``.

    Returns:
        argparse._ArgumentGroup: the created group.
    """
    agroup = parser.add_argument_group('Evaluation options')
    agroup.add_argument('--val_iter', type=positive_int, metavar='N', default=dval_iter,
                        help='Evaluate every this many training iterations. Default: %(default)s.')
    if show_val_batch_size:
        agroup.add_argument('--val_batch_size', type=positive_int, metavar='N', default=dval_batch_size,
                            help='Batch size for validation and testing. Default: %(default)s.')
    if show_val_set_size:
        agroup.add_argument('--val_set_size', type=nonneg_int, metavar='N', default=dval_set_size,
                            help='Samples split off the training set as validation set (0 = none). '
                                 'Default: %(default)s.')
    if show_test_with_val_set:
        agroup.add_argument('--test_with_val_set', action='store_true',
                            help='Report accuracies on the validation set instead of the test set (for '
                                 'hyperparameter searches that must not see the test set).')
    return agroup


def train_args(parser, show_lr=False, dlr=0.1, show_epochs=False, depochs=-1, dbatch_size=32, dn_iter=100001,
               show_use_adam=False, dadam_beta1=0.9, show_use_rmsprop=False, show_use_adadelta=False,
               show_use_adagrad=False, show_clip_grad_value=False, show_clip_grad_norm=False,
               show_adam_beta1=False, show_momentum=True):
    """Add the group "Training options".

    Options: ``batch_size``, ``n_iter`` (per task), ``epochs`` (per task; overrides ``n_iter`` unless -1),
    ``lr``, ``momentum``, ``weight_decay``, ``use_adam``, ``adam_beta1``, ``use_rmsprop``, ``use_adadelta``,
    ``use_adagrad``, ``clip_grad_value``, ``clip_grad_norm`` (-1 = no clipping). Plain SGD is the optimizer
    unless one of the ``use_*`` flags is set (at most one; see :func:`check_invalid_argument_usage`).

    Returns:
        argparse._ArgumentGroup: the created group.
    """
    agroup = parser.add_argument_group('Training options')
    agroup.add_argument('--batch_size', type=positive_int, metavar='N', default=dbatch_size,
                        help='Training mini-batch size. Default: %(default)s.')
    agroup.add_argument('--n_iter', type=positive_int, metavar='N', default=dn_iter,
                        help='Training iterations per task. Default: %(default)s.')
    if show_epochs:
        agroup.add_argument('--epochs', type=positive_int_or_minus_one, metavar='N', default=depochs,
                            help='Training epochs per task; -1 uses "n_iter" instead. Default: %(default)s.')
    if show_lr:
        agroup.add_argument('--lr', type=positive_float, default=dlr,
                            help='Learning rate. Default: %(default)s.')
    if show_momentum:
        agroup.add_argument('--momentum', type=nonneg_float, default=0.0,
                            help='Momentum of SGD and RMSprop. Default: %(default)s.')
    agroup.add_argument('--weight_decay', type=nonneg_float, default=0,
                        help='Weight decay (L2 penalty) of the optimizer. Default: %(default)s.')
    if show_use_adam:
        agroup.add_argument('--use_adam', action='store_true', help='Optimize with Adam instead of SGD.')
    if show_use_adam or show_adam_beta1:
        agroup.add_argument('--adam_beta1', type=_unit_interval, default=dadam_beta1,
                            help='Adam\'s beta1 (decay of the first-moment average). Default: %(default)s.')
    if show_use_rmsprop:
        agroup.add_argument('--use_rmsprop', action='store_true',
                            help='Optimize with RMSprop instead of SGD.')
    if show_use_adadelta:
        agroup.add_argument('--use_adadelta', action='store_true',
                            help='Optimize with Adadelta instead of SGD.')
    if show_use_adagrad:
        agroup.add_argument('--use_adagrad', action='store_true',
                            help='Optimize with Adagrad instead of SGD.')
    if show_clip_grad_value:
        agroup.add_argument('--clip_grad_value', type=_positive_or_off, default=-1,
                            help='Clip each gradient entry to [-v, v]; -1 = off. Default: %(default)s.')
    if show_clip_grad_norm:
        agroup.add_argument('--clip_grad_norm', type=_positive_or_off, default=-1,
                            help='Rescale gradients to at most this total norm; -1 = off. '
                                 'Default: %(default)s.')
    return agroup


def _unit_interval(text):
    value = nonneg_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError('expected a number in [0, 1), got %s' % text)
    return value


def _positive_or_off(text):
    if text.strip() in ('-1', '-1.0'):
        return -1.0
    return positive_float(text)


def cl_args(parser, show_beta=True, dbeta=0.01, show_from_scratch=False, show_multi_head=False,
            show_cl_scenario=False, show_split_head_cl3=True, dcl_scenario=1, show_num_tasks=False,
            dnum_tasks=1, show_num_classes_per_task=False, dnum_classes_per_task=2,
            show_calc_hnet_reg_targets_online=False, show_hnet_reg_batch_size=False, dhnet_reg_batch_size=-1,
            allowed_cl_scenarios=(1, 2, 3)):
    """Add the group "Continual learning options".

    Options: ``beta`` (strength of the CL regularizer), ``train_from_scratch``, ``multi_head``,
    ``cl_scenario`` (1 task-incremental: task identity given, one head per task; 2 domain-incremental: one
    shared head, identity not given; 3 class-incremental: one head over all classes seen, identity not given;
    see van de Ven & Tolias 2019), ``split_head_cl3``, ``num_tasks``, ``num_classes_per_task``,
    ``calc_hnet_reg_targets_online``, ``hnet_reg_batch_size``.

    Args:
        allowed_cl_scenarios (tuple): Scenarios the simulation implements (the ``choices`` of
            ``cl_scenario``).

    Returns:
        argparse._ArgumentGroup: the created group.
    """
    agroup = parser.add_argument_group('Continual learning options')
    if show_beta:
        agroup.add_argument('--beta', type=nonneg_float, default=dbeta,
                            help='Strength of the continual-learning regularizer. Default: %(default)s.')
    if show_from_scratch:
        agroup.add_argument('--train_from_scratch', action='store_true',
                            help='Re-create all networks before each task (a no-transfer baseline).')
    if show_multi_head:
        agroup.add_argument('--multi_head', action='store_true', help='Give every task its own output head.')
    if show_cl_scenario:
        agroup.add_argument('--cl_scenario', type=int, default=dcl_scenario,
                            choices=list(allowed_cl_scenarios),
                            help='Continual-learning scenario: 1 = task-incremental (task identity given, '
                                 'one head per task), 2 = domain-incremental (one shared head, identity '
                                 'inferred), 3 = class-incremental (one head over all classes, identity '
                                 'inferred). Default: %(default)s.')
        if show_split_head_cl3:
            agroup.add_argument('--split_head_cl3', action='store_true',
                                help='In scenario 3, take the softmax over the inferred task\'s head only, '
                                     'instead of over all output units.')
    if show_num_tasks:
        agroup.add_argument('--num_tasks', type=positive_int, metavar='N', default=dnum_tasks,
                            help='Number of tasks. Default: %(default)s.')
    if show_num_classes_per_task:
        agroup.add_argument('--num_classes_per_task', type=positive_int, metavar='N',
                            default=dnum_classes_per_task,
                            help='Classes per task. Default: %(default)s.')
    if show_calc_hnet_reg_targets_online:
        agroup.add_argument('--calc_hnet_reg_targets_online', action='store_true',
                            help='Compute the hypernetwork regularizer\'s targets on the fly from a copy of '
                                 'the hypernetwork taken before the current task, instead of storing the '
                                 'target weights of every previous task (saves memory, costs a forward).')
    if show_hnet_reg_batch_size:
        agroup.add_argument('--hnet_reg_batch_size', type=int_or_minus_one, default=dhnet_reg_batch_size,
                            metavar='N',
                            help='Regularize a random subset of at most this many previous tasks per step; '
                                 '-1 = all of them. Default: %(default)s.')
    return agroup


def data_args(parser, show_disable_data_augmentation=False, show_data_dir=False, ddata_dir='.'):
    """Add the group "Data-specific options": ``disable_data_augmentation``, ``data_dir``.

    Returns:
        argparse._ArgumentGroup: the created group.
    """
    agroup = parser.add_argument_group('Data-specific options')
    if show_disable_data_augmentation:
        agroup.add_argument('--disable_data_augmentation', action='store_true',
                            help='Switch off the data augmentation of datasets that have one (e.g. CIFAR '
                                 'random crops and flips).')
    if show_data_dir:
        agroup.add_argument('--data_dir', type=str, default=ddata_dir,
                            help='Folder the dataset is read from. Default: %(default)s.')
    return agroup


def _problems(args):
    """Errors (list of str) and warnings (list of str) in combinations of the options defined here."""
    errors, notes = [], []
    get = lambda name, default=None: getattr(args, name, default)  # noqa: E731

    chosen = [o for o in ('use_adam', 'use_rmsprop', 'use_adadelta', 'use_adagrad') if get(o, False)]
    if len(chosen) > 1:
        errors.append('options %s: expected at most one optimizer, got %d' % (
            ', '.join('--' + o for o in chosen), len(chosen)))
    if get('clip_grad_value', -1) != -1 and get('clip_grad_norm', -1) != -1:
        errors.append('options --clip_grad_value and --clip_grad_norm: expected at most one gradient '
                      'clipping, got both')
    if get('split_head_cl3', False) and get('cl_scenario', 3) != 3:
        errors.append('option --split_head_cl3: only valid with --cl_scenario 3, got --cl_scenario %s'
                      % get('cl_scenario'))
    if get('epochs', -1) == -1 and hasattr(args, 'epochs') and get('n_iter') is None:
        errors.append('options --epochs/--n_iter: expected one of them to be set')

    net = get('net_type')
    if net is not None:
        if net in ('resnet', 'iresnet', 'bio_conv_net', 'simple_rnn') and get('dropout_rate', -1) != -1:
            notes.append('network "%s" has no dropout; --dropout_rate is ignored' % net)
        if net in ('lenet', 'resnet', 'wrn', 'iresnet', 'zenke', 'bio_conv_net', 'simple_rnn') \
                and get('specnorm', False):
            notes.append('network "%s" has no spectral normalization; --specnorm is ignored' % net)
        act = get('net_act')
        if act is not None and act != 'relu' and net in ('lenet', 'resnet', 'wrn', 'iresnet', 'zenke'):
            notes.append('network "%s" always uses ReLU; --net_act %s is ignored' % (net, act))
        if act is not None and net == 'bio_conv_net':
            notes.append('network "bio_conv_net" always uses tanh; --net_act is ignored')
        if act is not None and net == 'simple_rnn' and act not in ('relu', 'tanh'):
            errors.append('option --net_act: network "simple_rnn" supports relu or tanh, got %s' % act)
        if net in ('lenet', 'zenke', 'bio_conv_net') and get('no_bias', False):
            notes.append('network "%s" always has biases; --no_bias is ignored' % net)

    if hasattr(args, 'batchnorm'):
        bn_used = args.batchnorm
    elif hasattr(args, 'no_batchnorm'):
        bn_used = not args.no_batchnorm
    else:
        bn_used = None
    if bn_used and net in ('lenet', 'zenke', 'bio_conv_net', 'simple_rnn'):
        notes.append('network "%s" has no batch normalization; the batchnorm option is ignored' % net)
    bn_flags = [f for f in ('bn_no_running_stats', 'bn_distill_stats', 'bn_no_stats_checkpointing')
                if get(f, False)]
    if bn_used is False:
        notes.extend('option --%s has no effect without batch normalization' % f for f in bn_flags)
    if len(bn_flags) > 1:
        errors.append('options %s: mutually exclusive, got %d of them' % (
            ', '.join('--' + f for f in bn_flags), len(bn_flags)))
    if get('dropout_rate') is not None:
        try:
            dropout_rate(str(get('dropout_rate')))
        except argparse.ArgumentTypeError as err:
            errors.append('option --dropout_rate: %s' % err)
    return errors, notes


def check_invalid_argument_usage(args, parser=None):
    """Check combinations of the options defined in this module that argparse cannot check one by one.

    Checked: at most one optimizer flag, not both gradient clippings, ``split_head_cl3`` only in CL3,
    ``simple_rnn`` activations, mutually exclusive batch-norm statistics options. Options that a chosen
    network ignores (dropout, spectral norm, activation, bias, batchnorm) give a ``UserWarning``. Prefixed
    options (``--gen_net_type``) are not checked.

    Args:
        args (argparse.Namespace): Parsed options.
        parser (argparse.ArgumentParser, optional): If given, an invalid combination ends the program via
            ``parser.error`` (one-line message, exit status 2) instead of raising.

    Raises:
        ValueError: on an invalid combination when ``parser`` is None; the message names the options.
    """
    if not isinstance(args, argparse.Namespace):
        raise TypeError('args: expected an argparse.Namespace, got %s' % type(args).__name__)
    errors, notes = _problems(args)
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    if errors:
        message = '; '.join(errors)
        if parser is not None:
            parser.error(message)
        raise ValueError(message)
