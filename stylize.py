"""The method of Gatys, Ecker & Bethge: the image optimized from white noise to minimize

    L_total = alpha L_content + beta L_style   (+ gamma L_tv, not in the paper; + gamma_t L_temporal for a video frame)

with L-BFGS (the paper's) or Adam, yielding progress after every iteration; and coarse to fine (Gatys et al.
2017). The loss terms, in the papers' notation, are in styletransfer/method/losses.py; docs/method.md states
them and every deviation.

A run's settings are one frozen Settings value, built once from the options and checked once.
"""
import dataclasses
import time
from dataclasses import dataclass

import numpy as np

import vgg
from styletransfer.compute import devices, host_memory
from styletransfer.media import images
from styletransfer.method import losses, optimizers, tiling

# Defaults, and where they come from.
CONTENT_LAYERS = ('relu4_2',)  # paper sec. 3: content matched on 'conv4_2'; Caffe's ReLU runs in place, so rectified
STYLE_LAYERS = ('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1')  # paper Fig. 2: conv1_1 ... conv5_1
CONTENT_WEIGHT = 1.0  # alpha
# The size a given beta is meant for. L_content sums over the M_l positions of its layer, so it grows with the
# output's pixels, while E_l is divided by M_l^2 and does not: the same beta paints four times harder at half
# the side. The command line takes beta as meant for this many pixels and scales it (style_weight_at).
# 512x384: the paper's Tuebingen photograph (1024x768) at the width of its figures, about 512 px.
REFERENCE_SIZE = (384, 512)  # height, width
REFERENCE_PIXELS = REFERENCE_SIZE[0] * REFERENCE_SIZE[1]
# beta at REFERENCE_PIXELS: alpha/beta = 1e-4, a ratio of the paper's (arXiv Fig. 2, CVPR 2016 Fig. 4). Chosen
# at the default 512 px on the near-copy of VGG-19, three examples: 1e3 leaves two of them nearly the
# photograph, 1e5 dissolves two (docs/results.md, "The style weight beta", images/beta-512-*.jpg)
STYLE_WEIGHT = 1e4
# beta at REFERENCE_PIXELS with --normalize-network: alpha/beta about 3e-8, where the normalized network gives
# the look of the paper's figures (chosen as 1e7 at 256x170 and 256x256, between 1e6, which leaves the
# photograph, and 1e8, which dissolves the subject; 1e7 there is 3e7 to 4.5e7 here); docs/method.md, "The
# layers' balance", and docs/results.md, images/normalized-256-*.jpg
NORMALIZED_STYLE_WEIGHT = 3e7
# gamma of a total-variation term, which the paper does not have: without it flat parts carry a pixel-level
# grain and checkerboard the painting lacks; 3 takes them below the painting's own on three examples without
# blurring the strokes (docs/method.md, "The grain", images/grain-256.jpg); --tv-weight 0 is the paper
TV_WEIGHT = 3.0
POOLING = 'avg'  # paper sec. 2: average pooling "improves the gradient flow" and looks slightly better
PADDING = 'zero'  # the convolutions' padding as the network was trained (Caffe's and MatConvNet's)
OPTIMIZER = 'lbfgs'  # CVPR 2016 sec. 2: "L-BFGS, which we found to work best for image synthesis"
OPTIMIZERS = ('lbfgs', 'adam')
# The paper states no count; 1000 is the common choice of its reimplementations, and on the near-copy of VGG-19
# the picture stops changing by 650-750 at 512 px (beta 1e3; docs/performance.md, images/tolerance-512-*.jpg)
ITERATIONS = 1000
LBFGS_HISTORY = 10  # scipy's default number of stored corrections (maxcor)
# Stopping when the objective stops changing, as Ruder et al.'s code does (manuelruder/artistic-videos, lbfgs.lua
# tolFunRelative): every TOLERANCE_WINDOW iterations, the relative change of the total since the last check.
TOLERANCE = 0.0  # images: off, every iteration is run (the paper states no criterion)
TOLERANCE_WINDOW = 50  # artistic_video.lua -tol_loss_relative_interval 50
LEARNING_RATE = 10.0  # Adam, on pixel values in 0..255; as in anishathalye/neural-style
BETA1 = 0.9  # Adam's published defaults (Kingma & Ba 2015)
BETA2 = 0.999
EPSILON = 1e-8
# bfloat16 convolutions where the CPU has bfloat16 units, else float32 (devices.compute_dtype): at the defaults
# the pictures look alike, 1.6-1.7 times faster (docs/performance.md, bfloat16); 'float32' is the paper's arithmetic
PRECISION = 'auto'
# The deep float32 convolutions by Winograd's F(4x4, 3x3) on a CPU with AVX-512, where that is about 10% faster an
# iteration (devices.convolutions); 'direct' sums every convolution as TensorFlow does (docs/performance.md, Winograd)
CONVOLUTIONS = 'auto'
NOISE_STDDEV = 1.0  # white noise as in Gatys' reference code: randn on the 0..255 scale, around the mean pixel
PIXEL_RANGE = images.PIXEL_RANGE
# The starting images, the first the default: the paper's white noise (CVPR 2016 fig. 6; from the content the
# result keeps more of the photograph at the same objective: docs/results.md, images/start-chelsea.jpg), the
# content, the style
INITS = ('noise', 'content', 'style')


@dataclass(frozen=True)
class Settings:
    """Everything besides the images and the network that decides a run's result. Built once from the options
    and checked once (ValueError); a layer's weight list, left None, becomes its default here."""
    # The objective (eq. 7): alpha, beta, gamma and gamma_t; the layers l with their weights w_l; the network's
    # pooling and padding.
    content_weight: float = CONTENT_WEIGHT
    style_weight: float = STYLE_WEIGHT
    tv_weight: float = TV_WEIGHT
    temporal_weight: float = 0.0  # gamma_t: a video frame with temporal targets only
    content_layers: tuple = CONTENT_LAYERS
    content_layer_weights: tuple = None  # default 1 / the number of content layers
    style_layers: tuple = STYLE_LAYERS
    style_layer_weights: tuple = None  # w_l, default 1 / the number of style layers, as in the paper
    style_blend_weights: tuple = None  # one per style image, normalized to sum 1; default equal
    pooling: str = POOLING
    padding: str = PADDING
    # The optimizer.
    optimizer: str = OPTIMIZER
    iterations: int = ITERATIONS
    tolerance: float = TOLERANCE  # stop early once the total changes by less than this, relatively, ...
    tolerance_window: int = TOLERANCE_WINDOW  # ... over this many iterations (0 tolerance: never)
    lbfgs_history: int = LBFGS_HISTORY
    learning_rate: float = LEARNING_RATE  # Adam's, and its moments' decays and epsilon
    beta1: float = BETA1
    beta2: float = BETA2
    epsilon: float = EPSILON
    # The start: white noise of this seed (None: new every run), blended by noise_blend into a given start.
    noise_blend: float = 0.0
    seed: int = None
    # The evaluation: its arithmetic (precision, convolutions), and whether it is tiled (tiling.plan): tiles of
    # tile_size pixels, or the largest that fit in max_memory bytes when the untiled run does not; neither: untiled.
    precision: str = PRECISION
    convolutions: str = CONVOLUTIONS
    tile_size: int = None
    max_memory: float = None

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f'unknown optimizer {self.optimizer!r}; choose one of {", ".join(OPTIMIZERS)}')
        devices.compute_dtype(self.precision, '')  # an unknown precision is refused now, not at the first graph
        devices.convolutions('', 'float32', self.convolutions)  # and unknown convolutions
        if self.padding not in vgg.PADDINGS:
            raise ValueError(f'unknown padding {self.padding!r}; choose one of {", ".join(vgg.PADDINGS)}')
        for field in ('content_layers', 'style_layers'):
            layers = tuple(getattr(self, field))
            for name in layers:
                if name not in vgg.LAYERS:
                    raise ValueError(f'unknown layer {name!r}')
            if len(set(layers)) != len(layers):  # each layer has one weight: a repeat would drop all but the last
                raise ValueError(f'a layer is named more than once in {list(layers)}')
            object.__setattr__(self, field, layers)
            weights = f'{field[:-1]}_weights'
            object.__setattr__(self, weights, _weights(getattr(self, weights), len(layers), 1.0 / len(layers)))
        if self.style_blend_weights is not None:
            object.__setattr__(self, 'style_blend_weights', tuple(float(w) for w in self.style_blend_weights))
            if sum(self.style_blend_weights) <= 0:
                raise ValueError('style blend weights must sum to more than 0')

    def content_weights(self):
        """layer -> its weight in L_content."""
        return dict(zip(self.content_layers, self.content_layer_weights))

    def style_weights(self):
        """layer -> w_l."""
        return dict(zip(self.style_layers, self.style_layer_weights))

    def blend(self, count):
        """The blend weight of each of `count` style images, summing to 1."""
        weights = np.asarray(_weights(self.style_blend_weights, count, 1.0), np.float64)
        return weights / np.sum(weights)

    def deepest(self):
        """The deepest loss layer: the network is built up to it."""
        return vgg.deepest(self.content_layers + self.style_layers)


def style_weight_at(style_weight, height, width):
    """Eq. 7's beta for a height x width output that weighs L_style against L_content as `style_weight` does at
    REFERENCE_PIXELS: beta times the pixels over REFERENCE_PIXELS (L_content grows with the pixels, E_l not)."""
    return style_weight * (height * width) / REFERENCE_PIXELS


def _weights(weights, count, default):
    """A weight per item as a tuple of floats: `default` each if None; ValueError for another count."""
    weights = (default,) * count if weights is None else tuple(float(w) for w in weights)
    if len(weights) != count:
        raise ValueError(f'{len(weights)} weights given for {count} items')
    return weights


@dataclass
class Progress:
    """The state after `iteration` optimizer steps (0: the initial image)."""
    iteration: int
    content: float  # alpha * L_content
    style: float  # beta * L_style
    tv: float  # gamma * L_tv
    total: float
    seconds: float  # since the optimization started
    evaluations: int  # objective and gradient evaluations so far (L-BFGS's line search may take several a step)
    best_total: float  # the lowest total seen so far
    best_image: np.ndarray  # the image with that total: RGB, 0..255, float32 [height, width, 3]
    temporal: float = 0.0  # gamma_t * L_temporal (video frames only)
    converged: bool = False  # the last step: the total changed by less than the tolerance over its window


class NonFiniteLoss(ArithmeticError):
    """A loss term or the gradient stopped being finite: the optimization stops there, before the optimizer
    sees it, and the last Progress yielded holds the best image of the finite iterations.

    term: 'content', 'style', 'tv', 'temporal', 'total' (the sum overflowed) or 'gradient'; value: what it became.
    """

    def __init__(self, term, value):
        super().__init__(term, value)
        self.term, self.value = term, value

    def __str__(self):
        return f'{"the gradient" if self.term == "gradient" else f"the {self.term} loss"} became {self.value}'


def _finite(evaluate):
    """An objective's evaluate that raises NonFiniteLoss, naming the first of the loss terms and their total,
    then the gradient, that is not finite: the optimizers never see it."""
    def evaluate_finite(image, gradient=True):
        values, gradient = evaluate(image, gradient)
        for term in ('content', 'style', 'tv', 'temporal', 'total'):
            if term in values and not np.isfinite(values[term]):
                raise NonFiniteLoss(term, float(values[term]))
        if gradient is not None and not np.all(np.isfinite(gradient)):
            raise NonFiniteLoss('gradient', 'nan' if np.isnan(gradient).any() else 'inf')
        return values, gradient
    return evaluate_finite


def white_noise(shape, mean_pixel, seed=None):
    """The paper's starting image: Gaussian white noise around the mean pixel (RGB, 0..255)."""
    noise = np.random.default_rng(seed).normal(0.0, NOISE_STDDEV, size=shape)
    return (np.asarray(mean_pixel, np.float64) + noise).astype(np.float32)


def _start(net, shape, initial, noise_blend, seed):
    """The starting image (preprocessed, [1, h, w, 3]) and the bounds of the pixels, preprocessed likewise, per
    channel [1, 1, 1, 3]: the image may be large."""
    noise = white_noise(shape, net.mean_pixel, seed)
    start = noise if initial is None else (1 - noise_blend) * np.asarray(initial, np.float32) + noise_blend * noise
    x0 = vgg.preprocess(np.clip(start, *PIXEL_RANGE), net.mean_pixel)[None]
    lower, upper = (vgg.preprocess(np.full((1, 1, 1, 3), bound, np.float32), net.mean_pixel) for bound in PIXEL_RANGE)
    return x0, lower, upper


def stylize(net, content, styles, settings, *, initial=None, style_masks=None, temporal_targets=None,
            placement=None):
    """Paints `content` in the style of `styles`, yielding a Progress after every iteration (and for the start).

    net: vgg.VGG19. content: RGB 0..255 [h, w, 3]; the output has its size. styles: a list of RGB images at
    the size their features should be taken at. settings: a Settings.
    initial: the starting image (content's size), or None for white noise, the paper's start; the settings'
    noise_blend mixes that much white noise into it.
    style_masks: None, or one mask per style image, [h, w] of the content's size with values in 0..1: the
    region of the output that style governs (spatial control with guided Grams; see losses.objective).
    temporal_targets: for a video frame, None or (w, c) pairs: w a warped earlier stylized frame (RGB 0..255,
    content's size), c its consistency weights [h, w] in 0..1; the objective then adds gamma_t (the settings'
    temporal_weight) times the sum of their L_temporal (untiled only).
    placement: a devices.Placement (default: the GPU if there is one, else the CPU). With several devices the
    evaluation is tiled (tiling.spread's size unless the settings give one), the tiles of one pass running on
    all of them at once. A device of a cluster that fails raises devices.DeviceLost.
    """
    settings.blend(len(styles))  # ValueError unless there is a blend weight per style image
    style_guides = None
    if style_masks is not None:
        if len(style_masks) != len(styles):
            raise ValueError(f'{len(style_masks)} style masks given for {len(styles)} style images')
        for mask in style_masks:
            if np.shape(mask) != np.shape(content)[:2] or np.min(mask) < 0 or np.max(mask) > 1 or not np.any(mask):
                raise ValueError("a style mask must have the content's height and width, values in 0..1, "
                                 "and not be 0 everywhere")
        style_guides = [losses.layer_guides(mask, settings.style_layers) for mask in style_masks]
    for w, c in temporal_targets or []:
        if np.shape(w) != np.shape(content) or np.shape(c) != np.shape(content)[:2]:
            raise ValueError("a temporal target and its weights must have the content's height and width")
    placement = placement or devices.one_device()
    dtype = devices.compute_dtype(settings.precision, placement.devices[0])
    content = np.asarray(content, np.float32)
    tile_size = settings.tile_size
    if tile_size is None and (settings.max_memory is not None or len(placement.devices) > 1):
        tile_size = tiling.plan(content.shape[:2], settings.content_layers, settings.style_layers, tile_size=None,
                                max_memory=settings.max_memory, optimizer=settings.optimizer,
                                lbfgs_history=settings.lbfgs_history, devices=len(placement.devices)).tile_size
    if tile_size is not None and temporal_targets:
        raise ValueError('a video frame with temporal targets is evaluated untiled, on one device')
    x0, lower, upper = _start(net, content.shape, initial, settings.noise_blend, settings.seed)
    steps = _optimized(net, content, styles, settings, tile_size, x0, lower, upper, style_guides, temporal_targets,
                       placement, dtype)
    del x0  # the optimizer's first iterate: not kept past it
    try:
        yield from _until_converged(_progress(devices.device_failures(placement, steps), net.mean_pixel), settings)
    finally:
        steps.close()  # joins L-BFGS's worker before the session closes


def _optimized(net, content, styles, settings, tile_size, x0, lower, upper, style_guides, temporal_targets,
               placement, dtype):
    """The settings' optimizer's events over the objective: without a tile size in one graph on the placement's
    first device (losses.UntiledObjective), else over tiles (tiling.TiledObjective); the image, its gradient
    and the optimizer's state on the host."""
    if tile_size is None:
        objective = losses.UntiledObjective(net, content, styles, settings, style_guides=style_guides,
                                            temporal_targets=temporal_targets, placement=placement, dtype=dtype)
    else:
        objective = tiling.tiled_objective(net, content, styles, settings, tile_size, style_guides=style_guides,
                                           placement=placement, dtype=dtype)
    try:
        if settings.optimizer == 'lbfgs':
            # on a cluster an evaluation may never end: left to end when the session closes (devices.ClusterSession)
            steps = optimizers.lbfgs(_finite(objective.evaluate), x0, lower, upper, settings.iterations,
                                     settings.lbfgs_history, wait=devices.WAIT_SLICE if placement.target else None)
        else:
            steps = optimizers.adam(_finite(objective.evaluate), x0, lower, upper, settings.iterations,
                                    settings.learning_rate, settings.beta1, settings.beta2, settings.epsilon)
        del x0
        try:
            yield from steps
        finally:
            steps.close()  # joins L-BFGS's worker before the session closes
    finally:
        objective.close()


def _until_converged(steps, settings):
    """The steps up to the first iteration k, a multiple of the window, where the total changed by less than
    the tolerance relative to iteration k - window's, marked converged: the criterion of Ruder et al.'s code
    (lbfgs.lua: every tolFunRelativeInterval iterations, |f - f_past| / f_past < tolFunRelative)."""
    past = None
    for progress in steps:
        if settings.tolerance and progress.iteration and progress.iteration % settings.tolerance_window == 0:
            if past is not None and abs(progress.total - past) / past < settings.tolerance:
                yield dataclasses.replace(progress, converged=True)
                return
            past = progress.total
        yield progress


def stylize_in_stages(net, content, styles, stages, *, style_scales, style_masks=None, init='noise', initial=None,
                      placement=None):
    """Coarse to fine (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer", scale
    control for high resolutions): a stylize run at each stage, smallest first, every one after the first
    starting from the previous result upsampled; yields (stage, Progress). One stage: one run.

    stages: ((height, width), Settings) of each. content, styles, style_masks (RGB, white where that style
    governs) and initial may have any size: each stage resizes them, the styles to style_scales times the
    stage's width. Without `initial`, the first stage starts from `init` (INITS: 'style' is the first style
    image); the settings' noise_blend applies there only.
    """
    previous = None
    for stage, ((height, width), settings) in enumerate(stages):
        stage_content = images.resize(content, height, width)
        stage_styles = [images.scaled_style(style, width, scale) for style, scale in zip(styles, style_scales)]
        masks = None if style_masks is None else [images.mask_at(mask, height, width) for mask in style_masks]
        if previous is not None:
            host_memory.release_freed_memory()  # the larger stage starts from what the last one freed, not on top of it
            start, settings = images.resize(previous.best_image, height, width), dataclasses.replace(
                settings, noise_blend=0.0)
        elif initial is not None or init != 'noise':
            start = {'content': stage_content, 'style': stage_styles[0]}[init] if initial is None else initial
            start = images.resize(start, height, width)
        else:
            start = None
        for progress in stylize(net, stage_content, stage_styles, settings, initial=start, style_masks=masks,
                                placement=placement):
            yield stage, progress
        previous = progress


def _progress(events, mean_pixel):
    """Turns the optimizers' events into Progress, keeping the lowest-total image of all evaluated."""
    started = time.perf_counter()
    best_total, best_x, values, evaluations = np.inf, None, None, 0
    for kind, *data in events:
        if kind == 'evaluation':
            values, x = data
            evaluations += 1
            if values['total'] < best_total:
                best_total, best_x = float(values['total']), x
        else:
            (iteration,) = data
            best_image = vgg.unprocess(best_x[0], mean_pixel)
            np.clip(best_image, *PIXEL_RANGE, out=best_image)  # in place: the image may be large
            yield Progress(iteration=iteration, content=float(values['content']), style=float(values['style']),
                           tv=float(values['tv']), total=float(values['total']),
                           seconds=time.perf_counter() - started, evaluations=evaluations, best_total=best_total,
                           best_image=best_image.astype(np.float32, copy=False),
                           temporal=float(values.get('temporal', 0.0)))
