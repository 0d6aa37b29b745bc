"""Tests of data.dataset.Dataset on a tiny concrete handler."""
import matplotlib
import numpy as np
import pytest
import torch

from data.dataset import Dataset

matplotlib.use('Agg')


class ToyData(Dataset):
    """12 samples with 3 features, 3 classes; 8 train, 4 test, optional val."""

    def __init__(self, use_one_hot=False, validation_size=0):
        super().__init__()
        inputs = np.arange(36, dtype=np.float32).reshape(12, 3)
        labels = np.arange(12) % 3
        self._set_classification_data(inputs, labels, 8, 3, [3], use_one_hot, validation_size)

    def get_identifier(self):
        return 'Toy'

    def _plot_sample(self, fig, inner_grid, num_inner_plots, ind, inputs, outputs=None, predictions=None,
                     **kwargs):
        fig.add_subplot(inner_grid[0]).plot(inputs[0])


def test_sizes_and_splits():
    data = ToyData(validation_size=2)
    assert (data.num_train_samples, data.num_test_samples, data.num_val_samples) == (6, 4, 2)
    np.testing.assert_array_equal(data.get_val_ids(), [0, 1])
    np.testing.assert_array_equal(data.get_train_ids(), np.arange(2, 8))
    np.testing.assert_array_equal(data.get_test_inputs()[:, 0], [24, 27, 30, 33])
    assert data.get_train_outputs().shape == (6, 1)
    assert ToyData().get_val_inputs() is None and ToyData().next_val_batch(2) is None
    assert 'Toy' in str(data) and data.classification and not data.sequential


def test_one_hot_round_trip():
    data = ToyData(use_one_hot=True)
    assert data.out_shape == [3] and data.is_one_hot
    one_hot = data.get_train_outputs()
    np.testing.assert_array_equal(one_hot, np.eye(3)[np.arange(8) % 3])
    np.testing.assert_array_equal(data.get_train_outputs(use_one_hot=False).ravel(), np.arange(8) % 3)
    assert ToyData().get_test_outputs(use_one_hot=True).shape == (4, 3)
    with pytest.raises(ValueError, match='labels'):
        data._to_one_hot(np.array([[3]]))


def test_batches_cover_each_sample_once_per_epoch():
    data = ToyData()
    data.seed_batch_generator(1)
    ids = np.concatenate([data.next_train_batch(3, return_ids=True)[2] for _ in range(8)])
    # 24 draws = 3 epochs over 8 samples: each epoch is a permutation.
    for epoch in ids.reshape(3, 8):
        np.testing.assert_array_equal(np.sort(epoch), np.arange(8))
    assert not np.array_equal(ids[:8], ids[8:16])


def test_batch_content_matches_ids_and_seeding_reproduces():
    data = ToyData(use_one_hot=True)
    data.seed_batch_generator(5)
    x, y, ids = data.next_train_batch(5, return_ids=True)
    np.testing.assert_array_equal(x, data._data['in_data'][ids])
    np.testing.assert_array_equal(y.argmax(1), ids % 3)
    data.seed_batch_generator(5)
    np.testing.assert_array_equal(data.next_train_batch(5, return_ids=True)[2], ids)
    np.random.seed(3)
    a = ToyData().next_train_batch(8, return_ids=True)[2]
    np.random.seed(3)
    np.testing.assert_array_equal(ToyData().next_train_batch(8, return_ids=True)[2], a)


def test_unshuffled_test_batches_and_iterators():
    data = ToyData()
    data.shuffle_test_samples = False
    np.testing.assert_array_equal(data.next_test_batch(3, return_ids=True)[2], [8, 9, 10])
    sizes, seen = [], []
    for size, _x, _y, ids in data.train_iterator(3, return_ids=True):
        sizes.append(size)
        seen.append(ids)
    assert sizes == [3, 3, 2]
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.arange(8))
    assert [b[0] for b in data.train_iterator(3, return_remainder=False)] == [3, 3]
    with pytest.raises(ValueError, match='validation'):
        data.val_iterator(2)


def test_ids_to_indices():
    data = ToyData(validation_size=2)
    np.testing.assert_array_equal(data.train_ids_to_indices(np.array([7, 2, 4])), [5, 0, 2])
    np.testing.assert_array_equal(data.test_ids_to_indices(np.array([11, 8])), [3, 0])
    with pytest.raises(ValueError, match='sample_ids'):
        data.train_ids_to_indices(np.array([0]))


def test_torch_conversion_and_maps():
    data = ToyData()
    x, y = data.next_train_batch(4)
    xt = data.input_to_torch_tensor(x, torch.device('cpu'), mode='train')
    assert xt.dtype == torch.float32 and torch.equal(xt, torch.from_numpy(x))
    assert data.output_to_torch_tensor(y, 'cpu').shape == (4, 1)
    assert data.tf_input_map()(5) == 5
    with pytest.raises(ValueError, match='mode'):
        data.input_to_torch_tensor(x, 'cpu', mode='eval')


def test_input_validation():
    data = ToyData()
    with pytest.raises(ValueError, match='batch_size'):
        data.next_train_batch(0)
    with pytest.raises(TypeError, match='batch_size'):
        data.next_train_batch(2.5)
    with pytest.raises(ValueError, match='validation_size'):
        ToyData(validation_size=8)
    with pytest.raises(TypeError, match='seed'):
        data.seed_batch_generator('a')


def test_plot_samples_writes_file(tmp_path):
    data = ToyData(use_one_hot=True)
    x, y = data.next_train_batch(5)
    fn = tmp_path / 'plot.png'
    fig = data.plot_samples('toy', x, outputs=y, show=False, filename=str(fn))
    assert fn.stat().st_size > 0 and len(fig.axes) == 5
    matplotlib.pyplot.close(fig)
