"""One checked run of the command line's options, without printing: an image in stages (Run) or a clip
(VideoRun). The command line (neural_style.py) prints their steps; the page (app.py) shows them.

Made, a run has checked the options against each other and the file system, read its images and loaded the
network; steps() optimizes, writes what it makes as it goes, and raises Stopped (after writing the best it has)
for an interrupt, a loss that is not finite or a lost worker.
"""
import dataclasses
import glob
import json
import math
import os
import secrets
import shlex
import signal

import cluster
import colors
import devices
import files
import flow
import images
import network_normalization
import options
import progress_plot
import quiet_tensorflow
import stylize
import tiling
import vgg
import video


class UserError(Exception):
    """Bad input from the user: reported as one sentence, without a traceback."""


# Everything reported to the user as one sentence.
USER_ERRORS = (UserError, files.PathError, images.ImageError, vgg.WeightsError, cluster.ClusterError, video.ClipError)


class Stopped(Exception):
    """The run stopped early (interrupted, a loss not finite, a lost worker) after writing what it had; `code`:
    the exit status."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


# The options

def run_settings(args, max_memory=None, tolerance=stylize.TOLERANCE):
    """The stylize.Settings of the options (each stage and frame replaces its iterations); `tolerance` unless
    --tolerance gives one."""
    fed = options.settings_fields(args)
    if args.tolerance is None:
        fed['tolerance'] = tolerance
    return stylize.Settings(**fed, max_memory=max_memory)


def choose_seed(args):
    """Gives a run without --seed a seed of its own, recorded in its images so that they can be made again: white
    noise from a chosen seed is as random as from none."""
    if args.seed is None:
        args.seed = secrets.randbelow(2 ** 31)


def choose_style_weight(args):
    """Gives a run without --style-weight the beta of its network, recorded in its images (a later version may
    change the default): stylize.NORMALIZED_STYLE_WEIGHT with --normalize-network, else stylize.STYLE_WEIGHT."""
    if args.style_weight is None:
        args.style_weight = stylize.NORMALIZED_STYLE_WEIGHT if args.normalize_network else stylize.STYLE_WEIGHT


def style_weight_at(args, height, width):
    """Eq. 7's beta for a height x width output: --style-weight as meant for stylize.REFERENCE_PIXELS, scaled to
    these pixels (stylize.style_weight_at), or as it is with --raw-style-weight."""
    if args.raw_style_weight:
        return args.style_weight
    return stylize.style_weight_at(args.style_weight, height, width)


def beta_in_words(args):
    """Where a run's beta comes from, for its set-up line."""
    if args.raw_style_weight:
        return f'--style-weight {args.style_weight:g} as given, --raw-style-weight'
    height, width = stylize.REFERENCE_SIZE
    return f'--style-weight {args.style_weight:g} at {width}x{height}, scaled to the pixels'


_NETWORK_DIGESTS = {}  # (path, size, modification time) -> SHA256: each weights file is hashed once per process


def network_digest(network):
    """The weights file a run uses (found as it finds it), absolute, and its SHA256 in hex."""
    path = os.path.abspath(vgg.find_weights(network))
    info = os.stat(path)
    key = (path, info.st_size, info.st_mtime_ns)
    if key not in _NETWORK_DIGESTS:
        _NETWORK_DIGESTS[key] = vgg.identify(path)[0]
    return path, _NETWORK_DIGESTS[key]


def network_identity(network):
    """The weights file a run uses and its SHA256: `path, SHA256 hex`."""
    path, sha256 = network_digest(network)
    return f'{path}, SHA256 {sha256}'


def recorded_settings(args, described, network, iterations_done, iterations, progress):
    """The settings recorded inside an image (images.write_image): what the caller describes (described: {field:
    text}, such as the program's version and the equivalent command line), the network (network_identity), the
    seed, the iterations run and the last iteration's loss terms."""
    return {**described, 'Network': network, 'Seed': str(args.seed),
            'Iterations': f'{iterations_done} of {iterations}',
            'Losses': (f'content {progress.content:.6g}, style {progress.style:.6g}, tv {progress.tv:.6g}, '
                       f'temporal {progress.temporal:.6g}, total {progress.total:.6g}; the image\'s total '
                       f'{progress.best_total:.6g}')}


def check_options(args):
    """Checks an image run's options against each other and the file system, before anything is computed."""
    if args.iterations is None:
        args.iterations = [stylize.ITERATIONS]
    counts = [('--style-scales', args.style_scales, len(args.styles), 'style images'),
              ('--style-blend-weights', args.style_blend_weights, len(args.styles), 'style images'),
              ('--style-masks', args.style_masks, len(args.styles), 'style images'),
              ('--style-layer-weights', args.style_layer_weights, len(args.style_layers), 'style layers'),
              ('--content-layer-weights', args.content_layer_weights, len(args.content_layers), 'content layers')]
    for option, values, expected, what in counts:
        if values is not None and len(values) != expected:
            raise UserError(f'{option} has {len(values)} values for {expected} {what}')
    _check_layers(args)
    if args.style_blend_weights is not None and sum(args.style_blend_weights) <= 0:
        raise UserError('--style-blend-weights must not all be 0')
    for option in options.refused(args, options.IMAGE):
        raise UserError(f'{option.flag} applies to a video content only; {args.content} is an image')
    if args.scales is None and len(args.iterations) > 1:
        raise UserError(f'--iterations has {len(args.iterations)} values but there are no --scales; give one number')
    if args.scales is not None and len(args.iterations) not in (1, len(args.scales)):
        raise UserError(f'--iterations has {len(args.iterations)} values for {len(args.scales)} scales; '
                        f'give one number or one per scale')
    if args.scales is not None and args.width is not None:
        raise UserError('--scales sets the output size (its last value); leave out --width')
    if args.bit_depth == 16 and os.path.splitext(args.output)[1].lower() not in ('.png', '.tif', '.tiff'):
        raise UserError(f'--bit-depth 16 writes a .png or .tif output, not {args.output}')
    if args.cluster_timeouts is not None and args.cluster is None:
        raise UserError('--cluster-timeouts is for the workers of --cluster')
    if (args.checkpoint_output is None) != (args.checkpoint_iterations is None):
        raise UserError('--checkpoint-output and --checkpoint-iterations go together')
    if args.checkpoint_output is not None and '%s' not in args.checkpoint_output:
        raise UserError(f'--checkpoint-output {args.checkpoint_output} has no %s for the iteration number')
    if args.tile_size is not None:
        deepest = vgg.deepest(args.content_layers + args.style_layers)
        if args.tile_size % tiling.alignment(deepest):
            raise UserError(f'--tile-size {args.tile_size} is not a multiple of {tiling.alignment(deepest)}, the '
                            f'stride of {deepest} (the deepest loss layer)')
    _check_device_name(args)
    chosen = [option for option, value in (('--device', args.device), ('--devices', args.devices),
                                           ('--cluster', args.cluster)) if value is not None]
    if len(chosen) > 1:
        raise UserError(f'{" and ".join(chosen)} each say where the run goes: give one of them')
    outputs = [args.output]
    if args.checkpoint_output:
        outputs += [checkpoint_path(args.checkpoint_output, i)
                    for i in range(args.checkpoint_iterations, sum(stage_iterations(args)), args.checkpoint_iterations)]
    _check_distinct([('--output', args.output)] + [('--checkpoint-output', path) for path in outputs[1:]] +
                    [('--progress-write', args.progress_write)] * bool(args.progress_write) +
                    [('--progress-plot', args.progress_plot)] * bool(args.progress_plot))
    _check_not_an_input([('--output', args.output)] + [('--checkpoint-output', path) for path in outputs[1:]] +
                        [('--progress-write', args.progress_write)] * bool(args.progress_write) +
                        [('--progress-plot', args.progress_plot)] * bool(args.progress_plot), _inputs(args))
    for path in outputs:
        images.check_image_path(path, args.overwrite)
    if args.progress_write:
        files.check_writable(args.progress_write, args.overwrite)
    if args.progress_plot:
        images.check_plot_path(args.progress_plot, args.overwrite)
    for option, path in _inputs(args):  # a missing file is named before TensorFlow is imported (seconds)
        if not os.path.exists(path):
            raise images.ImageError(f'image {path} does not exist')
    _check_device(args)  # last: asking TensorFlow which devices it sees imports it


def check_video_options(args):
    """The options of a video run, checked before anything is computed; returns the output's kind."""
    if args.bit_depth != 8:  # before the others: its own sentence
        raise UserError('--bit-depth is for an image output; a video\'s frames are 8-bit')
    for option in options.refused(args, options.VIDEO):
        raise UserError(f'{option.flag} is not supported for a video content')
    iterations = args.iterations or []
    if len(iterations) > (1 if args.passes > 1 else 2):
        raise UserError(f'--iterations has {len(iterations)} values; for a video give one number, or two (the '
                        f'first frame\'s and the later frames\'), or one with --passes')
    if args.passes > 1 and args.long_term > 1:
        raise UserError('--long-term and --passes do not combine (the multi-pass algorithm ties each frame to its '
                        'neighbour only)')
    if args.start is not None and args.end is not None and args.end <= args.start:
        raise UserError(f'--end {args.end:g} is not after --start {args.start:g}')
    _check_layers(args)
    _check_device_name(args)
    kind = video.output_kind(args.output)
    output = args.output.rstrip('/') or args.output
    _check_not_an_input([('--output', output)], _inputs(args))
    if os.path.isdir(output) and kind != 'directory':
        raise UserError(f'{output} is a directory')
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise UserError(f'cannot write {output}: directory {directory} does not exist')
    if not os.access(directory, os.W_OK):
        raise UserError(f'cannot write {output}: directory {directory} is not writable')
    _check_device(args)
    return kind


def _check_layers(args):
    for option, layers in (('--content-layers', args.content_layers), ('--style-layers', args.style_layers)):
        repeated = sorted({layer for layer in layers if layers.count(layer) > 1}, key=vgg.LAYERS.index)
        if repeated:
            raise UserError(f'{option} names {" and ".join(repeated)} more than once; give each layer once '
                            f'(its weight goes in {option[:-1]}-weights)')


def _check_device_name(args):
    if args.device is not None and not devices.is_device_name(args.device):
        raise UserError(f'--device {args.device} is not a device name such as /cpu:0 or /gpu:0')


def import_tensorflow(args):
    """TensorFlow, imported without its start-up lines unless --verbose (quiet_tensorflow), by the first step of
    a run that needs it: after the checks that do not, so that a missing file is named in a moment, not after
    the seconds of TensorFlow's import."""
    try:
        return quiet_tensorflow.import_tensorflow(getattr(args, 'verbose', False))
    except ImportError as error:
        raise UserError(f'TensorFlow cannot be imported ({error}): install it with the README\'s command') from None


def _check_device(args):
    if args.device is not None:
        import_tensorflow(args)
        try:
            devices.existing_device(args.device)
        except ValueError as error:
            raise UserError(f'--device: {error}') from None


def _check_distinct(outputs):
    """Refuses two outputs, (option, path), on one file: the later write would replace the earlier silently."""
    seen = {}
    for option, path in outputs:
        earlier = seen.setdefault(os.path.realpath(path), (option, path))
        if earlier != (option, path):
            raise UserError(f'{earlier[0]} {earlier[1]} and {option} {path} are the same file; give each output '
                            f'a name of its own')


def _inputs(args):
    """The files a run reads, (option, path): the content, the styles, the masks and --initial."""
    return ([('--content', args.content)] + [('--styles', path) for path in args.styles] +
            [('--style-masks', path) for path in args.style_masks or []] +
            [('--initial', args.initial)] * bool(args.initial))


def _check_not_an_input(outputs, inputs):
    """Refuses an output, (option, path), that is one of the inputs, by its name or as the same file (a hard
    link, a symbolic link): writing it would destroy the input, --overwrite or not."""
    for option, path in outputs:
        for input_option, input_path in inputs:
            same = os.path.realpath(path) == os.path.realpath(input_path)
            if not same and os.path.exists(path) and os.path.exists(input_path):
                same = os.path.samefile(path, input_path)
            if same:
                raise UserError(f'{option} {path} is the same file as {input_option} {input_path}: writing it '
                                f'would destroy that input (refused even with --overwrite); give the output a '
                                f'name of its own')


def continued_path(path):
    """A name for the continuation of a run's file `path`: `out.png` -> `out-continued.png`, or
    `out-continued-2.png` (3, ...) when that exists; a --checkpoint-output pattern's %s is kept."""
    stem, extension = os.path.splitext(path)
    number, candidate = 1, f'{stem}-continued{extension}'
    while os.path.exists(candidate) or '%s' in candidate and glob.glob(glob.escape(candidate).replace('%s', '*')):
        number += 1
        candidate = f'{stem}-continued-{number}{extension}'
    return candidate


def checkpoint_path(pattern, iteration):
    """--checkpoint-output's file for an iteration: every %s replaced by its number, any other % kept."""
    return pattern.replace('%s', str(iteration))


def content_is_video(path):
    """Whether the content is a video, told by its contents: a file that Pillow does not read as a still image
    and ffmpeg reads as a video (an animated GIF is a video). A file named like a video that neither reads
    gets ffmpeg's complaint as a ClipError; any other unreadable file is left to images.read_image to report."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0 or images.is_still_image(path):
        return False
    try:
        video.probe(path)
    except video.ClipError:
        if os.path.splitext(path)[1].lower() in video.VIDEO_EXTENSIONS:
            raise
        return False
    return True


def placement(args):
    """Where the run's graphs go: the devices of --cluster's workers, --devices, or --device (default: the GPU
    if TensorFlow sees one, else the CPU). Reaches every worker before any work (ClusterError)."""
    import_tensorflow(args)
    try:
        if args.cluster:
            return cluster.remote_placement(cluster.parse_addresses(args.cluster),
                                            *(args.cluster_timeouts or (devices.ANSWER_TIMEOUT, devices.STALL_CHECK)))
        if args.devices:
            return devices.local_placement(args.devices)
    except ValueError as error:
        raise UserError(str(error)) from None
    return devices.one_device(args.device)


def load_network(args):
    """The network of --network, or the file found without it, fetched into the cache on first use unless
    --no-download (or $NEURAL_STYLE_NO_DOWNLOAD) says not to; through load_net_cached's converted copy."""
    path = vgg.find_or_fetch_weights(args.network, download=not args.no_download)
    return vgg.load_net_cached(path, vgg.converted_cache_dir())


def run_network(args, net, placement):
    """(the network a run uses, None or a sentence to tell the user): `net`, the published network, as it is;
    with --normalize-network the paper's normalized network, its mean activations read from the cache directory
    (vgg.cache_dir(), wherever the weights file is) or computed on `placement` and cached there, the sentence
    saying when they could not be."""
    if not args.normalize_network:
        return net, None
    means, problem = network_normalization.cached_mean_activations(net, network_digest(args.network)[1],
                                                                   vgg.cache_dir(), placement)
    return network_normalization.normalized(net, means), problem


# How a run stopped, in one sentence

def signal_name(interrupt):
    return interrupt.args[0] if interrupt.args else 'SIGINT'


def signal_exit_code(interrupt):
    return 128 + signal.Signals[signal_name(interrupt)].value


def _likely_cause(term):
    weight = {'content': '--content-weight', 'style': '--style-weight or --style-layer-weights',
              'tv': '--tv-weight', 'temporal': '--temporal-weight'}.get(term, 'a loss weight')
    return f'{weight} too large for 32-bit floats?' + (' With Adam, --learning-rate?' if term == 'gradient' else '')


def _why(reason, where=''):
    """(what stopped the run, the exit status) for an interrupt or a loss that is not finite (at `where`)."""
    if isinstance(reason, KeyboardInterrupt):
        return f'interrupted ({signal_name(reason)})', signal_exit_code(reason)
    return f'error: {reason}{where} ({_likely_cause(reason.term)})', 1


def format_duration(seconds):
    seconds = int(round(seconds))
    return f'{seconds // 3600}h{seconds // 60 % 60:02d}m{seconds % 60:02d}s' if seconds >= 3600 else \
        f'{seconds // 60}m{seconds % 60:02d}s'


# An image

def stage_sizes(shape, args):
    """(height, width) of each stage: one per --scales value, that value the longest side (the content is
    enlarged when it is smaller: the sizes asked for are kept), or the one output size of --width / --max-size."""
    if args.scales is None:
        return [images.output_size(shape, args.width, args.max_size)]
    return [images.longest_side(shape, size) for size in args.scales]


def stage_iterations(args):
    """The iterations of each stage: --iterations, one number for all stages or one per stage."""
    stages = len(args.scales) if args.scales else 1
    return args.iterations * stages if len(args.iterations) == 1 else args.iterations


class Run:
    """One image run of the command line's options (an image in stages, coarse to fine with --scales). `net`,
    the loaded network, lets a caller reuse it across runs. describe(args) -> {field: text}: what the caller adds
    to the settings recorded inside each image written (recorded_settings); a run without --seed gets one."""

    def __init__(self, args, net=None, describe=None):
        check_options(args)
        choose_seed(args)
        choose_style_weight(args)
        self.describe = describe or (lambda args: {})
        content = images.read_image(args.content, args.max_megapixels)  # before TensorFlow is imported: seconds
        styles = [images.read_image(path, args.max_megapixels) for path in args.styles]
        masks = [images.read_image(path, args.max_megapixels) for path in args.style_masks] if args.style_masks else None
        initial = images.read_image(args.initial, args.max_megapixels) if args.initial else None
        self.placement = placement(args)  # before any work: every worker of --cluster answers
        sizes, iterations = stage_sizes(content.shape, args), stage_iterations(args)
        images.check_megapixels('the output', *sizes[-1], args.max_megapixels)
        for path, mask in zip(args.style_masks or [], masks or []):
            if not all(images.mask_at(mask, height, width).any() for height, width in sizes):
                raise UserError(f'mask {path} is black everywhere: its style would govern no part of the output')
        self.converted = [(path, name) for path in [args.content, *args.styles, *(args.style_masks or []),
                                                    *[args.initial] * bool(args.initial)]
                          for name in [images.converted_profile(path)] if name]  # (path, profile) read as sRGB
        self.net, self.network_problem = run_network(args, net or load_network(args), self.placement)
        self.network = network_identity(args.network)  # now: an interrupt's write is not kept waiting for it
        self.args, self.photo, self.masks, self.sizes, self.iterations = args, content, masks, sizes, iterations
        self.content = colors.content_seen(args.preserve_colors, content)
        self.styles = colors.styles_seen(args.preserve_colors, styles, content)
        self.initial = None if initial is None else colors.content_seen(args.preserve_colors, initial)
        budget = (args.max_memory or tiling.default_memory()) * 1e9 if args.tile_size is None else None
        settings = run_settings(args, budget)
        self.plans = [tiling.plan(size, settings.content_layers, settings.style_layers, tile_size=settings.tile_size,
                                  max_memory=budget, optimizer=settings.optimizer,
                                  lbfgs_history=settings.lbfgs_history, devices=len(self.placement.devices))
                      for size in sizes]
        # Each stage's settings: its iterations, its beta, and the tiling planned for it.
        self.stages = [(size, dataclasses.replace(settings, iterations=count, style_weight=style_weight_at(args, *size),
                                                  tile_size=plan.tile_size, max_memory=None))
                       for size, count, plan in zip(sizes, iterations, self.plans)]
        self.losses = []  # (iteration over all stages, content, style, tv, total) of each step: the plot's rows

    def as_written(self, image):
        """A result as written: with colour preservation applied."""
        return colors.recoloured(self.args.preserve_colors, image, self.photo)

    def plan(self):
        """What the run will do: a line, then one per stage, per input converted to sRGB, and the stages."""
        height, width = self.sizes[-1]
        args = self.args
        text = (f'output {width}x{height}, {len(self.styles)} style image(s), {args.optimizer}, '
                f'{sum(self.iterations)} iterations, on {", ".join(self.placement.devices)}, '
                f'{devices.precision_in_words(args.precision, self.placement.devices[0])}; network '
                f'{vgg.describe(self.net)}')
        if self.network_problem:
            text += f'\nnetwork: {self.network_problem}'
        for (size, settings), memory in zip(self.stages, self.plans):
            text += '\n' + self._plan_line(size, settings, memory)
        for path, profile in self.converted:
            text += f'\ncolour: {path} converted to sRGB from its profile, {profile}'
        if args.scales is not None:
            text += '\nstages: ' + ', '.join(f'{w}x{h} ({n} iterations)'
                                             for (h, w), n in zip(self.sizes, self.iterations))
        return text

    def _plan_line(self, size, settings, memory):
        """A stage's beta, how it is evaluated, tiled or not, and its estimated peak memory."""
        height, width = size
        beta = f'beta {settings.style_weight:.4g} ({beta_in_words(self.args)})'
        deepest = vgg.deepest(self.args.content_layers + self.args.style_layers)
        peak = f'estimated peak memory {memory.peak / 1e9:.2f} GB'
        if memory.budget is not None:
            peak += f' of {memory.budget / 1e9:.1f} GB (--max-memory)'
        if memory.tile_size is None:
            return f'{width}x{height}: {beta}, untiled, {peak}'
        tiles = tiling.make_tiles(height, width, memory.tile_size, deepest)
        return (f'{width}x{height}: {beta}, tiled, {len(tiles)} tiles of {memory.tile_size} px with a '
                f'{tiling.halo(deepest)} px halo, {peak}')

    def line(self, stage, progress):
        """A step's progress line: iteration, losses, elapsed and remaining time."""
        iterations = self.iterations[stage]
        remaining = ''
        if progress.iteration:
            left = progress.seconds / progress.iteration * (iterations - progress.iteration)
            remaining = f'  remaining {format_duration(left)}'
        return (f'{self.stage_prefix(stage)}iteration {progress.iteration:>{len(str(iterations))}}/{iterations}  '
                f'content {progress.content:.4g}  style {progress.style:.4g}  tv {progress.tv:.4g}  '
                f'total {progress.total:.4g}  elapsed {format_duration(progress.seconds)}{remaining}')

    def stage_prefix(self, stage):
        return f'stage {stage + 1}/{len(self.sizes)}  ' if len(self.sizes) > 1 else ''

    def steps(self):
        """Optimizes, yielding (stage, Progress) after every iteration; writes the CSV and the plot as it goes,
        the checkpoints, and the output at the end. An interrupt or a loss that is not finite writes the best
        image so far and raises Stopped; so does an interrupt thrown in at a yield (steps.throw). Closing the
        generator early (the page's Stop) writes the best image so far too."""
        args, iterations = self.args, self.iterations
        staged = args.scales is not None
        log = images.ProgressLog(args.progress_write, staged) if args.progress_write else None
        progress, stop = None, None
        steps = stylize.stylize_in_stages(
            self.net, self.content, self.styles, self.stages, style_scales=args.style_scales or [1.0] * len(self.styles),
            style_masks=self.masks, init=args.init, initial=self.initial, placement=self.placement)
        try:
            for stage, progress in steps:
                done = sum(iterations[:stage]) + progress.iteration  # over all stages: names the checkpoints
                self.losses.append((done, progress.content, progress.style, progress.tv, progress.total))
                if log:
                    log.add(progress, stage + 1 if staged else None)
                if (args.checkpoint_iterations and progress.iteration
                        and done % args.checkpoint_iterations == 0 and done < sum(iterations)):
                    images.write_image(checkpoint_path(args.checkpoint_output, done),
                                       self.as_written(progress.best_image), self.settings_record(progress))
                    self._write_plot()
                yield stage, progress
        except (KeyboardInterrupt, stylize.NonFiniteLoss, devices.DeviceLost) as error:
            stop = error
        except GeneratorExit:  # the consumer stopped early: nothing is lost
            if progress is not None:
                self._write_result(progress)
            raise
        finally:
            steps.close()  # stops the optimizer's worker thread
            if log:
                log.close()
            self._write_plot()
        if stop is not None:
            raise self._stopped(stop, progress)
        try:
            written, error = self._write_result(progress)
        except KeyboardInterrupt as interrupt:  # the run is over: its image is written all the same
            raise self._stopped(interrupt, progress, finished=True) from None
        if error:
            raise Stopped(f'error: could not write {args.output} ({error}); wrote the result to {written} instead', 1)

    def settings_record(self, progress):
        """The settings recorded inside an image written after `progress`, the last step."""
        return recorded_settings(self.args, self.describe(self.args), self.network, self.losses[-1][0],
                                 sum(self.iterations), progress)

    def _write_result(self, progress):
        try:
            return images.write_result(self.args.output, self.as_written(progress.best_image),
                                       self.settings_record(progress), self.args.bit_depth)
        except images.ImageError as error:
            raise Stopped(f'error: {error}', 1) from None

    def _stopped(self, reason, progress, finished=False):
        """Writes the best image so far to the output, for an interrupt, a loss that is not finite or a lost
        worker, and says so, with a command that continues the run. finished: the interrupt came after the last
        iteration, while the finished image was being written."""
        args = self.args
        resume, workers = not finished, ''
        if isinstance(reason, devices.DeviceLost):
            addresses = cluster.parse_addresses(args.cluster)
            task, lost = cluster.lost_worker(addresses, reason)
            what, code = f'error: {lost} ({reason})', 1
            remaining = ','.join(address for k, address in enumerate(addresses) if k != task)
            workers = f' --cluster {remaining}' if task is not None and remaining else ' once the workers run again'
        elif isinstance(reason, KeyboardInterrupt):
            what, code = _why(reason)
            if finished:
                what = f'{what} after the last iteration'
        else:
            what, code = _why(reason, f' at iteration {progress.iteration + 1 if progress else 0}')
            resume = False
        if progress is None:
            return Stopped(f'{what}; nothing written', code)
        others = [f'the {kind} to {path}' for kind, path in (('losses', args.progress_write),
                                                             ('plot', args.progress_plot)) if path]
        try:
            written, error = self._write_result(progress)
        except KeyboardInterrupt as again:  # the write is atomic: the output is as it was before it
            return Stopped(f'{what}, and {signal_name(again)} again while the best image so far was written: '
                           f'{args.output} was not written, that image is lost' +
                           (f'; wrote {" and ".join(others)}' if others else ''), code)
        saved = (f'wrote the finished image to {written}' if finished else
                 f'wrote the best image so far (iteration {progress.iteration}) to {written}')
        if error:
            saved = f'{saved} (could not write {args.output}: {error})'
        resumed = f'; continue with {self._continuation(written)}{workers}' if resume else ''
        return Stopped(f'{what}; {" and ".join([saved] + others)}{resumed}', code)

    def _continuation(self, written):
        """The options that, added to the same command, continue the run from `written`: --initial, and a
        new name for each file the run wrote, so that nothing it wrote is replaced (nor the --initial read)."""
        args = self.args
        options = ['--initial', written]
        for option, path in (('--output', args.output), ('--progress-write', args.progress_write),
                             ('--progress-plot', args.progress_plot),
                             ('--checkpoint-output', args.checkpoint_output)):
            if path:
                options += [option, continued_path(path)]
        return shlex.join(options)

    def plot(self):
        """The loss plot of the steps so far, stages marked: a matplotlib Figure (needs matplotlib)."""
        boundaries = [sum(self.iterations[:stage]) for stage in range(1, len(self.iterations))]
        return progress_plot.figure(self.losses, boundaries)

    def _write_plot(self):
        if self.args.progress_plot and self.losses:
            figure = self.plot()
            files.write_atomically(self.args.progress_plot, lambda f: progress_plot.save(figure, f))


# A clip

PARTIAL = 'partial-output.json'  # in the frames directory: the output holds this run's unfinished clip


class VideoRun:
    """One clip run of the command line's options (video.py): its frames stylized with temporal consistency,
    finished frames kept for a rerun, and written as a clip."""

    def __init__(self, args, net=None, describe=None):
        self.kind = check_video_options(args)
        given_seed = args.seed
        choose_seed(args)
        choose_style_weight(args)
        styles = [images.read_image(path, args.max_megapixels) for path in args.styles]
        size = []

        def prepare(frame):
            if not size:
                height, width = images.output_size(frame.shape, args.width, args.max_size)
                size.extend(video.even_size(height, width) if self.kind == 'video' else (height, width))
                images.check_megapixels('the output', *size, args.max_megapixels)
            return images.resize(frame, *size)

        self.photos, self.fps = video.read_clip(args.content, prepare, args.start, args.end, args.frames)
        height, width = self.photos[0].shape[:2]
        if args.flow == 'dis' and len(self.photos) > 1 and min(height, width) < flow.DIS_MIN_SIDE:
            raise UserError(f'frames of {width}x{height} are too small for DIS optical flow (both sides at least '
                            f'{flow.DIS_MIN_SIDE} pixels): use a larger --max-size or --width, or --flow farneback')
        self.frames = [colors.content_seen(args.preserve_colors, photo) for photo in self.photos]
        self.styles = [images.scaled_style(style, width, scale) for style, scale in zip(
            colors.styles_seen(args.preserve_colors, styles, self.photos[0]), args.style_scales or [1.0] * len(styles))]
        net = net or load_network(args)
        self.network = network_identity(args.network)
        import_tensorflow(args)
        self.placement = devices.one_device(args.device)
        self.net, self.network_problem = run_network(args, net, self.placement)
        self.settings = dataclasses.replace(run_settings(args, tolerance=video.FRAME_TOLERANCE if args.passes == 1
                                                         else 0.0), style_weight=style_weight_at(args, height, width))
        gamma_t = args.temporal_weight
        if gamma_t is None:
            gamma_t = video.default_temporal_weight(self.settings.style_weight, self.settings.style_weights(),
                                                    args.passes > 1)
        self.clip = video.ClipSettings(passes=args.passes, long_term=args.long_term, iterations=args.iterations,
                                       temporal_weight=gamma_t, flow_method=args.flow, init=args.init)
        # Keyed by the seed given: a rerun without --seed finds the frames (its own seed is new).
        self.directory = video.frames_directory(args.output, self.net, self.frames, self.styles,
                                                dataclasses.replace(self.settings, seed=given_seed), self.clip)
        self.args, self.finished, self.describe = args, [], describe or (lambda args: {})
        self._check_output()

    def plan(self):
        height, width = self.frames[0].shape[:2]
        passes = self.clip.passes
        return (f'output {width}x{height}, {len(self.frames)} frames at {self.fps:g} fps, {len(self.styles)} style '
                f'image(s), {self.settings.optimizer}, {"single pass" if passes == 1 else f"{passes} passes"}, '
                f'beta {self.settings.style_weight:.4g} ({beta_in_words(self.args)}), '
                f'gamma_t {self.clip.temporal_weight:.4g}, on {self.placement.devices[0]}, '
                f'{devices.precision_in_words(self.args.precision, self.placement.devices[0])}' +
                (f', a frame ends once its objective changes by less than {self.settings.tolerance:g} over '
                 f'{self.settings.tolerance_window} iterations' if self.settings.tolerance else '') +
                f'; finished frames in {self.directory}; network {vgg.describe(self.net)}' +
                (f'\nnetwork: {self.network_problem}' if self.network_problem else ''))

    def steps(self):
        """Stylizes the frames not finished before, yielding video.FrameProgress and video.FrameDone; writes the
        clip of the finished frames at the end, and at an interrupt or a loss that is not finite, which then
        raise Stopped (also when thrown in at a yield)."""
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
            clip = [images.to_uint8(colors.recoloured(self.args.preserve_colors, images.read_image(path),
                                                      self.photos[k]))
                    for k, path in enumerate(self.finished)]
            video.write_clip(self.args.output, clip, self.fps, overwrite=True)
            self._remember_partial(partial=len(self.finished) < len(self.frames) or stop is not None)
        if stop is not None:
            what, code = _why(stop)
            saved = (f'wrote the {len(self.finished)} finished frame(s) to {self.args.output}' if self.finished
                     else 'no frame finished')
            raise Stopped(f'{what}; {saved}; run the same command again to continue', code)

    def _frame_settings(self, progress, iterations):
        """The settings recorded inside a finished frame."""
        return recorded_settings(self.args, self.describe(self.args), self.network, progress.iteration, iterations,
                                 progress)

    def _check_output(self):
        """An existing output is replaced only with --overwrite, or when it is this run's own unfinished clip."""
        output = self.args.output.rstrip('/') or self.args.output
        if not os.path.exists(output) or self.args.overwrite:
            return
        record = os.path.join(self.directory, PARTIAL)
        if os.path.exists(record):
            with open(record) as f:
                path, size, mtime = json.load(f)
            info = os.stat(output)
            if path == os.path.abspath(output) and (info.st_size, info.st_mtime_ns) == (size, mtime):
                return
        raise UserError(f'{output} exists; choose another name or pass --overwrite')

    def _remember_partial(self, partial):
        """Records that the output holds this run's unfinished clip, so that a rerun may replace it."""
        record = os.path.join(self.directory, PARTIAL)
        if partial:
            info = os.stat(self.args.output)
            files.write_atomically(record, lambda f: f.write(json.dumps(
                [os.path.abspath(self.args.output), info.st_size, info.st_mtime_ns]).encode()))
        elif os.path.exists(record):
            os.unlink(record)


def frame_label(step):
    """`pass 2/3  frame  4/10  ` for a video step."""
    passes = f'pass {step.pass_}/{step.passes}  ' if step.passes > 1 else ''
    return f'{passes}frame {step.frame + 1:>{len(str(step.count))}}/{step.count}  '


def frame_line(step):
    """A video step's progress line: iteration, losses and the clip's remaining time."""
    p = step.progress
    remaining = '' if math.isnan(step.remaining_seconds) else f'  remaining {format_duration(step.remaining_seconds)}'
    return (f'{frame_label(step)}iteration {p.iteration:>{len(str(step.iterations))}}/{step.iterations}  '
            f'content {p.content:.4g}  style {p.style:.4g}  temporal {p.temporal:.4g}  total {p.total:.4g}{remaining}' +
            ('  (converged: --tolerance)' if p.converged else ''))
