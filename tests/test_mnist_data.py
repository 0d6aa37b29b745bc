"""Tests of data.mnist_data.MNISTData on the shipped MNIST copy."""
import gzip
import os
import shutil
import time

import numpy as np
import pytest
import torch

from data.dataset_files import md5_of_file, read_idx_gz
from data.mnist_data import MNISTData

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, 'data', 'mnist')


@pytest.fixture(scope='module')
def mnist(tmp_path_factory):
    # An empty data_path falls back on the copy shipped inside the package.
    # CPU time of this process: unlike wall time it does not count the other
    # jobs sharing this 2-core box.
    start = time.process_time()
    data = MNISTData(str(tmp_path_factory.mktemp('empty')), use_one_hot=False, validation_size=0)
    data.load_seconds = time.process_time() - start
    return data


def test_sizes_shapes_and_ranges(mnist):
    assert (mnist.num_train_samples, mnist.num_test_samples, mnist.num_val_samples) == (60000, 10000, 0)
    assert mnist.in_shape == [28, 28, 1] and mnist.out_shape == [1] and mnist.num_classes == 10
    x = mnist.get_train_inputs()
    assert x.shape == (60000, 784) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    y = mnist.get_test_outputs()
    assert y.shape == (10000, 1) and set(np.unique(y)) == set(range(10))
    # Published class counts of the MNIST training set (digit 1 is the most frequent).
    counts = np.bincount(mnist.get_train_outputs().ravel(), minlength=10)
    assert counts[1] == 6742 and counts[5] == 5421 and counts.sum() == 60000


def test_pixels_equal_raw_idx_bytes(mnist):
    raw = read_idx_gz(os.path.join(SHIPPED, 't10k-images-idx3-ubyte.gz'))
    np.testing.assert_array_equal(np.rint(mnist.get_test_inputs()[:5] * 255).astype(np.uint8),
                                  raw[:5].reshape(5, -1))


def test_reading_takes_under_two_seconds(mnist):
    assert mnist.load_seconds < 2.0


def test_one_hot_and_validation(mnist):
    data = MNISTData('unused', use_one_hot=True, validation_size=5000, source=mnist)
    assert data.num_val_samples == 5000 and data.num_train_samples == 55000
    assert data.out_shape == [10]
    y = data.get_val_outputs()
    assert y.shape == (5000, 10) and np.all(y.sum(1) == 1)
    np.testing.assert_array_equal(y.argmax(1), mnist.get_train_outputs()[:5000].ravel())
    # Shared, not copied.
    assert data._data['in_data'] is mnist._data['in_data']


def test_torch_augmentation_normalises_and_crops(mnist):
    data = MNISTData('unused', use_torch_augmentation=True, source=mnist)
    x, _ = data.next_test_batch(16)
    inference = data.input_to_torch_tensor(x, 'cpu')
    torch.testing.assert_close(inference, (torch.from_numpy(x) - 0.1307) / 0.3081)
    train = data.input_to_torch_tensor(x, 'cpu', mode='train')
    assert train.shape == (16, 784)
    # A crop only moves pixels, so the multiset of standardised values per image
    # loses at most border pixels: every train value must be a value of the image
    # or the standardised zero padding.
    pad_value = (0 - 0.1307) / 0.3081
    for img_train, img_inf in zip(train, inference):
        values = set(np.round(img_inf.numpy(), 5)) | {round(pad_value, 5)}
        assert set(np.round(img_train.numpy(), 5)) <= values
    raw = data.input_to_torch_tensor(x, 'cpu', mode='train', force_no_preprocessing=True)
    assert torch.equal(raw, torch.from_numpy(x))


def test_shared_data_folder_is_accepted():
    data = MNISTData(os.path.join(ROOT, '..', 'shared', 'data', 'mnist'), validation_size=10)
    assert data.num_val_samples == 10 and data.num_test_samples == 10000


def _copy_shipped(folder):
    os.makedirs(folder, exist_ok=True)
    for fn in os.listdir(SHIPPED):
        shutil.copy(os.path.join(SHIPPED, fn), os.path.join(folder, fn))


def test_corrupted_file_fails_md5_naming_the_file(tmp_path):
    _copy_shipped(tmp_path)
    target = tmp_path / 't10k-labels-idx1-ubyte.gz'
    with gzip.open(target, 'rb') as f:
        raw = bytearray(f.read())
    raw[100] = (raw[100] + 1) % 10
    with gzip.open(target, 'wb') as f:
        f.write(bytes(raw))
    with pytest.raises(ValueError, match='t10k-labels-idx1-ubyte.gz.*MD5'):
        MNISTData(str(tmp_path))


def test_truncated_gz_fails_naming_the_file(tmp_path):
    _copy_shipped(tmp_path)
    target = tmp_path / 'train-labels-idx1-ubyte.gz'
    content = target.read_bytes()
    target.write_bytes(content[:len(content) // 2])
    with pytest.raises(OSError, match='train-labels-idx1-ubyte.gz'):
        MNISTData(str(tmp_path))


def test_shipped_files_are_intact():
    # The shipped archives' uncompressed content carries the published MD5s.
    for fn, md5 in MNISTData._FILES.values():
        assert read_idx_gz(os.path.join(SHIPPED, fn), md5).shape[0] in (60000, 10000)
    assert len(md5_of_file(os.path.join(SHIPPED, 't10k-labels-idx1-ubyte.gz'))) == 32


def test_missing_files_without_network_fail_clearly(tmp_path, monkeypatch):
    monkeypatch.setattr(MNISTData, '_EXTRA_DIRS', ())

    def no_network(*args, **kwargs):
        raise OSError('network is unreachable')

    monkeypatch.setattr('urllib.request.urlopen', no_network)
    with pytest.raises(OSError, match='could not download .*train-images-idx3-ubyte.gz'):
        MNISTData(str(tmp_path))
    # Nothing half-written is left behind.
    assert os.listdir(tmp_path / 'MNIST') == []


def test_download_writes_files_atomically(tmp_path, monkeypatch):
    monkeypatch.setattr(MNISTData, '_EXTRA_DIRS', ())

    class FakeResponse:
        def __init__(self, path):
            self._f = open(path, 'rb')

        def read(self, n):
            return self._f.read(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    def fake_urlopen(url, timeout=None):
        return FakeResponse(os.path.join(SHIPPED, url.rsplit('/', 1)[-1]))

    monkeypatch.setattr('urllib.request.urlopen', fake_urlopen)
    data = MNISTData(str(tmp_path))
    assert data.num_train_samples == 60000
    assert sorted(os.listdir(tmp_path / 'MNIST')) == sorted(os.listdir(SHIPPED))


def test_argument_errors(mnist):
    with pytest.raises(ValueError, match='validation_size'):
        MNISTData('unused', validation_size=60000, source=mnist)
    with pytest.raises(TypeError, match='data_path'):
        MNISTData(3)
    with pytest.raises(TypeError, match='source'):
        MNISTData('unused', source=object())
