"""SplitMNIST: MNIST cut into tasks of a few digits each (default: 0/1, 2/3,
4/5, 6/7, 8/9), the classic class-incremental continual-learning benchmark.

:func:`get_split_mnist_handlers` reads MNIST once; all task handlers share its
input array (each only narrows the sample ids, see
:mod:`data.special.label_subset`).
"""
from data.mnist_data import MNISTData
from data.special.label_subset import restrict_to_labels, transform_split_outputs


def get_split_mnist_handlers(data_path, use_one_hot=True, validation_size=0, use_torch_augmentation=False,
                             num_classes_per_task=2, num_tasks=None, trgt_padding=None):
    """Build one :class:`SplitMNIST` handler per task.

    Task ``t`` holds digits ``t*c .. t*c + c - 1`` (``c = num_classes_per_task``)
    relabelled ``0 .. c-1``.

    Args:
        data_path (str): See :class:`data.mnist_data.MNISTData`.
        use_one_hot (bool): One-hot targets.
        validation_size (int): Validation samples per task.
        use_torch_augmentation (bool): See :class:`data.mnist_data.MNISTData`.
        num_classes_per_task (int): Digits per task.
        num_tasks (int, optional): Number of tasks; default ``10 // c``.
        trgt_padding (int, optional): See :class:`SplitMNIST`.

    Returns:
        (list): ``num_tasks`` :class:`SplitMNIST` handlers.
    """
    if not isinstance(num_classes_per_task, int) or not 1 <= num_classes_per_task <= 10:
        raise ValueError(f'num_classes_per_task: expected an int in [1, 10], got {num_classes_per_task!r}')
    max_tasks = 10 // num_classes_per_task
    if num_tasks is None:
        num_tasks = max_tasks
    if not isinstance(num_tasks, int) or not 1 <= num_tasks <= max_tasks:
        raise ValueError(f'num_tasks: expected an int in [1, {max_tasks}] for {num_classes_per_task} '
                         f'classes per task, got {num_tasks!r}')
    full = MNISTData(data_path, use_one_hot=False, validation_size=0)
    return [SplitMNIST(data_path, use_one_hot=use_one_hot, validation_size=validation_size,
                       use_torch_augmentation=use_torch_augmentation,
                       labels=range(t * num_classes_per_task, (t + 1) * num_classes_per_task),
                       trgt_padding=trgt_padding, source=full)
            for t in range(num_tasks)]


class SplitMNIST(MNISTData):
    """One SplitMNIST task: the MNIST samples of the digits ``labels``.

    Args:
        data_path (str): See :class:`data.mnist_data.MNISTData`.
        use_one_hot (bool): One-hot targets.
        validation_size (int): The task's first ``validation_size`` training
            samples form its validation set.
        use_torch_augmentation (bool): See :class:`data.mnist_data.MNISTData`.
        labels (sequence of int): Digits of this task; digit ``labels[k]`` gets
            label ``k``.
        full_out_dim (bool): Keep the original 10 digit labels instead.
        trgt_padding (int, optional): Append this many empty classes (one-hot
            targets get that many zero columns), so that ``num_classes`` is
            ``len(labels) + trgt_padding``.
        source (MNISTData, optional): Loaded MNIST handler to share data with.
    """
    _IDENTIFIER = 'SplitMNIST'

    def __init__(self, data_path, use_one_hot=False, validation_size=1000, use_torch_augmentation=False,
                 labels=(0, 1), full_out_dim=False, trgt_padding=None, source=None):
        super().__init__(data_path, use_one_hot=use_one_hot, validation_size=0,
                         use_torch_augmentation=use_torch_augmentation, source=source)
        restrict_to_labels(self, labels, validation_size=validation_size, full_out_dim=full_out_dim,
                           trgt_padding=trgt_padding)

    def transform_outputs(self, outputs):
        """Map 10-class MNIST targets (indices ``[n, 1]`` or one-hot
        ``[n, 10]``) of this task's digits to the task's labels, e.g. for
        labels ``[2, 3]``: ``3 -> 1`` and ``[0,0,0,1,0,...] -> [0, 1]``."""
        return transform_split_outputs(self, outputs)
