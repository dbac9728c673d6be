"""The command line's options in one table (table()): for each, its flag, how its text is read, its default, its
help, the runs that take it, its place on the page, whether an output's recorded command holds it, and the
stylize.Settings field it feeds.

Everything about an option is read from here: neural_style.py's parser and recorded command line, the fields of
run_config.RunConfig, job.py's checks of what an image or a video run refuses and the stylize.Settings of a run,
batch.py's refusals, app.py's fields and reproduce.py's options shared with neural_style.py. This module reads the defaults of the modules
that define them and none of those programs.
"""
import argparse
import math
from dataclasses import dataclass

import stylize
import vgg
from styletransfer.compute import devices
from styletransfer.media import colors, flow, images, video
from styletransfer.method import tiling

MAX_SIZE = 512  # the longest side of the output; the paper's figures are about 512 px wide
PRINT_ITERATIONS = 10
BATCH_PATTERN = '{content}_{style}.png'  # each output's name in a batch's --output DIR/

# The runs an option applies to: an image, a video (a clip's frames) and a batch (of images).
IMAGE, VIDEO, BATCH = 'image', 'video', 'batch'
EVERY_RUN = frozenset({IMAGE, VIDEO, BATCH})
IMAGES = frozenset({IMAGE, BATCH})  # not for a video's frames
VIDEO_ONLY = frozenset({VIDEO})


# Reading an option's text

def _number(text, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'must be {"an integer" if kind is int else "a number"}, not {text}') from None


def positive_int(text):
    value = _number(text, int)
    if value <= 0:
        raise argparse.ArgumentTypeError(f'must be a positive integer, not {text}')
    return value


def positive_ints(text):
    """One positive integer, or several separated by commas (one per stage of --scales)."""
    return [positive_int(value) for value in text.split(',')]


def scales(text):
    sizes = positive_ints(text)
    if any(b <= a for a, b in zip(sizes, sizes[1:])):
        raise argparse.ArgumentTypeError(f'must be sizes in pixels from smallest to largest, such as '
                                         f'256,512,1024, not {text}')
    return sizes


def non_negative_int(text):
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be 0 or more, not {text}')
    return value


def positive_float(text):
    value = _number(text, float)
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'must be a positive number, not {text}')
    return value


def non_negative_float(text):
    value = _number(text, float)
    if not value >= 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'must be 0 or a positive number, not {text}')
    return value


def cluster_timeouts(text):
    """--cluster-timeouts ANSWER,STALL: two positive numbers of seconds."""
    values = text.split(',')
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f'must be two numbers of seconds separated by a comma, such as '
                                         f'{devices.ANSWER_TIMEOUT},{devices.STALL_CHECK}, not {text}')
    return tuple(positive_float(value) for value in values)


def fraction(text):
    value = _number(text, float)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f'must be between 0 and 1, not {text}')
    return value


def layer(text):
    if text not in vgg.LAYERS:
        raise argparse.ArgumentTypeError(f'unknown layer {text!r}; layers are named conv1_1, relu1_1, '
                                         f'..., pool5 (see --help)')
    return text


COMMA_SEPARATED = (positive_ints, scales, cluster_timeouts)  # one word of values joined by commas
WHOLE_NUMBERS = (int, positive_int, non_negative_int, positive_ints)


# The table

@dataclass(frozen=True)
class Option:
    """One option. type, default, nargs, choices, metavar, required and action are argparse's (None: argparse's
    own); action may also name one the command line registers (neural_style.Parser)."""
    flag: str
    help: str
    group: str = None  # its group in --help; None: the first, beside --help
    type: object = None
    default: object = None
    nargs: object = None
    choices: tuple = None
    metavar: str = None
    required: bool = False
    action: str = None
    applies: frozenset = EVERY_RUN  # the runs that take it; the others refuse it when given
    page: int = None  # its place among the page's fields (1 first), which take its flag, help and default; None: not there
    recorded: bool = True  # in the command recorded inside an output: it decides the image
    setting: str = None  # the stylize.Settings field it feeds as it is

    @property
    def dest(self):
        """The attribute of the parsed options that holds it (argparse's name for it)."""
        return self.flag[2:].replace('-', '_')

    @property
    def whole_number(self):
        return self.type in WHOLE_NUMBERS

    def words(self, value):
        """The words that give it `value` on a command line."""
        if value is True:
            return [self.flag]
        if self.type in COMMA_SEPARATED:
            return [self.flag, ','.join(map(str, value))]
        return [self.flag, *map(str, value if isinstance(value, (list, tuple)) else [value])]

    def add_to(self, parser, **changes):
        """Adds it to an argparse parser or group; `changes`: add_argument's keywords where another program
        means it otherwise (reproduce.py's per cell)."""
        keywords = {name: value for name, value in (
            ('help', self.help), ('type', self.type), ('default', self.default), ('nargs', self.nargs),
            ('choices', self.choices), ('metavar', self.metavar), ('action', self.action)) if value is not None}
        if self.required:
            keywords['required'] = True
        return parser.add_argument(self.flag, **{**keywords, **changes})


IMAGES_GROUP = 'images'
OBJECTIVE = 'objective (the paper\'s alpha, beta, layers and w_l)'
OPTIMIZATION = 'optimization'
MACHINES = 'devices and machines (docs/devices.md)'
MEMORY = 'memory (exact tiled evaluation: docs/large-outputs.md)'
VIDEO_GROUP = 'video (Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos", 2016)'
PROGRESS = 'progress'


def table():
    """The options in the order of --help. Made at each call: --network's help names the cache directories of
    the environment as it is then, and each list default is a list of its own."""
    reference = 'x'.join(map(str, stylize.REFERENCE_SIZE[::-1]))
    return (
        Option('--version', action='print_versions', applies=frozenset(), recorded=False,
               help='print the versions of this program, TensorFlow and numpy, and the network file used (with '
               '--network, that one), for a bug report; then exit'),
        Option('--show-settings', action='show_settings', metavar='IMAGE', default=argparse.SUPPRESS,
               applies=frozenset(), recorded=False,
               help='print the settings recorded inside an image this program wrote (the command that makes it '
               'again, the version, the network, the seed, the iterations run and the losses); then exit'),

        Option('--content', group=IMAGES_GROUP, required=True, nargs='+',
               help='the photograph, or a video (see the video options); the output has its aspect ratio. Several '
               'photographs, or directories of them, make a batch: one process, one network load, a run per pair '
               '(docs/batches.md)'),
        Option('--styles', group=IMAGES_GROUP, required=True, nargs='+',
               help='one or more style images, blended into one style; a directory of style images (among '
               '--styles) makes a batch instead: one run per style image'),
        Option('--output', group=IMAGES_GROUP, required=True,
               help='output image; its extension (.jpg, .png, ...) sets the format; for a video, a video file '
               '(.mp4, .mov, .mkv, .avi, .m4v), a .gif or a directory of PNG frames; for a batch, a directory '
               f'ending in / (each pair\'s output named {BATCH_PATTERN}; blended styles are named a+b) or a '
               'pattern with {content} and {style}, such as out/{content}-{style}.jpg'),
        Option('--settings-from', group=IMAGES_GROUP, metavar='IMAGE', recorded=False,
               help='run with the settings recorded inside an image this program wrote (its command line, seed '
               'included); the options given on the line override them, e.g. a new --output'),
        Option('--overwrite', group=IMAGES_GROUP, action='store_true', default=False, recorded=False,
               help='replace the output, progress and checkpoint files if they exist (by default an existing file '
               'stops the run before it starts; in a batch, a pair whose output exists is skipped, so that the '
               'same command again continues the batch)'),
        Option('--bit-depth', group=IMAGES_GROUP, type=int, choices=(8, 16), applies=IMAGES,
               default=8,  # the usual image file's; 16 for a .png or .tif that keeps the optimized values
               help='bits per channel of the output: 16 (a .png or .tif output) writes the optimized image '
               'without rounding it to 8 bits'),
        Option('--max-size', group=IMAGES_GROUP, type=positive_int, default=MAX_SIZE, page=3,
               help='longest side of the output in pixels (the content is scaled down to it, never up)'),
        Option('--width', group=IMAGES_GROUP, type=positive_int,
               help='output width in pixels, overriding --max-size'),
        Option('--style-scales', group=IMAGES_GROUP, type=positive_float, nargs='+',
               help='per style image: its width relative to the output width (default 1.0 each)'),
        Option('--style-masks', group=IMAGES_GROUP, nargs='+', metavar='MASK', applies=IMAGES,
               help='per style image: a greyscale image over the output, white where that style governs '
               '(spatial control with guided Gram matrices, Gatys et al. 2017)'),
        Option('--preserve-colors', group=IMAGES_GROUP, choices=colors.PRESERVE_COLORS, page=6,
               help="keep the content's colours (Gatys et al., arXiv 1606.05897): luminance-only transfer, "
               "the style's colours matched to the content's first, or the result's luminance put on the "
               "content's colours after the run"),
        Option('--max-megapixels', group=IMAGES_GROUP, type=positive_float, default=images.MAX_MEGAPIXELS,
               help='refuse input images, and an output, larger than this'),
        Option('--network', group=IMAGES_GROUP,
               help=f'VGG-19 weights: MatConvNet\'s {vgg.WEIGHTS_FILE}, Keras\'s {vgg.KERAS_WEIGHTS_FILE} or the '
               f'quantized copy {vgg.QUANTIZED_FILE} (default: ${vgg.NETWORK_ENV} if set, else the first found of '
               f'{", ".join(vgg.default_locations())}; with none there, one is fetched into the cache on first '
               f'use)'),
        Option('--no-download', group=IMAGES_GROUP, action='store_true', default=False, recorded=False,
               help=f'never fetch the weights: with no file found, stop and say how to get it (also when '
               f'${vgg.NO_DOWNLOAD_ENV} is 1)'),

        Option('--content-weight', group=OBJECTIVE, type=non_negative_float, default=stylize.CONTENT_WEIGHT,
               page=8, setting='content_weight', help='alpha, the weight of L_content'),
        # No default here: the run chooses it from --normalize-network (run_config.from_options).
        Option('--style-weight', group=OBJECTIVE, type=non_negative_float, page=1, setting='style_weight',
               help=f'beta, the weight of L_style, for a {reference} output; another size scales it by its pixels '
               f'over {reference}\'s, so that one beta gives the same balance at every size (default '
               f'{stylize.STYLE_WEIGHT:,.0f}; {stylize.NORMALIZED_STYLE_WEIGHT:,.0f} with --normalize-network)'),
        Option('--raw-style-weight', group=OBJECTIVE, action='store_true', default=False,
               help='take --style-weight as the beta of the paper\'s eq. 7 at every size, unscaled (the balance '
               'then moves about 4x for each doubling of the side)'),
        Option('--tv-weight', group=OBJECTIVE, type=non_negative_float, default=stylize.TV_WEIGHT, page=9,
               setting='tv_weight',
               help='gamma, the weight of a total-variation smoothness term against the fine grain (not in the '
               'paper: 0 for the paper\'s objective)'),
        Option('--content-layers', group=OBJECTIVE, type=layer, nargs='+', default=list(stylize.CONTENT_LAYERS),
               setting='content_layers', help='layers whose features the content loss matches, each named once'),
        Option('--content-layer-weights', group=OBJECTIVE, type=non_negative_float, nargs='+',
               setting='content_layer_weights',
               help='one weight per content layer (default 1/number of content layers)'),
        Option('--style-layers', group=OBJECTIVE, type=layer, nargs='+', default=list(stylize.STYLE_LAYERS),
               setting='style_layers', help='layers whose Gram matrices the style loss matches, each named once'),
        Option('--style-layer-weights', group=OBJECTIVE, type=non_negative_float, nargs='+',
               setting='style_layer_weights',
               help='w_l, one per style layer (default 1/number of style layers, as in the paper)'),
        Option('--style-blend-weights', group=OBJECTIVE, type=non_negative_float, nargs='+',
               setting='style_blend_weights',
               help='one weight per style image, normalized to sum 1 (default equal)'),
        Option('--pooling', group=OBJECTIVE, choices=vgg.POOLING_METHODS, default=stylize.POOLING, page=10,
               setting='pooling', help='pooling in the network; the paper replaces max by average pooling'),
        Option('--padding', group=OBJECTIVE, choices=vgg.PADDINGS, default=stylize.PADDING, setting='padding',
               help='padding of each convolution\'s input: zeros, as the network was trained and as in the paper, '
               'or the border mirrored (docs/method.md)'),
        Option('--normalize-network', group=OBJECTIVE, action='store_true', default=False,
               help='the paper\'s normalized network: each filter\'s weights scaled so that its mean activation '
               'over the six images of examples/ is 1 (computed once per weights file and cached in '
               '~/.cache/neural-style; docs/method.md, "The layers\' balance")'),

        Option('--optimizer', group=OPTIMIZATION, choices=stylize.OPTIMIZERS, default=stylize.OPTIMIZER, page=4,
               setting='optimizer', help='L-BFGS (the paper\'s) or Adam'),
        # No default here: an image's, a video's and a multi-pass video's differ (run_config.py, video.py).
        Option('--iterations', group=OPTIMIZATION, type=positive_ints, page=2,
               help=f'optimizer iterations (default {stylize.ITERATIONS}); with --scales, one number for every '
               f'stage or one per stage (e.g. 500,200,100); for a video, the first frame\'s and the later '
               f'frames\' (default {video.FIRST_ITERATIONS},{video.LATER_ITERATIONS}), or per frame and pass '
               f'with --passes (default {video.PASS_ITERATIONS})'),
        Option('--scales', group=OPTIMIZATION, type=scales, metavar='SIZES', applies=IMAGES, page=11,
               help='coarse to fine (Gatys et al. 2017): the longest side of each stage in pixels, e.g. '
               '256,512,1024; each stage starts from the last one\'s result upsampled, and the last size is the '
               'output\'s (instead of --max-size)'),
        # No default here: an image's and a video's differ (job.run_settings' tolerance).
        Option('--tolerance', group=OPTIMIZATION, type=non_negative_float, metavar='REL', setting='tolerance',
               help=f'stop early once the objective changes by less than this fraction over --tolerance-window '
               f'iterations (Ruder et al.\'s criterion; default {stylize.TOLERANCE:g}, off, for an image and '
               f'{video.FRAME_TOLERANCE:g} for a video\'s frames in a single pass, as theirs)'),
        Option('--tolerance-window', group=OPTIMIZATION, type=positive_int, default=stylize.TOLERANCE_WINDOW,
               metavar='K', setting='tolerance_window',
               help='iterations between two comparisons of the objective for --tolerance'),
        Option('--lbfgs-history', group=OPTIMIZATION, type=positive_int, default=stylize.LBFGS_HISTORY,
               setting='lbfgs_history', help='L-BFGS: number of stored corrections'),
        Option('--learning-rate', group=OPTIMIZATION, type=positive_float, default=stylize.LEARNING_RATE, page=12,
               setting='learning_rate', help='Adam: learning rate, in pixel values'),
        Option('--beta1', group=OPTIMIZATION, type=fraction, default=stylize.BETA1, setting='beta1',
               help='Adam: beta1'),
        Option('--beta2', group=OPTIMIZATION, type=fraction, default=stylize.BETA2, setting='beta2',
               help='Adam: beta2'),
        Option('--eps', group=OPTIMIZATION, type=positive_float, default=stylize.EPSILON, setting='epsilon',
               help='Adam: epsilon'),
        Option('--init', group=OPTIMIZATION, choices=stylize.INITS, default=stylize.INITS[0], page=5,
               help='starting image: white noise (the paper\'s), the content, or the (first) style image'),
        Option('--initial', group=OPTIMIZATION, applies=IMAGES,
               help='starting image from a file, overriding --init'),
        Option('--initial-noiseblend', group=OPTIMIZATION, type=fraction,
               default=0.0,  # stylize.Settings.noise_blend's: the given start as it is
               setting='noise_blend', help='fraction of white noise blended into a content, style or --initial start'),
        Option('--seed', group=OPTIMIZATION, type=int, page=7, setting='seed',
               help='random seed of the white noise: a CPU run repeats exactly'),
        Option('--precision', group=OPTIMIZATION, choices=devices.PRECISIONS, default=stylize.PRECISION, page=13,
               setting='precision',
               help='float32 (faithful) or mixed: convolutions in float16 on a GPU, bfloat16 on a CPU, losses in '
               'float32; fast on GPUs, slower on CPUs without native bfloat16; auto: mixed on a CPU with AMX or '
               'AVX512-BF16, float32 elsewhere (docs/performance.md)'),
        Option('--convolutions', group=OPTIMIZATION, choices=devices.CONVOLUTION_CHOICES,
               default=stylize.CONVOLUTIONS, setting='convolutions',
               help='auto: in float32 on a CPU with AVX-512, conv3_2 to conv5_1 by Winograd\'s F(4x4, 3x3) when '
               'untiled, about 10%% faster (Zen 5), the same sums with about ten times the rounding error; direct: every '
               'convolution summed directly (docs/performance.md)'),
        Option('--device', group=OPTIMIZATION,
               help='TensorFlow device, e.g. /cpu:0 or /gpu:0, one that TensorFlow sees here (default: the GPU if '
               'TensorFlow sees one, else the CPU)'),

        Option('--devices', group=MACHINES, metavar='LIST', applies=IMAGES,
               help='spread each evaluation\'s tiles over these devices, e.g. /gpu:0,/gpu:1, or all (every GPU '
               'TensorFlow sees); the image is then tiled so that each device has a tile'),
        Option('--cluster', group=MACHINES, metavar='HOST:PORT,...', applies=IMAGES,
               help='spread the tiles over the devices of these workers, each started with `neural-style-cluster '
               'worker --port PORT` (every GPU of a worker, else its CPU); the first worker coordinates'),
        Option('--cluster-timeouts', group=MACHINES, type=cluster_timeouts, metavar='ANSWER,STALL', applies=IMAGES,
               recorded=False,
               help=f'with --cluster: seconds a worker has to answer a probe (its device list) before it counts as '
               f'stopped or lost, and seconds an evaluation may go on before the workers are probed (default '
               f'{devices.ANSWER_TIMEOUT},{devices.STALL_CHECK}); longer for a slow link'),

        Option('--tile-size', group=MEMORY, type=positive_int, metavar='PX', applies=IMAGES, setting='tile_size',
               help='evaluate the objective over tiles of this many pixels square (a multiple of 16 for the '
               'default layers), each with a halo: exact, in bounded memory (default: tiled only when the '
               'estimated peak exceeds --max-memory)'),
        # Feeds stylize.Settings.max_memory through the run's budget, not as it is (job.Run).
        Option('--max-memory', group=MEMORY, type=positive_float, metavar='GB', applies=IMAGES,
               help=f'memory budget in GB for choosing the tiling (default: {tiling.MEMORY_SHARE * 100:.0f}%% of '
               f'the machine\'s RAM)'),

        Option('--start', group=VIDEO_GROUP, type=non_negative_float, metavar='SECONDS', applies=VIDEO_ONLY,
               help='take the clip from this time'),
        Option('--end', group=VIDEO_GROUP, type=positive_float, metavar='SECONDS', applies=VIDEO_ONLY,
               help='take the clip up to this time'),
        Option('--frames', group=VIDEO_GROUP, type=positive_int, metavar='N', applies=VIDEO_ONLY,
               help='take at most N frames'),
        Option('--temporal-weight', group=VIDEO_GROUP, type=non_negative_float, metavar='GAMMA', applies=VIDEO_ONLY,
               help='gamma_t, the weight of the temporal loss (default: the authors\' balance against the style '
               'loss, 10 beta w_l N_l^2 / 4 at the style layer where that is largest, 5 beta w_l N_l^2 / 4 with '
               '--passes; see docs/video.md); 0 for frame-by-frame stylization from the warped previous frame'),
        Option('--long-term', group=VIDEO_GROUP, type=positive_int, default=video.LONG_TERM, metavar='J',
               applies=VIDEO_ONLY,
               help='tie each frame to the previous J stylized frames (long-term consistency); 1: the previous '
               'frame only'),
        Option('--passes', group=VIDEO_GROUP, type=positive_int, metavar='N', applies=VIDEO_ONLY,
               default=1,  # the single-pass algorithm (artistic_video.lua); the multi-pass one is a choice
               help=f'the multi-pass algorithm with N passes over the clip, alternately forward and backward (the '
               f'authors use {video.MULTIPASS_PASSES}); 1: the single-pass algorithm'),
        Option('--flow', group=VIDEO_GROUP, choices=flow.FLOW_METHODS, default=flow.FLOW_METHOD, applies=VIDEO_ONLY,
               help='optical flow: OpenCV\'s DIS or Farneback'),

        Option('--print-iterations', group=PROGRESS, type=non_negative_int, default=PRINT_ITERATIONS,
               recorded=False, help='print the losses every this many iterations (0: only at the end)'),
        Option('--progress-write', group=PROGRESS, metavar='PATH', applies=frozenset({IMAGE}), recorded=False,
               help='write a CSV of the losses at every iteration (row 0: the initial image)'),
        Option('--progress-plot', group=PROGRESS, metavar='PATH', applies=frozenset({IMAGE}), recorded=False,
               help='write a PNG plot of the losses against the iteration (log scale; needs matplotlib, from '
               'requirements-app.txt), at each checkpoint and at the end'),
        Option('--checkpoint-output', group=PROGRESS, applies=frozenset({IMAGE}), recorded=False,
               help='checkpoint file name: every %%s in it becomes the iteration number, any other %% stays as it '
               'is, e.g. checkpoint_%%s.jpg'),
        # In a batch, refused with --checkpoint-output, which it needs.
        Option('--checkpoint-iterations', group=PROGRESS, type=positive_int, applies=IMAGES, recorded=False,
               help='write the best image so far every this many iterations'),
        Option('--verbose', group=PROGRESS, action='store_true', default=False, recorded=False,
               help='let TensorFlow print its start-up and log lines (by default held back; TF_CPP_MIN_LOG_LEVEL, '
               'when set, says which to let through)'),
    )


def named(dest):
    """The option whose parsed value is args.<dest>."""
    (option,) = [option for option in table() if option.dest == dest]
    return option


def page_fields():
    """The options the page has a field for, in the page's order."""
    return sorted((option for option in table() if option.page is not None), key=lambda option: option.page)


def frozen(value):
    """A parsed value as a run's configuration holds it (run_config.RunConfig): a list as a tuple."""
    return tuple(value) if isinstance(value, list) else value


def refused(config, run):
    """The options given in `config` (a run_config.RunConfig; a value other than the default) that a `run`
    (IMAGE, VIDEO or BATCH) does not take, in the table's order."""
    return [option for option in table() if option.applies and run not in option.applies
            and getattr(config, option.dest) != frozen(option.default)]


def settings_fields(config):
    """The stylize.Settings fields that options feed as they are: {field: the value in `config`, a
    run_config.RunConfig}."""
    return {option.setting: getattr(config, option.dest) for option in table() if option.setting}
