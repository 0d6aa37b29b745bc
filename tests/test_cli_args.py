"""Tests for utils.cli_args: option names and defaults, grouped --help, one-line errors for bad values."""
import argparse
import subprocess
import sys
import warnings

import pytest

import utils.cli_args as cli
from utils.cli_arg_types import parse_int_list


def full_parser():
    parser = cli.SimArgumentParser(prog='sim')
    cli.main_net_args(parser, allowed_nets=['mlp', 'lenet', 'zenke', 'resnet', 'wrn', 'iresnet',
                                            'chunked_mlp', 'simple_rnn'], show_no_bias=True,
                      show_bn_no_running_stats=True, show_bn_distill_stats=True,
                      show_bn_no_stats_checkpointing=True)
    cli.hnet_args(parser, allowed_nets=['hmlp', 'chunked_hmlp', 'structured_hmlp', 'hdeconv'])
    cli.init_args(parser, show_hyper_fan_init=True)
    cli.miscellaneous_args(parser, big_data=False, no_cuda=True, synthetic_data=True)
    cli.eval_args(parser, show_val_batch_size=True, show_val_set_size=True, show_test_with_val_set=True)
    cli.train_args(parser, show_lr=True, show_epochs=True, show_use_adam=True, show_use_rmsprop=True,
                   show_use_adadelta=True, show_use_adagrad=True, show_clip_grad_value=True,
                   show_clip_grad_norm=True)
    cli.cl_args(parser, show_from_scratch=True, show_multi_head=True, show_cl_scenario=True,
                show_num_tasks=True, show_num_classes_per_task=True, show_calc_hnet_reg_targets_online=True,
                show_hnet_reg_batch_size=True)
    cli.data_args(parser, show_disable_data_augmentation=True, show_data_dir=True)
    return parser


def test_defaults_and_names_follow_reference():
    config = full_parser().parse_args([])
    assert config.net_type == 'mlp' and config.mlp_arch == '100,100' and config.lenet_type == 'mnist_small'
    assert config.hnet_type == 'hmlp' and config.hmlp_arch == '100,100' and config.cond_emb_size == 8
    assert config.chmlp_chunk_size == 1000 and config.chunk_emb_size == '8'
    assert config.hnet_net_act == 'relu' and config.hnet_dropout_rate == -1
    assert config.use_cuda is False and config.random_seed == 42 and config.deterministic_run is False
    assert config.out_dir.startswith('./out/run_') and config.overwrite is False
    assert config.batch_size == 32 and config.n_iter == 100001 and config.lr == 0.1 and config.epochs == -1
    assert config.beta == 0.01 and config.cl_scenario == 1 and config.hnet_reg_batch_size == -1
    assert config.data_dir == '.' and config.val_iter == 500 and config.std_normal_temb == 1.0


def test_no_cuda_variant_and_prefix():
    parser = argparse.ArgumentParser()
    cli.miscellaneous_args(parser)
    cli.main_net_args(parser, prefix='gen_', pf_name='generator')
    config = parser.parse_args(['--no_cuda', '--gen_mlp_arch', '5'])
    assert config.no_cuda is True and not hasattr(config, 'use_cuda')
    assert config.gen_mlp_arch == '5'
    with pytest.raises(ValueError, match='pf_name'):
        cli.main_net_args(argparse.ArgumentParser(), prefix='x_')


def test_unknown_net_identifier_in_setup_is_named():
    with pytest.raises(ValueError, match="allowed_nets: unknown main network type.*'transformer'"):
        cli.main_net_args(argparse.ArgumentParser(), allowed_nets=['mlp', 'transformer'])
    with pytest.raises(ValueError, match='allowed_nets'):
        cli.hnet_args(argparse.ArgumentParser(), allowed_nets='hmlp')


@pytest.mark.parametrize('argv, fragment', [
    (['--lr', '-1'], 'argument --lr: expected a finite number > 0, got -1'),
    (['--lr', 'abc'], 'argument --lr: expected a number'),
    (['--batch_size', '0'], 'argument --batch_size: expected an integer > 0'),
    (['--mlp_arch', '100,x'], "argument --mlp_arch: expected comma-separated positive integers"),
    (['--mlp_arch', '100,-5'], "bad item '-5'"),
    (['--hmlp_arch', '10;1.5'], 'argument --hmlp_arch'),
    (['--net_type', 'transformer'], 'argument --net_type: invalid choice'),
    (['--cl_scenario', '4'], 'argument --cl_scenario: invalid choice'),
    (['--dropout_rate', '1.5'], 'argument --dropout_rate: expected a probability in [0, 1) or -1'),
    (['--beta', '-0.1'], 'argument --beta'),
    (['--epochs', '0'], 'argument --epochs'),
    (['--adam_beta1', '1'], 'argument --adam_beta1'),
    (['--use_adam', '--use_rmsprop'], 'expected at most one optimizer'),
    (['--clip_grad_value', '1', '--clip_grad_norm', '1'], 'at most one gradient clipping'),
    (['--split_head_cl3'], 'only valid with --cl_scenario 3'),
])
def test_invalid_values_exit_with_one_line(argv, fragment, capsys):
    parser = full_parser()
    with pytest.raises(SystemExit) as info:
        config = parser.parse_args(argv)
        cli.check_invalid_argument_usage(config, parser)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('sim: error: ')
    assert fragment in err


def test_check_invalid_argument_usage_raises_and_warns():
    parser = full_parser()
    with pytest.raises(ValueError, match='--use_adam, --use_adagrad'):
        cli.check_invalid_argument_usage(parser.parse_args(['--use_adam', '--use_adagrad']))
    with pytest.raises(ValueError, match='mutually exclusive'):
        cli.check_invalid_argument_usage(parser.parse_args(
            ['--batchnorm', '--bn_no_running_stats', '--bn_distill_stats']))
    with pytest.warns(UserWarning, match='"lenet" always uses ReLU'):
        cli.check_invalid_argument_usage(parser.parse_args(['--net_type', 'lenet', '--net_act', 'tanh']))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        cli.check_invalid_argument_usage(parser.parse_args([]))
    with pytest.raises(TypeError, match='args: expected an argparse.Namespace'):
        cli.check_invalid_argument_usage({'lr': 1})


def test_help_lists_grouped_options():
    text = full_parser().format_help()
    for heading in ['Main network options', 'Hypernet options', 'Network initialization options',
                    'Miscellaneous options', 'Evaluation options', 'Training options',
                    'Continual learning options', 'Data-specific options']:
        assert heading + ':' in text
    body = text[text.index('Main network options:'):]
    assert body.index('--mlp_arch') < body.index('Hypernet options:') < body.index('--hmlp_arch')


def test_help_from_subprocess_is_not_a_traceback():
    code = ('import utils.cli_args as c; p = c.SimArgumentParser(prog="sim"); c.train_args(p, show_lr=True); '
            'p.parse_args(["--lr", "-2"])')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines() == ['sim: error: argument --lr: expected a finite number > 0, '
                                                'got -2 (see --help)']


def test_parse_int_list():
    assert parse_int_list('100, 100') == [100, 100]
    assert parse_int_list('') == []
    with pytest.raises(ValueError, match="bad item '0'"):
        parse_int_list('3,0')
    with pytest.raises(TypeError, match='text: expected a str'):
        parse_int_list([1, 2])
