"""PermutedMNIST: MNIST tasks that differ by a fixed permutation of the pixels.

Images are stored unpermuted (shared between tasks); the task's permutation is
applied on the fly, batched, in :meth:`PermutedMNIST.input_to_torch_tensor`:
each image is zero-padded by ``padding`` pixels to ``S x S`` with
``S = 28 + 2 * padding``, flattened to ``x`` of length ``S^2`` and returned as
``x[permutation]``, i.e. output pixel ``i`` is input pixel ``permutation[i]``.

:class:`PermutedMNISTList` holds many such tasks at the cost of one MNIST copy
plus one permutation per task.
"""
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from data.dataset import Dataset
from data.mnist_data import MNISTData


class PermutedMNIST(MNISTData):
    """One PermutedMNIST task.

    Args:
        data_path (str): See :class:`data.mnist_data.MNISTData`.
        use_one_hot (bool): One-hot targets.
        validation_size (int): Size of the validation set (first training
            images).
        permutation (array-like, optional): A permutation of
            ``range((28 + 2 * padding) ** 2)``; ``None`` means identity.
        padding (int): Zero padding (pixels per side) applied before permuting.
        trgt_padding (int, optional): Append this many empty classes (one-hot
            targets get that many zero columns).
        source (MNISTData, optional): Loaded MNIST handler to share data with.
    """
    _IDENTIFIER = 'PermutedMNIST'

    def __init__(self, data_path, use_one_hot=True, validation_size=0, permutation=None, padding=0,
                 trgt_padding=None, source=None):
        super().__init__(data_path, use_one_hot=use_one_hot, validation_size=validation_size,
                         use_torch_augmentation=False, source=source)
        if not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f'padding: expected an int >= 0, got {padding!r}')
        self._padding = int(padding)
        self._input_dim = (28 + 2 * self._padding) ** 2
        self.permutation = permutation
        if trgt_padding is not None:
            if not isinstance(trgt_padding, (int, np.integer)) or trgt_padding < 0:
                raise ValueError(f'trgt_padding: expected None or an int >= 0, got {trgt_padding!r}')
            if trgt_padding > 0:
                self._data['num_classes'] += int(trgt_padding)
                if self.is_one_hot:
                    self._data['out_data'] = self._to_one_hot(self._data['class_labels'].reshape(-1, 1))
                    self._data['out_shape'] = [self.num_classes]

    @property
    def permutation(self):
        """Pixel permutation applied by :meth:`input_to_torch_tensor` (1D int
        array of length ``(28 + 2 * padding) ** 2``, or ``None``)."""
        return self._permutation

    @permutation.setter
    def permutation(self, value):
        if value is not None:
            value = np.asarray(value)
            if value.shape != (self._input_dim,) or not np.array_equal(np.sort(value),
                                                                          np.arange(self._input_dim)):
                raise ValueError(f'permutation: expected a permutation of range({self._input_dim}), got an '
                                 f'array of shape {value.shape}')
            value = value.astype(np.int64)
        self._permutation = value
        self._perm_tensors = {}

    @property
    def torch_in_shape(self):
        """Shape ``[S, S, 1]`` of the padded images returned by
        :meth:`input_to_torch_tensor` (``S = 28 + 2 * padding``)."""
        side = 28 + 2 * self._padding
        return [side, side, 1]

    def _perm_on(self, device):
        key = str(device)
        if key not in self._perm_tensors:
            self._perm_tensors[key] = torch.as_tensor(self._permutation, device=device)
        return self._perm_tensors[key]

    def input_to_torch_tensor(self, x, device, mode='inference', force_no_preprocessing=False,
                              sample_ids=None):
        """Pad and permute a batch: ``[B, 784]`` numpy -> ``[B, S^2]`` tensor
        (see the module docstring); ``force_no_preprocessing`` returns the
        plain ``[B, 784]`` tensor."""
        tensor = Dataset.input_to_torch_tensor(self, x, device, mode=mode)
        if force_no_preprocessing:
            return tensor
        if tensor.dim() != 2 or tensor.shape[1] != 784:
            raise ValueError(f'x: expected shape [B, 784], got {list(tensor.shape)}')
        if self._padding > 0:
            p = self._padding
            tensor = F.pad(tensor.reshape(-1, 28, 28), (p, p, p, p)).reshape(tensor.shape[0], -1)
        if self._permutation is None:
            return tensor
        return tensor.index_select(1, self._perm_on(tensor.device))

    def tf_input_map(self, mode='inference'):
        """Not available: permutations are applied when converting to torch."""
        raise NotImplementedError('PermutedMNIST applies its permutation in input_to_torch_tensor only; '
                                  'there is no TensorFlow input map')


class PermutedMNISTList(Sequence):
    """A list of PermutedMNIST tasks that stores MNIST once.

    Entry ``i`` is a :class:`PermutedMNIST` with ``permutations[i]``. Entries
    are created on first access and share MNIST's input array with each other,
    so, unlike the reference (which swaps the permutation of a single object),
    several entries may be used at the same time and each keeps its own batch
    generator. Slicing returns a plain list of the selected task handlers.

    Args:
        permutations (list): One permutation (or ``None``) per task.
        data_path, use_one_hot, validation_size, padding, trgt_padding: See
            :class:`PermutedMNIST`.
        show_perm_change_msg (bool): Accepted for compatibility with the
            reference, whose entries interfere; entries here are independent,
            so there is nothing to warn about.
    """

    def __init__(self, permutations, data_path, use_one_hot=True, validation_size=0, padding=0,
                 trgt_padding=None, show_perm_change_msg=True):
        if isinstance(permutations, (str, bytes)) or not hasattr(permutations, '__len__'):
            raise TypeError(f'permutations: expected a list, got {type(permutations).__name__}')
        self._permutations = list(permutations)
        self._kwargs = dict(use_one_hot=use_one_hot, validation_size=validation_size, padding=padding,
                            trgt_padding=trgt_padding)
        self._source = MNISTData(data_path, use_one_hot=False, validation_size=0)
        self._data_path = data_path
        self._handlers = [None] * len(self._permutations)
        self._show_perm_change_msg = show_perm_change_msg

    def __len__(self):
        return len(self._permutations)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f'index: expected an int or slice, got {type(index).__name__}')
        if not -len(self) <= index < len(self):
            raise IndexError(f'index: expected a value in [{-len(self)}, {len(self)}), got {index}')
        index = int(index) % len(self)
        if self._handlers[index] is None:
            self._handlers[index] = PermutedMNIST(self._data_path, permutation=self._permutations[index],
                                                  source=self._source, **self._kwargs)
        return self._handlers[index]
