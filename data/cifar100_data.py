"""CIFAR-100: 50,000 training / 10,000 test 32x32 colour images of 100 classes.

Reads the official "python version" release: ``data_path/cifar-100-python``
with the pickled files ``train``, ``test`` and (optionally) ``meta``. The
targets are the 100 fine labels (``b'fine_labels'``). Storage, augmentation and
download behave as in :class:`data.cifar10_data.CIFAR10Data` (same image
statistics are used for standardisation, as the reference does).
"""
from data.cifar10_data import CIFAR10Data


class CIFAR100Data(CIFAR10Data):
    """CIFAR-100 dataset handler.

    Args:
        data_path (str): Folder containing ``cifar-100-python``.
        use_one_hot (bool): Store targets one-hot encoded.
        use_data_augmentation (bool): See :class:`data.cifar10_data.CIFAR10Data`.
        validation_size (int): The first ``validation_size`` training images
            form the validation set.
        use_cutout (bool): With augmentation, zero a random 8x8 square of each
            training image (the Cutout paper's size for CIFAR-100).
    """
    _IDENTIFIER = 'CIFAR-100'
    _DOWNLOAD_URL = 'https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz'
    _ARCHIVE_MD5 = 'eb9058c3a382ffc7106e4002c42a8d85'
    _EXTRACTED_FOLDER = 'cifar-100-python'
    _TRAIN_FILES = ('train',)
    _TEST_FILE = 'test'
    _META_FILE = 'meta'
    _LABEL_KEY = b'fine_labels'
    _NUM_CLASSES = 100
    _CUTOUT_LENGTH = 8

    @staticmethod
    def _read_meta(meta):
        """Fine and coarse class names from the unpickled meta file (``{}`` if
        it is absent)."""
        return {'cifar100': {
            key: None if meta.get(key.encode()) is None else [n.decode() for n in meta[key.encode()]]
            for key in ('fine_label_names', 'coarse_label_names')}}
