"""A short real run of sims/hmc_regression/train.py: the posterior predictive must fit the toy data."""
import os

import pytest

from sims.hmc_regression import train
from sims.hmc_regression.train_args import parse_cmd_arguments


@pytest.mark.parametrize('sampler', ['hmc', 'nuts'])
def test_short_run_fits_held_out_points(tmp_path, sampler):
    out = str(tmp_path / sampler)
    args = ['--out_dir', out, '--sampler', sampler, '--num_chains', '2', '--num_warmup', '60', '--num_samples',
            '80', '--num_steps', '20', '--max_tree_depth', '5', '--random_seed', '1']
    results = train.run(parse_cmd_arguments(args))
    # Noise std is 0.1: a fitted predictive mean is within ~2 noise std of sin(x) on held-out points.
    assert results['rmse_test'] < 0.2
    # A 60-step warm-up is short: allow a few divergent transitions (rejected, counted), not many.
    assert results['rhat_pred_max'] < 2.0 and results['divergent'] < 0.1 * 2 * 80
    for name in ('predictive.png', 'traces.png', 'diagnostics.txt', 'samples.pt'):
        assert os.path.exists(os.path.join(out, name))


def test_bad_options_are_rejected():
    with pytest.raises(SystemExit):
        parse_cmd_arguments(['--num_chains', '0'])
    with pytest.raises(SystemExit):
        parse_cmd_arguments(['--stepsize', '-1'])
