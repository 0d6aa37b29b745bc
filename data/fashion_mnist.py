"""Fashion-MNIST (Zalando): 60,000 / 10,000 28x28 grey images of 10 clothing
classes, a drop-in replacement of MNIST in the same IDX format.

Files are looked up in ``data_path``, ``data_path/FashionMNIST``,
``data_path/FashionMNIST/raw`` (torchvision's layout, used by the reference)
and the Debian package's folder ``/usr/share/dataset-fashion-mnist``; if none
holds all four, they are downloaded from Zalando's release into
``data_path/FashionMNIST``. Storage and targets are as in
:class:`data.mnist_data.MNISTData`.
"""
import os

from data.mnist_data import MNISTData


class FashionMNISTData(MNISTData):
    """Fashion-MNIST dataset handler.

    Args:
        data_path (str): Folder with the four ``*-idx?-ubyte.gz`` files.
        use_one_hot (bool): Store targets one-hot encoded.
        validation_size (int): The first ``validation_size`` training images
            form the validation set.
        use_torch_augmentation (bool): :meth:`input_to_torch_tensor` standardises
            inputs (MNIST statistics, as the reference) and, in ``mode='train'``,
            applies random horizontal flips (clothes stay clothes when mirrored)
            and random 4-pixel-padded crops.
        source (FashionMNISTData, optional): Loaded handler whose arrays are
            shared instead of reading the files again.
    """
    _IDENTIFIER = 'FashionMNIST'
    _SUBFOLDER = 'FashionMNIST'
    _DOWNLOAD_URL = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'
    _FILES = {
        'train_images': ('train-images-idx3-ubyte.gz', 'f4a8712d7a061bf5bd6d2ca38dc4d50a'),
        'train_labels': ('train-labels-idx1-ubyte.gz', '9018921c3c673c538a1fc5bad174d6f9'),
        'test_images': ('t10k-images-idx3-ubyte.gz', '8181f5470baa50b63fa0f6fddb340f0a'),
        'test_labels': ('t10k-labels-idx1-ubyte.gz', '15d484375f8d13e6eb1aabb0c3f46965'),
    }
    _EXTRA_DIRS = ('/usr/share/dataset-fashion-mnist',)
    _AUGMENT_HFLIP = True
    CLASS_NAMES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker',
                   'Bag', 'Ankle boot')

    def __init__(self, data_path, use_one_hot=False, validation_size=0, use_torch_augmentation=False,
                 source=None):
        super().__init__(data_path, use_one_hot=use_one_hot, validation_size=validation_size,
                         use_torch_augmentation=use_torch_augmentation, source=source)
        self._data['fmnist'] = {'classes': list(self.CLASS_NAMES)}

    @classmethod
    def _candidate_dirs(cls, data_path):
        return [data_path, os.path.join(data_path, cls._SUBFOLDER),
                os.path.join(data_path, cls._SUBFOLDER, 'raw'), *cls._EXTRA_DIRS]
