"""A 2D toy regression task per Gaussian mixture component.

Task ``i`` draws its inputs ``x ~ N(mu_i, Sigma_i)`` in the plane and maps them
to a scalar target ``y = f_i(x)``, by default the component's own density

    f_i(x) = exp(-0.5 (x - mu_i)^T Sigma_i^{-1} (x - mu_i)) / (2 pi sqrt(det Sigma_i)).

With well separated, narrow components the task is identifiable from the
input alone, which makes these tasks a test bed for inferring task identity.
The default layout is a 5x5 grid of components at ``{-4, -2, 0, 2, 4}^2``
with standard deviation 0.05; :data:`METZ_MEANS` / :data:`CHE_MEANS` give the
ring layouts of Metz et al. (2017) and Che et al. (2017).
"""
import itertools

import numpy as np

from data.dataset import Dataset

DEFAULT_MEANS = [np.array([i, j]) for i, j in itertools.product(range(-4, 5, 2), range(-4, 5, 2))]
DEFAULT_VARIANCES = [0.05 ** 2 * np.eye(2) for _ in DEFAULT_MEANS]

METZ_ANGLES = [i / 8 * 2 * np.pi for i in range(8)]
METZ_MEANS = [np.array([2. * np.sin(a), 2. * np.cos(a)]) for a in METZ_ANGLES]
METZ_VARIANCES = [0.02 ** 2 * np.eye(2) for _ in METZ_MEANS]

CHE_ANGLES = [(i + 0.5) / 6 * 2 * np.pi for i in range(6)]
CHE_MEANS = [np.array([5. * np.sin(a), 5. * np.cos(a)]) for a in CHE_ANGLES]
CHE_VARIANCES = [0.1 ** 2 * np.eye(2) for _ in CHE_MEANS]


def gaussian_density(x, mean, cov):
    """Density of ``N(mean, cov)`` at the rows of ``x`` (``[n, d]``) -> ``[n, 1]``."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    mean = np.asarray(mean, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    chol = np.linalg.cholesky(cov)
    # Solve L z = (x - mu) so that |z|^2 is the Mahalanobis distance.
    z = np.linalg.solve(chol, (x - mean).T)
    log_det = 2.0 * np.log(np.diag(chol)).sum()
    log_pdf = -0.5 * (z ** 2).sum(axis=0) - 0.5 * (mean.size * np.log(2 * np.pi) + log_det)
    return np.exp(log_pdf).reshape(-1, 1)


def get_gmm_tasks(means=DEFAULT_MEANS, covs=DEFAULT_VARIANCES, num_train=100, num_test=100,
                  map_functions=None, rseed=None):
    """One :class:`GaussianData` handler per mixture component.

    Args:
        means (list): Component means (2D vectors).
        covs (list): Component covariances (``2 x 2``).
        num_train (int): Training samples per task.
        num_test (int): Test samples per task.
        map_functions (list, optional): One map ``f_i`` per task (default: the
            component density).
        rseed (int, optional): Task ``i`` uses seed ``rseed + i``.

    Returns:
        (list): The handlers.
    """
    if len(means) != len(covs):
        raise ValueError(f'covs: expected {len(means)} covariances (one per mean), got {len(covs)}')
    if map_functions is None:
        map_functions = [None] * len(means)
    elif len(map_functions) != len(means):
        raise ValueError(f'map_functions: expected {len(means)} functions, got {len(map_functions)}')
    return [GaussianData(mean=m, cov=c, num_train=num_train, num_test=num_test, map_function=f,
                         rseed=None if rseed is None else rseed + i)
            for i, (m, c, f) in enumerate(zip(means, covs, map_functions))]


class GaussianData(Dataset):
    """Regression task with inputs ``x ~ N(mean, cov)`` in 2D and targets
    ``y = map_function(x)`` (default: the Gaussian density at ``x``).

    Args:
        mean (array-like): Mean, shape ``[2]``.
        cov (array-like): Covariance, shape ``[2, 2]``, positive definite.
        num_train (int): Number of training samples.
        num_test (int): Number of test samples.
        map_function (callable, optional): ``[n, 2] -> [n, 1]``.
        rseed (int, optional): Seed of the sampling RNG; ``None`` uses numpy's
            global RNG.
    """

    def __init__(self, mean=(0.0, 0.0), cov=((0.05 ** 2, 0.0), (0.0, 0.05 ** 2)), num_train=100,
                 num_test=100, map_function=None, rseed=None):
        super().__init__()
        mean = np.asarray(mean, dtype=np.float64)
        cov = np.asarray(cov, dtype=np.float64)
        if mean.shape != (2,):
            raise ValueError(f'mean: expected shape (2,), got {mean.shape}')
        if cov.shape != (2, 2):
            raise ValueError(f'cov: expected shape (2, 2), got {cov.shape}')
        for name, value in (('num_train', num_train), ('num_test', num_test)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f'{name}: expected a positive int, got {value!r}')
        rng = np.random if rseed is None else np.random.RandomState(rseed)
        train_x = rng.multivariate_normal(mean, cov, size=num_train)
        test_x = rng.multivariate_normal(mean, cov, size=num_test)
        if map_function is None:
            def map_function(x):
                return gaussian_density(x, mean, cov)
        inputs = np.vstack([train_x, test_x])
        outputs = np.asarray(map_function(inputs)).reshape(inputs.shape[0], -1)
        self._data.update(classification=False, sequence=False, in_data=inputs, in_shape=[2],
                          out_data=outputs, out_shape=[outputs.shape[1]])
        self._data['train_inds'] = np.arange(num_train)
        self._data['test_inds'] = np.arange(num_train, num_train + num_test)
        self._mean = mean
        self._cov = cov
        self._map = map_function

    @property
    def mean(self):
        """Mean vector ``[2]``."""
        return self._mean

    @property
    def cov(self):
        """Covariance matrix ``[2, 2]``."""
        return self._cov

    def get_identifier(self):
        """Returns the name of the dataset."""
        return 'GaussianInputData'

    def _get_function_vals(self, grid_size=100):
        """``X1, X2, Y`` on a ``grid_size^2`` grid covering all samples (5%
        margin), for contour plots of the ground truth."""
        samples = self._data['in_data']
        half_width = 1.05 * np.abs(samples - self._mean[None, :]).max()
        axis1 = np.linspace(self._mean[0] - half_width, self._mean[0] + half_width, grid_size)
        axis2 = np.linspace(self._mean[1] - half_width, self._mean[1] + half_width, grid_size)
        grid1, grid2 = np.meshgrid(axis1, axis2)
        values = np.asarray(self._map(np.stack([grid1.ravel(), grid2.ravel()], axis=1)))
        return grid1, grid2, values.reshape(grid1.shape)

    def plot_samples(self, title, inputs, outputs=None, predictions=None, num_samples_per_row=4, show=True,
                     filename=None, interactive=False, figsize=(10, 6), **kwargs):
        """Draw the samples as points coloured by target / prediction over a
        contour plot of the ground truth (all in one panel).

        Returns:
            The matplotlib figure.
        """
        import matplotlib.pyplot as plt

        if outputs is None and predictions is None:
            raise ValueError('outputs/predictions: expected at least one of them, got neither')
        fig = plt.figure(figsize=figsize)
        plt.title(title, size=20)
        if interactive:
            plt.ion()
        grid1, grid2, values = self._get_function_vals()
        contour = plt.contourf(grid1, grid2, values)
        plt.colorbar(contour)
        inputs = np.asarray(inputs)
        for values_, edge, label in ((outputs, 'b', 'Targets'), (predictions, 'r', 'Predictions')):
            if values_ is not None:
                plt.scatter(inputs[:, 0], inputs[:, 1], edgecolors=edge, label=label,
                            facecolor=contour.cmap(contour.norm(np.asarray(values_).squeeze())))
        plt.legend()
        plt.xlabel('x1')
        plt.ylabel('x2')
        if filename is not None:
            plt.savefig(filename, bbox_inches='tight')
        if show:
            plt.show()
        return fig

    def _plot_sample(self, fig, inner_grid, num_inner_plots, ind, inputs, outputs=None, predictions=None,
                     **kwargs):
        """Mark one sample on the ground-truth contour plot."""
        ax = fig.add_subplot(inner_grid[0])
        grid1, grid2, values = self._get_function_vals()
        ax.contourf(grid1, grid2, values)
        ax.scatter(inputs[:, 0], inputs[:, 1], c='r')

    def plot_dataset(self, show=True):
        """Plot training and test samples over the ground truth.

        Returns:
            The matplotlib figure.
        """
        return self.plot_samples('Gaussian Input Dataset', self._data['in_data'],
                                 outputs=self._data['out_data'], show=show)

    @staticmethod
    def plot_datasets(data_handlers, inputs=None, predictions=None, labels=None, show=True, filename=None,
                      figsize=(10, 6)):
        """Scatter the training samples of several tasks (and optional
        per-task ``inputs`` with ``predictions``) in one figure.

        Returns:
            The matplotlib figure.
        """
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=figsize)
        for i, handler in enumerate(data_handlers):
            name = labels[i] if labels is not None else f'Task {i}'
            train_x = handler.get_train_inputs()
            plt.scatter(train_x[:, 0], train_x[:, 1], s=5, label=name)
            if inputs is not None and predictions is not None:
                plt.scatter(inputs[i][:, 0], inputs[i][:, 1], c=np.asarray(predictions[i]).squeeze(),
                            marker='x')
        plt.legend()
        plt.xlabel('x1')
        plt.ylabel('x2')
        if filename is not None:
            plt.savefig(filename, bbox_inches='tight')
        if show:
            plt.show()
        return fig
