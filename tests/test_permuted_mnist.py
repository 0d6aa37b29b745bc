"""Tests of data.special.permuted_mnist on the shipped MNIST (read once per module)."""
import numpy as np
import pytest
import torch

from data.mnist_data import MNISTData
from data.special.permuted_mnist import PermutedMNIST, PermutedMNISTList


@pytest.fixture(scope='module')
def mnist():
    return MNISTData('unused')


def test_permuted_image_equals_indexed_image(mnist):
    perm = np.random.default_rng(0).permutation(784)
    data = PermutedMNIST('unused', permutation=perm, source=mnist)
    x, y = data.next_test_batch(32)
    out = data.input_to_torch_tensor(x, 'cpu')
    torch.testing.assert_close(out, torch.from_numpy(x[:, perm]), rtol=0, atol=0)
    assert data.out_shape == [10] and y.shape == (32, 10)
    plain = data.input_to_torch_tensor(x, 'cpu', force_no_preprocessing=True)
    assert torch.equal(plain, torch.from_numpy(x))


def test_padding_then_permutation(mnist):
    side = 28 + 2 * 2
    perm = np.random.default_rng(1).permutation(side * side)
    data = PermutedMNIST('unused', permutation=perm, padding=2, source=mnist)
    assert data.torch_in_shape == [side, side, 1]
    x, _ = data.next_train_batch(4)
    padded = np.pad(x.reshape(4, 28, 28), ((0, 0), (2, 2), (2, 2))).reshape(4, -1)
    torch.testing.assert_close(data.input_to_torch_tensor(x, 'cpu'), torch.from_numpy(padded[:, perm]))
    identity = PermutedMNIST('unused', padding=2, source=mnist)
    torch.testing.assert_close(identity.input_to_torch_tensor(x, 'cpu'), torch.from_numpy(padded))


def test_list_shares_data_and_entries_are_independent(mnist, monkeypatch):
    perms = [np.random.default_rng(i).permutation(784) for i in range(10)]
    tasks = PermutedMNISTList(perms, 'unused', validation_size=50, trgt_padding=5)
    assert len(tasks) == 10
    first, last = tasks[0], tasks[9]
    assert first._data['in_data'] is last._data['in_data']
    assert tasks[-1] is last and len(tasks[2:5]) == 3
    x, _ = first.next_test_batch(3)
    torch.testing.assert_close(first.input_to_torch_tensor(x, 'cpu'), torch.from_numpy(x[:, perms[0]]))
    torch.testing.assert_close(last.input_to_torch_tensor(x, 'cpu'), torch.from_numpy(x[:, perms[9]]))
    assert first.num_val_samples == 50 and first.num_classes == 15 and first.out_shape == [15]
    assert np.all(first.get_test_outputs()[:, 10:] == 0)
    with pytest.raises(IndexError, match='index'):
        tasks[10]


def test_argument_errors(mnist):
    with pytest.raises(ValueError, match='permutation'):
        PermutedMNIST('unused', permutation=np.arange(10), source=mnist)
    with pytest.raises(ValueError, match='permutation'):
        PermutedMNIST('unused', permutation=np.zeros(784, dtype=int), source=mnist)
    with pytest.raises(ValueError, match='padding'):
        PermutedMNIST('unused', padding=-1, source=mnist)
    with pytest.raises(ValueError, match='x: expected shape'):
        PermutedMNIST('unused', source=mnist).input_to_torch_tensor(np.zeros((2, 10)), 'cpu')
    with pytest.raises(TypeError, match='permutations'):
        PermutedMNISTList(5, 'unused')
