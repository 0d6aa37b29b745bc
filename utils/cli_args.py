"""Command-line option groups shared by the simulations (hypnettorch's ``utils.cli_args``, re-exported).

A simulation's ``train_args.py`` builds its parser from these helpers, each adding one titled argument group
(``--help`` lists options by group) with the simulation's own defaults::

    parser = cli.SimArgumentParser(description='Split MNIST')
    cli.main_net_args(parser, allowed_nets=['mlp', 'lenet'], dmlp_arch='400,400')
    cli.hnet_args(parser, allowed_nets=['hmlp', 'chunked_hmlp'])
    cli.train_args(parser, show_lr=True, dlr=1e-3, dn_iter=2000)
    cli.miscellaneous_args(parser, big_data=False, no_cuda=True)
    config = parser.parse_args()
    cli.check_invalid_argument_usage(config, parser)

Network options live in :mod:`utils.cli_args_nets`, run/training options in :mod:`utils.cli_args_train`, the
value validators in :mod:`utils.cli_arg_types`.
"""
from utils.cli_arg_types import parse_int_list
from utils.cli_args_nets import (
    HNET_TYPES,
    MAIN_NET_TYPES,
    NET_ACTIVATIONS,
    hnet_args,
    init_args,
    main_net_args,
)
from utils.cli_args_train import (
    SimArgumentParser,
    check_invalid_argument_usage,
    cl_args,
    data_args,
    default_out_dir,
    eval_args,
    miscellaneous_args,
    train_args,
)

__all__ = ['SimArgumentParser', 'main_net_args', 'hnet_args', 'init_args', 'miscellaneous_args', 'eval_args',
           'train_args', 'cl_args', 'data_args', 'check_invalid_argument_usage', 'default_out_dir',
           'parse_int_list', 'MAIN_NET_TYPES', 'HNET_TYPES', 'NET_ACTIVATIONS']
