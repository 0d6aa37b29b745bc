"""Permuted MNIST experiment on the shipped MNIST: a short real 3-task run, task data, CLI."""
import pytest
import torch

from sims.common.cl_data import permuted_mnist_tasks
from sims.permuted_mnist import train
from sims.split_mnist.train_args import DEFAULT_DATA_DIR


def test_task_data_applies_one_fixed_permutation_per_task():
    data = permuted_mnist_tasks(DEFAULT_DATA_DIR, torch.device('cpu'), num_tasks=3, data_random_seed=1)
    perms = data.permutations
    assert perms.shape == (3, 784) and not torch.equal(perms[0], perms[1])
    assert torch.equal(perms.sort(dim=1).values, torch.arange(784).expand(3, 784))
    x0, y0 = data.test_set(0)
    x2, y2 = data.test_set(2)
    assert x0.shape == (10000, 784) and torch.equal(y0, y2)
    # The same image under two permutations: same pixels, different order.
    assert torch.equal(x0[5, perms[0].argsort()], x2[5, perms[2].argsort()])
    again = permuted_mnist_tasks(DEFAULT_DATA_DIR, torch.device('cpu'), num_tasks=3, data_random_seed=1)
    assert torch.equal(again.permutations, perms)
    gen = torch.Generator().manual_seed(0)
    xb, yb = data.sample_batch(1, 16, gen)
    assert xb.shape == (16, 784) and yb.dtype == torch.int64 and int(yb.max()) < 10


def test_short_real_run(tmp_path):
    # Three permuted tasks, 200 steps each with a 100-unit MLP: every task stays >= 90 % (measured 93.4-93.7 %).
    results = train.main(['--num_tasks', '3', '--n_iter', '200', '--batch_size', '64', '--mlp_arch', '100',
                          '--out_dir', str(tmp_path / 'run')])
    assert results['finished'] is True and len(results['final_accs']) == 3
    assert min(results['final_accs']) >= 90.0, results['final_accs']
    # Permuted tasks share their classes, so CL3 only needs the right weights, not the right head.
    assert results['final_mean_acc_cl3'] <= results['final_mean_acc'] + 1e-9


def test_invalid_values_exit_with_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        train.main(['--num_tasks', '0'])
    assert info.value.code == 2 and 'argument --num_tasks' in capsys.readouterr().err
