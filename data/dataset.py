"""Abstract in-memory dataset handler shared by every dataset in :mod:`data`.

A handler keeps the whole dataset in two 2D numpy arrays: ``in_data`` of shape
``[N, prod(in_shape)]`` (one flattened input per row) and ``out_data`` of shape
``[N, prod(out_shape)]`` (one flattened target per row, either a class index or
its one-hot encoding). The splits are index arrays into these rows
(``train_inds``, ``test_inds``, ``val_inds``); the row index of a sample is its
*sample id*. Storing splits as indices lets derived handlers (split / permuted
variants) share one copy of the input array instead of copying subsets.

Mini-batches are drawn without replacement within an epoch: every split owns a
sampler that walks through a fresh random permutation of the split per epoch.
The randomness comes from a numpy ``Generator`` owned by the handler (seeded
from numpy's global state at construction, so ``np.random.seed`` still gives
reproducible runs, or explicitly via :meth:`Dataset.seed_batch_generator`).
"""
from abc import ABC, abstractmethod

import numpy as np
import torch


class _EpochSampler:
    """Draws batches of sample ids from ``ids``, each id once per epoch.

    A batch that crosses an epoch boundary takes the rest of the current epoch
    and continues with a freshly shuffled one, so every sample is seen exactly
    once per pass no matter the batch size.
    """

    def __init__(self, ids, rng, shuffle=True):
        self._ids = np.asarray(ids)
        self._rng = rng
        self._shuffle = shuffle
        self._order = self._new_order()
        self._pos = 0

    def _new_order(self):
        if self._shuffle:
            return self._rng.permutation(self._ids.size)
        return np.arange(self._ids.size)

    def next(self, batch_size):
        parts = []
        remaining = batch_size
        while remaining > 0:
            if self._pos == self._order.size:
                self._order = self._new_order()
                self._pos = 0
            take = min(remaining, self._order.size - self._pos)
            parts.append(self._order[self._pos:self._pos + take])
            self._pos += take
            remaining -= take
        return self._ids[np.concatenate(parts)]


class Dataset(ABC):
    """Common interface of all dataset handlers (abstract).

    Subclasses fill ``self._data`` (keys ``classification``, ``sequence``,
    ``num_classes``, ``is_one_hot``, ``in_data``, ``out_data``, ``in_shape``,
    ``out_shape``, ``train_inds``, ``test_inds``, ``val_inds``) and implement
    :meth:`get_identifier` and :meth:`_plot_sample`.
    """

    def __init__(self):
        self._data = {
            'classification': None,
            'sequence': False,
            'num_classes': None,
            'is_one_hot': None,
            'in_data': None,
            'out_data': None,
            'in_shape': [],
            'out_shape': [],
            'train_inds': np.zeros(0, dtype=np.int64),
            'test_inds': np.zeros(0, dtype=np.int64),
            'val_inds': None,
        }
        self._shuffle_test_samples = True
        self._shuffle_val_samples = True
        # Drawn from the global numpy state so that np.random.seed() keeps the
        # reference's way of making batch order reproducible.
        self._batch_rng = np.random.default_rng(np.random.randint(2**31 - 1))
        self._batch_gen_train = None
        self._batch_gen_test = None
        self._batch_gen_val = None

    # ------------------------------------------------------------------ attributes
    @property
    def classification(self):
        """Whether the targets are class labels.

        :type: bool
        """
        return self._data['classification']

    @property
    def sequence(self):
        """Whether samples are sequences (time steps concatenated in a row).

        :type: bool
        """
        return self._data['sequence']

    @property
    def sequential(self):
        """Alias of :attr:`sequence`.

        :type: bool
        """
        return self.sequence

    @property
    def num_classes(self):
        """Number of classes (``None`` for regression datasets).

        :type: int
        """
        return self._data['num_classes']

    @property
    def is_one_hot(self):
        """Whether class targets are stored one-hot encoded.

        :type: bool
        """
        return self._data['is_one_hot']

    @property
    def in_shape(self):
        """Original shape of one input sample, e.g. ``[28, 28, 1]`` for MNIST
        (rows of ``in_data`` are this shape flattened in C order).

        :type: list
        """
        return self._data['in_shape']

    @property
    def out_shape(self):
        """Original shape of one target, e.g. ``[10]`` one-hot or ``[1]``.

        :type: list
        """
        return self._data['out_shape']

    @property
    def num_train_samples(self):
        """Number of training samples.

        :type: int
        """
        return int(np.size(self._data['train_inds']))

    @property
    def num_test_samples(self):
        """Number of test samples.

        :type: int
        """
        return int(np.size(self._data['test_inds']))

    @property
    def num_val_samples(self):
        """Number of validation samples (0 when there is no validation set).

        :type: int
        """
        if self._data['val_inds'] is None:
            return 0
        return int(np.size(self._data['val_inds']))

    @property
    def shuffle_test_samples(self):
        """Whether :meth:`next_test_batch` visits test samples in a new random
        order every epoch; setting it restarts the test epoch.

        :type: bool
        """
        return self._shuffle_test_samples

    @shuffle_test_samples.setter
    def shuffle_test_samples(self, value):
        self._shuffle_test_samples = bool(value)
        self._batch_gen_test = None

    @property
    def shuffle_val_samples(self):
        """Same as :attr:`shuffle_test_samples` for the validation set.

        :type: bool
        """
        return self._shuffle_val_samples

    @shuffle_val_samples.setter
    def shuffle_val_samples(self, value):
        self._shuffle_val_samples = bool(value)
        self._batch_gen_val = None

    # ------------------------------------------------------------------ full splits
    def get_train_ids(self):
        """Sample ids (rows of the internal arrays) of the training set, 1D."""
        return self._data['train_inds']

    def get_test_ids(self):
        """Sample ids of the test set, 1D."""
        return self._data['test_inds']

    def get_val_ids(self):
        """Sample ids of the validation set, 1D, or ``None`` if there is none."""
        return self._data['val_inds']

    def get_train_inputs(self):
        """All training inputs, ``[num_train_samples, prod(in_shape)]``."""
        return self._data['in_data'][self._data['train_inds']]

    def get_test_inputs(self):
        """All test inputs, ``[num_test_samples, prod(in_shape)]``."""
        return self._data['in_data'][self._data['test_inds']]

    def get_val_inputs(self):
        """All validation inputs, or ``None`` if there is no validation set."""
        if self._data['val_inds'] is None:
            return None
        return self._data['in_data'][self._data['val_inds']]

    def get_train_outputs(self, use_one_hot=None):
        """All training targets, ``[num_train_samples, prod(out_shape)]``.

        Args:
            use_one_hot (bool, optional): For classification sets, return one-hot
                encodings (``True``) or class indices (``False``); ``None`` keeps
                the stored encoding.
        """
        return self._get_outputs(self._data['out_data'][self._data['train_inds']], use_one_hot)

    def get_test_outputs(self, use_one_hot=None):
        """All test targets (see :meth:`get_train_outputs`)."""
        return self._get_outputs(self._data['out_data'][self._data['test_inds']], use_one_hot)

    def get_val_outputs(self, use_one_hot=None):
        """All validation targets, or ``None`` if there is no validation set."""
        if self._data['val_inds'] is None:
            return None
        return self._get_outputs(self._data['out_data'][self._data['val_inds']], use_one_hot)

    # ------------------------------------------------------------------ batches
    def seed_batch_generator(self, seed):
        """Reseed the handler's own RNG and restart all batch epochs.

        Args:
            seed (int): Seed of the numpy ``Generator`` that orders batches.
        """
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise TypeError(f'seed: expected an int, got {type(seed).__name__}')
        self._batch_rng = np.random.default_rng(int(seed))
        self.reset_batch_generator()

    def _check_batch_size(self, batch_size):
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool):
            raise TypeError(f'batch_size: expected an int, got {type(batch_size).__name__}')
        if batch_size < 1:
            raise ValueError(f'batch_size: expected a positive int, got {batch_size}')

    def _make_batch(self, ids, use_one_hot, return_ids):
        batch = [self._data['in_data'][ids], self._get_outputs(self._data['out_data'][ids], use_one_hot)]
        if return_ids:
            batch.append(ids)
        return batch

    def next_train_batch(self, batch_size, use_one_hot=None, return_ids=False):
        """Next random training batch; each sample is drawn once per epoch.

        Args:
            batch_size (int): Number of samples ``B``.
            use_one_hot (bool, optional): See :meth:`get_train_outputs`.
            return_ids (bool): Also return the sample ids of the batch (unique
                identifiers, not positions within the split; see
                :meth:`train_ids_to_indices`).

        Returns:
            (list): ``[inputs [B, prod(in_shape)], outputs [B, prod(out_shape)]]``
            plus ``ids [B]`` if ``return_ids``.
        """
        self._check_batch_size(batch_size)
        if self._batch_gen_train is None:
            self.reset_batch_generator(train=True, test=False, val=False)
        return self._make_batch(self._batch_gen_train.next(batch_size), use_one_hot, return_ids)

    def next_test_batch(self, batch_size, use_one_hot=None, return_ids=False):
        """Next test batch (see :meth:`next_train_batch`); the order is random
        per epoch unless :attr:`shuffle_test_samples` is ``False``."""
        self._check_batch_size(batch_size)
        if self._batch_gen_test is None:
            self.reset_batch_generator(train=False, test=True, val=False)
        return self._make_batch(self._batch_gen_test.next(batch_size), use_one_hot, return_ids)

    def next_val_batch(self, batch_size, use_one_hot=None, return_ids=False):
        """Next validation batch (see :meth:`next_train_batch`), or ``None`` if
        there is no validation set."""
        if self._data['val_inds'] is None:
            return None
        self._check_batch_size(batch_size)
        if self._batch_gen_val is None:
            self.reset_batch_generator(train=False, test=False, val=True)
        return self._make_batch(self._batch_gen_val.next(batch_size), use_one_hot, return_ids)

    def reset_batch_generator(self, train=True, test=True, val=True):
        """Start a new epoch for the selected splits' batch generators."""
        if train:
            self._batch_gen_train = _EpochSampler(self._data['train_inds'], self._batch_rng)
        if test:
            self._batch_gen_test = _EpochSampler(self._data['test_inds'], self._batch_rng,
                                                 self._shuffle_test_samples)
        if val and self._data['val_inds'] is not None:
            self._batch_gen_val = _EpochSampler(self._data['val_inds'], self._batch_rng,
                                                self._shuffle_val_samples)

    def _split_iterator(self, attr, num_samples, next_batch, batch_size, return_remainder, kwargs):
        """Yield ``[current_batch_size] + batch`` for one full epoch of a split,
        without disturbing the split's ongoing batch generator."""
        self._check_batch_size(batch_size)
        saved = getattr(self, attr)
        setattr(self, attr, None)
        try:
            done = 0
            while done < num_samples:
                size = min(batch_size, num_samples - done)
                if size < batch_size and not return_remainder:
                    break
                done += size
                yield [size] + next_batch(size, **kwargs)
        finally:
            setattr(self, attr, saved)

    def train_iterator(self, batch_size, return_remainder=True, **kwargs):
        """Iterate once over the training set in random order.

        Yields ``[batch_size] + next_train_batch(...)``; the last batch is
        smaller unless ``return_remainder=False`` (then it is dropped).
        ``kwargs`` go to :meth:`next_train_batch`.
        """
        return self._split_iterator('_batch_gen_train', self.num_train_samples, self.next_train_batch,
                                    batch_size, return_remainder, kwargs)

    def test_iterator(self, batch_size, return_remainder=True, **kwargs):
        """Iterate once over the test set (see :meth:`train_iterator`)."""
        return self._split_iterator('_batch_gen_test', self.num_test_samples, self.next_test_batch,
                                    batch_size, return_remainder, kwargs)

    def val_iterator(self, batch_size, return_remainder=True, **kwargs):
        """Iterate once over the validation set (see :meth:`train_iterator`)."""
        if self._data['val_inds'] is None:
            raise ValueError('val_iterator: the dataset has no validation set')
        return self._split_iterator('_batch_gen_val', self.num_val_samples, self.next_val_batch,
                                    batch_size, return_remainder, kwargs)

    # ------------------------------------------------------------------ ids
    @staticmethod
    def _ids_to_indices(sample_ids, split_ids, split_name):
        """Positions of ``sample_ids`` within ``split_ids``."""
        sample_ids = np.asarray(sample_ids)
        split_ids = np.asarray(split_ids)
        order = np.argsort(split_ids, kind='stable')
        pos = np.searchsorted(split_ids[order], sample_ids)
        pos = np.clip(pos, 0, max(split_ids.size - 1, 0))
        indices = order[pos] if split_ids.size else pos
        if split_ids.size == 0 or not np.array_equal(split_ids[indices], sample_ids):
            raise ValueError(f'sample_ids: expected ids of the {split_name} set, got ids outside it')
        return indices

    def train_ids_to_indices(self, sample_ids):
        """Map training sample ids to positions in :meth:`get_train_inputs`."""
        return self._ids_to_indices(sample_ids, self._data['train_inds'], 'training')

    def test_ids_to_indices(self, sample_ids):
        """Map test sample ids to positions in :meth:`get_test_inputs`."""
        return self._ids_to_indices(sample_ids, self._data['test_inds'], 'test')

    def val_ids_to_indices(self, sample_ids):
        """Map validation sample ids to positions in :meth:`get_val_inputs`."""
        if self._data['val_inds'] is None:
            raise ValueError('val_ids_to_indices: the dataset has no validation set')
        return self._ids_to_indices(sample_ids, self._data['val_inds'], 'validation')

    # ------------------------------------------------------------------ identity
    @abstractmethod
    def get_identifier(self):
        """Name of the dataset (str)."""

    def is_image_dataset(self):
        """``(inputs_are_images, outputs_are_images)``: 3D shapes with 1, 3 or 4
        channels last count as images."""
        in_img = len(self.in_shape) == 3 and self.in_shape[-1] in (1, 3, 4)
        out_img = len(self.out_shape) == 3 and self.out_shape[-1] in (1, 3, 4)
        return in_img, out_img

    def __str__(self):
        return (f'Dataset "{self.get_identifier()}" with {self.num_train_samples} training, '
                f'{self.num_test_samples} test and {self.num_val_samples} validation samples.')

    # ------------------------------------------------------------------ framework maps
    def tf_input_map(self, mode='inference'):
        """Map for ``tf.data.Dataset.map`` on inputs; identity because the data
        is already in memory.

        Args:
            mode (str): ``'train'`` or ``'inference'``.
        """
        _check_mode(mode)
        return _identity

    def tf_output_map(self, mode='inference'):
        """Like :meth:`tf_input_map` for targets (identity)."""
        _check_mode(mode)
        return _identity

    def input_to_torch_tensor(self, x, device, mode='inference', force_no_preprocessing=False,
                              sample_ids=None):
        """Turn a numpy batch of inputs into a float tensor on ``device``.

        Subclasses add preprocessing (normalisation, augmentation in
        ``mode='train'``), which ``force_no_preprocessing`` switches off.

        Args:
            x (numpy.ndarray): ``[B, prod(in_shape)]``.
            device (torch.device or str): Target device.
            mode (str): ``'train'`` or ``'inference'``.
            force_no_preprocessing (bool): Convert "as is".
            sample_ids (numpy.ndarray, optional): Ids of the rows of ``x``.

        Returns:
            (torch.Tensor): ``[B, prod(in_shape)]`` float32.
        """
        _check_mode(mode)
        return torch.as_tensor(np.asarray(x), dtype=torch.float32).to(device)

    def output_to_torch_tensor(self, y, device, mode='inference', force_no_preprocessing=False,
                               sample_ids=None):
        """Turn a numpy batch of targets into a float tensor on ``device``
        (arguments as in :meth:`input_to_torch_tensor`)."""
        _check_mode(mode)
        return torch.as_tensor(np.asarray(y), dtype=torch.float32).to(device)

    # ------------------------------------------------------------------ encodings
    def _get_outputs(self, data, use_one_hot=None):
        """Return ``data`` in the requested label encoding."""
        if not self.classification or use_one_hot is None or use_one_hot == self.is_one_hot:
            return data
        return self._to_one_hot(data, reverse=self.is_one_hot)

    def _to_one_hot(self, labels, reverse=False):
        """Convert class indices ``[N, T]`` to one-hot ``[N, T * num_classes]``
        (``T`` time steps, 1 for non-sequential data) or back.

        The reverse direction takes the argmax of each ``num_classes`` block,
        so it also decodes padded encodings whose extra columns are all zero.
        """
        if not self.classification:
            raise RuntimeError(f'_to_one_hot: only classification datasets have class labels, '
                               f'"{self.get_identifier()}" is a regression dataset')
        labels = np.asarray(labels)
        num_classes = self.num_classes
        if reverse:
            blocks = labels.reshape(labels.shape[0], -1, num_classes)
            return blocks.argmax(axis=2).astype(np.int64)
        int_labels = labels.reshape(labels.shape[0], -1).astype(np.int64)
        if int_labels.size and (int_labels.min() < 0 or int_labels.max() >= num_classes):
            raise ValueError(f'labels: expected class indices in [0, {num_classes}), got range '
                             f'[{int_labels.min()}, {int_labels.max()}]')
        one_hot = np.eye(num_classes, dtype=np.float32)[int_labels]
        return one_hot.reshape(labels.shape[0], -1)

    def _set_classification_data(self, in_data, labels, num_train, num_classes, in_shape, use_one_hot,
                                 validation_size):
        """Fill ``_data`` for a classification set stored as train rows then
        test rows; the first ``validation_size`` training rows become the
        validation set.

        Args:
            in_data (numpy.ndarray): ``[N, prod(in_shape)]`` inputs.
            labels (numpy.ndarray): ``[N]`` integer class labels.
            num_train (int): Rows ``0 .. num_train-1`` are training samples.
            num_classes (int): Number of classes.
            in_shape (list): Shape of one input.
            use_one_hot (bool): Store targets one-hot encoded.
            validation_size (int): Size of the validation set.
        """
        if not isinstance(validation_size, (int, np.integer)) or validation_size < 0 \
                or validation_size >= num_train:
            raise ValueError(f'validation_size: expected an int in [0, {num_train}), got {validation_size!r}')
        self._data.update(classification=True, sequence=False, num_classes=num_classes,
                          is_one_hot=bool(use_one_hot), in_data=in_data, in_shape=list(in_shape),
                          out_shape=[num_classes if use_one_hot else 1])
        self._data['train_inds'] = np.arange(validation_size, num_train)
        self._data['test_inds'] = np.arange(num_train, in_data.shape[0])
        self._data['val_inds'] = np.arange(validation_size) if validation_size > 0 else None
        out_data = np.asarray(labels, dtype=np.int64).reshape(-1, 1)
        self._data['out_data'] = self._to_one_hot(out_data) if use_one_hot else out_data

    # ------------------------------------------------------------------ plotting
    def plot_samples(self, title, inputs, outputs=None, predictions=None, num_samples_per_row=4,
                     show=True, filename=None, interactive=False, figsize=(10, 6), **kwargs):
        """Plot each sample in its own panel of a grid figure.

        Args:
            title (str): Figure title.
            inputs (numpy.ndarray): ``[n, prod(in_shape)]`` samples to draw.
            outputs (numpy.ndarray, optional): ``[n, ...]`` true targets.
            predictions (numpy.ndarray, optional): ``[n, ...]`` network outputs.
            num_samples_per_row (int): Panels per row.
            show (bool): Call ``plt.show()``.
            filename (str, optional): Save the figure there.
            interactive (bool): Switch matplotlib's interactive mode on.
            figsize (tuple): Figure size in inches.
            **kwargs: Passed to :meth:`_plot_sample`.

        Returns:
            The matplotlib figure.
        """
        import matplotlib.pyplot as plt
        from matplotlib import gridspec

        inputs = np.asarray(inputs)
        if inputs.ndim != 2:
            raise ValueError(f'inputs: expected a 2D array [n, prod(in_shape)], got shape {inputs.shape}')
        config = self._plot_config(inputs, outputs=outputs, predictions=predictions)
        if self.classification and outputs is not None:
            outputs = np.asarray(outputs)
            if outputs.shape[1] != 1 and outputs.shape[1] % self.num_classes == 0:
                outputs = self._to_one_hot(outputs, reverse=True)
        num_plots = inputs.shape[0]
        num_cols = int(min(num_plots, num_samples_per_row))
        num_rows = int(np.ceil(num_plots / num_samples_per_row))
        fig = plt.figure(figsize=figsize)
        outer = gridspec.GridSpec(num_rows, num_cols, wspace=config['outer_wspace'],
                                  hspace=config['outer_hspace'])
        fig.suptitle(title, size=20)
        if interactive:
            plt.ion()
        for i in range(num_plots):
            inner = gridspec.GridSpecFromSubplotSpec(
                config['num_inner_rows'], config['num_inner_cols'], subplot_spec=outer[i],
                wspace=config['inner_wspace'], hspace=config['inner_hspace'])
            self._plot_sample(fig, inner, config['num_inner_plots'], i, inputs[i:i + 1],
                              outputs=None if outputs is None else outputs[i:i + 1],
                              predictions=None if predictions is None else np.asarray(predictions)[i:i + 1],
                              **kwargs)
        if filename is not None:
            fig.savefig(filename, bbox_inches='tight')
        if show:
            plt.show()
        return fig

    @abstractmethod
    def _plot_sample(self, fig, inner_grid, num_inner_plots, ind, inputs, outputs=None, predictions=None,
                     **kwargs):
        """Draw sample ``ind`` (``inputs`` is ``[1, prod(in_shape)]``) into the
        ``num_inner_plots`` cells of ``inner_grid`` of ``fig``."""

    def _plot_config(self, inputs, outputs=None, predictions=None):
        """Grid spacing and number of inner panels used by :meth:`plot_samples`."""
        return {'outer_wspace': 0.4, 'outer_hspace': 0.4, 'inner_hspace': 0.2, 'inner_wspace': 0.2,
                'num_inner_rows': 1, 'num_inner_cols': 1, 'num_inner_plots': 1}


def _identity(x):
    return x


def _check_mode(mode):
    if mode not in ('train', 'inference'):
        raise ValueError(f"mode: expected 'train' or 'inference', got {mode!r}")
