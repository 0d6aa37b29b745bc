"""Restrict a loaded classification handler to a subset of its classes.

Split benchmarks (SplitMNIST, SplitCIFAR) build one handler per task from the
same full dataset. Because handlers address samples through id arrays, a task
handler keeps *the same* input array as the full dataset and only narrows its
train/test/val ids to the samples of its classes - no image is copied. The
targets are re-encoded per task: class ``labels[k]`` becomes ``k`` (unless the
original label space is kept with ``full_out_dim``), and ``trgt_padding``
appends never-occurring classes so that every task's output has the same size.
"""
import numpy as np


def check_labels(labels, num_classes):
    """Validate a list of distinct class labels in ``[0, num_classes)``."""
    labels = list(labels)
    if not labels:
        raise ValueError('labels: expected at least one class label, got none')
    if any(not isinstance(l, (int, np.integer)) or l < 0 or l >= num_classes for l in labels) \
            or len(set(labels)) != len(labels):
        raise ValueError(f'labels: expected distinct ints in [0, {num_classes}), got {labels}')
    return [int(l) for l in labels]


def restrict_to_labels(handler, labels, validation_size=0, full_out_dim=False, trgt_padding=None):
    """Narrow ``handler`` (freshly loaded, no validation set) to ``labels``.

    Requires ``handler._data['class_labels']`` (``[N]`` original labels).

    Args:
        handler (data.dataset.Dataset): Modified in place.
        labels (list): Classes of the task, in the order that defines the new
            label indices.
        validation_size (int): The first ``validation_size`` training samples
            of the task form its validation set.
        full_out_dim (bool): Keep the original labels and number of classes.
        trgt_padding (int, optional): Extra empty classes appended to the
            task's label space (one-hot targets get that many zero columns).
    """
    num_orig = handler._data['num_classes']
    labels = check_labels(labels, num_orig)
    if trgt_padding is not None and (not isinstance(trgt_padding, (int, np.integer)) or trgt_padding < 0):
        raise ValueError(f'trgt_padding: expected None or an int >= 0, got {trgt_padding!r}')
    class_labels = handler._data['class_labels']
    member = np.isin(class_labels, labels)
    raw_train = np.concatenate([handler._data['val_inds'] if handler._data['val_inds'] is not None
                                else np.zeros(0, dtype=np.int64), handler._data['train_inds']])
    train_ids = raw_train[member[raw_train]]
    test_ids = handler._data['test_inds'][member[handler._data['test_inds']]]
    if not isinstance(validation_size, (int, np.integer)) or validation_size < 0 \
            or validation_size >= train_ids.size:
        raise ValueError(f'validation_size: expected an int in [0, {train_ids.size}) for labels {labels}, '
                         f'got {validation_size!r}')
    if full_out_dim:
        num_classes = num_orig
        task_labels = class_labels
    else:
        num_classes = len(labels)
        lookup = np.zeros(num_orig, dtype=np.int64)
        lookup[labels] = np.arange(num_classes)
        task_labels = lookup[class_labels]
    num_classes += trgt_padding or 0
    handler._data['num_classes'] = num_classes
    out_data = task_labels.reshape(-1, 1)
    if handler.is_one_hot:
        out_data = handler._to_one_hot(out_data)
        handler._data['out_shape'] = [num_classes]
    handler._data['out_data'] = out_data
    handler._data['train_inds'] = train_ids[validation_size:]
    handler._data['val_inds'] = train_ids[:validation_size] if validation_size > 0 else None
    handler._data['test_inds'] = test_ids
    handler._labels = labels
    handler._full_out_dim = bool(full_out_dim)
    handler.reset_batch_generator()


def transform_split_outputs(handler, outputs):
    """Map targets of the full dataset (class indices ``[n, 1]`` or one-hot
    ``[n, num_orig_classes]``) to the task's encoding: ``labels[k] -> k``.

    Rows must belong to the task's classes.
    """
    outputs = np.asarray(outputs)
    labels = handler._labels
    if handler._full_out_dim:
        return outputs
    if handler.is_one_hot:
        return outputs[:, labels]
    flat = outputs.reshape(-1).astype(np.int64)
    if not np.isin(flat, labels).all():
        raise ValueError(f'outputs: expected labels among {labels}, got {np.unique(flat).tolist()}')
    table = np.zeros(max(labels) + 1, dtype=np.int64)
    table[labels] = np.arange(len(labels))
    return table[flat].reshape(outputs.shape)
