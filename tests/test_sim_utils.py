"""Tests for utils.sim_utils: run setup without prompts, network factories, iteration budgets."""
import argparse
import json
import os

import pytest
import torch

from utils import cli_args, sim_utils


def make_config(argv, nets=('mlp', 'lenet'), hnets=('hmlp', 'chunked_hmlp')):
    parser = argparse.ArgumentParser()
    cli_args.main_net_args(parser, allowed_nets=list(nets), show_no_bias=True)
    cli_args.hnet_args(parser, allowed_nets=list(hnets))
    cli_args.miscellaneous_args(parser, big_data=False, no_cuda=True)
    return parser.parse_args(argv)


def test_setup_environment_creates_folder_config_and_writer(tmp_path):
    out = str(tmp_path / 'run')
    config = make_config(['--out_dir', out, '--random_seed', '7', '--deterministic_run'])
    device, writer, logger = sim_utils.setup_environment(config)
    writer.add_scalar('x', 1.0, 0)
    writer.close()
    assert device.type == 'cpu' and config.out_dir == out
    with open(os.path.join(out, 'config.json')) as file:
        assert json.load(file)['random_seed'] == 7
    assert os.listdir(os.path.join(out, 'summary'))
    logger.info('hello')
    assert 'hello' in open(os.path.join(out, 'logfile.txt')).read()
    first = torch.rand(3)
    torch.manual_seed(7)
    assert torch.equal(first, torch.rand(3))  # seeded with random_seed
    torch.use_deterministic_algorithms(False)


def test_existing_out_dir_gets_a_new_folder_or_is_overwritten_or_resumed(tmp_path):
    out = tmp_path / 'run'
    out.mkdir()
    (out / 'old.txt').write_text('previous run')
    config = make_config(['--out_dir', str(out)])
    sim_utils.setup_environment(config)[1].close()
    assert config.out_dir != str(out) and os.path.basename(config.out_dir).startswith('run_')
    assert (out / 'old.txt').exists()

    assert sim_utils.prepare_out_dir(str(out), resume=True) == str(out) and (out / 'old.txt').exists()
    assert sim_utils.prepare_out_dir(str(out), overwrite=True) == str(out)
    assert not (out / 'old.txt').exists()
    a_file = tmp_path / 'a_file'
    a_file.write_text('x')
    with pytest.raises(ValueError, match='out_dir: expected a folder path'):
        sim_utils.prepare_out_dir(str(a_file))


def test_setup_environment_needs_device_option(tmp_path):
    config = argparse.Namespace(out_dir=str(tmp_path / 'r'), random_seed=1)
    with pytest.raises(ValueError, match='use_cuda/no_cuda'):
        sim_utils.setup_environment(config)


def test_get_mnet_model_mlp_and_lenet():
    config = make_config(['--mlp_arch', '20,10', '--net_act', 'tanh'])
    mlp = sim_utils.get_mnet_model(config, 'mlp', [784], [2], torch.device('cpu'))
    assert mlp.param_shapes == [[20, 784], [20], [10, 20], [10], [2, 10], [2]]
    assert isinstance(mlp(torch.zeros(3, 784)), torch.Tensor)
    no_weights = sim_utils.get_mnet_model(config, 'mlp', [784], [2], torch.device('cpu'), no_weights=True)
    assert no_weights.internal_params is None or len(no_weights.internal_params) == 0
    lenet = sim_utils.get_mnet_model(config, 'lenet', [28, 28, 1], [10], torch.device('cpu'))
    assert lenet(torch.zeros(2, 784)).shape == (2, 10)


def test_get_mnet_model_errors(monkeypatch):
    config = make_config([])
    with pytest.raises(ValueError, match="net_type: expected one of .*got 'transformer'"):
        sim_utils.get_mnet_model(config, 'transformer', [784], [2], torch.device('cpu'))
    with pytest.raises(ValueError, match='in_shape: expected 1 dimension'):
        sim_utils.get_mnet_model(config, 'mlp', [28, 28], [2], torch.device('cpu'))
    monkeypatch.setitem(sim_utils.MAIN_NET_TYPES, 'future_net', 'mnets.not_written_yet.FutureNet')
    with pytest.raises(NotImplementedError, match="'future_net'.*mnets.not_written_yet is missing"):
        sim_utils.get_mnet_model(config, 'future_net', [784], [2], torch.device('cpu'))
    with pytest.raises(ValueError, match="config: expected option 'lenet_type'"):
        sim_utils.get_mnet_model(make_config([], nets=('mlp',)), 'lenet', [28, 28, 1], [2],
                                 torch.device('cpu'))


def test_get_hypernet_hmlp_and_chunked():
    config = make_config(['--hmlp_arch', '10,10', '--cond_emb_size', '4', '--chmlp_chunk_size', '50'])
    shapes = [[5, 3], [5]]
    hnet = sim_utils.get_hypernet(config, torch.device('cpu'), 'hmlp', shapes, 3)
    assert hnet.num_known_conds == 3 and [list(w.shape) for w in hnet(cond_id=1)] == shapes
    chunked = sim_utils.get_hypernet(config, torch.device('cpu'), 'chunked_hmlp', shapes, 2)
    assert [list(w.shape) for w in chunked(cond_id=0)] == shapes
    with pytest.raises(ValueError, match='num_conds'):
        sim_utils.get_hypernet(config, torch.device('cpu'), 'hmlp', shapes, -1)
    with pytest.raises(ValueError, match='hmlp_arch: several'):
        sim_utils.get_hypernet(make_config(['--hmlp_arch', '5;5']), torch.device('cpu'), 'hmlp', shapes, 1)


def test_calc_train_iter():
    assert sim_utils.calc_train_iter(100, 32, num_iter=7) == (7, -1)
    assert sim_utils.calc_train_iter(100, 32, epochs=2) == (8, 4)  # ceil(100 / 32) = 4 per epoch
    with pytest.raises(ValueError, match='num_iter'):
        sim_utils.calc_train_iter(100, 32)
    with pytest.raises(ValueError, match='batch_size'):
        sim_utils.calc_train_iter(100, 0, num_iter=3)
    with pytest.raises(ValueError, match='epochs'):
        sim_utils.calc_train_iter(100, 4, epochs=0)


def test_activation_from_name():
    assert isinstance(sim_utils.activation_from_name('elu'), torch.nn.ELU)
    assert sim_utils.activation_from_name('linear') is None
    with pytest.raises(ValueError, match='net_act'):
        sim_utils.activation_from_name('swish')
