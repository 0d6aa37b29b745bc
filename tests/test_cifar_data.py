"""Tests of data.cifar10_data / data.cifar100_data on tiny files in the CIFAR
pickle format written by the test itself."""
import os
import pickle

import numpy as np
import pytest
import torch

from data.cifar10_data import CIFAR10Data
from data.cifar100_data import CIFAR100Data

PER_BATCH = 6


def _batch(rng, n, label_key, num_classes, offset):
    labels = [(offset + i) % num_classes for i in range(n)]
    return {b'data': rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), label_key: labels}


def write_cifar10(root, seed=0):
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, 'cifar-10-batches-py')
    os.makedirs(folder)
    batches = {}
    for i in range(1, 6):
        batches[f'data_batch_{i}'] = _batch(rng, PER_BATCH, b'labels', 10, i)
    batches['test_batch'] = _batch(rng, 5, b'labels', 10, 0)
    for fn, content in batches.items():
        with open(os.path.join(folder, fn), 'wb') as f:
            pickle.dump(content, f)
    meta = {b'label_names': [n.encode() for n in ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog',
                                                  'frog', 'horse', 'ship', 'truck')],
            b'num_cases_per_batch': PER_BATCH, b'num_vis': 3072}
    with open(os.path.join(folder, 'batches.meta'), 'wb') as f:
        pickle.dump(meta, f)
    return batches


def write_cifar100(root, seed=1, num_train=300, num_test=100):
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, 'cifar-100-python')
    os.makedirs(folder)
    batches = {'train': _batch(rng, num_train, b'fine_labels', 100, 0),
               'test': _batch(rng, num_test, b'fine_labels', 100, 0)}
    for fn, content in batches.items():
        with open(os.path.join(folder, fn), 'wb') as f:
            pickle.dump(content, f)
    with open(os.path.join(folder, 'meta'), 'wb') as f:
        pickle.dump({b'fine_label_names': [f'c{i}'.encode() for i in range(100)],
                     b'coarse_label_names': [f'g{i}'.encode() for i in range(20)]}, f)
    return batches


def test_cifar10_reads_batches_in_order(tmp_path):
    batches = write_cifar10(tmp_path)
    data = CIFAR10Data(str(tmp_path), use_one_hot=True, validation_size=4)
    assert (data.num_train_samples, data.num_val_samples, data.num_test_samples) == (26, 4, 5)
    assert data.in_shape == [32, 32, 3] and data.out_shape == [10] and data.num_classes == 10
    # Row 0 is the first image of data_batch_1; pixel (h, w, c) comes from
    # the channel-major record at c * 1024 + h * 32 + w.
    raw = batches['data_batch_1'][b'data'][0]
    img = data.get_val_inputs()[0].reshape(32, 32, 3)
    for h, w, c in [(0, 0, 0), (5, 7, 2), (31, 30, 1)]:
        assert img[h, w, c] == pytest.approx(raw[c * 1024 + h * 32 + w] / 255)
    labels = np.concatenate([batches[f'data_batch_{i}'][b'labels'] for i in range(1, 6)])
    np.testing.assert_array_equal(data.get_train_outputs().argmax(1), labels[4:])
    np.testing.assert_array_equal(data.get_test_outputs(use_one_hot=False).ravel(),
                                  batches['test_batch'][b'labels'])
    assert data._data['cifar10']['label_names'][3] == 'cat'


def test_cifar10_augmentation(tmp_path):
    write_cifar10(tmp_path)
    data = CIFAR10Data(str(tmp_path), use_data_augmentation=True, validation_size=0, use_cutout=True)
    x, _ = data.next_train_batch(8)
    mean = torch.tensor([0.485, 0.456, 0.406])
    std = torch.tensor([0.229, 0.224, 0.225])
    expected = ((torch.from_numpy(x).reshape(8, 32, 32, 3) - mean) / std).reshape(8, -1)
    torch.testing.assert_close(data.input_to_torch_tensor(x, 'cpu'), expected)
    train = data.input_to_torch_tensor(x, 'cpu', mode='train')
    assert train.shape == (8, 3072) and not torch.allclose(train, expected)
    assert torch.equal(data.input_to_torch_tensor(x, 'cpu', mode='train', force_no_preprocessing=True),
                       torch.from_numpy(x))


def test_cifar100(tmp_path):
    batches = write_cifar100(tmp_path)
    data = CIFAR100Data(str(tmp_path), validation_size=50)
    assert (data.num_train_samples, data.num_val_samples, data.num_test_samples) == (250, 50, 100)
    assert data.num_classes == 100 and data.out_shape == [1]
    np.testing.assert_array_equal(data.get_test_outputs().ravel(), batches['test'][b'fine_labels'])
    assert data._data['cifar100']['coarse_label_names'][19] == 'g19'


def test_corrupt_and_missing_files(tmp_path, monkeypatch):
    write_cifar10(tmp_path)
    target = tmp_path / 'cifar-10-batches-py' / 'data_batch_3'
    target.write_bytes(target.read_bytes()[:100])
    with pytest.raises(ValueError, match='data_batch_3'):
        CIFAR10Data(str(tmp_path), validation_size=0)
    target.unlink()
    with pytest.raises(OSError, match='data_batch_3'):
        CIFAR10Data(str(tmp_path), validation_size=0)

    def no_network(*args, **kwargs):
        raise OSError('network is unreachable')

    monkeypatch.setattr('urllib.request.urlopen', no_network)
    with pytest.raises(OSError, match='could not download .*cifar-100-python.tar.gz'):
        CIFAR100Data(str(tmp_path / 'nothing'))


def test_bad_content_and_arguments(tmp_path):
    batches = write_cifar10(tmp_path)
    bad = dict(batches['test_batch'])
    bad[b'labels'] = [0, 1]
    with open(tmp_path / 'cifar-10-batches-py' / 'test_batch', 'wb') as f:
        pickle.dump(bad, f)
    with pytest.raises(ValueError, match='test_batch'):
        CIFAR10Data(str(tmp_path), validation_size=0)
    with pytest.raises(TypeError, match='data_path'):
        CIFAR10Data(None)
