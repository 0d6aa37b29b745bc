"""Split MNIST experiment on the shipped MNIST: a short real run, kill-and-resume, outputs, CLI errors."""
import json
import os
import subprocess
import sys

import pytest

from sims.split_mnist import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'sims', 'split_mnist', 'train.py')
TINY = ['--n_iter', '25', '--batch_size', '32', '--mlp_arch', '20', '--hmlp_arch', '10',
        '--chmlp_chunk_size', '2000', '--cond_emb_size', '8', '--chunk_emb_size', '8', '--val_iter', '10']


def read_results(out_dir):
    with open(os.path.join(out_dir, 'results.json')) as file:
        return json.load(file)


def test_short_real_run_learns_every_task_and_writes_outputs(tmp_path):
    # 150 iterations per task (batch 64) reach >= 97 % on every task; measured about 99 %.
    out = str(tmp_path / 'run')
    results = train.main(['--n_iter', '150', '--batch_size', '64', '--out_dir', out])
    assert results['finished'] is True
    final = results['final_accs']
    assert len(final) == 5 and min(final) >= 97.0, final
    assert results['final_mean_acc'] == pytest.approx(sum(final) / 5)
    matrix = results['acc_matrix']
    assert [sum(v is not None for v in row) for row in matrix] == [1, 2, 3, 4, 5]
    assert 0 <= results['final_mean_acc_cl3'] <= 100 and len(results['task_inference_acc']) == 5
    for name in ('results.json', 'config.json', 'acc_matrix.png', 'logfile.txt',
                 os.path.join('checkpoints', 'cl_state')):
        assert os.path.isfile(os.path.join(out, name)), name
    assert any(f.startswith('events') for f in os.listdir(os.path.join(out, 'summary')))
    on_disk = read_results(out)
    assert on_disk['finished'] is True and on_disk['acc_matrix'] == matrix
    assert all(isinstance(v, float) for v in on_disk['final_accs'])


def test_stop_and_resume_reproduce_the_uninterrupted_run(tmp_path):
    full = train.main(TINY + ['--out_dir', str(tmp_path / 'full')])
    part_dir = str(tmp_path / 'part')
    partial = train.main(TINY + ['--out_dir', part_dir, '--stop_after_task', '2'])
    assert partial['finished'] is False and len(partial['acc_matrix']) == 2
    assert read_results(part_dir)['finished'] is False
    resumed = train.main(TINY + ['--out_dir', part_dir, '--resume'])
    assert resumed['finished'] is True
    assert resumed['acc_matrix'] == full['acc_matrix']
    assert resumed['acc_matrix_cl3'] == full['acc_matrix_cl3']


@pytest.mark.parametrize('method', ['ewc', 'online_ewc', 'si', 'fine_tune', 'from_scratch'])
def test_baseline_methods_run(tmp_path, method):
    results = train.main(TINY + ['--method', method, '--num_tasks', '2', '--n_iter', '60', '--beta', '1',
                                 '--n_fisher', '200', '--out_dir', str(tmp_path / method)])
    assert results['finished'] and len(results['final_accs']) == 2
    assert results['acc_matrix'][0][0] > 90.0  # the first binary task is learned in 60 steps


def test_class_incremental_scenario(tmp_path):
    hnet = train.main(TINY + ['--cl_scenario', '3', '--num_tasks', '2', '--out_dir', str(tmp_path / 'h')])
    assert hnet['acc_matrix'] == hnet['acc_matrix_cl3'] and hnet['finished']
    single = train.main(TINY + ['--cl_scenario', '3', '--num_tasks', '2', '--method', 'fine_tune',
                                '--out_dir', str(tmp_path / 'f')])
    assert single['acc_matrix'][0][0] > 90.0


def test_failure_still_writes_results_with_finished_false(tmp_path, monkeypatch):
    def broken_data(*args, **kwargs):
        raise OSError('disk gone')

    monkeypatch.setattr(train, 'split_mnist_tasks', broken_data)
    out = str(tmp_path / 'broken')
    with pytest.raises(OSError, match='disk gone'):
        train.main(TINY + ['--out_dir', out])
    results = read_results(out)
    assert results['finished'] is False and results['error'] == 'OSError: disk gone'


def test_help_lists_groups_and_bad_values_fail_in_one_line(capsys):
    proc = subprocess.run([sys.executable, SCRIPT, '--help'], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0
    for heading in ('Continual-learning method options', 'Continual learning options', 'Training options',
                    'Main network options', 'Hypernet options', 'Miscellaneous options'):
        assert heading + ':' in proc.stdout
    proc = subprocess.run([sys.executable, SCRIPT, '--lr', '-1'], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        'train.py: error: argument --lr: expected a finite number > 0, got -1 (see --help)']
    for argv, fragment in [(['--method', 'magic'], 'argument --method: invalid choice'),
                           (['--mlp_arch', '100,x'], 'argument --mlp_arch'),
                           (['--cl_scenario', '2'], 'argument --cl_scenario: invalid choice'),
                           (['--stop_after_task', '-1'], 'argument --stop_after_task')]:
        with pytest.raises(SystemExit) as info:
            train.main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and fragment in err, err


HAT_BUDGET = ['--method', 'hat', '--n_iter', '200', '--batch_size', '64', '--val_iter', '100']


def accuracy_drifts(matrix):
    """Per task j: |accuracy after the last task - accuracy right after task j| (percentage points)."""
    return [abs(matrix[-1][j] - matrix[j][j]) for j in range(len(matrix))]


def test_hat_learns_every_task_and_keeps_the_first_exactly(tmp_path):
    # 200 steps of batch 64 per task (about one pass, s annealed once): measured 97.4-99.95 % per task.
    results = train.main(HAT_BUDGET + ['--out_dir', str(tmp_path / 'hat')])
    assert results['finished'] is True
    assert min(results['final_accs']) >= 95.0, results['final_accs']
    drifts = accuracy_drifts(results['acc_matrix'])
    # Units used by task 0 are frozen, so its predictions cannot change (measured: identical, drift 0). One
    # test image of task 0 is 0.047 %: 0.01 demands the same count of correct predictions.
    assert drifts[0] <= 0.01, drifts
    # Later tasks too (measured 0 each); 0.1 (about two images) leaves room for a mask sigma(s_max e) that is
    # not exactly binary.
    assert max(drifts) <= 0.1, drifts


def test_hat_without_weight_masking_forgets(tmp_path, monkeypatch):
    # The same run with the gradient and step masking switched off: shared units drift and learned tasks
    # change (measured: up to 3.6 points; 0.05 on task 0, whose 0-vs-1 features survive), so the check of
    # the test above fails.
    import utils.hat as hat

    monkeypatch.setattr(hat.HATMasks, 'mask_weight_grads_', lambda *args, **kwargs: None)
    monkeypatch.setattr(hat, 'weight_grad_multiplier',
                        lambda out_prev, in_prev, shape: out_prev.new_ones([1] * len(shape)))
    results = train.main(HAT_BUDGET + ['--out_dir', str(tmp_path / 'unmasked')])
    assert max(accuracy_drifts(results['acc_matrix'])) > 0.5, results['acc_matrix']


def test_hat_resume_keeps_masks_and_embeddings(tmp_path):
    tiny_hat = TINY + ['--method', 'hat', '--num_tasks', '3']
    full = train.main(tiny_hat + ['--out_dir', str(tmp_path / 'full')])
    part_dir = str(tmp_path / 'part')
    train.main(tiny_hat + ['--out_dir', part_dir, '--stop_after_task', '2'])
    resumed = train.main(tiny_hat + ['--out_dir', part_dir, '--resume'])
    assert resumed['acc_matrix'] == full['acc_matrix']
    assert resumed['acc_matrix_cl3'] == full['acc_matrix_cl3']


def test_hat_help_and_cli_errors(capsys):
    from sims.split_mnist.train_args import build_parser

    text = ' '.join(build_parser().format_help().split())
    assert 'needs the task identity at test time' in text and '--hat_lambda' in text and '--hat_smax' in text
    config = train.parse_cmd_arguments(['--method', 'hat'])
    assert config.hat_lambda == 0.75 and config.hat_smax == 400.0
    for argv, fragment in [(['--cl_scenario', '3'], '--method hat needs the task identity at test time'),
                           (['--net_type', 'lenet'], '--method hat masks the hidden units of an MLP'),
                           (['--weight_decay', '0.1'], '--method hat needs --weight_decay 0'),
                           (['--hat_smax', '0.5'], 'argument --hat_smax: expected a number >= 1'),
                           (['--hat_lambda', '-1'], 'argument --hat_lambda')]:
        with pytest.raises(SystemExit) as info:
            train.main(['--method', 'hat'] + argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and fragment in err, err
