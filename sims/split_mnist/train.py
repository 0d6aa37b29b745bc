"""Split MNIST with a task-conditioned hypernetwork (or EWC, SI, HAT, fine-tuning, from-scratch baselines).

    python sims/split_mnist/train.py                      # defaults: hypernetwork, CL1, MLP 100-100
    python sims/split_mnist/train.py --net_type lenet
    python sims/split_mnist/train.py --cl_scenario 3      # task identity inferred by prediction entropy
    python sims/split_mnist/train.py --use_cuda
    python sims/split_mnist/train.py --method hat         # HAT unit masks (task identity given, CL1 only)

Writes config.json, results.json, acc_matrix.png, tensorboardX logs and a checkpoint to --out_dir.
"""
import os
import sys

if __name__ == '__main__':  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from sims.common.cl_data import split_mnist_tasks  # noqa: E402
from sims.common.cl_train import run  # noqa: E402
from sims.split_mnist.train_args import parse_cmd_arguments  # noqa: E402


def build_data(config, device):
    return split_mnist_tasks(config.data_dir, device, num_tasks=config.num_tasks,
                             num_classes_per_task=config.num_classes_per_task)


def main(argv=None):
    """Run split MNIST with the options in ``argv``; returns the content of results.json."""
    return run(parse_cmd_arguments(argv), build_data, 'split_mnist')


if __name__ == '__main__':
    main()
