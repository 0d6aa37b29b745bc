"""Tests of data.special.regression1d_data.ToyRegression."""
import numpy as np
import pytest

from data.special.regression1d_data import ToyRegression


def test_splits_shapes_and_noise():
    data = ToyRegression(train_inter=[(-4, -1), (1, 4)], num_train=21, test_inter=(-4, 4), num_test=30,
                         val_inter=(-2, 2), num_val=5, map_function=np.sin, std=0.5, rseed=3)
    x, y = data.get_train_inputs(), data.get_train_outputs()
    assert x.shape == (21, 1) and data.num_test_samples == 30 and data.num_val_samples == 5
    assert ((np.abs(x) >= 1) & (np.abs(x) <= 4)).all()
    # Test targets are noise-free by default; training targets carry noise of std 0.5.
    assert np.allclose(data.get_test_outputs(), np.sin(data.get_test_inputs()))
    assert 0.2 < np.std(y - np.sin(x)) < 0.9
    again = ToyRegression(train_inter=[(-4, -1), (1, 4)], num_train=21, map_function=np.sin, std=0.5, rseed=3,
                          test_inter=(-4, 4), num_test=30, val_inter=(-2, 2), num_val=5)
    assert np.array_equal(again.get_train_outputs(), y)
    assert data.train_x_range == (-4, 4) and not data.classification


def test_heteroscedastic_noise_and_errors(tmp_path):
    data = ToyRegression(num_train=200, std=lambda x: 0.01 * (x > 0), rseed=0)
    x, y = data.get_train_inputs(), data.get_train_outputs()
    assert np.allclose(y[x <= 0], x[x <= 0]) and not np.allclose(y[x > 0], x[x > 0])
    data.plot_dataset(show=False, filename=str(tmp_path / 'data.png'))
    grid = np.linspace(-10, 10, 20)
    data.plot_predictive_distribution(grid, grid, np.ones(20), show=False, filename=str(tmp_path / 'pred.png'))
    assert (tmp_path / 'pred.png').exists()
    with pytest.raises(ValueError, match='num_val'):
        ToyRegression(val_inter=(0, 1))
    with pytest.raises(ValueError, match='std'):
        ToyRegression(std=-1.)
