"""Tests of data.special.split_mnist on the shipped MNIST (read once per module)."""
import numpy as np
import pytest

from data.mnist_data import MNISTData
from data.special.split_mnist import SplitMNIST, get_split_mnist_handlers


@pytest.fixture(scope='module')
def handlers():
    return get_split_mnist_handlers('unused', use_one_hot=True, validation_size=100)


@pytest.fixture(scope='module')
def mnist(handlers):
    # A full MNIST view on the same arrays, for reference labels.
    return MNISTData('unused', source=handlers[0])


def test_five_tasks_share_one_array(handlers):
    assert len(handlers) == 5
    assert all(h._data['in_data'] is handlers[0]._data['in_data'] for h in handlers)


def test_task_two_is_digits_four_and_five(handlers, mnist):
    task = handlers[2]
    assert task.num_classes == 2 and task.out_shape == [2] and task.get_identifier() == 'SplitMNIST'
    full_train = mnist.get_train_outputs().ravel()
    full_test = mnist.get_test_outputs().ravel()
    assert task.num_train_samples + task.num_val_samples == np.isin(full_train, [4, 5]).sum()
    assert task.num_test_samples == np.isin(full_test, [4, 5]).sum() == 982 + 892
    assert task.num_val_samples == 100
    digits = task._data['class_labels'][task.get_test_ids()]
    assert set(digits) == {4, 5}
    np.testing.assert_array_equal(task.get_test_outputs().argmax(1), digits - 4)
    np.testing.assert_array_equal(task.get_test_inputs(), mnist._data['in_data'][task.get_test_ids()])


def test_batches_stay_inside_the_task(handlers):
    task = handlers[4]
    x, y, ids = task.next_train_batch(64, return_ids=True)
    assert set(task._data['class_labels'][ids]) <= {8, 9}
    np.testing.assert_array_equal(y.argmax(1), task._data['class_labels'][ids] - 8)
    assert not np.isin(ids, task.get_val_ids()).any()


def test_target_padding_and_full_out_dim(handlers):
    task = SplitMNIST('unused', use_one_hot=True, labels=[2, 3], trgt_padding=8, source=handlers[0])
    assert task.num_classes == 10 and task.out_shape == [10]
    y = task.get_train_outputs()
    assert np.all(y[:, 2:] == 0) and np.all(y.sum(1) == 1)
    np.testing.assert_array_equal(task.get_train_outputs(use_one_hot=False).ravel(),
                                  task._data['class_labels'][task.get_train_ids()] - 2)
    full = SplitMNIST('unused', labels=[3, 7], full_out_dim=True, validation_size=0, source=handlers[0])
    assert full.num_classes == 10 and set(full.get_test_outputs().ravel()) == {3, 7}


def test_transform_outputs(handlers):
    task = SplitMNIST('unused', labels=[2, 3], validation_size=0, source=handlers[0])
    np.testing.assert_array_equal(task.transform_outputs(np.array([[3], [2]])), [[1], [0]])
    one_hot = np.eye(10)[[3]]
    np.testing.assert_array_equal(handlers[1].transform_outputs(one_hot), [[0, 1]])
    with pytest.raises(ValueError, match='outputs'):
        task.transform_outputs(np.array([[5]]))


def test_three_classes_per_task(handlers):
    task = SplitMNIST('unused', labels=range(6, 9), validation_size=0, source=handlers[0])
    assert task.num_classes == 3 and task.out_shape == [1]
    assert set(task._data['class_labels'][task.get_train_ids()]) == {6, 7, 8}
    assert set(task.get_train_outputs().ravel()) == {0, 1, 2}


def test_argument_errors(handlers):
    with pytest.raises(ValueError, match='num_tasks'):
        get_split_mnist_handlers('unused', num_tasks=6)
    with pytest.raises(ValueError, match='num_classes_per_task'):
        get_split_mnist_handlers('unused', num_classes_per_task=0)
    with pytest.raises(ValueError, match='labels'):
        SplitMNIST('unused', labels=[3, 10], source=handlers[0])
    with pytest.raises(ValueError, match='trgt_padding'):
        SplitMNIST('unused', labels=[0, 1], trgt_padding=-1, source=handlers[0])
