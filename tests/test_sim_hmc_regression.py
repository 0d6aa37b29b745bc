"""A short real run of sims/hmc_regression/train.py: the posterior predictive must fit the toy data."""
import os

import pytest

from sims.hmc_regression import train
from sims.hmc_regression.train_args import parse_cmd_arguments


@pytest.mark.parametrize('sampler', ['hmc', 'nuts'])
def test_short_run_fits_held_out_points(tmp_path, sampler):
    out = str(tmp_path / sampler)
    # 150 + 150 transitions: long enough that the chains' predictions agree robustly (split R-hat 1.19-1.41 over
    # seeds 1-6 for HMC); 60 + 80 left R-hat between 1.3 and 2.1 depending on the seed and float rounding.
    args = ['--out_dir', out, '--sampler', sampler, '--num_chains', '2', '--num_warmup', '150', '--num_samples',
            '150', '--num_steps', '20', '--max_tree_depth', '5', '--random_seed', '1']
    results = train.run(parse_cmd_arguments(args))
    # Noise std is 0.1: a fitted predictive mean is within ~2 noise std of sin(x) on held-out points.
    assert results['rmse_test'] < 0.2
    # Allow a few divergent transitions (rejected, counted), not many.
    assert results['rhat_pred_max'] < 1.6 and results['divergent'] < 0.1 * 2 * 150
    for name in ('predictive.png', 'traces.png', 'diagnostics.txt', 'samples.pt'):
        assert os.path.exists(os.path.join(out, name))


def test_bad_options_are_rejected():
    with pytest.raises(SystemExit):
        parse_cmd_arguments(['--num_chains', '0'])
    with pytest.raises(SystemExit):
        parse_cmd_arguments(['--stepsize', '-1'])
