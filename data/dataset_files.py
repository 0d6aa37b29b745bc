"""Reading and fetching the raw files of real datasets.

- :func:`read_idx_gz`: parse a gzipped IDX file (the MNIST family's format) into
  a numpy array with one ``np.frombuffer`` call, after checking the MD5 of the
  uncompressed bytes against the published checksum.
- :func:`download_file`: fetch a URL into a folder atomically (temporary file in
  the same folder, then ``os.replace``), so an interrupted download never leaves
  a truncated file under the final name.
- :func:`find_folder_with`: the first folder among candidates that holds all of
  a dataset's files.

IDX layout (big endian): two zero bytes, a dtype code (``0x08`` = uint8), the
number of dimensions ``d``, then ``d`` uint32 sizes, then the data in C order.
"""
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zlib

import numpy as np

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype('>i2'), 0x0C: np.dtype('>i4'),
               0x0D: np.dtype('>f4'), 0x0E: np.dtype('>f8')}


def md5_of_bytes(data):
    """Hex MD5 digest of a bytes object."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5_of_file(path, chunk_size=1 << 20):
    """Hex MD5 digest of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(chunk_size), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _gunzip(compressed):
    """Decompress all gzip members of ``compressed`` in large one-shot calls
    (much faster than streaming through ``gzip.GzipFile``'s small reads)."""
    parts = []
    while compressed:
        decomp = zlib.decompressobj(wbits=31)
        parts.append(decomp.decompress(compressed))
        if not decomp.eof:
            raise EOFError('compressed stream ends before the end-of-stream marker (truncated)')
        compressed = decomp.unused_data.lstrip(b'\0')
    if not parts:
        raise EOFError('empty file')
    return parts[0] if len(parts) == 1 else b''.join(parts)


def read_idx_gz(path, expected_md5=None):
    """Read a gzipped IDX file.

    Args:
        path (str): The ``.gz`` file.
        expected_md5 (str, optional): MD5 of the *uncompressed* content; a
            mismatch raises ``ValueError``.

    Returns:
        (numpy.ndarray): Array of the shape stored in the header, e.g.
        ``[60000, 28, 28]`` uint8 for MNIST training images.

    Raises:
        OSError: The file is missing, not gzip or truncated.
        ValueError: Checksum mismatch or a malformed header.
    """
    with open(path, 'rb') as f:
        compressed = f.read()
    try:
        raw = _gunzip(compressed)
    except (zlib.error, EOFError) as err:
        raise OSError(f'{path}: cannot decompress the gzipped IDX file (corrupt or truncated): '
                      f'{err}') from err
    if expected_md5 is not None:
        actual = md5_of_bytes(raw)
        if actual != expected_md5:
            raise ValueError(f'{path}: MD5 of the uncompressed content is {actual}, expected {expected_md5} '
                             '(corrupt or wrong file; delete it to download it again)')
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f'{path}: not an IDX file (bad magic number {raw[:4].hex()})')
    ndim = raw[3]
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise ValueError(f'{path}: IDX header truncated ({len(raw)} bytes)')
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype='>u4', count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected_len = header_len + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected_len:
        raise ValueError(f'{path}: IDX body has {len(raw) - header_len} bytes, the header {shape} '
                         f'implies {expected_len - header_len}')
    return np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)


def find_folder_with(filenames, candidates):
    """First folder in ``candidates`` that contains every file in ``filenames``,
    or ``None``."""
    for folder in candidates:
        if folder and all(os.path.isfile(os.path.join(folder, fn)) for fn in filenames):
            return folder
    return None


def download_file(url, folder, filename=None, expected_md5=None, timeout=60):
    """Download ``url`` into ``folder`` atomically.

    The bytes go to a temporary file in ``folder`` that is renamed onto the
    final name only once complete (and, if ``expected_md5`` is given, verified),
    so a crash mid-download never leaves a partial file behind.

    Returns:
        (str): Path of the downloaded file.

    Raises:
        OSError: No network / the server is unreachable, naming the URL.
        ValueError: The downloaded bytes fail the checksum.
    """
    filename = filename or url.rsplit('/', 1)[-1]
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, filename)
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix='.' + filename + '.', suffix='.part')
    try:
        with os.fdopen(fd, 'wb') as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    for chunk in iter(lambda: response.read(1 << 20), b''):
                        out.write(chunk)
            except (urllib.error.URLError, OSError) as err:
                raise OSError(f'could not download {url} to {target} ({err}); without network access, '
                              f'place {filename} in {folder} by hand') from err
        if expected_md5 is not None:
            actual = md5_of_file(tmp_path)
            if actual != expected_md5:
                raise ValueError(f'{url}: downloaded file has MD5 {actual}, expected {expected_md5}')
        os.replace(tmp_path, target)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
    return target
