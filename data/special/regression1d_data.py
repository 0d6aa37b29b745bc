r"""A 1D regression toy problem :math:`y = f(x) + \epsilon`, the standard test bed for Bayesian networks.

Training inputs are drawn uniformly from one or several intervals (gaps between intervals show whether a
model's uncertainty grows away from the data); test and validation inputs are equidistant grids. Noise
:math:`\epsilon \sim \mathcal{N}(0, \sigma(x)^2)` is added to the training targets (and, with
``perturb_test_val``, to the others); :math:`\sigma` may be a constant or a function of :math:`x`
(heteroscedastic).
"""
import numpy as np

from data.dataset import Dataset


def _split_counts(intervals, total):
    """Distribute ``total`` samples over ``intervals`` in proportion to their lengths (exactly ``total``)."""
    lengths = np.array([high - low for low, high in intervals], dtype=float)
    if (lengths < 0).any():
        raise ValueError(f'train_inter: expected intervals (low, high) with low <= high, got {intervals}')
    shares = lengths / lengths.sum() * total if lengths.sum() > 0 else np.full(len(intervals), total / len(intervals))
    counts = np.floor(shares).astype(int)
    # Largest remainders get the samples lost to rounding down.
    for index in np.argsort(-(shares - counts))[:total - counts.sum()]:
        counts[index] += 1
    return counts


class ToyRegression(Dataset):
    """1D regression data :math:`y = f(x) + \\epsilon`.

    Args:
        train_inter (list): an interval ``[low, high]`` or a list of intervals for the training inputs.
        num_train (int): training samples (uniform in the intervals, split in proportion to their lengths).
        test_inter (list): interval of the equidistant test inputs.
        num_test (int): test samples.
        val_inter (list, optional): interval of the equidistant validation inputs (needs ``num_val``).
        num_val (int, optional): validation samples.
        map_function (callable): :math:`f`, maps a numpy array ``[N, 1]`` to ``[N, 1]``.
        std (float or callable): noise standard deviation, or a function ``sigma(x) >= 0``.
        rseed (int, optional): seed of a private random state; the global numpy state when None.
        perturb_test_val (bool): also add noise to test and validation targets.
    """

    def __init__(self, train_inter=(-10, 10), num_train=20, test_inter=(-10, 10), num_test=80, val_inter=None,
                 num_val=None, map_function=lambda x: x, std=0., rseed=None, perturb_test_val=False):
        super().__init__()
        if (val_inter is None) != (num_val is None):
            raise ValueError(f'val_inter, num_val: give both or neither, got {val_inter!r} and {num_val!r}')
        for name, value in (('num_train', num_train), ('num_test', num_test)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f'{name}: expected an int >= 0, got {value!r}')
        if not callable(std) and (not np.isscalar(std) or std < 0):
            raise ValueError(f'std: expected a number >= 0 or a function of x, got {std!r}')
        rand = np.random if rseed is None else np.random.RandomState(rseed)
        intervals = [tuple(train_inter)] if np.isscalar(train_inter[0]) else [tuple(t) for t in train_inter]
        for interval in intervals:
            if len(interval) != 2:
                raise ValueError(f'train_inter: expected intervals (low, high), got {interval}')

        counts = _split_counts(intervals, num_train)
        train_x = np.vstack([rand.uniform(low, high, size=(n, 1)) for (low, high), n in zip(intervals, counts)])
        test_x = np.linspace(test_inter[0], test_inter[1], num_test).reshape(-1, 1)

        def noisy(x, y):
            scale = std(x) if callable(std) else std
            if np.any(np.asarray(scale) > 0):
                y = y + rand.normal(0., scale, size=x.shape)
            return y

        train_y = noisy(train_x, np.asarray(map_function(train_x), dtype=float))
        test_y = np.asarray(map_function(test_x), dtype=float)
        test_y = noisy(test_x, test_y) if perturb_test_val else test_y
        inputs, outputs = [train_x, test_x], [train_y, test_y]
        if num_val is not None:
            val_x = np.linspace(val_inter[0], val_inter[1], num_val).reshape(-1, 1)
            val_y = np.asarray(map_function(val_x), dtype=float)
            inputs.append(val_x)
            outputs.append(noisy(val_x, val_y) if perturb_test_val else val_y)

        self._data.update({
            'classification': False, 'sequence': False, 'in_shape': [1], 'out_shape': [1],
            'in_data': np.vstack(inputs), 'out_data': np.vstack(outputs),
            'train_inds': np.arange(num_train), 'test_inds': np.arange(num_train, num_train + num_test),
            'val_inds': None if num_val is None else np.arange(num_train + num_test, num_train + num_test + num_val),
        })
        self._map = map_function
        self._train_inter = (min(t[0] for t in intervals), max(t[1] for t in intervals))
        self._test_inter = tuple(test_inter)
        self._val_inter = None if val_inter is None else tuple(val_inter)

    @property
    def train_x_range(self):
        """``(min, max)`` over the training intervals."""
        return self._train_inter

    @property
    def test_x_range(self):
        return self._test_inter

    @property
    def val_x_range(self):
        return self._val_inter

    def get_identifier(self):
        return '1DRegression'

    def _get_function_vals(self, num_samples=100, x_range=None):
        """The noise-free curve: ``(x [num_samples], f(x) [num_samples])`` over ``x_range`` (default: all data)."""
        if x_range is None:
            low = min(self._train_inter[0], self._test_inter[0])
            high = max(self._train_inter[1], self._test_inter[1])
            x_range = (low, high)
        x = np.linspace(x_range[0], x_range[1], num_samples).reshape(-1, 1)
        return x.ravel(), np.asarray(self._map(x), dtype=float).ravel()

    def plot_dataset(self, show=True, filename=None):
        """Plot the curve, training and test points; save to ``filename`` when given."""
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(8, 5))
        x, y = self._get_function_vals()
        ax.plot(x, y, color='k', label='f(x)')
        ax.scatter(self.get_train_inputs(), self.get_train_outputs(), color='tab:red', s=15, label='train')
        ax.scatter(self.get_test_inputs(), self.get_test_outputs(), color='tab:blue', s=6, label='test')
        ax.legend()
        return self._finish(fig, show, filename)

    def plot_predictive_distribution(self, inputs, mean, std, show=True, filename=None, title=None):
        """Plot a predictive mean with 1 and 2 standard-deviation bands over the data.

        Args:
            inputs, mean, std (numpy.ndarray): ``[M]`` each (e.g. the posterior-predictive moments on a grid).
        """
        import matplotlib.pyplot as plt
        inputs, mean, std = (np.asarray(a, dtype=float).ravel() for a in (inputs, mean, std))
        fig, ax = plt.subplots(figsize=(8, 5))
        for k, alpha in ((2, 0.15), (1, 0.3)):
            ax.fill_between(inputs, mean - k * std, mean + k * std, color='tab:blue', alpha=alpha,
                            label=f'{k} std')
        ax.plot(inputs, mean, color='tab:blue', label='predictive mean')
        x, y = self._get_function_vals()
        ax.plot(x, y, color='k', linestyle='--', label='f(x)')
        ax.scatter(self.get_train_inputs(), self.get_train_outputs(), color='tab:red', s=15, label='train')
        if title:
            ax.set_title(title)
        ax.legend()
        return self._finish(fig, show, filename)

    @staticmethod
    def _finish(fig, show, filename):
        import matplotlib.pyplot as plt
        if filename is not None:
            fig.savefig(filename, bbox_inches='tight')
        if show:
            plt.show()
        plt.close(fig)

    def _plot_sample(self, fig, inner_grid, num_inner_plots, ind, inputs, outputs=None, predictions=None):
        import matplotlib.pyplot as plt
        ax = plt.Subplot(fig, inner_grid[0])
        ax.scatter(np.ravel(inputs), np.ravel(outputs) if outputs is not None else np.zeros(np.size(inputs)),
                   color='tab:red', s=10)
        if predictions is not None:
            ax.scatter(np.ravel(inputs), np.ravel(predictions), color='tab:blue', s=10)
        fig.add_subplot(ax)
