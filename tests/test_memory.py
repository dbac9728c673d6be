"""Memory over many runs in one process: a long-lived caller (reproduce.py's grid, a server) must not grow."""
import os
import subprocess
import sys

from conftest import ROOT, random_image, save

# Ten runs of the command line in one process, sharing the loaded network, on tiny images with the default
# layers (so that each graph holds the convolutions' weights up to conv5_1 as constants, about 50 MB); the
# resident memory after each run, after a first warm-up run. A graph kept alive by a run costs that much again.
SCRIPT = r'''
import ctypes, gc, sys
import neural_style, vgg

# glibc's malloc_trim gives freed heap pages back to the system, so that the resident size is what is live
trim = getattr(ctypes.CDLL(None), 'malloc_trim', lambda pad: None)

def rss_mb():
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith('VmRSS:')) / 1024

content, style, network, directory = sys.argv[1:5]
net = vgg.load_net(network)
for run in range(11):
    args = neural_style.build_parser().parse_args([
        '--content', content, '--styles', style, '--network', network, '--output', f'{directory}/out{run}.png',
        '--iterations', '2', '--max-size', '16', '--device', '/cpu:0', '--seed', '0', '--print-iterations', '0'])
    neural_style.run(args, net)
    gc.collect()
    trim(0)
    print('rss', rss_mb(), flush=True)
'''

RUNS_GROWTH_LIMIT_MB = 100  # issue 12: ten runs in one process grow the resident memory by less than this


def test_ten_runs_in_one_process_do_not_grow_memory(tmp_path, network_path):
    content = save(tmp_path / 'content.png', random_image(12, 16, seed=1))
    style = save(tmp_path / 'style.png', random_image(12, 12, seed=2))
    result = subprocess.run([sys.executable, '-c', SCRIPT, content, style, network_path, str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0, result.stderr[-3000:]
    rss = [float(line.split()[1]) for line in result.stdout.splitlines() if line.startswith('rss ')]
    assert len(rss) == 11
    growth = max(rss[1:]) - rss[0]  # the highest after the ten runs against that after the warm-up run
    assert growth < RUNS_GROWTH_LIMIT_MB, f'resident memory after each run, MB: {[round(r) for r in rss]}'
