r"""Several chains of :class:`HMC` or :class:`NUTS`, simulated together.

Chains with the same potential, settings and kind of metric advance as **one batch**: each leapfrog step is
one call of the potential (and one gradient) for all of them. HMC chains accept or reject per chain with tensor
ops. NUTS chains build their own trees of their own depths; each leapfrog step evaluates only the chains still
building, and a chain whose tree has stopped drops out of the batch rather than being run to the deepest tree
(see :mod:`utils.mcmc.nuts`). With per-chain generators a batch reproduces the chains run one by one.
NUTS chains can instead run one after another in ``num_parallel`` threads (each chain owns its state, so
threads share nothing mutable).
"""
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import torch

from .chain import check_num_states, check_position
from .hmc_kernel import HMC, chain_generators, stack_inv_mass, stack_state, warmup_chains
from .nuts import NUTS


class MultiChainHMC:
    r"""Run several :class:`HMC` (batched) or :class:`NUTS` chains from different initial positions.

    Args:
        initial_positions (list): one initial position ``[D]`` per chain (all of the same shape).
        pot_energy_func (callable or list): the potential, or one per chain. Chains sharing one function are
            batched; for a batch, a function accepting ``[C, D]`` and returning ``[C]`` is fastest.
        chain_type (str): ``'hmc'`` or ``'nuts'``.
        **kwargs: passed to each chain's constructor, except

            - ``writer``: a ``SummaryWriter`` is shared with per-chain tags ``<writer_tag>chain_<i>/``; a string
              is a folder, and each chain gets its own writer in ``<folder>/chain_<i>``;
            - ``logger``: a ``logging.Logger`` goes to the first chain only; a list gives one per chain (None
              entries get a console logger naming the chain);
            - ``generator``: a list of ``torch.Generator``, one per chain;
            - ``stream_dir``: a folder; chain ``i`` streams to ``<folder>/chain_<i>``.
    """

    def __init__(self, initial_positions, pot_energy_func, chain_type='hmc', **kwargs):
        if chain_type not in ('hmc', 'nuts'):
            raise ValueError(f"chain_type: expected 'hmc' or 'nuts', got {chain_type!r}")
        if not isinstance(initial_positions, (list, tuple)) or not initial_positions:
            raise ValueError('initial_positions: expected a non-empty list of position vectors')
        num_chains = len(initial_positions)
        for index, position in enumerate(initial_positions):
            check_position(f'initial_positions[{index}]', position)
            if position.shape != initial_positions[0].shape:
                raise ValueError(f'initial_positions[{index}]: expected shape {list(initial_positions[0].shape)}, '
                                 f'got {list(position.shape)}')
        funcs = pot_energy_func if isinstance(pot_energy_func, (list, tuple)) else [pot_energy_func] * num_chains
        if len(funcs) != num_chains:
            raise ValueError(f'pot_energy_func: expected {num_chains} functions, got {len(funcs)}')
        per_chain = [dict(kwargs) for _ in range(num_chains)]
        self._own_writers = []
        writer = kwargs.get('writer')
        if isinstance(writer, str):
            from tensorboardX import SummaryWriter
            self._own_writers = [SummaryWriter(logdir=os.path.join(writer, f'chain_{i}')) for i in range(num_chains)]
            for args, own in zip(per_chain, self._own_writers):
                args['writer'] = own
        elif writer is not None:
            for index, args in enumerate(per_chain):
                args['writer_tag'] = f"{kwargs.get('writer_tag', '')}chain_{index}/"
        logger = kwargs.get('logger')
        if isinstance(logger, (list, tuple)):
            if len(logger) != num_chains:
                raise ValueError(f'logger: expected {num_chains} loggers, got {len(logger)}')
            for index, args in enumerate(per_chain):
                args['logger'] = logger[index] if logger[index] is not None else _chain_logger(index)
        elif logger is not None:
            for args in per_chain[1:]:
                args['logger'] = None
        generators = kwargs.get('generator')
        if generators is not None:
            if not isinstance(generators, (list, tuple)) or len(generators) != num_chains:
                raise ValueError(f'generator: expected a list of {num_chains} torch.Generator objects')
            for args, generator in zip(per_chain, generators):
                args['generator'] = generator
        if kwargs.get('stream_dir') is not None:
            for index, args in enumerate(per_chain):
                args['stream_dir'] = os.path.join(kwargs['stream_dir'], f'chain_{index}')
        chain_class = HMC if chain_type == 'hmc' else NUTS
        self._chain_type = chain_type
        self._chains = [chain_class(position, func, **args)
                        for position, func, args in zip(initial_positions, funcs, per_chain)]

    @property
    def num_chains(self):
        """The number of chains."""
        return len(self._chains)

    @property
    def chains(self):
        """The chain objects (:class:`HMC` or :class:`NUTS`), e.g. for their trajectories."""
        return self._chains

    @property
    def avg_acceptance_probability(self):
        """The mean of the chains' :attr:`acceptance_probability`."""
        return sum(c.acceptance_probability for c in self._chains) / self.num_chains

    def _select(self, num_chains):
        if isinstance(num_chains, (list, tuple)):
            selected = sorted(set(num_chains))
            for index in selected:
                if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.num_chains:
                    raise ValueError(f'num_chains: expected chain indices in [0, {self.num_chains}), got {index!r}')
            return selected
        if isinstance(num_chains, bool) or not isinstance(num_chains, int) or num_chains == 0 or num_chains < -1:
            raise ValueError(f'num_chains: expected -1, a positive int or a list of indices, got {num_chains!r}')
        if num_chains == -1:
            return list(range(self.num_chains))
        # The k chains that are behind (fewest states) catch up; ties keep chain order.
        order = sorted(range(self.num_chains), key=lambda i: self._chains[i].num_states)
        return sorted(order[:min(num_chains, self.num_chains)])

    def _batches(self, indices):
        """Group chains that can share one batched call: same potential, steps and kind of metric."""
        groups = {}
        for index in indices:
            chain = self._chains[index]
            key = (id(chain._evaluator.func), chain._batch_key(),
                   id(chain._inv_mass) if chain._inv_mass.dense else 'diag')
            groups.setdefault(key, []).append(chain)
        return list(groups.values())

    def simulate_chains(self, num_states, num_chains=-1, num_parallel=1):
        """Add ``num_states`` states to each selected chain.

        Args:
            num_states (int): new states per chain.
            num_chains (int or list): -1 for all chains; ``k`` for the ``k`` chains with the fewest states so
                far; or a list of chain indices.
            num_parallel (int): 1 (default): the selected chains advance as batches. NUTS only, ``k > 1``:
                the chains run one by one in ``k`` threads instead (for a potential that cannot be batched).
        """
        check_num_states(num_states)
        if isinstance(num_parallel, bool) or not isinstance(num_parallel, int) or num_parallel < 1:
            raise ValueError(f'num_parallel: expected an int >= 1, got {num_parallel!r}')
        indices = self._select(num_chains)
        if self._chain_type == 'nuts' and num_parallel > 1:
            chains = [self._chains[i] for i in indices]
            with ThreadPoolExecutor(max_workers=num_parallel) as pool:
                list(pool.map(lambda c: c.simulate_chain(num_states), chains))
            return
        for batch in self._batches(indices):
            _simulate_batch(batch, num_states)

    def warmup(self, num_warmup, target_accept=0.8, adapt_mass=True):
        """Adapt every chain's step size and diagonal mass (see :meth:`HMC.warmup`), batched as in sampling."""
        for batch in self._batches(range(self.num_chains)):
            warmup_chains(batch, num_warmup, target_accept, adapt_mass)

    def close(self):
        """Close the writers this object created (when ``writer`` was a folder)."""
        for writer in self._own_writers:
            writer.close()
        self._own_writers = []


def _simulate_batch(chains, num_states):
    """Advance the chains of one group (HMC or NUTS) together for ``num_states`` transitions."""
    lead = chains[0]
    position, potential, grad = stack_state(chains)
    stepsize = torch.tensor([c.stepsize for c in chains], device=position.device, dtype=position.dtype)
    stepsize = stepsize.unsqueeze(1)
    inv_mass = stack_inv_mass(chains)
    generators = chain_generators(chains)
    for _ in range(num_states):
        out = lead._transition(position, potential, grad, stepsize, inv_mass, generators)
        position, potential, grad = out.position, out.potential, out.grad
        for index, chain in enumerate(chains):
            chain._record(out, index)
    for index, chain in enumerate(chains):
        chain._potential, chain._grad = potential[index:index + 1], grad[index:index + 1]
        chain._flush_log()


def _chain_logger(chain_id):
    """A console logger whose messages name the chain."""
    logger = logging.getLogger(f'hnetkit_mcmc_chain{chain_id}')
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(f'%(asctime)s - %(levelname)s - chain {chain_id} - %(message)s'))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    return logger
