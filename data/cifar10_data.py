"""CIFAR-10: 50,000 training / 10,000 test 32x32 colour images of 10 classes.

Reads the official "python version" release: ``data_path/cifar-10-batches-py``
with the pickled batches ``data_batch_1`` .. ``data_batch_5``, ``test_batch``
and (optionally) ``batches.meta``. Each batch is a dict with ``b'data'``
(uint8 ``[n, 3072]``, channel-major: 1024 red, 1024 green, 1024 blue values)
and ``b'labels'``. If the folder is missing, the archive is downloaded from the
official site, its MD5 checked, and extracted.

Inputs are stored as float32 rows in ``[0, 1]`` in channels-last order
(``[N, 32*32*3]``, ``in_shape == [32, 32, 3]``). With data augmentation,
:meth:`CIFAR10Data.input_to_torch_tensor` standardises with the ImageNet
channel statistics (as the reference) and in ``mode='train'`` flips and crops
randomly, all as batched torch ops.
"""
import os
import pickle
import tarfile

import numpy as np

from data import transforms
from data.dataset import Dataset
from data.dataset_files import download_file
from data.image_plots import ImageClassificationPlots
from data.mnist_data import augment_flat_images


class CIFAR10Data(ImageClassificationPlots, Dataset):
    """CIFAR-10 dataset handler.

    Args:
        data_path (str): Folder containing ``cifar-10-batches-py`` (downloaded
            there if missing).
        use_one_hot (bool): Store targets one-hot encoded.
        use_data_augmentation (bool): Apply the standard augmentation in
            :meth:`input_to_torch_tensor` (random horizontal flip, random crop
            after 4-pixel zero padding, per-channel standardisation; inference
            mode only standardises).
        validation_size (int): The first ``validation_size`` training images
            form the validation set.
        use_cutout (bool): With augmentation, additionally zero a random
            16x16 square of each training image (Cutout).
        source (CIFAR10Data, optional): An already loaded handler of the same
            class whose input array is shared instead of reading the files
            again (used by the split variants).
    """
    _IDENTIFIER = 'CIFAR-10'
    _DOWNLOAD_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz'
    _ARCHIVE_MD5 = 'c58f30108f718f92721af3b95e74349a'
    _EXTRACTED_FOLDER = 'cifar-10-batches-py'
    _TRAIN_FILES = tuple(f'data_batch_{i}' for i in range(1, 6))
    _TEST_FILE = 'test_batch'
    _META_FILE = 'batches.meta'
    _LABEL_KEY = b'labels'
    _NUM_CLASSES = 10
    _NORM_MEAN = (0.485, 0.456, 0.406)
    _NORM_STD = (0.229, 0.224, 0.225)
    _CUTOUT_LENGTH = 16

    def __init__(self, data_path, use_one_hot=False, use_data_augmentation=False, validation_size=5000,
                 use_cutout=False, source=None):
        super().__init__()
        if source is not None:
            if not isinstance(source, CIFAR10Data) or source._EXTRACTED_FOLDER != self._EXTRACTED_FOLDER:
                raise TypeError(f'source: expected a loaded {type(self).__name__} of the same dataset, '
                                f'got {type(source).__name__}')
            images, labels = source._data['in_data'], source._data['class_labels']
            num_train = source._data['num_raw_train']
            meta = {k: dict(source._data[k]) for k in ('cifar10', 'cifar100') if k in source._data}
        else:
            images, labels, num_train, meta = self._read_files(data_path)
        self._set_classification_data(images, labels, num_train, self._NUM_CLASSES, [32, 32, 3],
                                      use_one_hot, validation_size)
        self._data['class_labels'] = labels
        self._data['num_raw_train'] = num_train
        self._data.update(meta)
        self._augment_inputs = bool(use_data_augmentation)
        self._use_cutout = bool(use_cutout)

    @classmethod
    def _read_files(cls, data_path):
        """Locate (or download) and parse the batch files.

        Returns:
            (tuple): ``images`` float32 ``[N, 3072]`` channels-last in
            ``[0, 1]``, ``labels`` int64 ``[N]``, ``num_train`` (train rows come
            first), ``meta`` (dict with the class names).
        """
        if not isinstance(data_path, (str, os.PathLike)):
            raise TypeError(f'data_path: expected a path, got {type(data_path).__name__}')
        folder = os.path.join(os.fspath(data_path), cls._EXTRACTED_FOLDER)
        if not os.path.isdir(folder):
            cls._download_and_extract(os.fspath(data_path))
        train_parts = [cls._read_batch(os.path.join(folder, fn)) for fn in cls._TRAIN_FILES]
        test_images, test_labels = cls._read_batch(os.path.join(folder, cls._TEST_FILE))
        images = np.concatenate([p[0] for p in train_parts] + [test_images])
        labels = np.concatenate([p[1] for p in train_parts] + [test_labels])
        if labels.size and (labels.min() < 0 or labels.max() >= cls._NUM_CLASSES):
            raise ValueError(f'{folder}: labels must lie in [0, {cls._NUM_CLASSES}), got range '
                             f'[{labels.min()}, {labels.max()}]')
        num_train = sum(p[1].size for p in train_parts)
        # Channel-major rows -> channels-last rows, scaled to [0, 1].
        images = images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).reshape(-1, 32 * 32 * 3)
        images = np.true_divide(images, np.float32(255), dtype=np.float32)
        meta_path = os.path.join(folder, cls._META_FILE)
        meta = cls._read_meta(cls._load_pickle(meta_path) if os.path.isfile(meta_path) else {})
        return images, labels, num_train, meta

    @classmethod
    def _download_and_extract(cls, data_path):
        archive = download_file(cls._DOWNLOAD_URL, data_path, expected_md5=cls._ARCHIVE_MD5)
        with tarfile.open(archive, 'r:gz') as tar:
            tar.extractall(path=data_path, filter='data')
        os.remove(archive)

    @staticmethod
    def _load_pickle(path):
        try:
            with open(path, 'rb') as f:
                return pickle.load(f, encoding='bytes')
        except FileNotFoundError as err:
            raise OSError(f'{path}: CIFAR file missing') from err
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
            raise ValueError(f'{path}: not a readable CIFAR pickle (corrupt or truncated): {err}') from err

    @classmethod
    def _read_batch(cls, path):
        """Return ``(uint8 images [n, 3072], int64 labels [n])`` of one batch file."""
        batch = cls._load_pickle(path)
        if not isinstance(batch, dict) or b'data' not in batch or cls._LABEL_KEY not in batch:
            raise ValueError(f"{path}: expected a dict with keys b'data' and {cls._LABEL_KEY!r}")
        images = np.asarray(batch[b'data'], dtype=np.uint8)
        labels = np.asarray(batch[cls._LABEL_KEY], dtype=np.int64).reshape(-1)
        if images.ndim != 2 or images.shape[1] != 3072 or images.shape[0] != labels.size:
            raise ValueError(f'{path}: expected data [n, 3072] and n labels, got data {images.shape} and '
                             f'{labels.size} labels')
        return images, labels

    @staticmethod
    def _read_meta(meta):
        """Class names from the unpickled meta file (``{}`` if it is absent)."""
        names = meta.get(b'label_names')
        return {'cifar10': {'label_names': None if names is None else [n.decode() for n in names],
                            'num_cases_per_batch': meta.get(b'num_cases_per_batch')}}

    def get_identifier(self):
        """Returns the name of the dataset."""
        return self._IDENTIFIER

    def input_to_torch_tensor(self, x, device, mode='inference', force_no_preprocessing=False,
                              sample_ids=None):
        """Inputs as a float tensor ``[B, 3072]`` (channels last); with
        augmentation, standardised and (``mode='train'``) randomly flipped,
        cropped and optionally cut out, batched in torch."""
        tensor = Dataset.input_to_torch_tensor(self, x, device, mode=mode)
        if not self._augment_inputs or force_no_preprocessing:
            return tensor
        out = augment_flat_images(tensor, self.in_shape, mode, self._NORM_MEAN, self._NORM_STD,
                                  crop_padding=4, hflip=True)
        if mode == 'train' and self._use_cutout:
            images = transforms.flat_hwc_to_nchw(out, self.in_shape)
            out = transforms.nchw_to_flat_hwc(transforms.random_cutout(images, self._CUTOUT_LENGTH))
        return out
