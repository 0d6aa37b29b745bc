"""Storage of a chain's visited positions: in memory, thinned, or streamed to disk in chunks.

A long chain on a large network would otherwise keep every state in memory. With ``thin=k`` only every k-th
state is kept; with ``stream_dir`` the kept states are written to ``stream_dir/chunk_000000.pt``, ... in chunks
(each file written atomically: temp file, then ``os.replace``) and dropped from memory.
:func:`load_streamed_trajectory` reads them back as one ``[N, D]`` tensor.
"""
import glob
import os

import torch


class TrajectoryRecorder:
    """Keeps every ``thin``-th state of a chain, in memory or streamed to ``stream_dir``.

    Args:
        initial_position (torch.Tensor): ``[D]``, stored as the first element (state 0).
        thin (int): keep states ``thin, 2 thin, ...`` (the initial position is always kept).
        stream_dir (str, optional): folder for chunk files; created when missing.
        chunk_size (int): kept states per chunk file.
    """

    def __init__(self, initial_position, thin=1, stream_dir=None, chunk_size=1000):
        if isinstance(thin, bool) or not isinstance(thin, int) or thin < 1:
            raise ValueError(f'thin: expected an int >= 1, got {thin!r}')
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f'chunk_size: expected an int >= 1, got {chunk_size!r}')
        self.thin = thin
        self.stream_dir = stream_dir
        self.chunk_size = chunk_size
        self.positions = [initial_position]
        self._num_seen = 0
        self._num_chunks = 0
        if stream_dir is not None:
            os.makedirs(stream_dir, exist_ok=True)
            self._num_chunks = len(glob.glob(os.path.join(stream_dir, 'chunk_*.pt')))

    def append(self, position):
        """Offer the next state ``[D]``; it is kept when its index is a multiple of ``thin``."""
        self._num_seen += 1
        if self._num_seen % self.thin:
            return
        self.positions.append(position)
        if self.stream_dir is not None and len(self.positions) >= self.chunk_size:
            self.flush()

    def flush(self):
        """Write the in-memory states to the next chunk file and drop them (no-op without ``stream_dir``)."""
        if self.stream_dir is None or not self.positions:
            return
        path = os.path.join(self.stream_dir, f'chunk_{self._num_chunks:06d}.pt')
        tmp_path = path + '.tmp'
        torch.save(torch.stack([p.detach().cpu() for p in self.positions]), tmp_path)
        os.replace(tmp_path, path)
        self._num_chunks += 1
        self.positions = []

    def clear(self, n=None):
        """Drop the first ``n`` in-memory states (all when ``n`` is None)."""
        self.positions = [] if n is None else self.positions[n:]


def load_streamed_trajectory(stream_dir):
    """All states streamed to ``stream_dir``, in order, as one tensor ``[N, D]``."""
    paths = sorted(glob.glob(os.path.join(stream_dir, 'chunk_*.pt')))
    if not paths:
        raise ValueError(f'stream_dir: no chunk files found in {stream_dir!r}')
    return torch.cat([torch.load(p) for p in paths])
