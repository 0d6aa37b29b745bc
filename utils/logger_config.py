"""One call to set up a logger that writes to the console and to a file.

Console lines carry time, level and message; file lines additionally name the
module that logged, which helps when reading a finished run's log.
"""
import logging
import os
import sys

_DATE_FORMAT = '%m/%d/%Y %I:%M:%S %p'


def config_logger(name, log_file, file_level, console_level):
    """Configure and return the logger ``name``.

    Calling it again for the same name replaces the handlers it installed
    before instead of stacking them (which would print every line twice).

    Args:
        name (str): Logger name.
        log_file (str, optional): Log file path (its folder is created; an
            existing file is overwritten); ``None`` logs to the console only.
        file_level (int): Level for the file, e.g. ``logging.DEBUG``.
        console_level (int): Level for stdout.

    Returns:
        (logging.Logger): The configured logger.
    """
    if not isinstance(name, str):
        raise TypeError(f'name: expected a str, got {type(name).__name__}')
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        if getattr(handler, '_hnetkit_handler', False):
            logger.removeHandler(handler)
            handler.close()
    handlers = []
    if log_file is not None:
        log_dir = os.path.dirname(log_file)
        if log_dir:
            os.makedirs(log_dir, exist_ok=True)
        file_handler = logging.FileHandler(log_file, mode='w')
        file_handler.setFormatter(logging.Formatter(
            fmt='%(asctime)s - %(levelname)s - %(module)s - %(message)s', datefmt=_DATE_FORMAT))
        file_handler.setLevel(file_level)
        handlers.append(file_handler)
    stream_handler = logging.StreamHandler(sys.stdout)
    stream_handler.setFormatter(logging.Formatter(fmt='%(asctime)s - %(levelname)s - %(message)s',
                                                  datefmt=_DATE_FORMAT))
    stream_handler.setLevel(console_level)
    handlers.append(stream_handler)
    logger.setLevel(logging.DEBUG)
    for handler in handlers:
        handler._hnetkit_handler = True
        logger.addHandler(handler)
    return logger
