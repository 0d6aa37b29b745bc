"""Helpers every simulation script calls: prepare a run, and build networks from command-line options.

* :func:`setup_environment` -- output folder (never an interactive prompt), ``config.json``, logger, seeds,
  deterministic mode, torch device and a tensorboardX writer.
* :func:`get_mnet_model` / :func:`get_hypernet` -- instantiate the main network / hypernetwork that the options
  of :func:`utils.cli_args.main_net_args` / :func:`utils.cli_args.hnet_args` describe.
* :func:`calc_train_iter` -- iterations from an epoch budget.

This is the one ``utils`` module that knows the concrete classes in ``mnets/`` and ``hnets/``. They are
imported when a network of that type is requested, so a type whose module this installation lacks fails with
a message naming the type and the module, and the other types keep working.
"""
import importlib
import json
import logging
import math
import os
import random
import shutil
import time
from datetime import datetime

import numpy as np
import torch
from tensorboardX import SummaryWriter

from utils import logger_config
from utils.cli_arg_types import parse_int_list
from utils.cli_args_nets import HNET_TYPES, MAIN_NET_TYPES

__all__ = ['setup_environment', 'get_mnet_model', 'get_hypernet', 'calc_train_iter', 'activation_from_name',
           'prepare_out_dir']

_ACTIVATIONS = {'linear': None, 'sigmoid': torch.nn.Sigmoid, 'relu': torch.nn.ReLU, 'elu': torch.nn.ELU,
                'tanh': torch.nn.Tanh}


def activation_from_name(name):
    """``'relu'`` -> ``torch.nn.ReLU()``; ``'linear'`` -> ``None`` (identity), as the ``net_act`` options mean."""
    if name not in _ACTIVATIONS:
        raise ValueError('net_act: expected one of %s, got %r' % (sorted(_ACTIVATIONS), name))
    cls = _ACTIVATIONS[name]
    return None if cls is None else cls()


def prepare_out_dir(out_dir, overwrite=False, resume=False):
    """Create the output folder of a run and return its path; never asks the user anything.

    * missing or empty folder: created/used;
    * ``resume``: an existing folder is reused untouched (its checkpoints are what the run resumes from);
    * ``overwrite``: an existing folder is emptied;
    * otherwise a sibling ``<out_dir>_<YYYY-MM-DD_hh-mm-ss>`` (plus ``_<n>`` if that exists too) is created, so
      an earlier run's results are never lost and an unattended job never blocks on a prompt.
    """
    if not isinstance(out_dir, str) or not out_dir:
        raise ValueError('out_dir: expected a non-empty path string, got %r' % (out_dir,))
    out_dir = os.path.normpath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError('out_dir: expected a folder path, got the existing file %r' % out_dir)
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not resume:
        if overwrite:
            shutil.rmtree(out_dir)
        else:
            base = out_dir + '_' + datetime.now().strftime('%Y-%m-%d_%H-%M-%S')
            candidate, counter = base, 1
            while os.path.exists(candidate):
                candidate, counter = '%s_%d' % (base, counter), counter + 1
            out_dir = candidate
    os.makedirs(out_dir, exist_ok=True)
    return out_dir


def _select_device(config):
    has_use, has_no = hasattr(config, 'use_cuda'), hasattr(config, 'no_cuda')
    if has_use == has_no:
        raise ValueError('config: expected exactly one of the options use_cuda/no_cuda (see '
                         'utils.cli_args.miscellaneous_args), got %s' % ('both' if has_use else 'neither'))
    wants_cuda = config.use_cuda if has_use else not config.no_cuda
    return torch.device('cuda' if wants_cuda and torch.cuda.is_available() else 'cpu')


def _seed_everything(seed, deterministic):
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        # cuBLAS needs this workspace setting for deterministic matrix products on the GPU.
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def setup_environment(config, logger_name='hnet_sim_logger'):
    """Prepare a simulation run right after its options were parsed.

    Creates the output folder (see :func:`prepare_out_dir`; ``config.out_dir`` is updated to the folder
    actually used), writes ``config.json`` there, sets up a logger writing to the console and to
    ``<out_dir>/logfile.txt``, seeds ``torch``/``numpy``/``random`` with ``config.random_seed``, switches
    torch to deterministic algorithms if ``config.deterministic_run``, picks the device and opens a
    tensorboardX writer on ``<out_dir>/summary``.

    Args:
        config (argparse.Namespace): Options of :func:`utils.cli_args.miscellaneous_args` (``out_dir``,
            ``random_seed``, ``use_cuda`` or ``no_cuda``; optionally ``overwrite``, ``deterministic_run``,
            ``loglevel_info``, and ``resume`` of the simulation).
        logger_name (str): Base name of the logger (a millisecond time stamp is appended so that several runs
            in one process get separate loggers).

    Returns:
        (torch.device, tensorboardX.SummaryWriter, logging.Logger): the writer must be closed by the caller.
    """
    for name in ('out_dir', 'random_seed'):
        if not hasattr(config, name):
            raise ValueError('config: expected option %r (see utils.cli_args.miscellaneous_args), got none'
                             % name)
    device = _select_device(config)
    requested = config.out_dir
    config.out_dir = prepare_out_dir(config.out_dir, overwrite=getattr(config, 'overwrite', False),
                                     resume=getattr(config, 'resume', False))
    with open(os.path.join(config.out_dir, 'config.json'), 'w') as file:
        json.dump(vars(config), file, indent=2, sort_keys=True, default=str)

    logger = logger_config.config_logger('%s_%d' % (logger_name, int(time.time() * 1000)),
                                         os.path.join(config.out_dir, 'logfile.txt'), logging.DEBUG,
                                         logging.INFO if getattr(config, 'loglevel_info', False)
                                         else logging.DEBUG)
    logger.propagate = False
    if os.path.normpath(requested) != config.out_dir:
        logger.info('Output folder %s exists; writing to %s instead (use --overwrite to reuse it).'
                    % (requested, config.out_dir))
    else:
        logger.info('Output folder: %s' % config.out_dir)

    _seed_everything(config.random_seed, getattr(config, 'deterministic_run', False))
    logger.info('Device: %s' % device)
    writer = SummaryWriter(logdir=os.path.join(config.out_dir, 'summary'))
    return device, writer, logger


def _import_net_class(kind, net_type, registry):
    if net_type not in registry:
        raise ValueError('net_type: expected one of %s, got %r' % (sorted(registry), net_type))
    module_name, class_name = registry[net_type].rsplit('.', 1)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        raise NotImplementedError('net_type %r: the %s class %s is not available in this hnetkit installation '
                                  '(module %s is missing)' % (net_type, kind, registry[net_type],
                                                              module_name)) from None
    return getattr(module, class_name)


class _Options:
    """Read prefixed options from a config; absent options read as ``None`` (the network default then)."""

    def __init__(self, config, prefix):
        self.config, self.prefix = config, prefix or ''

    def get(self, name):
        return getattr(self.config, self.prefix + name, None)

    def need(self, name):
        if not hasattr(self.config, self.prefix + name):
            raise ValueError('config: expected option %r for this network type, got none'
                             % (self.prefix + name))
        return getattr(self.config, self.prefix + name)

    def ints(self, name):
        return parse_int_list(self.need(name))

    def common(self, sub_prefix=''):
        """Keyword arguments shared by the MLP-like constructors, only for options that are set."""
        out = {}
        act = self.get(sub_prefix + 'net_act')
        if act is not None:
            out['activation_fn'] = activation_from_name(act)
        if self.get(sub_prefix + 'no_bias') is not None:
            out['use_bias'] = not self.get(sub_prefix + 'no_bias')
        if self.get(sub_prefix + 'dropout_rate') is not None:
            out['dropout_rate'] = self.get(sub_prefix + 'dropout_rate')
        if self.get(sub_prefix + 'specnorm') is not None:
            out['use_spectral_norm'] = self.get(sub_prefix + 'specnorm')
        use_bn = self.batchnorm(sub_prefix)
        if use_bn is not None:
            out['use_batch_norm'] = use_bn
        return out

    def batchnorm(self, sub_prefix=''):
        if self.get(sub_prefix + 'batchnorm') is not None:
            return self.get(sub_prefix + 'batchnorm')
        if self.get(sub_prefix + 'no_batchnorm') is not None:
            return not self.get(sub_prefix + 'no_batchnorm')
        return None

    def bn_stats(self):
        out = {}
        if self.get('bn_no_running_stats') is not None:
            out['bn_track_stats'] = not self.get('bn_no_running_stats')
        if self.get('bn_distill_stats') is not None:
            out['distill_bn_stats'] = self.get('bn_distill_stats')
        return out


def _check_shape(name, shape, length=None):
    if not isinstance(shape, (list, tuple)) or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError('%s: expected a list of positive ints, got %r' % (name, shape))
    if length is not None and len(shape) != length:
        raise ValueError('%s: expected %d dimension(s), got %r' % (name, length, list(shape)))


def get_mnet_model(config, net_type, in_shape, out_shape, device, cprefix=None, no_weights=False,
                   **mnet_kwargs):
    """Build the main network that the options of :func:`utils.cli_args.main_net_args` describe.

    Args:
        config (argparse.Namespace): Parsed options (possibly prefixed by ``cprefix``).
        net_type (str): One of :data:`utils.cli_args.MAIN_NET_TYPES` (``'mlp'``, ``'lenet'``, ``'zenke'``,
            ``'resnet'``, ``'wrn'``, ``'iresnet'``, ``'bio_conv_net'``, ``'chunked_mlp'``, ``'simple_rnn'``).
        in_shape (list): Input shape, e.g. ``[784]`` for an MLP, ``[28, 28, 1]`` (H, W, C) for a conv net.
        out_shape (list): Output shape, e.g. ``[10]``.
        device (torch.device): Where the network is moved.
        cprefix (str, optional): Prefix of the option names (e.g. ``'gen_'``).
        no_weights (bool): Build the network without weights (they come from a hypernetwork).
        **mnet_kwargs: Further constructor arguments (e.g. context-modulation options).

    Returns:
        The network (an ``nn.Module`` implementing :class:`mnets.mnet_interface.MainNetInterface`).

    Raises:
        ValueError: unknown ``net_type``, bad shapes, or a required option missing from ``config``.
        NotImplementedError: the class for ``net_type`` is not part of this installation.
    """
    cls = _import_net_class('main network', net_type, MAIN_NET_TYPES)
    _check_shape('out_shape', out_shape, 1)
    opts = _Options(config, cprefix)
    common = opts.common()
    kwargs = {'no_weights': no_weights, 'verbose': True}
    if net_type in ('mlp', 'chunked_mlp'):
        _check_shape('in_shape', in_shape, 1)
        kwargs.update(n_in=in_shape[0], n_out=out_shape[0], **common, **opts.bn_stats())
        if net_type == 'mlp':
            kwargs['hidden_layers'] = opts.ints('mlp_arch')
        else:
            kwargs.update(inp_chunk_dim=opts.need('cmlp_in_cdim'), out_chunk_dim=opts.need('cmlp_out_cdim'),
                          cemb_size=opts.need('cmlp_cemb_dim'), red_layers=opts.ints('cmlp_chunk_arch'),
                          net_layers=opts.ints('cmlp_arch'))
    elif net_type == 'simple_rnn':
        _check_shape('in_shape', in_shape, 1)
        rnn_layers, post_layers = opts.ints('srnn_rec_layers'), opts.ints('srnn_post_fc_layers')
        (rnn_layers if opts.need('srnn_no_fc_out') else post_layers).append(out_shape[0])
        kwargs.update(n_in=in_shape[0], rnn_layers=rnn_layers, fc_layers_pre=opts.ints('srnn_pre_fc_layers'),
                      fc_layers=post_layers, use_lstm=opts.need('srnn_rec_type') == 'lstm')
        if 'activation_fn' in common:
            kwargs['activation'] = common['activation_fn']
        if 'use_bias' in common:
            kwargs['use_bias'] = common['use_bias']
    else:
        _check_shape('in_shape', in_shape)
        kwargs.update(in_shape=list(in_shape), num_classes=out_shape[0])
        if net_type == 'lenet':
            kwargs['arch'] = opts.need('lenet_type')
        if net_type in ('lenet', 'zenke', 'wrn') and 'dropout_rate' in common:
            kwargs['dropout_rate'] = common['dropout_rate']
        if net_type in ('resnet', 'wrn', 'iresnet'):
            kwargs.update(opts.bn_stats())
            if 'use_bias' in common:
                kwargs['use_bias'] = common['use_bias']
            if 'use_batch_norm' in common:
                kwargs['use_batch_norm'] = common['use_batch_norm']
        if net_type == 'resnet':
            kwargs.update(n=opts.need('resnet_block_depth'),
                          num_feature_maps=opts.ints('resnet_channel_sizes'))
        elif net_type == 'wrn':
            kwargs.update(n=opts.need('wrn_block_depth'), k=opts.need('wrn_widening_factor'),
                          use_fc_bias=opts.need('wrn_use_fc_bias'))
        elif net_type == 'iresnet':
            kwargs.update(use_fc_bias=opts.need('iresnet_use_fc_bias'),
                          num_feature_maps=opts.ints('iresnet_channel_sizes'),
                          blocks_per_group=opts.ints('iresnet_blocks_per_group'),
                          projection_shortcut=opts.need('iresnet_projection_shortcut'),
                          bottleneck_blocks=opts.need('iresnet_bottleneck_blocks'))
        elif net_type == 'bio_conv_net':
            kwargs.pop('verbose')
    kwargs.update(mnet_kwargs)
    return cls(**kwargs).to(device)


def get_hypernet(config, device, net_type, target_shapes, num_conds, no_cond_weights=False,
                 no_uncond_weights=False, uncond_in_size=0, shmlp_chunk_shapes=None, shmlp_num_per_chunk=None,
                 shmlp_assembly_fct=None, verbose=True, cprefix=None):
    """Build the hypernetwork that the options of :func:`utils.cli_args.hnet_args` describe.

    Args:
        config (argparse.Namespace): Parsed options (possibly prefixed by ``cprefix``).
        device (torch.device): Where the network is moved.
        net_type (str): ``'hmlp'`` (:class:`hnets.mlp_hnet.HMLP`), ``'chunked_hmlp'``
            (:class:`hnets.chunked_mlp_hnet.ChunkedHMLP`), ``'structured_hmlp'``, ``'hdeconv'`` or
            ``'chunked_hdeconv'``.
        target_shapes (list): Shapes of the weights to produce (usually ``mnet.param_shapes``).
        num_conds (int): Number of conditions (tasks) with an own embedding.
        no_cond_weights, no_uncond_weights, uncond_in_size, verbose: As in :class:`hnets.mlp_hnet.HMLP`.
        shmlp_chunk_shapes, shmlp_num_per_chunk, shmlp_assembly_fct: Structure of a ``'structured_hmlp'``.
        cprefix (str, optional): Prefix of the option names.

    Returns:
        The hypernetwork (implementing :class:`hnets.hnet_interface.HyperNetInterface`).
    """
    cls = _import_net_class('hypernetwork', net_type, HNET_TYPES)
    if not isinstance(num_conds, int) or num_conds < 0:
        raise ValueError('num_conds: expected an int >= 0, got %r' % (num_conds,))
    if not isinstance(target_shapes, (list, tuple)) or not target_shapes:
        raise ValueError('target_shapes: expected a non-empty list of shapes, got %r' % (target_shapes,))
    opts = _Options(config, cprefix)
    net_kwargs = opts.common(sub_prefix='hnet_')
    arch_text = opts.get('hmlp_arch') or ''
    if ';' in arch_text and net_type != 'structured_hmlp':
        raise ValueError('hmlp_arch: several ";"-separated architectures need hnet_type "structured_hmlp", '
                         'got %r for %r' % (arch_text, net_type))
    cond_in_size = opts.get('cond_emb_size')
    kwargs = dict(uncond_in_size=uncond_in_size, cond_in_size=0 if cond_in_size is None else cond_in_size,
                  verbose=verbose, no_uncond_weights=no_uncond_weights, no_cond_weights=no_cond_weights,
                  num_cond_embs=num_conds)
    chunk_emb = opts.get('chunk_emb_size')
    chunk_emb = None if chunk_emb is None else parse_int_list(str(chunk_emb))
    if chunk_emb is not None and len(chunk_emb) > 1 and net_type != 'structured_hmlp':
        raise ValueError('chunk_emb_size: several sizes need hnet_type "structured_hmlp", got %r' % chunk_emb)
    if opts.get('use_cond_chunk_embs') is not None:
        kwargs['cond_chunk_embs'] = opts.get('use_cond_chunk_embs')

    if net_type == 'hmlp':
        kwargs.pop('cond_chunk_embs', None)
        hnet = cls(target_shapes, layers=opts.ints('hmlp_arch'), **kwargs, **net_kwargs)
    elif net_type == 'chunked_hmlp':
        opts.need('chunk_emb_size')
        hnet = cls(target_shapes, opts.need('chmlp_chunk_size'), chunk_emb_size=chunk_emb[0],
                   layers=opts.ints('hmlp_arch'), **kwargs, **net_kwargs)
    elif net_type == 'structured_hmlp':
        if shmlp_chunk_shapes is None or shmlp_num_per_chunk is None or shmlp_assembly_fct is None:
            raise ValueError('shmlp_chunk_shapes/shmlp_num_per_chunk/shmlp_assembly_fct: expected all three '
                             'for a "structured_hmlp", got None')
        archs = [parse_int_list(a) for a in opts.need('hmlp_arch').split(';')]
        hmlp_kwargs = [dict(layers=arch, **net_kwargs) for arch in archs]
        hnet = cls(target_shapes, shmlp_chunk_shapes, shmlp_num_per_chunk,
                   chunk_emb[0] if len(chunk_emb) == 1 else chunk_emb,
                   hmlp_kwargs[0] if len(hmlp_kwargs) == 1 else hmlp_kwargs, shmlp_assembly_fct, **kwargs)
    else:
        raise NotImplementedError('net_type %r: building deconvolutional hypernetworks from options is not '
                                  'supported' % net_type)
    return hnet.to(device)


def calc_train_iter(num_train_samples, batch_size, num_iter=-1, epochs=-1):
    """Number of training iterations for a budget given in iterations or in epochs.

    With ``epochs > 0``: ``iter_per_epoch = ceil(num_train_samples / batch_size)`` (the last batch of an epoch
    may be smaller) and ``num_train_iter = epochs * iter_per_epoch``. With ``epochs == -1``:
    ``num_train_iter = num_iter`` and ``iter_per_epoch = -1``.

    Returns:
        (int, int): ``(num_train_iter, iter_per_epoch)``.
    """
    for name, value in (('num_train_samples', num_train_samples), ('batch_size', batch_size)):
        if not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError('%s: expected an int > 0, got %r' % (name, value))
    if epochs == -1:
        if not isinstance(num_iter, (int, np.integer)) or num_iter <= 0:
            raise ValueError('num_iter: expected an int > 0 when epochs is -1, got %r' % (num_iter,))
        return int(num_iter), -1
    if not isinstance(epochs, (int, np.integer)) or epochs <= 0:
        raise ValueError('epochs: expected an int > 0 or -1, got %r' % (epochs,))
    iter_per_epoch = math.ceil(num_train_samples / batch_size)
    return int(epochs * iter_per_epoch), int(iter_per_epoch)
