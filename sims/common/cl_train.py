"""The continual-learning run shared by the MNIST experiments: train tasks one after another, evaluate all
tasks seen so far after each, and leave behind what a researcher looks at.

Outputs in ``out_dir``: ``config.json``, ``logfile.txt``, tensorboardX scalars in ``summary/``,
``results.json`` (rewritten after every task and always carrying ``finished``), ``acc_matrix.png`` and the
checkpoint ``checkpoints/cl_state`` (overwritten atomically after each task; ``--resume`` continues from it).

``acc[i][j]`` is the test accuracy (%) on task ``j`` after training tasks ``0..i`` (``None`` for ``j > i``).
CL1 uses the task identity. CL3 infers it: for the hypernetwork, the task whose weights give the
lowest-entropy prediction ``argmin_k H(softmax(f(x; h(e_k))))`` (for HAT likewise over each task's masks and
head); for a single network, the argmax over the logits of all classes seen so far.
"""
import json
import os
import random
import time

import numpy as np
import torch
from tqdm import tqdm

from sims.common.cl_methods import make_method
from utils import sim_utils, torch_ckpts

__all__ = ['run', 'evaluate']

CKPT_NAME = 'cl_state'


def _correct_counts(method, data, num_seen, eval_batch_size):
    """Per task j < num_seen: (#correct with task identity, #correct with task inference, #task inferred)."""
    counts = []
    for j in range(num_seen):
        x_all, y_all = data.test_set(j)
        cl1 = cl3 = inferred = torch.zeros((), dtype=torch.int64, device=y_all.device)
        for start in range(0, y_all.shape[0], eval_batch_size):
            x, y = x_all[start:start + eval_batch_size], y_all[start:start + eval_batch_size]
            cl1 = cl1 + (method.task_logits(j, x).argmax(-1) == y).sum()
            y_global = data.to_global(j, y)
            if method.uses_task_inference:
                logits = method.stacked_task_logits(x, num_seen)  # [K, b, c]
                log_p = torch.log_softmax(logits, -1)
                entropy = -(log_p.exp() * log_p).sum(-1)  # [K, b]
                task_hat = entropy.argmin(0)
                local_hat = logits.argmax(-1).gather(0, task_hat[None]).squeeze(0)
                predicted = data.to_global(0, local_hat) + (task_hat * data.classes_per_task
                                                             if data.split_classes else 0)
                inferred = inferred + (task_hat == j).sum()
            else:
                predicted = method.class_incremental_logits(x, num_seen).argmax(-1)
            cl3 = cl3 + (predicted == y_global).sum()
        counts.append(torch.stack([cl1, cl3, inferred]))
    return torch.stack(counts).cpu()  # one host sync per evaluation


def evaluate(method, data, num_seen, eval_batch_size=2000):
    """Test accuracies (%) of tasks ``0..num_seen-1``: ``{'cl1': [...], 'cl3': [...], 'task_inference':
    [...] or None}``."""
    counts = _correct_counts(method, data, num_seen, eval_batch_size).double()
    sizes = torch.tensor([data.num_test(j) for j in range(num_seen)], dtype=torch.float64)
    pct = (100.0 * counts / sizes[:, None]).tolist()
    return {'cl1': [row[0] for row in pct], 'cl3': [row[1] for row in pct],
            'task_inference': [row[2] for row in pct] if method.uses_task_inference else None}


def _rng_state(generator):
    return {'torch': torch.get_rng_state(), 'numpy': np.random.get_state(), 'random': random.getstate(),
            'batches': generator.get_state(),
            'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(state, generator):
    torch.set_rng_state(state['torch'])
    np.random.set_state(state['numpy'])
    random.setstate(state['random'])
    generator.set_state(state['batches'])
    if state['cuda'] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def _mean(values):
    return float(sum(values) / len(values)) if values else None


def _write_results(out_dir, results):
    path = os.path.join(out_dir, 'results.json')
    tmp = path + '.tmp'
    with open(tmp, 'w') as file:
        json.dump(results, file, indent=2)
    os.replace(tmp, path)


def _plot_matrix(out_dir, matrix, title):
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    size = len(matrix)
    values = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * size, 0.8 + 0.8 * size))
    image = ax.imshow(values, cmap='viridis', vmin=np.nanmin(values) if np.isfinite(values).any() else 0,
                      vmax=100)
    for i in range(size):
        for j in range(i + 1):
            ax.text(j, i, '%.2f' % values[i, j], ha='center', va='center', fontsize=7, color='w')
    ax.set_xticks(range(size))
    ax.set_yticks(range(size))
    ax.set_xlabel('evaluated task j')
    ax.set_ylabel('after training task i')
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label='test accuracy (%)')
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, 'acc_matrix.png'), dpi=120)
    plt.close(fig)


def run(config, build_data, experiment):
    """Run a continual-learning experiment as ``config`` describes.

    Args:
        config (argparse.Namespace): Options of the experiment's ``train_args``.
        build_data (callable): ``build_data(config, device) -> sims.common.cl_data.TaskData``.
        experiment (str): Name written to ``results.json`` and the plot title.

    Returns:
        dict: the content of ``results.json``.
    """
    start_time = time.time()
    device, writer, logger = sim_utils.setup_environment(config, logger_name=experiment + '_logger')
    results = {'experiment': experiment, 'method': config.method, 'cl_scenario': config.cl_scenario,
               'finished': False, 'acc_matrix': [], 'acc_matrix_cl3': [], 'task_inference_acc': None}
    ckpt_path = os.path.join(config.out_dir, 'checkpoints', CKPT_NAME)
    try:
        data = build_data(config, device)
        method = make_method(config, data, device)
        generator = torch.Generator(device=device)
        generator.manual_seed(config.random_seed)
        first_task = 0
        if config.resume and os.path.isfile(ckpt_path):
            ckpt = torch_ckpts.load_checkpoint(ckpt_path, method, device=device)
            first_task = ckpt['tasks_done']
            results.update(ckpt['results'])
            _set_rng_state(ckpt['rng'], generator)
            logger.info('Resumed from %s after %d task(s).' % (ckpt_path, first_task))
        elif config.resume:
            logger.info('No checkpoint at %s; starting from the first task.' % ckpt_path)
        last_task = data.num_tasks if config.stop_after_task == 0 else min(config.stop_after_task,
                                                                            data.num_tasks)
        for task_id in range(first_task, last_task):
            _train_task(config, method, data, task_id, generator, writer)
            scores = evaluate(method, data, task_id + 1, config.eval_batch_size)
            pad = [None] * (data.num_tasks - task_id - 1)
            results['acc_matrix'].append((scores['cl1'] if config.cl_scenario == 1 else scores['cl3']) + pad)
            results['acc_matrix_cl3'].append(scores['cl3'] + pad)
            if scores['task_inference'] is not None:
                results['task_inference_acc'] = scores['task_inference']
            for j in range(task_id + 1):
                writer.add_scalar('test/task_%d/acc_cl1' % j, scores['cl1'][j], task_id)
                writer.add_scalar('test/task_%d/acc_cl3' % j, scores['cl3'][j], task_id)
            current = results['acc_matrix'][-1][:task_id + 1]
            results['tasks_done'] = task_id + 1
            results['mean_acc_so_far'] = _mean(current)
            logger.info('After task %d: accuracies %s, mean %.2f%% (CL3 mean %.2f%%).' % (
                task_id, ', '.join('%.2f' % a for a in current), _mean(current), _mean(scores['cl3'])))
            torch_ckpts.save_checkpoint({'state_dict': method.state_dict(), 'tasks_done': task_id + 1,
                                         'results': dict(results), 'rng': _rng_state(generator)},
                                        ckpt_path, _mean(current))
            results['wall_time_s'] = time.time() - start_time
            _write_results(config.out_dir, results)
        if results.get('tasks_done', 0) == data.num_tasks:
            final = results['acc_matrix'][-1]
            results['final_accs'] = final
            results['final_mean_acc'] = _mean(final)
            results['final_accs_cl3'] = results['acc_matrix_cl3'][-1]
            results['final_mean_acc_cl3'] = _mean(results['final_accs_cl3'])
            results['finished'] = True
            logger.info('Final mean accuracy (CL%d): %.2f%%; CL3 (task inferred): %.2f%%.' % (
                config.cl_scenario, results['final_mean_acc'], results['final_mean_acc_cl3']))
        if results['acc_matrix']:
            _plot_matrix(config.out_dir, results['acc_matrix'],
                         '%s, %s, CL%d' % (experiment, config.method, config.cl_scenario))
    except BaseException as err:
        results['error'] = '%s: %s' % (type(err).__name__, err)
        raise
    finally:
        results['wall_time_s'] = time.time() - start_time
        _write_results(config.out_dir, results)
        writer.close()
    return results


def _train_task(config, method, data, task_id, generator, writer):
    method.start_task(task_id)
    log_every = config.val_iter
    progress = tqdm(range(config.n_iter), desc='task %d' % task_id, leave=False, mininterval=1.0,
                    disable=None)
    for it in progress:
        x, y = data.sample_batch(task_id, config.batch_size, generator)
        loss = method.train_step(task_id, x, y)
        if it % log_every == 0 or it == config.n_iter - 1:
            value = loss.item()  # host sync only at log intervals
            writer.add_scalar('train/task_%d/loss' % task_id, value, it)
            progress.set_postfix(loss='%.4f' % value)
    method.end_task(task_id, data)
