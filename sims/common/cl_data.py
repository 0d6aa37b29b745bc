"""Task data of a continual-learning benchmark, held as device tensors for a sync-free training loop.

Each task ``t`` has training and test inputs ``[N_t, 784]`` and *local* labels in ``[0, classes_per_task)``;
the global class of a sample is ``t * classes_per_task + local`` for split benchmarks and ``local`` for
permuted ones. Permuted MNIST keeps one copy of the images and one permutation ``[784]`` per task and applies
it while gathering a batch (``x[idx][:, perm]``), so memory does not grow with the number of tasks.
"""
import numpy as np
import torch

__all__ = ['TaskData', 'split_mnist_tasks', 'permuted_mnist_tasks']


class TaskData:
    """Tensors of all tasks on one device.

    Args:
        train_x / test_x (list of Tensor): Per task ``[N_t, D]`` inputs, or one shared ``[N, D]`` tensor
            (permuted benchmarks) repeated for every task.
        train_y / test_y (list of Tensor): Per task local labels ``[N_t]`` (int64).
        classes_per_task (int): Size of each task's label space.
        split_classes (bool): Whether tasks have disjoint classes (global = t * classes_per_task + local).
        permutations (Tensor, optional): ``[T, D]`` input permutations applied on the fly.
    """

    def __init__(self, train_x, train_y, test_x, test_y, classes_per_task, in_shape, split_classes,
                 permutations=None, handler_factory=None):
        self.handler_factory = handler_factory
        self.train_x, self.train_y, self.test_x, self.test_y = train_x, train_y, test_x, test_y
        self.num_tasks = len(train_y)
        self.classes_per_task = classes_per_task
        self.in_shape = list(in_shape)
        self.split_classes = split_classes
        self.permutations = permutations

    def _inputs(self, x, task_id, rows=None):
        picked = x if rows is None else x[rows]
        if self.permutations is not None:
            picked = picked[:, self.permutations[task_id]]
        return picked

    def in_shape_for(self, net_type):
        """Input shape a main network of ``net_type`` is built with: flat for MLPs, image-shaped else."""
        return [int(np.prod(self.in_shape))] if net_type in ('mlp', 'chunked_mlp') else self.in_shape

    def fisher_handler(self, task_id):
        """The dataset handler of task ``task_id`` (what :func:`utils.ewc_regularizer.compute_fisher` reads)."""
        return self.handler_factory(task_id)

    def num_train(self, task_id):
        return self.train_y[task_id].shape[0]

    def num_test(self, task_id):
        return self.test_y[task_id].shape[0]

    def sample_batch(self, task_id, batch_size, generator):
        """Uniformly drawn training batch (with replacement): ``([B, D], [B])``, no host sync."""
        y = self.train_y[task_id]
        rows = torch.randint(y.shape[0], (batch_size,), generator=generator, device=y.device)
        return self._inputs(self.train_x[task_id], task_id, rows), y[rows]

    def train_batches(self, task_id, batch_size):
        """All training samples in order, in chunks: yields ``([b, D], [b])`` (used for Fisher estimates)."""
        y = self.train_y[task_id]
        for start in range(0, y.shape[0], batch_size):
            rows = torch.arange(start, min(start + batch_size, y.shape[0]), device=y.device)
            yield self._inputs(self.train_x[task_id], task_id, rows), y[rows]

    def test_set(self, task_id):
        """``([N_t, D], [N_t])`` test inputs and local labels of one task."""
        return self._inputs(self.test_x[task_id], task_id), self.test_y[task_id]

    def to_global(self, task_id, local_labels):
        return local_labels + task_id * self.classes_per_task if self.split_classes else local_labels


def _labels(handler, getter):
    out = np.asarray(getattr(handler, getter)(use_one_hot=False)).reshape(-1)
    return torch.as_tensor(out, dtype=torch.int64)


# MNIST training-set pixel mean and standard deviation: inputs are standardised once, on the whole tensor.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def _standardized(arr, device, standardize):
    x = torch.as_tensor(np.asarray(arr, dtype=np.float32)).to(device)
    return (x - MNIST_MEAN) / MNIST_STD if standardize else x


def split_mnist_tasks(data_dir, device, num_tasks=5, num_classes_per_task=2, standardize=True):
    """Split MNIST: task ``t`` holds digits ``{t*c, ..., t*c + c - 1}`` with local labels ``0..c-1``."""
    from data.special.split_mnist import get_split_mnist_handlers

    handlers = get_split_mnist_handlers(data_dir, use_one_hot=False, validation_size=0,
                                        num_classes_per_task=num_classes_per_task, num_tasks=num_tasks)
    as_x = lambda arr: _standardized(arr, device, standardize)  # noqa: E731
    return TaskData([as_x(h.get_train_inputs()) for h in handlers],
                    [_labels(h, 'get_train_outputs').to(device) for h in handlers],
                    [as_x(h.get_test_inputs()) for h in handlers],
                    [_labels(h, 'get_test_outputs').to(device) for h in handlers],
                    num_classes_per_task, handlers[0].in_shape, split_classes=True,
                    handler_factory=handlers.__getitem__)


def permuted_mnist_tasks(data_dir, device, num_tasks=10, data_random_seed=42, standardize=True):
    """Permuted MNIST: task ``t`` sees all digits with its own fixed pixel permutation (drawn from
    ``numpy.random.RandomState(data_random_seed)``, one ``permutation(784)`` per task)."""
    from data.mnist_data import MNISTData

    mnist = MNISTData(data_dir, use_one_hot=False, validation_size=0)
    rand = np.random.RandomState(data_random_seed)
    dim = int(np.prod(mnist.in_shape))
    perms = torch.as_tensor(np.stack([rand.permutation(dim) for _ in range(num_tasks)]), device=device)
    train_x = _standardized(mnist.get_train_inputs(), device, standardize)
    test_x = _standardized(mnist.get_test_inputs(), device, standardize)
    train_y = _labels(mnist, 'get_train_outputs').to(device)
    test_y = _labels(mnist, 'get_test_outputs').to(device)

    def handler(task_id):
        from data.special.permuted_mnist import PermutedMNIST

        return PermutedMNIST(data_dir, use_one_hot=True, permutation=perms[task_id].cpu().numpy(), source=mnist)

    return TaskData([train_x] * num_tasks, [train_y] * num_tasks, [test_x] * num_tasks, [test_y] * num_tasks,
                    10, mnist.in_shape, split_classes=False, permutations=perms, handler_factory=handler)
