"""Tests of data.special.gaussian_mixture_data."""
import matplotlib
import numpy as np
import pytest

from data.special.gaussian_mixture_data import (
    CHE_MEANS,
    DEFAULT_MEANS,
    GaussianData,
    gaussian_density,
    get_gmm_tasks,
)

matplotlib.use('Agg')


def test_density_closed_form():
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    mean = np.array([1.0, -1.0])
    x = np.array([[1.0, -1.0], [0.0, 0.5]])
    diff = x - mean
    inv = np.linalg.inv(cov)
    mahalanobis = np.einsum('ni,ij,nj->n', diff, inv, diff)
    expected = np.exp(-0.5 * mahalanobis) / (2 * np.pi * np.sqrt(np.linalg.det(cov)))
    np.testing.assert_allclose(gaussian_density(x, mean, cov).ravel(), expected, rtol=1e-12)


def test_default_task_grid_and_targets():
    tasks = get_gmm_tasks(num_train=50, num_test=20, rseed=3)
    assert len(tasks) == len(DEFAULT_MEANS) == 25
    task = tasks[7]
    assert (task.num_train_samples, task.num_test_samples) == (50, 20)
    assert task.in_shape == [2] and task.out_shape == [1] and not task.classification
    x = task.get_train_inputs()
    # std 0.05: all 50 samples within 5 std of the mean (prob. > 1 - 1e-4).
    assert np.abs(x - task.mean).max() < 0.25
    np.testing.assert_allclose(task.get_train_outputs(), gaussian_density(x, task.mean, task.cov))
    again = get_gmm_tasks(num_train=50, num_test=20, rseed=3)[7]
    np.testing.assert_array_equal(again.get_test_inputs(), task.get_test_inputs())


def test_sample_moments_match():
    task = GaussianData(mean=CHE_MEANS[0], cov=np.diag([0.04, 0.09]), num_train=20000, num_test=10, rseed=0)
    x = task.get_train_inputs()
    # Standard errors: 0.2/sqrt(2e4) = 1.4e-3 for the mean, ~1e-3 for the variance.
    np.testing.assert_allclose(x.mean(0), CHE_MEANS[0], atol=0.01)
    np.testing.assert_allclose(x.var(0), [0.04, 0.09], atol=0.006)


def test_custom_map_and_errors():
    tasks = get_gmm_tasks(means=DEFAULT_MEANS[:2], covs=[np.eye(2)] * 2,
                          map_functions=[lambda x: x.sum(1, keepdims=True)] * 2, rseed=0)
    x = tasks[1].get_test_inputs()
    np.testing.assert_allclose(tasks[1].get_test_outputs(), x.sum(1, keepdims=True))
    with pytest.raises(ValueError, match='covs'):
        get_gmm_tasks(means=DEFAULT_MEANS[:2], covs=[np.eye(2)])
    with pytest.raises(ValueError, match='mean'):
        GaussianData(mean=np.zeros(3))
    with pytest.raises(ValueError, match='num_train'):
        GaussianData(num_train=0)


def test_plots(tmp_path):
    task = get_gmm_tasks(num_train=10, num_test=5, rseed=1)[0]
    fig = task.plot_samples('t', task.get_test_inputs(), outputs=task.get_test_outputs(), show=False,
                            filename=str(tmp_path / 'a.png'))
    assert (tmp_path / 'a.png').stat().st_size > 0
    matplotlib.pyplot.close(fig)
    matplotlib.pyplot.close(task.plot_dataset(show=False))
    with pytest.raises(ValueError, match='outputs'):
        task.plot_samples('t', task.get_test_inputs(), show=False)
