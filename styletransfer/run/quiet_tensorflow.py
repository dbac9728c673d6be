"""Importing TensorFlow without its C++ start-up lines, for the programs' main() (the one place that configures
the process).

TensorFlow 2.21 writes its start-up lines (`WARNING: All log messages before absl::InitializeLog() is called are
written to STDERR`, the oneDNN notice, `cudart_stub.cc: Could not find cuda drivers`) while its shared libraries
load, before absl's logging is initialised: TF_CPP_MIN_LOG_LEVEL, GLOG_minloglevel, ABSL_MIN_LOG_LEVEL and
GRPC_VERBOSITY do not silence them (measured: docs/development.md). So the import runs with file descriptor 2 on
a temporary file; afterwards each log record below the level is dropped and every other line (an error, a
Python warning) is written to the real stderr. Later records obey TF_CPP_MIN_LOG_LEVEL, which is set to 3
unless the user set it. With verbose, or a level of 0, nothing is held back.
"""
import os
import re
import sys
import tempfile

LEVEL_ENV = 'TF_CPP_MIN_LOG_LEVEL'
QUIET_LEVEL = '3'  # TensorFlow's own scale: 0 all, 1 no INFO, 2 no WARNING, 3 no ERROR
SEVERITIES = 'IWEF'  # absl's record letters, in TF_CPP_MIN_LOG_LEVEL's order
# absl's record: `I0000 00:00:1796140239.678500   26352 port.cc:153] ...` (the date and time as it prints them
# before its initialisation), its severity the first letter.
RECORD = re.compile(r'([IWEF])\d{4} [\d:.]+ +\d+ [^ \]]+:\d+\] ')
PREFACE = 'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR'  # a warning


def import_tensorflow(verbose=False):
    """The tensorflow module, imported with its start-up lines held back (not with verbose, or when the user set
    TF_CPP_MIN_LOG_LEVEL to 0). An ImportError propagates, for the caller to say in one sentence (import_failure)."""
    if not verbose:
        os.environ.setdefault(LEVEL_ENV, QUIET_LEVEL)
    if 'tensorflow' in sys.modules:
        return sys.modules['tensorflow']
    level = int(os.environ[LEVEL_ENV]) if os.environ.get(LEVEL_ENV, '').isdigit() else 0
    if level == 0:
        import tensorflow
        return tensorflow
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as held:
            os.dup2(held.fileno(), 2)
            try:
                import tensorflow
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                held.seek(0)
                sys.stderr.write(kept_lines(held.read().decode(errors='replace'), level))
                sys.stderr.flush()
    finally:
        os.close(saved)
    return tensorflow


def import_failure(error):
    """What the programs say, in one sentence, when the import raised `error` (an ImportError)."""
    return f'TensorFlow cannot be imported ({error}): install it with the README\'s command'


def kept_lines(text, level):
    """The lines of `text` that a TF_CPP_MIN_LOG_LEVEL of `level` lets through: every line but absl's records of
    a lower severity (and absl's preface, a warning)."""
    kept = []
    for line in text.splitlines(keepends=True):
        record = RECORD.match(line)
        severity = SEVERITIES.index(record.group(1)) if record else 1 if line.startswith(PREFACE) else None
        if severity is None or severity >= level:
            kept.append(line)
    return ''.join(kept)
