"""Video: the temporal loss, and a clip end to end on tiny frames (random-weight network)."""
import os
import signal
import stat
import subprocess
import sys
import threading

import imageio.v2 as imageio
import numpy as np
import pytest

import neural_style
import stylize
from styletransfer.media import flow, images, video
from styletransfer.method import losses
from helpers import CLIP_FPS, ROOT, args, clip_args, fails, random_image, stylize_with

# The temporal loss

def test_temporal_loss_matches_its_formula_and_finite_differences():
    import tensorflow.compat.v1 as tf
    rng = np.random.default_rng(0)
    x0, w = rng.uniform(0, 255, (2, 1, 5, 6, 3))
    c = rng.uniform(0, 1, (1, 5, 6, 1))
    expected = np.sum(c * (x0 - w) ** 2) / x0.size  # 1/D sum_k c_k (x_k - w_k)^2, D = 5 * 6 * 3
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float64, x0.shape)
        loss = losses.temporal_loss(x, tf.constant(w), tf.constant(c))
        gradient = tf.gradients(loss, x)[0]
    with tf.Session(graph=graph) as session:
        value, analytic = session.run((loss, gradient), {x: x0})
        assert value == pytest.approx(expected, rel=1e-12)
        h = 1e-3
        for index in [(0, 0, 0, 0), (0, 2, 3, 1), (0, 4, 5, 2), (0, 1, 4, 0)]:
            step = np.zeros_like(x0)
            step[index] = h
            numeric = (session.run(loss, {x: x0 + step}) - session.run(loss, {x: x0 - step})) / (2 * h)
            assert analytic[index] == pytest.approx(numeric, rel=1e-6)


def test_a_frame_adds_gamma_t_times_the_temporal_loss(net):
    """Row 0 of a frame's run is its start: gamma_t/D sum c (x0 - w)^2 for the pairs given, summed."""
    rng = np.random.default_rng(1)
    content, start = random_image(12, 16, seed=5), random_image(12, 16, seed=6)
    pairs = [(random_image(12, 16, seed=7), rng.uniform(0, 1, (12, 16))) for _ in range(2)]
    steps = stylize_with(net, content, [random_image(12, 16, seed=8)], initial=start, iterations=1,
                         style_layers=('relu1_1',), content_layers=('relu1_2',), device='/cpu:0',
                         temporal_targets=pairs, temporal_weight=3.0)
    first = next(steps)
    steps.close()
    expected = 3.0 * sum(np.sum(c[:, :, None] * (start - w) ** 2) for w, c in pairs) / start.size
    assert first.temporal == pytest.approx(expected, rel=1e-4)
    assert first.total == pytest.approx(first.content + first.style + first.tv + first.temporal, rel=1e-5)


def test_default_gamma_t_is_the_authors_balance_against_the_style_loss():
    # The authors' style loss of a layer is 1e2 / (N^4 M^2) sum (G - A)^2 against -temporal_weight 1e3 (5e2
    # multi-pass); ours is beta w_l / (4 N^2 M^2) sum (G - A)^2. With the same temporal loss and the same
    # sum (G - A)^2, gamma_t over our style coefficient must be 1e3 over theirs, at any number of positions M.
    def ours_over_theirs(gamma_t, beta, w, channels, positions, temporal):
        ours = beta * w / (4 * channels ** 2 * positions ** 2)
        theirs = 1e2 / (channels ** 4 * positions ** 2)
        return (gamma_t / ours) / (temporal / theirs)

    paper = stylize.Settings().style_weights()  # relu1_1 ... relu5_1, 1/5 each: relu4_1 and relu5_1 decide
    for positions in (48, 4096):
        assert ours_over_theirs(video.default_temporal_weight(1e3, paper), 1e3, 0.2, 512, positions, 1e3) \
            == pytest.approx(1.0)
        assert ours_over_theirs(video.default_temporal_weight(3e4, paper, multipass=True), 3e4, 0.2, 512, positions,
                                5e2) == pytest.approx(1.0)
    shallow = stylize.Settings(style_layers=('relu1_1', 'relu2_1'), style_layer_weights=(1.0, 0.1)).style_weights()
    # w_l N_l^2: 1 * 64^2 against 0.1 * 128^2; the larger, relu1_1's, decides
    assert ours_over_theirs(video.default_temporal_weight(1e3, shallow), 1e3, 1.0, 64, 7, 1e3) == pytest.approx(1.0)


# Clips

def read_back(path):
    reader = imageio.get_reader(path, format='FFMPEG')
    try:
        return [np.asarray(frame) for frame in reader], reader.get_meta_data()
    finally:
        reader.close()


def frames_of(clip, output):
    """The finished frames of the one run whose output is `output`, from its frames directory."""
    (key,) = os.listdir(str(clip['dir'] / output) + '.frames')
    directory = os.path.join(str(clip['dir'] / output) + '.frames', key)
    return [images.read_image(path) for path in video.finished_frames(directory, 4, 1)], directory


def test_a_clip_end_to_end(clip, capsys):
    assert neural_style.main(clip_args(clip, '--iterations', '3,2')) == 0
    frames, meta = read_back(str(clip['dir'] / 'out.mp4'))
    assert len(frames) == 4 and frames[0].shape == (24, 32, 3) and meta['fps'] == CLIP_FPS
    out = capsys.readouterr().out
    assert 'frame 1/4  iteration 3/3' in out and 'frame 4/4  iteration 2/2' in out and 'remaining' in out
    assert 'wrote' in out


def test_gif_and_directory_outputs_and_part_of_a_clip(clip):
    assert neural_style.main(clip_args(clip, '--iterations', '1', '--frames', '2', output='out.gif')) == 0
    from PIL import Image
    with Image.open(clip['dir'] / 'out.gif') as gif:
        assert gif.n_frames == 2 and gif.size == (32, 24)
    # frames from 0.1 s on: k / 12.5 >= 0.1 for k >= 2
    assert neural_style.main(clip_args(clip, '--iterations', '1', '--start', '0.1', output='pngs/')) == 0
    assert sorted(os.listdir(clip['dir'] / 'pngs')) == ['frame_00001.png', 'frame_00002.png']


def temporal_error(stylized, contents):
    """The paper's measure: the mean over frames k > 1 of (1/D) sum c (x_k - w(x_{k-1}))^2, flows from the
    content frames."""
    errors = []
    for k in range(1, len(stylized)):
        backward = flow.optical_flow(contents[k], contents[k - 1])
        c = flow.consistency(backward, flow.optical_flow(contents[k - 1], contents[k]))
        warped, _ = flow.warp(stylized[k - 1], backward)
        errors.append(np.sum(c[:, :, None] * (stylized[k] - warped) ** 2) / stylized[k].size)
    return float(np.mean(errors))


def test_the_temporal_loss_lowers_the_temporal_error(clip):
    contents = [frame.astype(np.float32) for frame in read_back(clip['content'])[0]]
    assert neural_style.main(clip_args(clip, '--iterations', '4,6', '--temporal-weight', '0',
                                       output='plain.mp4')) == 0
    assert neural_style.main(clip_args(clip, '--iterations', '4,6', output='coherent.mp4')) == 0
    plain, _ = frames_of(clip, 'plain.mp4')
    coherent, _ = frames_of(clip, 'coherent.mp4')
    np.testing.assert_array_equal(plain[0], coherent[0])  # the same first frame: the same seed, no temporal loss
    assert temporal_error(coherent, contents) < 0.5 * temporal_error(plain, contents)


def test_entering_pixels_start_from_the_content_recoloured_to_the_paint():
    """The pixels a warp brings in from outside the previous frame start as the content frame with the RGB mean
    and covariance of the warped paint, x' = Sigma_w^1/2 Sigma_c^-1/2 (x - mu_c) + mu_w, computed here with
    scipy's matrix square root; the others keep the warped paint."""
    from scipy.linalg import sqrtm
    rng = np.random.default_rng(3)
    content = np.clip(rng.normal(0, 1, (12, 16, 3)) @ [[40, 10, 0], [5, 30, 10], [0, 10, 35]] + 120, 0, 255)
    paint = np.clip(rng.normal(0, 1, (12, 16, 3)) @ [[20, 5, 5], [0, 15, 5], [0, 0, 25]] + [60, 90, 150], 0, 255)
    inside = np.ones((12, 16), bool)
    inside[:, -4:] = False  # a strip entering at the right
    inside[-2:, :] = False  # and at the bottom
    mu_w, sigma_w = paint[inside].mean(axis=0), np.cov(paint[inside].T, bias=True)
    mu_c, sigma_c = content.reshape(-1, 3).mean(axis=0), np.cov(content.reshape(-1, 3).T, bias=True)
    expected = np.clip((content - mu_c) @ (np.real(sqrtm(sigma_w)) @ np.linalg.inv(np.real(sqrtm(sigma_c)))).T + mu_w,
                       0, 255)
    start = video.entering_filled(paint.astype(np.float32), inside, content)
    np.testing.assert_array_equal(start[inside], paint.astype(np.float32)[inside])
    np.testing.assert_allclose(start[~inside], expected[~inside], atol=0.05)
    everywhere = np.ones((12, 16), bool)
    np.testing.assert_array_equal(video.entering_filled(paint, everywhere, content), paint)


def panned_texture(count, height, width, step):
    """A smooth random texture seen through a window moving `step` px right per frame."""
    from scipy.ndimage import gaussian_filter
    texture = gaussian_filter(np.random.default_rng(4).uniform(0, 255, (height, width + step * count, 3)),
                              (1.5, 1.5, 0))
    texture = (texture - texture.min()) / (texture.max() - texture.min()) * 255
    return [texture[:, k * step:k * step + width].astype(np.float32) for k in range(count)]


def test_a_later_frame_starts_from_the_previous_warped_with_the_entering_strip_painted(net, tmp_path):
    """With no iterations a later frame is its start (Adam: scipy's L-BFGS-B takes a step even at maxiter 0):
    frame 1 as written, warped by cubic B-splines along the flow, the strip a 4 px pan brings in from the
    content recoloured (see the test above), not the mean pixel."""
    from styletransfer.compute import devices
    import stylize
    frames = panned_texture(2, 24, 32, 4)
    settings = stylize.Settings(style_layers=('relu1_1',), content_layers=('relu1_2',), seed=0, optimizer='adam')
    directory = str(tmp_path / 'frames')
    for _ in video.stylize_clip(net, frames, [random_image(20, 20, seed=2)], directory, settings,
                                video.ClipSettings(iterations=(3, 0)), devices.Placement(('/cpu:0',))):
        pass
    first, second = [images.read_image(path) for path in video.finished_frames(directory, 2, 1)]
    warped, inside = flow.warp(first, flow.optical_flow(frames[1], frames[0]), 'cubic')
    expected = video.entering_filled(np.clip(warped, 0, 255).astype(np.float32), inside, frames[1])
    assert np.abs(second - expected).max() <= 0.5 + 1e-3  # the frame is written in 8 bits
    strip = second[~inside]
    assert len(strip) >= 3 * 24  # about 4 columns
    assert strip.std(axis=0).mean() > 10  # painted, where the mean pixel was flat


def test_an_interrupted_clip_resumes_to_the_uninterrupted_result(clip):
    assert neural_style.main(clip_args(clip, '--iterations', '3,2', output='whole.mp4')) == 0
    whole, _ = frames_of(clip, 'whole.mp4')

    command = [sys.executable, os.path.join(ROOT, 'neural_style.py')] + clip_args(clip, '--iterations', '3,2')
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, run.kill)
    watchdog.start()
    try:
        for line in run.stdout:
            if line.startswith('frame 3/4  iteration'):  # frames 1 and 2 are finished
                break
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=120)
    finally:
        watchdog.cancel()
        run.kill()
    assert run.returncode == 130, err
    assert 'Traceback' not in err
    assert 'interrupted (SIGINT); wrote the 2 finished frame(s)' in err.strip().splitlines()[-1]
    partial, meta = read_back(str(clip['dir'] / 'out.mp4'))
    assert len(partial) == 2 and meta['fps'] == CLIP_FPS
    kept, directory = frames_of(clip, 'out.mp4')
    assert len(kept) == 2
    finished = {name: os.stat(os.path.join(directory, 'pass1', name)).st_mtime_ns
                for name in os.listdir(os.path.join(directory, 'pass1'))}

    # the same command again continues at frame 3 and may replace its own unfinished clip
    assert neural_style.main(clip_args(clip, '--iterations', '3,2')) == 0
    resumed, _ = frames_of(clip, 'out.mp4')
    for name, mtime in finished.items():
        assert os.stat(os.path.join(directory, 'pass1', name)).st_mtime_ns == mtime  # not recomputed
    assert len(resumed) == 4
    for a, b in zip(resumed, whole):
        np.testing.assert_array_equal(a, b)
    assert len(read_back(str(clip['dir'] / 'out.mp4'))[0]) == 4
    # a finished clip is another matter: it is kept without --overwrite
    assert neural_style.main(clip_args(clip, '--iterations', '3,2')) == 1


def test_other_options_do_not_mix_frames(clip):
    assert neural_style.main(clip_args(clip, '--iterations', '1', '--frames', '2', output='a.gif')) == 0
    assert neural_style.main(clip_args(clip, '--iterations', '1', '--frames', '2', '--style-weight', '10',
                                       '--overwrite', output='a.gif')) == 0
    assert len(os.listdir(clip['dir'] / 'a.gif.frames')) == 2


def test_frames_of_an_older_method_are_not_resumed(clip, monkeypatch):
    """The same command after the way frames are computed changed (video.FRAMES_METHOD) starts afresh."""
    assert neural_style.main(clip_args(clip, '--iterations', '1', '--frames', '2', output='b.gif')) == 0
    monkeypatch.setattr(video, 'FRAMES_METHOD', video.FRAMES_METHOD + 1)
    assert neural_style.main(clip_args(clip, '--iterations', '1', '--frames', '2', '--overwrite',
                                       output='b.gif')) == 0
    assert len(os.listdir(clip['dir'] / 'b.gif.frames')) == 2


def test_multi_pass_and_long_term(clip):
    assert neural_style.main(clip_args(clip, '--iterations', '1', '--passes', '3', output='multi.gif')) == 0
    (key,) = os.listdir(clip['dir'] / 'multi.gif.frames')
    assert sorted(os.listdir(clip['dir'] / 'multi.gif.frames' / key)) == ['pass1', 'pass2', 'pass3',
                                                                         'settings.json']
    assert neural_style.main(clip_args(clip, '--iterations', '1', '--long-term', '3', output='long.gif')) == 0


# Bad input

def ffmpeg(*arguments):
    import imageio_ffmpeg
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), '-loglevel', 'error', '-y'] + list(arguments), check=True,
                   timeout=60)


@pytest.mark.parametrize('case, expected', [
    ('text', 'is neither an image nor a video ffmpeg can read'),
    ('audio only', 'has no frames (no video stream)'),
    ('unknown codec', 'uses a codec ffmpeg cannot decode'),
    ('empty range', 'has no frames between --start and --end'),
])
def test_bad_clips_get_one_sentence(clip, capsys, case, expected):
    path = clip['dir'] / 'bad.mp4'
    extra = []
    if case == 'text':
        path.write_text('not a video')
    elif case == 'audio only':
        ffmpeg('-f', 'lavfi', '-i', 'anullsrc=r=8000:cl=mono', '-t', '0.2', str(path))
    elif case == 'unknown codec':  # the H.264 clip with its codec's tags renamed
        data = open(clip['content'], 'rb').read()
        assert b'avc1' in data and b'avcC' in data
        path.write_bytes(data.replace(b'avc1', b'qqq9').replace(b'avcC', b'qqqC'))
    else:
        path = clip['content']
        extra = ['--start', '5']
    argv = clip_args(clip, *extra)
    argv[argv.index('--content') + 1] = str(path)
    assert expected in fails(argv, capsys)


@pytest.mark.parametrize('output, extra, expected', [
    ('missing/out.mp4', [], 'directory'),
    ('out.xyz', [], 'cannot write a video of type ".xyz"'),
    ('out.mp4', ['--scales', '16,32'], '--scales is not supported for a video content'),
    ('out.mp4', ['--iterations', '1,2,3'], '--iterations has 3 values'),
    ('out.mp4', ['--passes', '2', '--long-term', '2'], 'do not combine'),
    ('out.mp4', ['--start', '2', '--end', '1'], 'is not after --start'),
    ('out.mp4', ['--max-size', '10'], 'too small for DIS optical flow'),
])
def test_bad_video_options_get_one_sentence(clip, capsys, output, extra, expected):
    assert expected in fails(clip_args(clip, *extra, output=output), capsys)


def test_an_existing_output_is_kept(clip, capsys):
    (clip['dir'] / 'out.mp4').write_bytes(b'precious')
    assert 'exists' in fails(clip_args(clip), capsys)
    assert (clip['dir'] / 'out.mp4').read_bytes() == b'precious'
    assert not os.path.exists(clip['dir'] / 'out.mp4.frames')


def test_a_missing_style_gets_one_sentence(clip, capsys):
    argv = clip_args(clip)
    argv[argv.index('--styles') + 1] = str(clip['dir'] / 'none.png')
    assert 'does not exist' in fails(argv, capsys)


def test_video_options_on_an_image_are_refused(inputs, capsys):
    assert '--passes applies to a video content only' in fails(args(inputs, '--passes', '2'), capsys)


def test_clips_get_the_mode_open_gives(clip):
    """Under umask 022 the .mp4 and the GIF were once written 0600 and a directory of frames 0700."""
    previous = os.umask(0o022)
    try:
        with open(clip['dir'] / 'plain', 'w'):  # what an ordinary open() gives, and os.mkdir
            pass
        os.mkdir(clip['dir'] / 'plain-directory')
        for output in ('out.mp4', 'out.gif', 'pngs/'):
            assert neural_style.main(clip_args(clip, '--iterations', '1', '--frames', '2', output=output)) == 0
    finally:
        os.umask(previous)

    def mode(path):
        return stat.S_IMODE(os.stat(path).st_mode)

    assert mode(clip['dir'] / 'out.mp4') == mode(clip['dir'] / 'out.gif') == mode(clip['dir'] / 'plain') == 0o644
    assert mode(clip['dir'] / 'pngs') == mode(clip['dir'] / 'plain-directory') == 0o755
    written = [clip['dir'] / 'pngs' / name for name in os.listdir(clip['dir'] / 'pngs')]
    for output in ('out.mp4', 'out.gif', 'pngs'):
        directory = str(clip['dir'] / output) + '.frames'
        for parent, _, names in os.walk(directory):
            written += [os.path.join(parent, name) for name in names]
    assert len(written) > 6 and {mode(path) for path in written} == {0o644}


def test_an_output_that_is_the_content_clip_is_refused_even_with_overwrite(clip, capsys):
    """For a clip: an output on the content (here through a hard link) would replace the content."""
    os.link(clip['content'], clip['dir'] / 'same.mp4')
    before = (clip['dir'] / 'clip.mp4').read_bytes()
    assert neural_style.main(clip_args(clip, '--overwrite', output='same.mp4')) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == (f'neural_style.py: error: --output {clip["dir"] / "same.mp4"} is the same file as --content '
                    f'{clip["content"]}: writing it would destroy that input (refused even with --overwrite); give '
                    f'the output a name of its own')
    assert (clip['dir'] / 'clip.mp4').read_bytes() == before
