"""SplitCIFAR-10/100: CIFAR-10 as the first task(s), then CIFAR-100 cut into
tasks of ``num_classes_per_task`` classes (the standard 6-task benchmark is
CIFAR-10 followed by CIFAR-100 classes 0-9, 10-19, ..., 40-49).

Each dataset file is read once; task handlers share its input array (see
:mod:`data.special.label_subset`).
"""
from data.cifar10_data import CIFAR10Data
from data.cifar100_data import CIFAR100Data
from data.special.label_subset import check_labels, restrict_to_labels, transform_split_outputs


def get_split_cifar_handlers(data_path, use_one_hot=True, validation_size=0, use_data_augmentation=False,
                             use_cutout=False, num_classes_per_task=10, num_tasks=6):
    """Build the SplitCIFAR task handlers.

    With ``num_classes_per_task == 10`` the first task is the whole CIFAR-10;
    otherwise CIFAR-10 is split into ``10 // c`` tasks first. The remaining
    tasks come from CIFAR-100 in label order.

    Args:
        data_path (str): Folder with ``cifar-10-batches-py`` / ``cifar-100-python``.
        use_one_hot (bool): One-hot targets.
        validation_size (int): Validation samples per task.
        use_data_augmentation (bool): See :class:`data.cifar10_data.CIFAR10Data`.
        use_cutout (bool): See :class:`data.cifar10_data.CIFAR10Data`.
        num_classes_per_task (int): Classes per task; must divide 10 when the
            tasks reach into CIFAR-100.
        num_tasks (int): Number of tasks (at most ``110 // c``).

    Returns:
        (list): The task handlers, CIFAR-10 ones first.
    """
    c = num_classes_per_task
    if not isinstance(c, int) or c < 1 or c > 100:
        raise ValueError(f'num_classes_per_task: expected an int in [1, 100], got {c!r}')
    if not isinstance(num_tasks, int) or num_tasks < 1 or num_tasks * c > 110:
        raise ValueError(f'num_tasks: expected an int in [1, {110 // c}] for {c} classes per task, '
                         f'got {num_tasks!r}')
    if num_tasks * c > 10 and 10 % c != 0:
        raise ValueError(f'num_classes_per_task: expected a divisor of 10 (1, 2, 5, 10) when tasks use '
                         f'CIFAR-100, got {c}')
    common = dict(use_one_hot=use_one_hot, use_data_augmentation=use_data_augmentation, use_cutout=use_cutout)
    handlers = []
    if c == 10:
        handlers.append(CIFAR10Data(data_path, validation_size=validation_size, **common))
    else:
        full10 = CIFAR10Data(data_path, validation_size=0, use_one_hot=False)
        for start in range(0, 10, c):
            if len(handlers) == num_tasks:
                break
            handlers.append(SplitCIFAR10Data(data_path, validation_size=validation_size,
                                             labels=range(start, start + c), source=full10, **common))
    if len(handlers) < num_tasks:
        full100 = CIFAR100Data(data_path, validation_size=0, use_one_hot=False)
        for start in range(0, 100, c):
            if len(handlers) == num_tasks:
                break
            handlers.append(SplitCIFAR100Data(data_path, validation_size=validation_size,
                                              labels=range(start, start + c), source=full100, **common))
    return handlers


class SplitCIFAR10Data(CIFAR10Data):
    """One task of CIFAR-10 restricted to the classes ``labels``.

    Args:
        data_path, use_one_hot, use_data_augmentation, use_cutout: See
            :class:`data.cifar10_data.CIFAR10Data`.
        validation_size (int): The task's first training samples used for
            validation.
        labels (sequence of int): Classes of the task; ``labels[k]`` becomes
            label ``k``.
        full_out_dim (bool): Keep the original 10 labels.
        source (CIFAR10Data, optional): Loaded CIFAR-10 to share data with.
    """
    _IDENTIFIER = 'SplitCIFAR10'

    def __init__(self, data_path, use_one_hot=False, validation_size=1000, use_data_augmentation=False,
                 use_cutout=False, labels=range(0, 2), full_out_dim=False, source=None):
        super().__init__(data_path, use_one_hot=use_one_hot, use_data_augmentation=use_data_augmentation,
                         validation_size=0, use_cutout=use_cutout, source=source)
        labels = check_labels(labels, self.num_classes)
        restrict_to_labels(self, labels, validation_size=validation_size, full_out_dim=full_out_dim)
        if not full_out_dim and self._data['cifar10']['label_names'] is not None:
            self._data['cifar10']['label_names'] = [self._data['cifar10']['label_names'][l] for l in labels]

    def transform_outputs(self, outputs):
        """Map 10-class targets of this task's classes to the task's labels."""
        return transform_split_outputs(self, outputs)


class SplitCIFAR100Data(CIFAR100Data):
    """One task of CIFAR-100 restricted to the classes ``labels`` (arguments
    as :class:`SplitCIFAR10Data`; ``source`` is a loaded CIFAR-100)."""
    _IDENTIFIER = 'SplitCIFAR100'

    def __init__(self, data_path, use_one_hot=False, validation_size=1000, use_data_augmentation=False,
                 use_cutout=False, labels=range(0, 10), full_out_dim=False, source=None):
        super().__init__(data_path, use_one_hot=use_one_hot, use_data_augmentation=use_data_augmentation,
                         validation_size=0, use_cutout=use_cutout, source=source)
        labels = check_labels(labels, self.num_classes)
        restrict_to_labels(self, labels, validation_size=validation_size, full_out_dim=full_out_dim)
        names = self._data['cifar100']
        if not full_out_dim and names['fine_label_names'] is not None:
            names['fine_label_names'] = [names['fine_label_names'][l] for l in labels]

    def transform_outputs(self, outputs):
        """Map 100-class targets of this task's classes to the task's labels."""
        return transform_split_outputs(self, outputs)
