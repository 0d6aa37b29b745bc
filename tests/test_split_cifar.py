"""Tests of data.special.split_cifar on tiny CIFAR files written by the test."""
import numpy as np
import pytest

from data.special.split_cifar import SplitCIFAR10Data, SplitCIFAR100Data, get_split_cifar_handlers
from tests.test_cifar_data import write_cifar10, write_cifar100


@pytest.fixture(scope='module')
def cifar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('cifar')
    write_cifar10(root)
    write_cifar100(root)
    return str(root)


def test_standard_six_tasks(cifar_dir):
    handlers = get_split_cifar_handlers(cifar_dir, use_one_hot=True, num_tasks=6)
    assert len(handlers) == 6
    assert handlers[0].get_identifier() == 'CIFAR-10' and handlers[0].num_train_samples == 30
    for t, handler in enumerate(handlers[1:]):
        assert isinstance(handler, SplitCIFAR100Data) and handler.num_classes == 10
        # Labels 10t..10t+9 map to 0..9; with labels i % 100, 3 train samples each.
        assert handler.num_train_samples == 30 and handler.num_test_samples == 10
        fine = handler._data['class_labels'][handler.get_train_ids()]
        assert set(fine) == set(range(10 * t, 10 * t + 10))
        np.testing.assert_array_equal(handler.get_train_outputs().argmax(1), fine - 10 * t)
        assert handler._data['cifar100']['fine_label_names'][0] == f'c{10 * t}'
    # All CIFAR-100 tasks share one input array.
    assert handlers[1]._data['in_data'] is handlers[5]._data['in_data']


def test_cifar10_split_then_cifar100(cifar_dir):
    handlers = get_split_cifar_handlers(cifar_dir, use_one_hot=False, validation_size=1,
                                        num_classes_per_task=5, num_tasks=3)
    assert [type(h) for h in handlers] == [SplitCIFAR10Data, SplitCIFAR10Data, SplitCIFAR100Data]
    second = handlers[1]
    assert second.num_val_samples == 1 and second.num_classes == 5
    assert set(second.get_test_outputs().ravel()) <= set(range(5))
    raw = second._data['class_labels'][second.get_test_ids()]
    np.testing.assert_array_equal(second.get_test_outputs().ravel(), raw - 5)
    assert second._data['cifar10']['label_names'] == ['dog', 'frog', 'horse', 'ship', 'truck']
    np.testing.assert_array_equal(second.transform_outputs(np.array([[7], [5]])), [[2], [0]])


def test_argument_errors(cifar_dir):
    with pytest.raises(ValueError, match='num_tasks'):
        get_split_cifar_handlers(cifar_dir, num_tasks=12)
    with pytest.raises(ValueError, match='num_classes_per_task'):
        get_split_cifar_handlers(cifar_dir, num_classes_per_task=3, num_tasks=4)
    with pytest.raises(ValueError, match='labels'):
        SplitCIFAR10Data(cifar_dir, labels=[1, 1], validation_size=0)
    with pytest.raises(ValueError, match='validation_size'):
        SplitCIFAR10Data(cifar_dir, labels=[0, 1], validation_size=100)
