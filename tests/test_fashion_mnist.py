"""Tests of data.fashion_mnist.FashionMNISTData on the offline copy in ../shared/data."""
import os

import numpy as np
import pytest
import torch

from data.fashion_mnist import FashionMNISTData
from data.mnist_data import MNISTData

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FMNIST_DIR = os.path.join(ROOT, '..', 'shared', 'data', 'fashion_mnist')


@pytest.fixture(scope='module')
def fmnist():
    return FashionMNISTData(FMNIST_DIR, use_one_hot=True, validation_size=1000)


def test_sizes_labels_and_one_hot(fmnist):
    assert (fmnist.num_train_samples, fmnist.num_val_samples, fmnist.num_test_samples) == (59000, 1000, 10000)
    assert fmnist.in_shape == [28, 28, 1] and fmnist.out_shape == [10]
    y = fmnist.get_test_outputs()
    assert y.shape == (10000, 10) and np.all(y.sum(1) == 1)
    # Fashion-MNIST is balanced: exactly 1000 test images per class.
    np.testing.assert_array_equal(y.sum(0), np.full(10, 1000))
    x = fmnist.get_train_inputs()
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert fmnist.get_identifier() == 'FashionMNIST'
    assert fmnist._data['fmnist']['classes'][9] == 'Ankle boot'


def test_not_mnist(fmnist):
    mnist = MNISTData('unused')
    assert not np.allclose(mnist.get_test_inputs()[:10], fmnist.get_test_inputs()[:10])


def test_torchvision_layout_and_missing_files(tmp_path, monkeypatch):
    raw = tmp_path / 'FashionMNIST' / 'raw'
    raw.mkdir(parents=True)
    for fn in os.listdir(FMNIST_DIR):
        os.symlink(os.path.join(FMNIST_DIR, fn), raw / fn)
    assert FashionMNISTData(str(tmp_path)).num_test_samples == 10000

    monkeypatch.setattr(FashionMNISTData, '_EXTRA_DIRS', ())

    def no_network(*args, **kwargs):
        raise OSError('network is unreachable')

    monkeypatch.setattr('urllib.request.urlopen', no_network)
    with pytest.raises(OSError, match='could not download'):
        FashionMNISTData(str(tmp_path / 'empty'))


def test_augmentation_flips_and_normalises(fmnist):
    data = FashionMNISTData('unused', use_torch_augmentation=True, source=fmnist)
    x, _ = data.next_test_batch(8)
    torch.testing.assert_close(data.input_to_torch_tensor(x, 'cpu'), (torch.from_numpy(x) - 0.1307) / 0.3081)
    assert data.input_to_torch_tensor(x, 'cpu', mode='train').shape == (8, 784)
    with pytest.raises(TypeError, match='source'):
        FashionMNISTData('unused', source=MNISTData('unused'))
