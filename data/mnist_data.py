"""The MNIST handwritten digits (60,000 training / 10,000 test images, 28x28).

The four IDX files are looked up, in order, in ``data_path``,
``data_path/MNIST`` (the reference's layout) and the copy shipped inside this
package (``data/mnist/``), so the handler works offline on a fresh clone. Only
when none of them has all four files are they downloaded (atomically) into
``data_path/MNIST``. Every file's uncompressed content is checked against the
published MD5 before it is used.

Inputs are stored as float32 rows in ``[0, 1]`` (``[70000, 784]``, train rows
first); targets are class indices ``[N, 1]`` or one-hot ``[N, 10]``.
"""
import os

import numpy as np

from data import transforms
from data.dataset import Dataset
from data.dataset_files import download_file, find_folder_with, read_idx_gz
from data.image_plots import ImageClassificationPlots

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class MNISTData(ImageClassificationPlots, Dataset):
    """MNIST dataset handler.

    Args:
        data_path (str): Folder with the four ``*-idx?-ubyte.gz`` files (or with
            an ``MNIST`` subfolder holding them); downloads go there if no copy
            is found anywhere.
        use_one_hot (bool): Store targets one-hot encoded.
        validation_size (int): The first ``validation_size`` training images
            form the validation set.
        use_torch_augmentation (bool): :meth:`input_to_torch_tensor` standardises
            inputs with the training statistics (mean 0.1307, std 0.3081) and,
            in ``mode='train'``, applies random 4-pixel-padded crops.
        source (MNISTData, optional): An already loaded handler of the same
            class whose input array is shared instead of reading the files
            again (used by the split / permuted variants).
    """
    _IDENTIFIER = 'MNIST'
    _SUBFOLDER = 'MNIST'
    _DOWNLOAD_URL = 'https://yann.lecun.com/exdb/mnist/'
    # file name -> MD5 of the uncompressed content (published checksums).
    _FILES = {
        'train_images': ('train-images-idx3-ubyte.gz', '6bbc9ace898e44ae57da46a324031adb'),
        'train_labels': ('train-labels-idx1-ubyte.gz', 'a25bea736e30d166cdddb491f175f624'),
        'test_images': ('t10k-images-idx3-ubyte.gz', '2646ac647ad5339dbf082846283269ea'),
        'test_labels': ('t10k-labels-idx1-ubyte.gz', '27ae3e4e09519cfbb04c329615203637'),
    }
    _EXTRA_DIRS = (os.path.join(_PACKAGE_DIR, 'mnist'),)
    _NORM_MEAN = (0.1307,)
    _NORM_STD = (0.3081,)
    _AUGMENT_HFLIP = False
    _CROP_PADDING = 4

    def __init__(self, data_path, use_one_hot=False, validation_size=0, use_torch_augmentation=False,
                 source=None):
        super().__init__()
        if source is not None:
            if not isinstance(source, MNISTData) or type(source)._FILES != type(self)._FILES:
                raise TypeError(f'source: expected a loaded {type(self).__name__} of the same dataset, '
                                f'got {type(source).__name__}')
            images, labels = source._data['in_data'], source._data['class_labels']
            num_train = source._data['num_raw_train']
        else:
            images, labels, num_train = self._read_files(data_path)
        self._set_classification_data(images, labels, num_train, 10, [28, 28, 1], use_one_hot,
                                      validation_size)
        self._data['class_labels'] = labels
        self._data['num_raw_train'] = num_train
        self._augment_inputs = bool(use_torch_augmentation)

    @classmethod
    def _candidate_dirs(cls, data_path):
        return [data_path, os.path.join(data_path, cls._SUBFOLDER), *cls._EXTRA_DIRS]

    @classmethod
    def _read_files(cls, data_path):
        """Locate (or download), verify and parse the four IDX files.

        Returns:
            (tuple): ``images`` float32 ``[N, 784]`` in ``[0, 1]``, ``labels``
            int64 ``[N]``, ``num_train`` (train rows come first).
        """
        if not isinstance(data_path, (str, os.PathLike)):
            raise TypeError(f'data_path: expected a path, got {type(data_path).__name__}')
        data_path = os.fspath(data_path)
        names = [fn for fn, _ in cls._FILES.values()]
        folder = find_folder_with(names, cls._candidate_dirs(data_path))
        if folder is None:
            folder = os.path.join(data_path, cls._SUBFOLDER)
            for fn in names:
                if not os.path.isfile(os.path.join(folder, fn)):
                    download_file(cls._DOWNLOAD_URL + fn, folder)
        arrays = {key: read_idx_gz(os.path.join(folder, fn), md5) for key, (fn, md5) in cls._FILES.items()}
        for split in ('train', 'test'):
            imgs, lbls = arrays[split + '_images'], arrays[split + '_labels']
            if imgs.shape[0] != lbls.shape[0] or imgs.shape[1:] != (28, 28):
                raise ValueError(f'{folder}: {split} images {imgs.shape} do not match labels {lbls.shape}')
        num_train = arrays['train_labels'].shape[0]
        # Scale straight into one preallocated float32 array: no uint8 concatenation copy.
        images = np.empty((num_train + arrays['test_labels'].shape[0], 28 * 28), dtype=np.float32)
        np.true_divide(arrays['train_images'].reshape(num_train, -1), np.float32(255), out=images[:num_train])
        np.true_divide(arrays['test_images'].reshape(-1, 28 * 28), np.float32(255), out=images[num_train:])
        labels = np.concatenate([arrays['train_labels'], arrays['test_labels']]).astype(np.int64)
        return images, labels, num_train

    def get_identifier(self):
        """Returns the name of the dataset."""
        return self._IDENTIFIER

    def input_to_torch_tensor(self, x, device, mode='inference', force_no_preprocessing=False,
                              sample_ids=None):
        """Inputs as a float tensor ``[B, 784]``; with augmentation enabled,
        standardised and (``mode='train'``) randomly cropped, batched in torch."""
        tensor = Dataset.input_to_torch_tensor(self, x, device, mode=mode)
        if not self._augment_inputs or force_no_preprocessing:
            return tensor
        return augment_flat_images(tensor, self.in_shape, mode, self._NORM_MEAN, self._NORM_STD,
                                   crop_padding=self._CROP_PADDING, hflip=self._AUGMENT_HFLIP)


def augment_flat_images(x, img_shape, mode, mean, std, crop_padding=4, hflip=False):
    """The standard image pipeline on flat channels-last rows.

    ``mode='train'``: random horizontal flip (if ``hflip``), random crop after
    zero-padding by ``crop_padding``, then per-channel standardisation;
    ``mode='inference'``: standardisation only.

    Args:
        x (torch.Tensor): ``[B, H*W*C]`` in ``[0, 1]``.
        img_shape (sequence): ``(H, W, C)``.

    Returns:
        (torch.Tensor): ``[B, H*W*C]``.
    """
    images = transforms.flat_hwc_to_nchw(x, img_shape)
    if mode == 'train':
        if hflip:
            images = transforms.random_horizontal_flip(images)
        images = transforms.random_crop_with_padding(images, crop_padding)
    elif mode != 'inference':
        raise ValueError(f"mode: expected 'train' or 'inference', got {mode!r}")
    images = transforms.normalize(images, mean, std)
    return transforms.nchw_to_flat_hwc(images)

