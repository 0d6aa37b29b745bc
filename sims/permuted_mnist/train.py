"""Permuted MNIST with a task-conditioned hypernetwork (or EWC, SI, fine-tuning, from-scratch baselines).

    python sims/permuted_mnist/train.py                   # defaults: hypernetwork, CL1, MLP 300-300
    python sims/permuted_mnist/train.py --cl_scenario 3   # task identity inferred by prediction entropy

Writes config.json, results.json, acc_matrix.png, tensorboardX logs and a checkpoint to --out_dir.
"""
import os
import sys

if __name__ == '__main__':  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from sims.common.cl_data import permuted_mnist_tasks  # noqa: E402
from sims.common.cl_train import run  # noqa: E402
from sims.permuted_mnist.train_args import parse_cmd_arguments  # noqa: E402


def build_data(config, device):
    return permuted_mnist_tasks(config.data_dir, device, num_tasks=config.num_tasks,
                                data_random_seed=config.data_random_seed)


def main(argv=None):
    """Run permuted MNIST with the options in ``argv``; returns the content of results.json."""
    return run(parse_cmd_arguments(argv), build_data, 'permuted_mnist')


if __name__ == '__main__':
    main()
