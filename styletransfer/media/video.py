"""Temporally coherent style transfer of a clip (Ruder, Dosovitskiy & Brox): the per-frame loop, its resumable
frames directory, and reading and writing clips."""
import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass

import numpy as np

import stylize
import vgg
from styletransfer.media import colors, files, flow, images

# Defaults of the authors' code (manuelruder/artistic-videos), and what they mean here.
FIRST_ITERATIONS = 2000  # artistic_video.lua -num_iterations 2000,1000: the first frame, from the usual start ...
LATER_ITERATIONS = 1000  # ... and every later frame, from the previous stylized frame warped
PASS_ITERATIONS = 100  # artistic_video_multiPass.lua -num_iterations: per frame and pass
MULTIPASS_PASSES = 15  # artistic_video_multiPass.lua -num_passes (the multi-pass algorithm's; ours is off by default)
BLEND_WEIGHT = 1.0  # delta, artistic_video_multiPass.lua -blendWeight: the warped neighbour's weight at a new pass
# gamma_t relative to the style weight in the authors' code: -temporal_weight 1e3 (single pass) or 5e2 (multi-pass)
# against -style_weight 1e2; translated to this project's losses by default_temporal_weight. Measured against the
# balance with the content term on three clips: docs/development.md, Measurement history
TEMPORAL_RATIO = 1e3 / 1e2
MULTIPASS_TEMPORAL_RATIO = 5e2 / 1e2
FRAME_TOLERANCE = 1e-4  # artistic_video.lua -tol_loss_relative 0.0001 (the multi-pass script's is 0: off)
LONG_TERM = 1  # J: the previous frames tied to each frame; 1 is short-term consistency only (the code's default)
VIDEO_EXTENSIONS = ('.mp4', '.mov', '.mkv', '.avi', '.m4v')  # written by ffmpeg with H.264
FRAME_FORMAT = 'frame_{:05d}.png'
# How frames follow from their inputs, in the frames directory's key: raised whenever that changes (2: previous frames
# warped with cubic interpolation, entering pixels from the recoloured content), so that a rerun does not resume
# frames made the older way.
FRAMES_METHOD = 2


class ClipError(Exception):
    """A clip that cannot be read or written: one sentence for the user."""


# Reading and writing clips

def _ffmpeg_failure(path, error):
    """ffmpeg's complaint about an input, as one sentence."""
    text = str(error)
    if 'no decoder found' in text or 'Decoder not found' in text or 'unknown codec' in text.lower():
        return f'video {path} uses a codec ffmpeg cannot decode'
    if 'does not contain any stream' in text or 'no video stream' in text.lower():
        return f'video {path} has no frames (no video stream)'
    return f'{path} is neither an image nor a video ffmpeg can read'


def probe(path):
    """ffmpeg's description of a video file (codec, fps, size, duration), or ClipError."""
    import imageio_ffmpeg

    frames = imageio_ffmpeg.read_frames(path)
    try:
        return next(frames)
    except (OSError, RuntimeError, StopIteration) as error:
        raise ClipError(_ffmpeg_failure(path, error)) from None
    finally:
        frames.close()


def is_video(path):
    """Whether a content file is a video, told by its contents: a file that Pillow does not read as a still image
    and ffmpeg reads as a video (an animated GIF is a video). A file named like a video that neither reads
    gets ffmpeg's complaint as a ClipError; any other unreadable file is left to images.read_image to report."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0 or images.is_still_image(path):
        return False
    try:
        probe(path)
    except ClipError:
        if os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS:
            raise
        return False
    return True


def read_clip(path, prepare, start=None, end=None, count=None):
    """The frames of a video, each RGB float32 0..255 [height, width, 3] passed through prepare(frame) (to
    resize it, say), and its frame rate. Frame k is at time k / fps; taken are those with
    start <= time < end, at most `count`."""
    import imageio_ffmpeg

    meta = probe(path)
    fps = float(meta.get('fps') or 0)
    if not fps > 0:
        raise ClipError(f'video {path} has no frame rate ffmpeg can read')
    frames, reader = [], imageio_ffmpeg.read_frames(path)
    try:
        next(reader)
        width, height = meta['size']
        for k, data in enumerate(reader):
            time_k = k / fps
            if end is not None and time_k >= end or count is not None and len(frames) >= count:
                break
            if start is not None and time_k < start:
                continue
            frame = np.frombuffer(data, np.uint8).reshape(height, width, 3).astype(np.float32)
            frames.append(prepare(frame))
    except (OSError, RuntimeError) as error:
        raise ClipError(_ffmpeg_failure(path, error)) from None
    finally:
        reader.close()
    if not frames:
        within = '' if start is None and end is None else ' between --start and --end'
        raise ClipError(f'video {path} has no frames{within}')
    return frames, fps


def output_kind(path):
    """'video' (a container ffmpeg writes), 'gif', or 'directory' (PNG frames: a path ending in / or without an
    extension, or an existing directory); ClipError for anything else."""
    extension = os.path.splitext(path.rstrip('/'))[1].lower()
    if path.endswith(('/', os.sep)) or os.path.isdir(path) or not extension:
        return 'directory'
    if extension == '.gif':
        return 'gif'
    if extension in VIDEO_EXTENSIONS:
        return 'video'
    raise ClipError(f'cannot write a video of type "{extension}"; use {", ".join(VIDEO_EXTENSIONS)}, .gif or a '
                    f'directory for PNG frames')


def even_size(height, width):
    """H.264 in 4:2:0 needs even sides: the size rounded down to them (at least 2)."""
    return max(2, height - height % 2), max(2, width - width % 2)


def write_clip(path, frames, fps, overwrite=False):
    """Writes uint8 RGB frames as a video, a GIF or a directory of PNGs (see output_kind), atomically: into a
    temporary file or directory beside `path`, then renamed over it."""
    kind = output_kind(path)
    path = path.rstrip('/') or path
    if os.path.exists(path) and not overwrite:
        raise ClipError(f'{path} exists; choose another name or pass --overwrite')
    if kind == 'directory':
        temporary = files.temporary_directory_beside(path)
        try:
            for k, frame in enumerate(frames):
                images.write_image(os.path.join(temporary, FRAME_FORMAT.format(k + 1)), frame)
            if os.path.isdir(path):
                shutil.rmtree(path)
            os.replace(temporary, path)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        return
    fd, temporary = files.temporary_beside(path, suffix='.tmp' + os.path.splitext(path)[1])  # the umask's mode
    os.close(fd)
    try:
        if kind == 'gif':
            from PIL import Image
            pictures = [Image.fromarray(frame) for frame in frames]
            pictures[0].save(temporary, format='GIF', save_all=True, append_images=pictures[1:],
                           duration=round(1000 / fps), loop=0)
        else:
            import imageio.v2 as imageio
            writer = imageio.get_writer(temporary, format='FFMPEG', fps=fps, codec='libx264', macro_block_size=1,
                                        ffmpeg_log_level='error')
            try:
                for frame in frames:
                    writer.append_data(frame)
            finally:
                writer.close()
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


# The frames directory

def frames_directory(output, net, frames, styles, settings, clip):
    """Where the finished frames of a run go: beside the output, in `<output>.frames/<key>`, the key a hash of
    everything that decides them: the frames and styles as stylize_clip is given them, the network's weights,
    the stylize.Settings, the ClipSettings and FRAMES_METHOD. A rerun of the same finds its frames; any other
    run gets a directory of its own. Made, with the settings as settings.json, by stylize_clip."""
    digest = hashlib.sha256(json.dumps(_manifest(settings, clip), sort_keys=True).encode())
    for array in [*frames, *styles, net.mean_pixel, *(net.kernels[name] for name in sorted(net.kernels)),
                  *(net.biases[name] for name in sorted(net.biases))]:
        digest.update(np.ascontiguousarray(array).tobytes())
    return os.path.join(output.rstrip('/') + '.frames', digest.hexdigest()[:16])


def _manifest(settings, clip):
    return {'method': FRAMES_METHOD, 'settings': dataclasses.asdict(settings), 'clip': dataclasses.asdict(clip)}


def _make_frames_directory(directory, settings, clip):
    os.makedirs(directory, exist_ok=True)
    manifest = os.path.join(directory, 'settings.json')
    if not os.path.exists(manifest):
        files.write_atomically(manifest, lambda f: f.write(
            json.dumps(_manifest(settings, clip), sort_keys=True, indent=1).encode()))


def frame_path(directory, frame, pass_):
    """The file of frame `frame` (0-based) after pass `pass_` (1-based)."""
    return os.path.join(directory, f'pass{pass_}', FRAME_FORMAT.format(frame + 1))


def finished_frames(directory, count, passes):
    """The latest finished version of each frame, in order, up to the first frame with none: paths."""
    paths = []
    for frame in range(count):
        done = [frame_path(directory, frame, p) for p in range(passes, 0, -1)
                if os.path.exists(frame_path(directory, frame, p))]
        if not done:
            break
        paths.append(done[0])
    return paths


# gamma_t

def default_temporal_weight(style_weight, style_layer_weights, multipass=False):
    """gamma_t that weighs the temporal loss against the style loss as the authors' code does.

    Their style loss of layer l is 1e2 (1/(N_l^4 M_l^2)) sum (G - A)^2 and their temporal loss the paper's
    (1/D) sum c (x - w)^2 with weight 1e3 (5e2 multi-pass); ours is beta w_l (1/(4 N_l^2 M_l^2)) sum (G - A)^2, so
    the same balance at layer l is gamma_t = ratio * beta * w_l * N_l^2 / 4, ratio = 1e3 / 1e2, whatever the
    frame size. It is taken at the style layer where it is largest: with the paper's layers and w_l = 1/5, relu4_1
    and relu5_1 (N_l = 512), the layers that carry the style loss on the real network (docs/method.md).
    style_layer_weights: layer -> w_l. multipass: the multi-pass algorithm's ratio, 5e2 / 1e2."""
    ratio = MULTIPASS_TEMPORAL_RATIO if multipass else TEMPORAL_RATIO
    return ratio * style_weight * max(w * vgg.channels(layer) ** 2 / 4 for layer, w in style_layer_weights.items())


# The per-clip loop

@dataclass
class FrameProgress:
    """An iteration of frame `frame` (0-based) of `count` in pass `pass_` of `passes`."""
    frame: int
    count: int
    pass_: int
    passes: int
    iterations: int  # this frame's in this pass
    progress: stylize.Progress
    remaining_seconds: float  # the whole clip's, estimated from this run's speed; nan before it is known


@dataclass
class FrameDone:
    """Frame `frame` of pass `pass_` written to `path`; resumed: it was there from an earlier run."""
    frame: int
    count: int
    pass_: int
    passes: int
    path: str
    resumed: bool
    flow_seconds: float  # spent on optical flow and consistency for this frame
    seconds: float  # in all for this frame


class _Flows:
    """Optical flows and consistency weights between content frames, each computed once."""

    def __init__(self, frames, method):
        self.frames, self.method, self.cache, self.seconds = frames, method, {}, 0.0

    def flow(self, a, b):
        if (a, b) not in self.cache:
            started = time.perf_counter()
            self.cache[a, b] = flow.optical_flow(self.frames[a], self.frames[b], self.method)
            self.seconds += time.perf_counter() - started
        return self.cache[a, b]

    def weights(self, a, b):
        """c on frame a's grid for frame b warped onto it."""
        if ('c', a, b) not in self.cache:
            backward, forward = self.flow(a, b), self.flow(b, a)
            started = time.perf_counter()
            self.cache['c', a, b] = flow.consistency(backward, forward)
            self.seconds += time.perf_counter() - started
        return self.cache['c', a, b]

    def warped(self, image, a, b):
        """A stylized frame b warped onto frame a's grid, and where it came from inside frame b (flow.warp).
        By cubic B-splines, not the authors' bilinear warp: each later frame starts from the previous one
        warped, so a clip resamples its paint once a frame, and bilinear sampling at sub-pixel shifts blurs
        it a little more each time (the last of 10 frames of a pan kept 0.76 of the first's sharpness;
        docs/development.md, Measurement history). Clipped to 0..255, which the splines overshoot at sharp edges."""
        warped, inside = flow.warp(image, self.flow(a, b), 'cubic')
        return np.clip(warped, *images.PIXEL_RANGE).astype(np.float32), inside


def entering_filled(warped, inside, content):
    """The start of a later frame: the previous stylized frame warped, its pixels from outside that frame
    (the strip a pan brings in) taken from the content frame recoloured to the warped pixels' RGB mean and
    covariance (colors.match_histogram). The authors' code starts them from the mean pixel: flat grey, which the
    few iterations of a later frame do not paint and the temporal loss keeps in the frames after."""
    if inside.all():
        return warped
    if not inside.any():  # nothing of the previous frame is seen: the content frame's own colours
        return np.asarray(content, np.float32)
    start = warped.copy()
    start[~inside] = colors.match_histogram(content, warped[inside])[~inside]
    return start


def schedule(count, passes):
    """(pass, frame, neighbour) in processing order: pass 1 forward, and in the multi-pass algorithm later
    passes alternately backward and forward; the neighbour is the frame processed just before in that pass
    (None for the first)."""
    for pass_ in range(1, passes + 1):
        order = range(count) if pass_ % 2 else range(count - 1, -1, -1)
        previous = None
        for frame in order:
            yield pass_, frame, previous
            previous = frame


@dataclass(frozen=True)
class ClipSettings:
    """What decides a clip's frames besides stylize.Settings (whose iterations and temporal_weight each frame
    replaces): the algorithm of Ruder, Dosovitskiy & Brox and its parameters."""
    passes: int = 1  # 1: the single-pass algorithm; more: the multi-pass algorithm with that many passes
    long_term: int = LONG_TERM  # J, the previous frames tied to each frame (single pass)
    iterations: tuple = None  # (first frame, later frames), or (per frame and pass,) with passes > 1; None: default
    temporal_weight: float = None  # gamma_t; None: default_temporal_weight
    flow_method: str = flow.FLOW_METHOD
    init: str = 'noise'  # the first frame's start (every frame's in pass 1 of the multi-pass algorithm): stylize.INITS
    blend_weight: float = BLEND_WEIGHT  # delta, the multi-pass algorithm's

    def __post_init__(self):
        if self.iterations is not None:
            object.__setattr__(self, 'iterations', tuple(self.iterations))


def stylize_clip(net, frames, styles, directory, settings, clip, placement=None, describe=None):
    """Stylizes `frames` (RGB 0..255, one size) into `directory`, yielding FrameProgress and FrameDone.

    settings: a stylize.Settings; clip: a ClipSettings.
    passes 1: the single-pass algorithm. The first frame starts as stylize.stylize would: from clip.init
    ('content': the frame, 'style': the first style image at the frames' size) with the settings' noise_blend,
    or from white noise; every later frame i starts from x_{i-1} warped by the flow from frame i to i-1, its
    pixels from outside frame i-1 taken from content frame i recoloured (entering_filled; the authors: the mean
    pixel), and adds
    gamma_t sum_j L_temporal(x_i, w(x_{i-j}), c_long) over the previous long_term frames j (c_long: see
    flow.long_term_weights). iterations: (first frame, later frames).
    passes > 1: the multi-pass algorithm. Pass 1 stylizes every frame from its usual start (as the first);
    pass p > 1 goes backward (p even) or forward (p odd) and starts frame i from
    (x_i + delta c w(x_n)) / (1 + delta c), x_i its result of pass p-1 and x_n the neighbour's of this pass (the
    frame processed just before); the passes after the first half (from pass passes // 2 + 1; the authors' code:
    8 of 15) add gamma_t L_temporal against w(x_n). iterations: (per pass,).

    Each finished frame is written (8-bit PNG, atomically) and later frames are computed from those files, so a
    rerun on the same directory (frames_directory) skips what is there and gives what an uninterrupted run
    gives. describe(progress, iterations) -> {field: text}: the settings recorded inside each finished frame
    (images.write_image), from its last Progress and its iterations.
    """
    count, (height, width) = len(frames), frames[0].shape[:2]
    passes, multipass = clip.passes, clip.passes > 1
    iterations = clip.iterations or ((PASS_ITERATIONS,) if multipass else (FIRST_ITERATIONS, LATER_ITERATIONS))
    first_iterations, later_iterations = iterations[0], iterations[-1]
    temporal_weight = clip.temporal_weight
    if temporal_weight is None:
        temporal_weight = default_temporal_weight(settings.style_weight, settings.style_weights(), multipass)
    initial = {'noise': None, 'content': lambda k: frames[k],
               'style': lambda k: images.resize(styles[0], height, width)}[clip.init]
    _make_frames_directory(directory, settings, clip)
    flows = _Flows(frames, clip.flow_method)
    steps = list(schedule(count, passes))

    def planned(pass_, frame):
        return later_iterations if multipass or frame > 0 else first_iterations

    remaining = sum(planned(p, f) for p, f, _ in steps if not os.path.exists(frame_path(directory, f, p)))
    started, done_iterations = time.perf_counter(), 0
    for pass_, frame, neighbour in steps:
        path = frame_path(directory, frame, pass_)
        if os.path.exists(path):
            yield FrameDone(frame, count, pass_, passes, path, True, 0.0, 0.0)
            continue
        frame_started, flow_before = time.perf_counter(), flows.seconds
        content, start, blend, targets = frames[frame], None, 0.0, None
        if not multipass and frame > 0:
            previous = [frame - j for j in range(1, clip.long_term + 1) if frame - j >= 0]
            c_long = flow.long_term_weights([flows.weights(frame, j) for j in previous])
            warped = [flows.warped(images.read_image(frame_path(directory, j, 1)), frame, j) for j in previous]
            start = entering_filled(*warped[0], content)
            targets = [(image, c) for (image, _), c in zip(warped, c_long)]
        elif pass_ > 1:
            start = images.read_image(frame_path(directory, frame, pass_ - 1))
            if neighbour is not None:
                warped, _ = flows.warped(images.read_image(frame_path(directory, neighbour, pass_)), frame, neighbour)
                c = flows.weights(frame, neighbour)[:, :, None]
                start = (start + clip.blend_weight * c * warped) / (1 + clip.blend_weight * c)
                if pass_ >= passes // 2 + 1:
                    targets = [(warped, c[:, :, 0])]
        elif initial is not None:
            start, blend = initial(frame), settings.noise_blend
        count_iterations = planned(pass_, frame)
        frame_settings = dataclasses.replace(settings, iterations=count_iterations, noise_blend=blend,
                                             temporal_weight=temporal_weight if targets else 0.0)
        for progress in stylize.stylize(net, content, styles, frame_settings, initial=start,
                                        temporal_targets=targets, placement=placement):
            left = remaining - progress.iteration
            rate = (time.perf_counter() - started) / (done_iterations + progress.iteration) \
                if done_iterations + progress.iteration else math.nan
            yield FrameProgress(frame, count, pass_, passes, count_iterations, progress, rate * left)
        done_iterations += count_iterations
        remaining -= count_iterations
        os.makedirs(os.path.dirname(path), exist_ok=True)
        images.write_image(path, progress.best_image, describe and describe(progress, count_iterations))
        yield FrameDone(frame, count, pass_, passes, path, False, flows.seconds - flow_before,
                        time.perf_counter() - frame_started)
