"""Command-line option groups that describe networks: main networks, hypernetworks and their initialization.

Each helper adds one titled argument group to an ``argparse.ArgumentParser`` (so ``--help`` lists the options
grouped) and returns that group, so a simulation can append its own options to it. Option names and the
helpers' keyword arguments (``d<option>`` = default value, ``show_<option>`` = whether it is offered) follow
hypnettorch's ``utils.cli_args``, so its simulation scripts port unchanged. Values are validated when parsed:
a malformed architecture string or an out-of-range number ends in a one-line argparse error.
"""
from utils.cli_arg_types import (
    dropout_rate,
    int_list_or_groups_str,
    int_list_str,
    nonempty_int_list_str,
    nonneg_int,
    positive_float,
    positive_int,
)

__all__ = ['main_net_args', 'hnet_args', 'init_args', 'MAIN_NET_TYPES', 'HNET_TYPES', 'NET_ACTIVATIONS']

#: Main-network identifiers and the class each one builds (see :func:`utils.sim_utils.get_mnet_model`).
MAIN_NET_TYPES = {
    'mlp': 'mnets.mlp.MLP',
    'lenet': 'mnets.lenet.LeNet',
    'resnet': 'mnets.resnet.ResNet',
    'wrn': 'mnets.wide_resnet.WRN',
    'iresnet': 'mnets.resnet_imgnet.ResNetIN',
    'zenke': 'mnets.zenkenet.ZenkeNet',
    'bio_conv_net': 'mnets.bio_conv_net.BioConvNet',
    'chunked_mlp': 'mnets.chunk_squeezer.ChunkSqueezer',
    'simple_rnn': 'mnets.simple_rnn.SimpleRNN',
}

#: Hypernetwork identifiers and the class each one builds (see :func:`utils.sim_utils.get_hypernet`).
HNET_TYPES = {
    'hmlp': 'hnets.mlp_hnet.HMLP',
    'chunked_hmlp': 'hnets.chunked_mlp_hnet.ChunkedHMLP',
    'structured_hmlp': 'hnets.structured_mlp_hnet.StructuredHMLP',
    'hdeconv': 'hnets.deconv_hnet.HDeconv',
    'chunked_hdeconv': 'hnets.chunked_deconv_hnet.ChunkedHDeconv',
}

#: Names accepted by the ``net_act`` options.
NET_ACTIVATIONS = ['linear', 'sigmoid', 'relu', 'elu', 'tanh']


def _check_known(kind, allowed, known):
    """Programming errors in a sim's option setup (not user input) still deserve a named message."""
    if isinstance(allowed, str) or not allowed:
        raise ValueError('allowed_nets: expected a non-empty list of %s identifiers, got %r'
                         % (kind, allowed))
    unknown = [net for net in allowed if net not in known]
    if unknown:
        raise ValueError('allowed_nets: unknown %s type(s) %s; known: %s' % (kind, unknown, sorted(known)))


def _check_prefix(prefix, pf_name):
    if prefix is not None and pf_name is None:
        raise ValueError('pf_name: expected a network name when prefix=%r is given, got None' % prefix)


def _net_options(agroup, show_net_act=True, dnet_act='relu', show_no_bias=False, show_dropout_rate=True,
                 ddropout_rate=-1, show_specnorm=True, show_batchnorm=True, show_no_batchnorm=False,
                 show_bn_no_running_stats=False, show_bn_distill_stats=False,
                 show_bn_no_stats_checkpointing=False, prefix='', pf_name=''):
    """Options shared by every network kind (a hypernetwork is a network too); see :func:`main_net_args`."""
    p, n = prefix, pf_name
    if show_net_act:
        agroup.add_argument('--%snet_act' % p, type=str, default=dnet_act, choices=NET_ACTIVATIONS,
                            help='Nonlinearity of the hidden layers of the %snetwork ("linear" = none). '
                                 'Default: %%(default)s.' % n)
    if show_no_bias:
        agroup.add_argument('--%sno_bias' % p, action='store_true',
                            help='Build the %snetwork without bias vectors.' % n)
    if show_dropout_rate:
        agroup.add_argument('--%sdropout_rate' % p, type=dropout_rate, default=ddropout_rate,
                            help='Dropout probability in the %snetwork; -1 switches dropout off. '
                                 'Default: %%(default)s.' % n)
    if show_specnorm:
        agroup.add_argument('--%sspecnorm' % p, action='store_true',
                            help='Apply spectral normalization to the %snetwork\'s layers.' % n)
    if show_batchnorm:
        agroup.add_argument('--%sbatchnorm' % p, action='store_true',
                            help='Insert batch normalization into the %snetwork.' % n)
    if show_no_batchnorm:
        agroup.add_argument('--%sno_batchnorm' % p, action='store_true',
                            help='Build the %snetwork without its default batch normalization.' % n)
    if show_bn_no_running_stats:
        agroup.add_argument('--%sbn_no_running_stats' % p, action='store_true',
                            help='Batch normalization in the %snetwork normalizes with batch statistics '
                                 'also at test time (no running mean/variance).' % n)
    if show_bn_distill_stats:
        agroup.add_argument('--%sbn_distill_stats' % p, action='store_true',
                            help='Treat the running batch-norm statistics of the %snetwork as outputs to '
                                 'be distilled (e.g. by a hypernetwork) instead of checkpointing them '
                                 'per task.' % n)
    if show_bn_no_stats_checkpointing:
        agroup.add_argument('--%sbn_no_stats_checkpointing' % p, action='store_true',
                            help='Do not keep one set of batch-norm statistics per task in the %snetwork; '
                                 'all tasks share the running statistics.' % n)


def main_net_args(parser, allowed_nets=('mlp',), dmlp_arch='100,100', dlenet_type='mnist_small',
                  dcmlp_arch='10,10', dcmlp_chunk_arch='10,10', dcmlp_in_cdim=100, dcmlp_out_cdim=10,
                  dcmlp_cemb_dim=8, dresnet_block_depth=5, dresnet_channel_sizes='16,16,32,64',
                  dwrn_block_depth=4, dwrn_widening_factor=10, diresnet_channel_sizes='64,64,128,256,512',
                  diresnet_blocks_per_group='2,2,2,2', dsrnn_rec_layers='10', dsrnn_pre_fc_layers='',
                  dsrnn_post_fc_layers='', dsrnn_rec_type='lstm', show_net_act=True, dnet_act='relu',
                  show_no_bias=False, show_dropout_rate=True, ddropout_rate=-1, show_specnorm=True,
                  show_batchnorm=True, show_no_batchnorm=False, show_bn_no_running_stats=False,
                  show_bn_distill_stats=False, show_bn_no_stats_checkpointing=False, prefix=None,
                  pf_name=None):
    """Add the group "Main network options".

    Options: ``net_type`` (only when more than one net is allowed), the architecture options of each allowed
    net (``mlp_arch``, ``lenet_type``, ``cmlp_*``, ``resnet_*``, ``wrn_*``, ``iresnet_*``, ``srnn_*``) and the
    common ones (``net_act``, ``no_bias``, ``dropout_rate``, ``specnorm``, ``batchnorm``, ``no_batchnorm``,
    ``bn_no_running_stats``, ``bn_distill_stats``, ``bn_no_stats_checkpointing``).

    Args:
        parser (argparse.ArgumentParser): Parser to extend.
        allowed_nets (list): Identifiers among :data:`MAIN_NET_TYPES`; the first one is the default.
        d<option>: Default of option ``<option>``.
        show_<option> (bool): Whether ``<option>`` is offered.
        prefix (str, optional): Prefix of every option name, for sims with several main networks
            (e.g. ``'gen_'`` gives ``--gen_net_type``); needs ``pf_name`` (e.g. ``'generator'``) for the help.
        pf_name (str, optional): Human-readable name of the prefixed network.

    Returns:
        argparse._ArgumentGroup: the created group.
    """
    allowed_nets = list(allowed_nets)
    _check_known('main network', allowed_nets, MAIN_NET_TYPES)
    _check_prefix(prefix, pf_name)
    heading = 'Main network options' if prefix is None else 'Main network options for %s network' % pf_name
    p = prefix or ''
    n = '' if prefix is None else pf_name + ' '
    agroup = parser.add_argument_group(heading)

    if len(allowed_nets) > 1:
        agroup.add_argument('--%snet_type' % p, type=str, default=allowed_nets[0], choices=allowed_nets,
                            help='Type of the %smain network. Default: %%(default)s.' % n)
    if 'mlp' in allowed_nets:
        agroup.add_argument('--%smlp_arch' % p, type=int_list_str, default=dmlp_arch,
                            help='Hidden-layer widths of an "mlp" %snetwork, comma-separated ("" = no '
                                 'hidden layer). Default: %%(default)s.' % n)
    if 'lenet' in allowed_nets:
        agroup.add_argument('--%slenet_type' % p, type=str, default=dlenet_type,
                            choices=['mnist_small', 'mnist_large', 'cifar'],
                            help='Variant of a "lenet" %snetwork. Default: %%(default)s.' % n)
    if 'chunked_mlp' in allowed_nets:
        agroup.add_argument('--%scmlp_arch' % p, type=int_list_str, default=dcmlp_arch,
                            help='Hidden-layer widths of the MLP inside a "chunked_mlp" %snetwork. '
                                 'Default: %%(default)s.' % n)
        agroup.add_argument('--%scmlp_chunk_arch' % p, type=int_list_str, default=dcmlp_chunk_arch,
                            help='Hidden-layer widths of the chunk-compressing network of a "chunked_mlp" '
                                 '%snetwork. Default: %%(default)s.' % n)
        agroup.add_argument('--%scmlp_in_cdim' % p, type=positive_int, metavar='N', default=dcmlp_in_cdim,
                            help='Input chunk size of a "chunked_mlp" %snetwork. Default: %%(default)s.' % n)
        agroup.add_argument('--%scmlp_out_cdim' % p, type=positive_int, metavar='N', default=dcmlp_out_cdim,
                            help='Size a "chunked_mlp" %snetwork compresses each input chunk to. '
                                 'Default: %%(default)s.' % n)
        agroup.add_argument('--%scmlp_cemb_dim' % p, type=nonneg_int, metavar='N', default=dcmlp_cemb_dim,
                            help='Chunk-embedding size of a "chunked_mlp" %snetwork. '
                                 'Default: %%(default)s.' % n)
    if 'resnet' in allowed_nets:
        agroup.add_argument('--%sresnet_block_depth' % p, type=positive_int, metavar='N',
                            default=dresnet_block_depth,
                            help='Residual blocks per group of a "resnet" %snetwork (depth 6n+2). '
                                 'Default: %%(default)s.' % n)
        agroup.add_argument('--%sresnet_channel_sizes' % p, type=nonempty_int_list_str,
                            default=dresnet_channel_sizes,
                            help='Feature maps of the first conv layer and of each block group of a '
                                 '"resnet" %snetwork (4 integers). Default: %%(default)s.' % n)
    if 'wrn' in allowed_nets:
        agroup.add_argument('--%swrn_block_depth' % p, type=positive_int, metavar='N',
                            default=dwrn_block_depth,
                            help='Blocks per group of a "wrn" %snetwork (depth 6n+4). '
                                 'Default: %%(default)s.' % n)
        agroup.add_argument('--%swrn_widening_factor' % p, type=positive_int, metavar='N',
                            default=dwrn_widening_factor,
                            help='Widening factor k of a "wrn" %snetwork. Default: %%(default)s.' % n)
        agroup.add_argument('--%swrn_use_fc_bias' % p, action='store_true',
                            help='Give the output layer of a "wrn" %snetwork a bias.' % n)
    if 'iresnet' in allowed_nets:
        agroup.add_argument('--%siresnet_use_fc_bias' % p, action='store_true',
                            help='Give the output layer of an "iresnet" %snetwork a bias.' % n)
        agroup.add_argument('--%siresnet_channel_sizes' % p, type=nonempty_int_list_str,
                            default=diresnet_channel_sizes,
                            help='Feature maps of the stem and of each block group of an "iresnet" '
                                 '%snetwork. Default: %%(default)s.' % n)
        agroup.add_argument('--%siresnet_blocks_per_group' % p, type=nonempty_int_list_str,
                            default=diresnet_blocks_per_group,
                            help='Blocks in each group of an "iresnet" %snetwork. Default: %%(default)s.' % n)
        agroup.add_argument('--%siresnet_bottleneck_blocks' % p, action='store_true',
                            help='Use bottleneck blocks in an "iresnet" %snetwork.' % n)
        agroup.add_argument('--%siresnet_projection_shortcut' % p, action='store_true',
                            help='Use projection (1x1 conv) shortcuts when an "iresnet" %snetwork changes '
                                 'its feature-map count.' % n)
    if 'simple_rnn' in allowed_nets:
        agroup.add_argument('--%ssrnn_rec_layers' % p, type=int_list_str, default=dsrnn_rec_layers,
                            help='Widths of the recurrent layers of a "simple_rnn" %snetwork. '
                                 'Default: %%(default)s.' % n)
        agroup.add_argument('--%ssrnn_pre_fc_layers' % p, type=int_list_str, default=dsrnn_pre_fc_layers,
                            help='Widths of fully-connected layers before the recurrent ones in a '
                                 '"simple_rnn" %snetwork. Default: %%(default)s.' % n)
        agroup.add_argument('--%ssrnn_post_fc_layers' % p, type=int_list_str, default=dsrnn_post_fc_layers,
                            help='Widths of fully-connected layers after the recurrent ones in a '
                                 '"simple_rnn" %snetwork (the output layer is added). '
                                 'Default: %%(default)s.' % n)
        agroup.add_argument('--%ssrnn_no_fc_out' % p, action='store_true',
                            help='Let the last recurrent layer of a "simple_rnn" %snetwork be the output '
                                 'layer.' % n)
        agroup.add_argument('--%ssrnn_rec_type' % p, type=str, default=dsrnn_rec_type,
                            choices=['lstm', 'elman'],
                            help='Recurrent layer type of a "simple_rnn" %snetwork. '
                                 'Default: %%(default)s.' % n)

    _net_options(agroup, show_net_act=show_net_act, dnet_act=dnet_act, show_no_bias=show_no_bias,
                 show_dropout_rate=show_dropout_rate, ddropout_rate=ddropout_rate,
                 show_specnorm=show_specnorm,
                 show_batchnorm=show_batchnorm, show_no_batchnorm=show_no_batchnorm,
                 show_bn_no_running_stats=show_bn_no_running_stats,
                 show_bn_distill_stats=show_bn_distill_stats,
                 show_bn_no_stats_checkpointing=show_bn_no_stats_checkpointing, prefix=p, pf_name=n)
    return agroup


def hnet_args(parser, allowed_nets=('hmlp',), dhmlp_arch='100,100', show_cond_emb_size=True,
              dcond_emb_size=8, dchmlp_chunk_size=1000, dchunk_emb_size=8, show_use_cond_chunk_embs=True,
              dhdeconv_shape='512,512,3', prefix=None, pf_name=None, **kwargs):
    """Add the group "Hypernet options".

    Options: ``hnet_type`` (only when more than one is allowed), ``hmlp_arch``, ``cond_emb_size`` (task
    embedding size), ``chmlp_chunk_size``, ``chunk_emb_size``, ``use_cond_chunk_embs``, ``hdeconv_*``, plus
    the network options of :func:`main_net_args` named with the prefix ``hnet_`` (``--hnet_net_act``,
    ``--hnet_dropout_rate``, ...).

    Args:
        parser (argparse.ArgumentParser): Parser to extend.
        allowed_nets (list): Identifiers among :data:`HNET_TYPES`; the first one is the default.
        d<option>: Default of option ``<option>``.
        show_cond_emb_size (bool): Whether ``cond_emb_size`` is offered.
        show_use_cond_chunk_embs (bool): Whether ``use_cond_chunk_embs`` is offered (chunked nets only).
        prefix (str, optional): Option-name prefix for sims with several hypernetworks; needs ``pf_name``.
        pf_name (str, optional): Human-readable name of the prefixed hypernetwork.
        **kwargs: ``show_*``/``d*`` keywords of the common network options (see :func:`main_net_args`).

    Returns:
        argparse._ArgumentGroup: the created group.
    """
    allowed_nets = list(allowed_nets)
    _check_known('hypernetwork', allowed_nets, HNET_TYPES)
    _check_prefix(prefix, pf_name)
    heading = 'Hypernet options' if prefix is None else 'Hypernet options for %s network' % pf_name
    p = prefix or ''
    n = '' if prefix is None else pf_name + ' '
    agroup = parser.add_argument_group(heading)
    mlp_like = {'hmlp', 'chunked_hmlp', 'structured_hmlp'} & set(allowed_nets)
    chunked = {'chunked_hmlp', 'chunked_hdeconv', 'structured_hmlp'} & set(allowed_nets)
    deconv = {'hdeconv', 'chunked_hdeconv'} & set(allowed_nets)

    if len(allowed_nets) > 1:
        agroup.add_argument('--%shnet_type' % p, type=str, default=allowed_nets[0], choices=allowed_nets,
                            help='Type of the %shypernetwork. Default: %%(default)s.' % n)
    if mlp_like:
        agroup.add_argument('--%shmlp_arch' % p, type=int_list_or_groups_str, default=dhmlp_arch,
                            help='Hidden-layer widths of an MLP %shypernetwork, comma-separated; a '
                                 '"structured_hmlp" accepts one list per internal hypernetwork separated '
                                 'by ";". Default: %%(default)s.' % n)
    if show_cond_emb_size:
        agroup.add_argument('--%scond_emb_size' % p, type=nonneg_int, default=dcond_emb_size, metavar='N',
                            help='Size of the conditional input embeddings (task embeddings) of the '
                                 '%shypernetwork. Default: %%(default)s.' % n)
    if 'chunked_hmlp' in allowed_nets:
        agroup.add_argument('--%schmlp_chunk_size' % p, type=positive_int, default=dchmlp_chunk_size,
                            metavar='N',
                            help='Outputs per chunk of a "chunked_hmlp" %shypernetwork: the target weights '
                                 'are produced chunk by chunk by one small shared MLP. '
                                 'Default: %%(default)s.' % n)
    if chunked:
        agroup.add_argument('--%schunk_emb_size' % p, type=nonempty_int_list_str,
                            default=str(dchunk_emb_size),
                            help='Chunk-embedding size of a chunked %shypernetwork (a "structured_hmlp" '
                                 'accepts one size per internal hypernetwork, comma-separated). '
                                 'Default: %%(default)s.' % n)
    if show_use_cond_chunk_embs and chunked:
        agroup.add_argument('--%suse_cond_chunk_embs' % p, action='store_true',
                            help='Give every condition its own chunk embeddings in a chunked %shypernetwork '
                                 '("%scond_emb_size" may then be 0).' % (n, p))
    if deconv:
        agroup.add_argument('--%shdeconv_shape' % p, type=nonempty_int_list_str, default=dhdeconv_shape,
                            help='Shape (2 or 3 integers) of the "hyper image" a deconvolutional '
                                 '%shypernetwork produces. Default: %%(default)s.' % n)
        agroup.add_argument('--%shdeconv_num_layers' % p, type=positive_int, default=5, metavar='N',
                            help='Layers of a deconvolutional %shypernetwork. Default: %%(default)s.' % n)
        agroup.add_argument('--%shdeconv_filters' % p, type=nonempty_int_list_str, default='128,512,256,128',
                            help='Output channels of each layer of a deconvolutional %shypernetwork. '
                                 'Default: %%(default)s.' % n)
        agroup.add_argument('--%shdeconv_kernels' % p, type=nonempty_int_list_str, default='5',
                            help='Kernel sizes of a deconvolutional %shypernetwork (one per layer, or two '
                                 'per layer for non-square kernels). Default: %%(default)s.' % n)
        agroup.add_argument('--%shdeconv_attention_layers' % p, type=int_list_str, default='1,3',
                            help='Layers of a deconvolutional %shypernetwork followed by self-attention. '
                                 'Default: %%(default)s.' % n)

    _net_options(agroup, prefix=p + 'hnet_', pf_name=n + 'hyper' if n else 'hyper', **kwargs)
    return agroup


def init_args(parser, custom_option=True, show_normal_init=True, show_hyper_fan_init=False):
    """Add the group "Network initialization options".

    Options: ``custom_network_init``, ``normal_init``, ``std_normal_init`` (when ``custom_option`` and
    ``show_normal_init``), ``std_normal_temb`` (task embeddings are drawn from N(0, std^2)),
    ``std_normal_emb`` (other embeddings, e.g. chunk embeddings) and ``hyper_fan_init``.

    Returns:
        argparse._ArgumentGroup: the created group.
    """
    agroup = parser.add_argument_group('Network initialization options')
    if custom_option:
        agroup.add_argument('--custom_network_init', action='store_true',
                            help='Re-initialize all networks with the custom scheme below instead of the '
                                 'defaults of their layers.')
        if show_normal_init:
            agroup.add_argument('--normal_init', action='store_true',
                                help='With "custom_network_init": draw weights from N(0, std_normal_init^2) '
                                     'instead of Xavier initialization.')
            agroup.add_argument('--std_normal_init', type=positive_float, default=0.02,
                                help='Standard deviation of "normal_init". Default: %(default)s.')
    agroup.add_argument('--std_normal_temb', type=positive_float, default=1.,
                        help='Standard deviation of the normal initialization of task embeddings. '
                             'Default: %(default)s.')
    agroup.add_argument('--std_normal_emb', type=positive_float, default=1.,
                        help='Standard deviation of the normal initialization of other embeddings (e.g. '
                             'chunk embeddings). Default: %(default)s.')
    if show_hyper_fan_init:
        agroup.add_argument('--hyper_fan_init', action='store_true',
                            help='Initialize the hypernetwork so that the main-network weights it produces '
                                 'have the variance of a fan-in initialization.')
    return agroup
