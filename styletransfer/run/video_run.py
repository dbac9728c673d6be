"""A clip's run (load, then VideoRun's steps) and its progress lines. What it shares with an image's run (the
checks of the configuration, the settings, the network, how a run stopped) is job.py's."""
import dataclasses
import json
import math
import os

import stylize
import vgg
from styletransfer.compute import devices
from styletransfer.media import colors, files, flow, images, video
from styletransfer.run import console, job

PARTIAL = 'partial-output.json'  # in the frames directory: the output holds this run's unfinished clip


def load(config, net=None, describe=None):
    """The VideoRun of a checked configuration (job.check_video_options): its styles and frames read and checked,
    its network and device, and its finished frames' directory; `net`, the loaded network, lets a caller reuse
    it. describe: as VideoRun's."""
    kind = video.output_kind(config.output)
    styles = [images.read_image(path, config.max_megapixels) for path in config.styles]
    size = []

    def prepare(frame):
        if not size:
            height, width = images.output_size(frame.shape, config.width, config.max_size)
            size.extend(video.even_size(height, width) if kind == 'video' else (height, width))
            images.check_megapixels('the output', *size, config.max_megapixels)
        return images.resize(frame, *size)

    photos, fps = video.read_clip(config.content[0], prepare, config.start, config.end, config.frames)
    height, width = photos[0].shape[:2]
    if config.flow == 'dis' and len(photos) > 1 and min(height, width) < flow.DIS_MIN_SIDE:
        raise job.UserError(f'frames of {width}x{height} are too small for DIS optical flow (both sides at '
                            f'least {flow.DIS_MIN_SIDE} pixels): use a larger --max-size or --width, or --flow '
                            f'farneback')
    net = net or job.load_network(config)
    network = vgg.weights_identity(config.network)
    job.import_tensorflow(config)
    placement = devices.one_device(config.device)
    net, problem = job.run_network(config, net, placement)
    clip_run = VideoRun(config, photos, fps, styles, placement, net, problem, network, describe)
    clip_run.check_output()
    return clip_run


class VideoRun:
    """One clip run of a configuration (video.py), made by load: its frames stylized with temporal consistency,
    finished frames kept for a rerun, and written as a clip. describe(config) -> {field: text}: what the caller
    adds to the settings recorded inside each finished frame (job.recorded_settings)."""

    def __init__(self, config, photos, fps, styles, placement, net, network_problem, network, describe=None):
        self.config, self.photos, self.fps, self.placement = config, photos, fps, placement
        self.net, self.network_problem, self.network = net, network_problem, network
        height, width = photos[0].shape[:2]
        self.frames = [colors.content_seen(config.preserve_colors, photo) for photo in photos]
        self.styles = [images.scaled_style(style, width, scale) for style, scale in zip(
            colors.styles_seen(config.preserve_colors, styles, photos[0]), config.style_scales or [1.0] * len(styles))]
        self.settings = dataclasses.replace(
            job.run_settings(config, tolerance=video.FRAME_TOLERANCE if config.passes == 1 else 0.0),
            style_weight=job.style_weight_at(config, height, width))
        gamma_t = config.temporal_weight
        if gamma_t is None:
            gamma_t = video.default_temporal_weight(self.settings.style_weight, self.settings.style_weights(),
                                                    config.passes > 1)
        self.clip = video.ClipSettings(passes=config.passes, long_term=config.long_term, iterations=config.iterations,
                                       temporal_weight=gamma_t, flow_method=config.flow, init=config.init)
        # Keyed by the seed given: a rerun without --seed finds the frames (its own seed is new).
        given_seed = config.seed if config.seed_given else None
        self.directory = video.frames_directory(config.output, self.net, self.frames, self.styles,
                                                dataclasses.replace(self.settings, seed=given_seed), self.clip)
        self.finished, self.describe = [], describe or (lambda config: {})

    def plan(self):
        height, width = self.frames[0].shape[:2]
        passes = self.clip.passes
        return (f'output {width}x{height}, {len(self.frames)} frames at {self.fps:g} fps, {len(self.styles)} style '
                f'image(s), {self.settings.optimizer}, {"single pass" if passes == 1 else f"{passes} passes"}, '
                f'beta {self.settings.style_weight:.4g} ({job.beta_in_words(self.config)}), '
                f'gamma_t {self.clip.temporal_weight:.4g}, on {self.placement.devices[0]}, ' +
                devices.arithmetic_in_words(self.config.precision, self.config.convolutions,
                                            self.placement.devices[0]) +
                (f', a frame ends once its objective changes by less than {self.settings.tolerance:g} over '
                 f'{self.settings.tolerance_window} iterations' if self.settings.tolerance else '') +
                f'; finished frames in {self.directory}; network {vgg.describe(self.net)}' +
                (f'\nnetwork: {self.network_problem}' if self.network_problem else ''))

    def steps(self):
        """Stylizes the frames not finished before, yielding video.FrameProgress and video.FrameDone; writes the
        clip of the finished frames at the end, and at an interrupt or a loss that is not finite, which then
        raise job.Stopped (also when thrown in at a yield)."""
        steps = video.stylize_clip(self.net, self.frames, self.styles, self.directory, self.settings, self.clip,
                                   self.placement, self._frame_settings)
        stop = None
        try:
            yield from steps
        except (KeyboardInterrupt, stylize.NonFiniteLoss) as error:
            stop = error
        finally:
            steps.close()
        self.finished = video.finished_frames(self.directory, len(self.frames), self.clip.passes)
        if self.finished:
            clip = [images.to_uint8(colors.recoloured(self.config.preserve_colors, images.read_image(path),
                                                      self.photos[k]))
                    for k, path in enumerate(self.finished)]
            video.write_clip(self.config.output, clip, self.fps, overwrite=True)
            self._remember_partial(partial=len(self.finished) < len(self.frames) or stop is not None)
        if stop is not None:
            what, code = job.why_stopped(stop)
            saved = (f'wrote the {len(self.finished)} finished frame(s) to {self.config.output}' if self.finished
                     else 'no frame finished')
            raise job.Stopped(f'{what}; {saved}; run the same command again to continue', code)

    def _frame_settings(self, progress, iterations):
        """The settings recorded inside a finished frame."""
        return job.recorded_settings(self.config, self.describe(self.config), self.network, progress.iteration,
                                     iterations, progress)

    def check_output(self):
        """An existing output is replaced only with --overwrite, or when it is this run's own unfinished clip."""
        output = self.config.output.rstrip('/') or self.config.output
        if not os.path.exists(output) or self.config.overwrite:
            return
        record = os.path.join(self.directory, PARTIAL)
        if os.path.exists(record):
            with open(record) as f:
                path, size, mtime = json.load(f)
            info = os.stat(output)
            if path == os.path.abspath(output) and (info.st_size, info.st_mtime_ns) == (size, mtime):
                return
        raise job.UserError(f'{output} exists; choose another name or pass --overwrite')

    def _remember_partial(self, partial):
        """Records that the output holds this run's unfinished clip, so that a rerun may replace it."""
        record = os.path.join(self.directory, PARTIAL)
        if partial:
            info = os.stat(self.config.output)
            files.write_atomically(record, lambda f: f.write(json.dumps(
                [os.path.abspath(self.config.output), info.st_size, info.st_mtime_ns]).encode()))
        elif os.path.exists(record):
            os.unlink(record)


def frame_label(step):
    """`pass 2/3  frame  4/10  ` for a video step."""
    passes = f'pass {step.pass_}/{step.passes}  ' if step.passes > 1 else ''
    return f'{passes}frame {step.frame + 1:>{len(str(step.count))}}/{step.count}  '


def frame_line(step):
    """A video step's progress line: iteration, losses and the clip's remaining time."""
    p = step.progress
    remaining = ('' if math.isnan(step.remaining_seconds) else
                 f'  remaining {console.format_duration(step.remaining_seconds)}')
    return (f'{frame_label(step)}iteration {p.iteration:>{len(str(step.iterations))}}/{step.iterations}  '
            f'content {p.content:.4g}  style {p.style:.4g}  temporal {p.temporal:.4g}  total {p.total:.4g}{remaining}' +
            ('  (converged: --tolerance)' if p.converged else ''))
