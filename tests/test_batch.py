"""Batches: folders of contents and styles in one command, one process and one network; outputs that
exist are skipped so that a rerun continues; a bad file is reported and skipped; Ctrl-C stops after writing the
current pair's best image."""
import os
import signal
import subprocess
import sys

import pytest

import neural_style
from styletransfer.media import video
from styletransfer.run import options, run_config
from helpers import FAST, ROOT, fails, interrupted, random_image, save

TINY = FAST + ['--max-size', '16', '--print-iterations', '0']


@pytest.fixture
def folders(tmp_path, network_path):
    """Three contents and an unreadable file in one directory, two styles in another."""
    contents, styles = tmp_path / 'contents', tmp_path / 'styles'
    contents.mkdir()
    styles.mkdir()
    for k, name in enumerate(['cat.png', 'cup.jpg', 'dog.png']):
        save(contents / name, random_image(12, 16, seed=k))
    (contents / 'broken.jpg').write_text('not an image')
    (contents / 'notes.txt').write_text('not an image file: left alone')
    for k, name in enumerate(['scream.jpg', 'starry.png']):
        save(styles / name, random_image(10, 10, seed=10 + k))
    return dict(contents=str(contents), styles=str(styles), network=network_path, out=tmp_path / 'out')


def batch_args(folders, *extra):
    return ['--content', folders['contents'], '--styles', folders['styles'], '--network', folders['network'],
            '--output', str(folders['out']) + '/'] + TINY + list(extra)


EXPECTED = sorted(f'{content}_{style}.png' for content in ('cat', 'cup', 'dog') for style in ('scream', 'starry'))


def test_a_bad_file_is_skipped_the_batch_goes_on_and_a_rerun_computes_nothing(folders, capsys):
    assert neural_style.main(batch_args(folders)) == 1
    out, err = capsys.readouterr()
    assert sorted(os.listdir(folders['out'])) == EXPECTED
    assert 'Traceback' not in err
    broken = os.path.join(folders['contents'], 'broken.jpg')
    skipped = [line for line in err.splitlines() if '  skipped: ' in line]
    assert len(skipped) == 2 and all(f'image {broken} could not be read' in line for line in skipped)
    assert err.strip().splitlines()[-1].startswith('neural_style.py: 2 of 8 pairs failed: image ')
    assert 'batch of 8 pairs: 6 written, 0 skipped (done before), 2 failed' in out
    assert 'pair 3/8  wrote' in out and 'pairs 1, 2' in err and 'notes.txt' not in out + err

    written = {name: os.stat(folders['out'] / name).st_mtime_ns for name in EXPECTED}
    assert neural_style.main(batch_args(folders)) == 1  # the broken file still fails
    out, err = capsys.readouterr()
    assert 'batch of 8 pairs: 6 done before, 2 to run' in out and 'iteration' not in out
    assert out.count('exists: skipped') == 6
    assert {name: os.stat(folders['out'] / name).st_mtime_ns for name in EXPECTED} == written


def test_blended_styles_give_one_output_per_content_named_by_the_pattern(folders, capsys):
    styles = [os.path.join(folders['styles'], name) for name in ('scream.jpg', 'starry.png')]
    contents = [os.path.join(folders['contents'], name) for name in ('cat.png', 'dog.png')]
    argv = batch_args(folders, '--iterations', '1')
    argv[argv.index('--content') + 1:argv.index('--styles')] = contents
    argv[argv.index('--styles') + 1:argv.index('--network')] = styles
    argv[argv.index('--output') + 1] = str(folders['out'] / 'blend-{content}-{style}.jpg')
    os.mkdir(folders['out'])
    assert neural_style.main(argv) == 0
    assert sorted(os.listdir(folders['out'])) == ['blend-cat-scream+starry.jpg', 'blend-dog-scream+starry.jpg']
    assert 'in the style of ' + ' + '.join(styles) in capsys.readouterr().out


@pytest.mark.parametrize('change, expected', [
    (('--output', 'one.png'), 'a batch (8 pair(s)) needs an output directory (--output DIR/) or a name pattern'),
    (('--output', '{style}.png'), 'names HERE/scream.png for two pairs'),
    (('--output', '{contents}.png'), 'a name pattern may hold {content} and {style} only'),
    (('--progress-write', 'p.csv'), '--progress-write names one file: it is not for a batch of pairs'),
    (('--style-blend-weights', '1', '2'), '--style-blend-weights has 2 values for 1 style images'),
])
def test_what_a_batch_cannot_do_is_one_sentence_before_any_work(folders, capsys, change, expected):
    argv = batch_args(folders)
    option, *values = change
    if option == '--output':
        argv[argv.index('--output') + 1] = str(folders['out'].parent / values[0])
    else:
        argv += [option, *values]
    line = fails(argv, capsys)
    assert expected.replace('HERE', str(folders['out'].parent)) in line
    assert not folders['out'].exists() or os.listdir(folders['out']) == []


SLOW_LINES = '''
from styletransfer.run import job
real_line = job.Run.line
def slow_line(self, stage, progress):
    time.sleep(0.5)
    return real_line(self, stage, progress)
job.Run.line = slow_line
'''


def test_ctrl_c_mid_batch_keeps_the_best_image_and_a_rerun_finishes_the_rest(folders, capsys):
    os.unlink(os.path.join(folders['contents'], 'broken.jpg'))
    styles = os.path.join(folders['styles'], 'starry.png')  # one style file: three pairs
    argv = batch_args(folders, '--print-iterations', '1')
    argv[argv.index('--styles') + 1] = styles
    code, out, err = interrupted(SLOW_LINES, argv, 'pair 2/3  iteration 1/3')
    assert code == 128 + signal.SIGINT, err
    assert 'Traceback' not in err
    last = err.strip().splitlines()[-1]
    second = folders['out'] / 'cup_starry.png'
    assert last.startswith('neural_style.py: pair 2/3: interrupted (SIGINT); wrote the best image so far')
    assert last.endswith('run the same command again to finish the batch (this pair is done again)')
    assert sorted(os.listdir(folders['out'])) == ['cat_starry.png', 'cup_starry.png', 'cup_starry.png.unfinished']

    first = os.stat(folders['out'] / 'cat_starry.png').st_mtime_ns
    assert neural_style.main(argv) == 0  # the same command
    out = capsys.readouterr().out
    assert 'pair 1/3  ' in out and 'cat_starry.png exists: skipped' in out
    assert f'pair 2/3  wrote {second}' in out and 'pair 3/3  wrote' in out
    assert sorted(os.listdir(folders['out'])) == ['cat_starry.png', 'cup_starry.png', 'dog_starry.png']
    assert os.stat(folders['out'] / 'cat_starry.png').st_mtime_ns == first


# Twenty pairs in one process, the layers up to conv3 (each graph holds the convolutions' weights up to the
# deepest loss layer as constants, here about 9 MB: twenty pairs that each kept theirs alive would grow the memory
# by more than the limit); the resident memory at the start of each pair and at the end.
MEMORY_SCRIPT = r'''
import ctypes, gc, sys
import neural_style
from styletransfer.run import job, run_config

trim = getattr(ctypes.CDLL(None), 'malloc_trim', lambda pad: None)  # freed heap pages back to the system

def rss_mb():
    gc.collect()
    trim(0)
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith('VmRSS:')) / 1024

real_load = job.load
def measured_load(*args, **kwargs):
    print('rss', rss_mb(), flush=True)
    return real_load(*args, **kwargs)
job.load = measured_load
neural_style.run(run_config.from_options(neural_style.build_parser().parse_args(sys.argv[1:])))
print('rss', rss_mb(), flush=True)
'''

PAIRS_GROWTH_LIMIT_MB = 100


def test_twenty_pairs_in_one_process_keep_memory_flat(tmp_path, network_path):
    contents, styles = tmp_path / 'contents', tmp_path / 'styles'
    contents.mkdir()
    styles.mkdir()
    for k in range(4):
        save(contents / f'c{k}.png', random_image(12, 16, seed=k))
    for k in range(5):
        save(styles / f's{k}.png', random_image(12, 12, seed=10 + k))
    argv = ['--content', str(contents), '--styles', str(styles), '--network', network_path, '--output',
            str(tmp_path / 'out') + '/', '--iterations', '1', '--max-size', '16', '--device', '/cpu:0', '--seed', '0',
            '--print-iterations', '0', '--style-layers', 'relu1_1', 'relu2_1', 'relu3_1', '--content-layers', 'relu3_2']
    result = subprocess.run([sys.executable, '-c', MEMORY_SCRIPT] + argv, cwd=ROOT, capture_output=True, text=True,
                            timeout=600, env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(os.listdir(tmp_path / 'out')) == 20
    rss = [float(line.split()[1]) for line in result.stdout.splitlines() if line.startswith('rss ')]
    assert len(rss) == 21
    growth = max(rss[2:]) - rss[1]  # after each later pair against after the first (warm-up) pair
    print(f'resident memory at the start of each pair and at the end, MB: {[round(r) for r in rss]}')
    assert growth < PAIRS_GROWTH_LIMIT_MB, f'resident memory, MB: {[round(r) for r in rss]}'


def test_a_directory_output_is_a_batch_for_a_photograph_and_the_frames_of_a_video(tmp_path):
    clip = str(tmp_path / 'clip.mp4')
    video.write_clip(clip, [random_image(16, 16, seed=k).astype('uint8') for k in range(2)], 10)
    photo = save(tmp_path / 'photo.png', random_image(16, 16, seed=3))
    parser = neural_style.build_parser()
    for content, expected in ((photo, options.BATCH), (clip, options.VIDEO)):
        parsed = parser.parse_args(['--content', content, '--styles', photo, '--output', str(tmp_path) + '/frames/'])
        assert run_config.from_options(parsed).kind == expected
