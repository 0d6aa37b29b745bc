"""Tests of utils.logger_config.config_logger."""
import logging

from utils.logger_config import config_logger


def test_file_and_console_levels(tmp_path, capsys):
    log_file = tmp_path / 'sub' / 'run.log'
    logger = config_logger('hnetkit_test_a', str(log_file), logging.DEBUG, logging.WARNING)
    logger.debug('detail')
    logger.warning('careful')
    for handler in logger.handlers:
        handler.flush()
    text = log_file.read_text()
    assert 'DEBUG - test_logger_config - detail' in text and 'careful' in text
    out = capsys.readouterr().out
    assert 'careful' in out and 'detail' not in out


def test_reconfiguring_does_not_duplicate_lines(tmp_path, capsys):
    for _ in range(3):
        logger = config_logger('hnetkit_test_b', None, logging.DEBUG, logging.INFO)
    logger.info('once')
    assert capsys.readouterr().out.count('once') == 1
    assert len(logger.handlers) == 1


def test_existing_log_file_is_overwritten(tmp_path):
    log_file = tmp_path / 'run.log'
    log_file.write_text('old content\n')
    logger = config_logger('hnetkit_test_c', str(log_file), logging.INFO, logging.CRITICAL)
    logger.info('new')
    for handler in logger.handlers:
        handler.flush()
    assert 'old content' not in log_file.read_text() and 'new' in log_file.read_text()
