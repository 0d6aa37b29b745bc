"""Bookkeeping shared by all single-chain samplers: state, trajectory, counters, logging.

The sampling loops never synchronise with the host per state: acceptance and divergence counters are tensors,
and the scalars for the logger/TensorBoard are buffered as tensors and converted in one go every
``log_interval`` states (and at the end of each ``simulate_chain`` call).
"""
import torch

from .energy import PotentialEvaluator
from .trajectory import TrajectoryRecorder


def check_position(name, position):
    """Validate a chain's initial position: a floating-point tensor ``[D]`` with ``D >= 1``."""
    if not isinstance(position, torch.Tensor):
        raise TypeError(f'{name}: expected a torch.Tensor, got {type(position).__name__}')
    if position.ndim != 1 or position.numel() == 0:
        raise ValueError(f'{name}: expected a flat vector [D] with D >= 1 (flatten network weights first), '
                         f'got shape {list(position.shape)}')
    if not position.is_floating_point():
        raise TypeError(f'{name}: expected a floating-point tensor, got {position.dtype}')


def check_num_states(n):
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f'n: expected an int >= 0, got {n!r}')


class MarkovChain:
    """State and records of one Markov chain; subclasses implement the transition.

    Args:
        initial_position (torch.Tensor): ``[D]``.
        pot_energy_func (callable): the potential :math:`U(q) = -\\log \\pi(q) + \\text{const}`.
        logger (logging.Logger, optional): progress messages every ``log_interval`` states.
        log_interval (int): states between log messages (and between TensorBoard flushes).
        writer (tensorboardX.SummaryWriter, optional): receives per-state scalars.
        writer_tag (str): prefix of the TensorBoard tags.
        thin (int): keep only every ``thin``-th state in :attr:`position_trajectory`.
        stream_dir (str, optional): stream kept states to chunk files in this folder instead of memory
            (see :mod:`utils.mcmc.trajectory`).
        generator (torch.Generator, optional): the chain's own random stream (on the position's device);
            the global one when None.
    """
    _tag = 'mcmc'

    def __init__(self, initial_position, pot_energy_func, logger=None, log_interval=100, writer=None,
                 writer_tag='', thin=1, stream_dir=None, generator=None):
        check_position('initial_position', initial_position)
        if isinstance(log_interval, bool) or not isinstance(log_interval, int) or log_interval < 1:
            raise ValueError(f'log_interval: expected an int >= 1, got {log_interval!r}')
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f'generator: expected a torch.Generator, got {type(generator).__name__}')
        self._position = initial_position.detach().clone()
        self._evaluator = PotentialEvaluator(pot_energy_func)
        self._generator = generator
        self._logger = logger
        self._log_interval = log_interval
        self._writer = writer
        self._writer_tag = writer_tag
        self._recorder = TrajectoryRecorder(self._position, thin=thin, stream_dir=stream_dir)
        self._num_states = 0
        self._accept_sum = torch.zeros((), device=self._position.device, dtype=self._position.dtype)
        self._num_divergent = torch.zeros((), device=self._position.device, dtype=torch.long)
        self._log_buffer = []

    @property
    def current_position(self):
        """The latest state :math:`q(t)`, ``[D]``."""
        return self._position

    @property
    def num_states(self):
        """How many states :meth:`simulate_chain` has produced so far (warm-up excluded)."""
        return self._num_states

    @property
    def position_trajectory(self):
        """The kept states (in memory), starting with the initial position; see ``thin`` and ``stream_dir``."""
        return self._recorder.positions

    def clear_position_trajectory(self, n=None):
        """Drop the first ``n`` kept states (e.g. burn-in), or all when ``n`` is None; counters stay."""
        self._recorder.clear(n)

    def flush_trajectory(self):
        """Write in-memory states to ``stream_dir`` now (no-op when not streaming)."""
        self._recorder.flush()

    @property
    def acceptance_probability(self):
        """Mean acceptance statistic over the states so far (1 before the first state). Syncs with the host."""
        if self._num_states == 0:
            return 1.0
        return float(self._accept_sum) / self._num_states

    @property
    def num_divergent(self):
        """How many transitions diverged (non-finite or exploding energy); they are rejected, never raised."""
        return int(self._num_divergent)

    @property
    def _generators(self):
        return None if self._generator is None else [self._generator]

    def _commit(self, position, accept_stat, divergent, scalars):
        """Record one new state ``position`` ``[D]``; ``scalars()`` returns the log names and their 0-d
        tensors, and is called only when a writer or logger will read them (building them costs tensor ops)."""
        self._position = position
        self._num_states += 1
        self._accept_sum = self._accept_sum + accept_stat
        self._num_divergent = self._num_divergent + divergent
        self._recorder.append(position)
        if self._writer is not None or self._logger is not None:
            self._log_buffer.append(scalars())
            if self._num_states % self._log_interval == 0:
                self._flush_log()

    def _flush_log(self):
        """Convert the buffered scalars in one host transfer and hand them to the writer and the logger."""
        if not self._log_buffer:
            return
        names = list(self._log_buffer[0])
        values = torch.stack([torch.stack([s[k].reshape(()).to(torch.float64) for k in names])
                              for s in self._log_buffer]).tolist()
        first_step = self._num_states - len(values) + 1
        if self._writer is not None:
            for offset, row in enumerate(values):
                for name, value in zip(names, row):
                    self._writer.add_scalar(f'{self._writer_tag}{self._tag}/{name}', value,
                                            global_step=first_step + offset)
        if self._logger is not None:
            summary = ', '.join(f'{k}: {v:.4g}' for k, v in zip(names, values[-1]))
            self._logger.debug(f'{self._tag.upper()} state {self._num_states}: {summary} - '
                               f'acceptance {100 * self.acceptance_probability:.1f}%')
        self._log_buffer = []
