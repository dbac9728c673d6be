"""Nothing lost (issue 12): what the command line writes when a run is stopped at an awkward moment, and what
it refuses before any work so that a finished run is never thrown away."""
import os
import signal
import subprocess
import sys
import threading

import numpy as np
from PIL import Image

import neural_style
from conftest import ROOT
from test_cli import args, fails

# The command line in a subprocess, with `patch` (Python source) run first to slow a step down.
PATCHED_MAIN = r'''
import sys, time
import neural_style, stylize
exec(sys.argv[1])
sys.exit(neural_style.main(sys.argv[2:]))
'''


def interrupted(patch, argv, marker, signum=signal.SIGINT):
    """Runs the patched command line, sends `signum` once it has printed a line starting with `marker`, and
    returns (exit status, stdout, stderr)."""
    process = subprocess.Popen([sys.executable, '-c', PATCHED_MAIN, patch] + argv, cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=dict(os.environ, PYTHONPATH=ROOT))
    watchdog = threading.Timer(240, process.kill)  # a run that never prints must not hang the suite
    watchdog.start()
    try:
        seen = []
        for line in process.stdout:
            seen.append(line)
            if line.startswith(marker):
                break
        process.send_signal(signum)
        out, err = process.communicate(timeout=240)
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()
    return process.returncode, ''.join(seen) + out, err


def temporaries(directory):
    return [name for name in os.listdir(directory) if name.endswith('.tmp')]


SLOW_TARGETS = '''
real_layer_features = stylize.layer_features
def slow_layer_features(*args, **kwargs):
    print('computing the targets', flush=True)
    time.sleep(120)
    return real_layer_features(*args, **kwargs)
stylize.layer_features = slow_layer_features
'''


def test_an_interrupt_before_the_first_iteration_leaves_no_csv(files):
    """Issue 12, item 5: nothing written means nothing written, and the same command can be run again."""
    csv_path = files['dir'] / 'early.csv'
    argv = args(files, '--progress-write', str(csv_path))
    code, out, err = interrupted(SLOW_TARGETS, argv, 'computing the targets')
    assert code == 130, err
    assert 'Traceback' not in err
    assert err.strip().splitlines()[-1] == 'neural_style.py: interrupted (SIGINT); nothing written'
    assert sorted(os.listdir(files['dir'])) == ['content.png', 'style.jpg']


def test_a_loss_that_overflows_at_once_leaves_no_csv(files, capsys):
    argv = args(files, '--style-weight', '3e38', '--progress-write', str(files['dir'] / 'early.csv'))
    for _ in range(2):  # the same command again meets the same error, not an "exists"
        line = fails(argv, capsys)
        assert 'the style loss became inf at iteration 0' in line and line.endswith('; nothing written')
    assert sorted(os.listdir(files['dir'])) == ['content.png', 'style.jpg']


SLOW_WRITE = '''
real_write_image, writes = neural_style.write_image, []
def slow_write_image(path, image):
    writes.append(path)
    if len(writes) == 1:  # the first write only: the one that is interrupted
        print('writing', path, flush=True)
        time.sleep(120)
    real_write_image(path, image)
neural_style.write_image = slow_write_image
'''


def test_an_interrupt_while_the_finished_image_is_written_keeps_it(files):
    """Issue 12, item 6: after the last iteration, an interrupt still leaves the finished image, and says so."""
    csv_path = files['dir'] / 'progress.csv'
    code, out, err = interrupted(SLOW_WRITE, args(files, '--progress-write', str(csv_path)), 'writing')
    assert code == 130, err
    assert 'Traceback' not in err
    assert err.strip().splitlines()[-1] == (f'neural_style.py: interrupted (SIGINT) after the last iteration; '
                                             f'wrote the finished image to {files["dir"] / "out.png"} and the '
                                             f'losses to {csv_path}')
    assert sorted(os.listdir(files['dir'])) == ['content.png', 'out.png', 'progress.csv', 'style.jpg']
    # the image of the same run left alone
    assert neural_style.main(args(files, output='again.png')) == 0
    with Image.open(files['dir'] / 'out.png') as written, Image.open(files['dir'] / 'again.png') as again:
        np.testing.assert_array_equal(np.asarray(written), np.asarray(again))
