"""The objective of Gatys, Ecker & Bethge and its optimization, yielding progress.

Notation of the paper (arXiv 1508.06576 eqs. 1-7; CVPR 2016 sec. 2). For a layer l with N_l channels and
M_l positions (height x width):
    F^l  the feature map of the image being generated, P^l that of the content image
    G^l = F^l' F^l, the Gram matrix of the generated image, A^l that of the style image

    L_content = 1/2 sum_ij (F^l_ij - P^l_ij)^2                          (eq. 1)
    E_l       = 1/(4 N_l^2 M_l^2) sum_ij (G^l_ij - A^l_ij)^2             (eq. 4)
    L_style   = sum_l w_l E_l                                            (eq. 5)
    L_total   = alpha L_content + beta L_style (+ gamma L_tv, not in the paper, off by default)   (eq. 7)

Video (Ruder, Dosovitskiy & Brox, GCPR 2016 / IJCV 2018): a frame x adds gamma_t times the temporal loss
    L_temporal = 1/D sum_k c_k (x_k - w_k)^2
over the D = height x width x 3 values, w the previous stylized frame warped onto this one and c the per-pixel
consistency weights; several (w, c) pairs (long-term consistency) add up.

Spatial control (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer"): with a
guide T^l_r (a mask over the output, downsampled to layer l) for the region r a style image governs, the output's
Gram is the guided one, G^l_r = (T^l_r o F^l)' (T^l_r o F^l), compared per guided position with A^l.
"""
import contextlib
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

import tiling
import vgg

# Defaults, and where they come from.
CONTENT_LAYERS = ('relu4_2',)  # paper sec. 3: content matched on 'conv4_2'; Caffe's ReLU runs in place, so rectified
STYLE_LAYERS = ('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1')  # paper Fig. 2: conv1_1 ... conv5_1
CONTENT_WEIGHT = 1.0  # alpha
STYLE_WEIGHT = 1e3  # beta: alpha/beta = 1e-3 as in the paper's Fig. 3; checked by eye on a trained VGG at 512 px
TV_WEIGHT = 0.0  # the paper has no total-variation term
POOLING = 'avg'  # paper sec. 2: average pooling "improves the gradient flow" and looks slightly better
OPTIMIZER = 'lbfgs'  # CVPR 2016 sec. 2: "L-BFGS, which we found to work best for image synthesis"
OPTIMIZERS = ('lbfgs', 'adam')
ITERATIONS = 1000  # the paper does not state a count; 1000 is the common choice of its reimplementations
LBFGS_HISTORY = 10  # scipy's default number of stored corrections (maxcor)
LEARNING_RATE = 10.0  # Adam, on pixel values in 0..255; as in anishathalye/neural-style
BETA1 = 0.9  # Adam's published defaults (Kingma & Ba 2015)
BETA2 = 0.999
EPSILON = 1e-8
PRECISION = 'float32'  # the faithful arithmetic; 'mixed' runs the convolutions in 16 bits for speed
PRECISIONS = ('float32', 'mixed')
PIXEL_RANGE = (0.0, 255.0)
CLUSTER_OPERATION_TIMEOUT = 600  # seconds a Session.run on a cluster may take before its worker counts as lost
CLUSTER_CLOSE_WAIT = 10  # seconds to wait for a cluster session's close (a lost worker's never comes)
NOISE_STDDEV = 1.0  # white noise as in Gatys' reference code: randn on the 0..255 scale, around the mean pixel


def _tf():
    import tensorflow.compat.v1 as tf
    return tf


# The loss terms, each a pure function of tensors.

def content_loss(F, P):
    """L_content = 1/2 sum_ij (F_ij - P_ij)^2   (eq. 1)."""
    tf = _tf()
    return 0.5 * tf.reduce_sum(tf.square(F - P))


def gram_matrix(features):
    """G = F' F for a [1, height, width, N] feature map: the N x N inner products over its M positions (eq. 3)."""
    tf = _tf()
    F = tf.reshape(features, [-1, features.shape[-1]])  # M x N
    return tf.matmul(F, F, transpose_a=True)


def style_layer_loss(G, A, N, M):
    """E_l = 1/(4 N_l^2 M_l^2) sum_ij (G_ij - A_ij)^2   (eq. 4)."""
    tf = _tf()
    return tf.reduce_sum(tf.square(G - A)) / (4.0 * N ** 2 * M ** 2)


def guided_gram_matrix(features, guide):
    """G_r = (T_r o F)' (T_r o F): the Gram of a [1, height, width, N] feature map weighted by a guide
    [1, height, width, 1] at each position (Gatys et al. 2017, guided Gram matrices)."""
    return gram_matrix(features * guide)


def temporal_loss(x, w, c):
    """L_temporal = 1/D sum_k c_k (x_k - w_k)^2: x and w [1, h, w, 3], c [1, h, w, 1] (Ruder et al. 2016)."""
    tf = _tf()
    D = int(np.prod(x.shape[1:]))
    return tf.reduce_sum(c * tf.square(x - w)) / D


def total_variation(image):
    """sum of squared differences between horizontally and vertically neighbouring pixels (not in the paper)."""
    tf = _tf()
    return (tf.reduce_sum(tf.square(image[:, 1:, :, :] - image[:, :-1, :, :])) +
            tf.reduce_sum(tf.square(image[:, :, 1:, :] - image[:, :, :-1, :])))


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


def _check_finite(values, gradient=None, image=None):
    """Raises NonFiniteLoss naming what is not finite: for Adam the image (the last step's gradient was not),
    else the first of the loss terms and their total, then the gradient."""
    if image is not None and not np.all(np.isfinite(image)):
        raise NonFiniteLoss('gradient', 'nan')
    for term in ('content', 'style', 'tv', 'temporal', 'total'):
        if term in values and not np.isfinite(values[term]):
            raise NonFiniteLoss(term, float(values[term]))
    if gradient is not None and not np.all(np.isfinite(gradient)):
        raise NonFiniteLoss('gradient', 'nan' if np.isnan(gradient).any() else 'inf')


def default_device():
    """The first GPU when TensorFlow sees one, else the CPU."""
    import tensorflow as tf
    return '/gpu:0' if tf.config.list_physical_devices('GPU') else '/cpu:0'


def existing_device(name):
    """`name` (/cpu:0, /GPU:1, /device:gpu:0, ...) as /cpu:0 or /gpu:1 if TensorFlow sees that device here; a
    ValueError naming the devices it sees otherwise. The sessions place ops softly (an op without a kernel for
    the device falls back to the CPU), which would otherwise run a whole graph for /gpu:3 on the CPU."""
    return existing_devices([name])[0]


def existing_devices(names, logical_cpus=False):
    """existing_device of each name; with logical_cpus, /cpu:N of any N is allowed too (a session makes that many
    CPU devices on this machine's cores: Placement.logical_cpus)."""
    import tensorflow as tf
    seen = [f'/{device.device_type.lower()}:{device.name.rpartition(":")[2]}'
            for device in tf.config.list_physical_devices() if device.device_type in ('CPU', 'GPU')]
    found = []
    for name in names:
        kind, _, index = name.lower().lstrip('/').replace('device:', '').partition(':')
        if f'/{kind}:{index}' not in seen and not (logical_cpus and kind == 'cpu' and index.isdigit()):
            raise ValueError(f'device {name} does not exist here; TensorFlow sees {", ".join(seen)}')
        found.append(f'/{kind}:{index}')
    return found


def every_gpu():
    """Each GPU TensorFlow sees here, else the CPU: --devices all."""
    import tensorflow as tf
    return [f'/gpu:{i}' for i in range(len(tf.config.list_physical_devices('GPU')))] or ['/cpu:0']


def compute_dtype(precision, device):
    """The convolutions' arithmetic: float32, or for 'mixed' bfloat16 on a CPU and float16 (tensor cores) on a GPU.
    The image, the feature maps entering the losses, the Grams and the losses stay float32."""
    if precision not in PRECISIONS:
        raise ValueError(f'unknown precision {precision!r}; choose one of {", ".join(PRECISIONS)}')
    if precision == 'float32':
        return 'float32'
    return 'float16' if 'gpu' in device.lower() else 'bfloat16'


def white_noise(shape, mean_pixel, seed=None):
    """The paper's starting image: Gaussian white noise around the mean pixel (RGB, 0..255)."""
    noise = np.random.default_rng(seed).normal(0.0, NOISE_STDDEV, size=shape)
    return (np.asarray(mean_pixel, np.float64) + noise).astype(np.float32)


@dataclass(frozen=True)
class Placement:
    """Where a run's graphs go (README, "Many devices and machines"). devices: the first holds an untiled run's
    graph; a tiled evaluation spreads its tiles over all of them. target: the master of the sessions, '' for
    this process or 'grpc://host:port', a worker's, with cluster_def naming every worker of the cluster."""
    devices: tuple
    target: str = ''
    cluster_def: object = None

    def logical_cpus(self):
        """How many CPU devices a local session makes: enough for the highest /cpu:N named (several logical
        CPU devices share this machine's cores)."""
        indexes = [int(name.rpartition(':')[2]) for name in self.devices if not self.target and 'cpu' in name]
        return max(indexes, default=0) + 1


def _session(graph, placement=None, grappler_passes=None):
    """A session for `graph` on the placement's devices and master (default: this process). grappler_passes:
    the only Grappler passes to run, e.g. ('layout', 'remap'); default: all but those below."""
    tf = _tf()
    from tensorflow.core.protobuf.rewriter_config_pb2 import RewriterConfig
    config = tf.ConfigProto(allow_soft_placement=True)
    config.gpu_options.allow_growth = True  # share the GPU with others
    rewrite = config.graph_options.rewrite_options
    if grappler_passes:
        rewrite.optimizers.extend(grappler_passes)
    else:
        # Grappler's passes over a graph of constants with no loops or functions cost about 2 s at the first run
        # and gain nothing here (measured at 512 px); the remapper's fused convolutions and the layout optimizer
        # stay.
        for unneeded in ('constant_folding', 'arithmetic_optimization', 'dependency_optimization',
                         'loop_optimization', 'function_optimization', 'shape_optimization',
                         'common_subgraph_elimination'):
            setattr(rewrite, unneeded, RewriterConfig.OFF)
    if placement is None:
        return tf.Session(graph=graph, config=config)
    config.device_count['CPU'] = placement.logical_cpus()
    if placement.cluster_def is not None:
        config.cluster_def.CopyFrom(placement.cluster_def)
        config.operation_timeout_in_ms = CLUSTER_OPERATION_TIMEOUT * 1000  # a worker that hangs is a lost one
    return tf.Session(placement.target, graph=graph, config=config)


@contextlib.contextmanager
def _opened(graph, placement=None):
    """A session for `graph` (_session), closed at the end (close)."""
    session = _session(graph, placement)
    try:
        yield session
    finally:
        close(session, placement)


def close(session, placement=None):
    """Closes a session. On a cluster it waits at most CLUSTER_CLOSE_WAIT seconds: TensorFlow's close waits for
    every worker of the session, a lost one too (until the operation timeout), and the run is over by then."""
    if placement is None or not placement.target:
        session.close()
        return
    closing = threading.Thread(target=_close_quietly, args=(session,), daemon=True, name='closing a session')
    closing.start()
    closing.join(CLUSTER_CLOSE_WAIT)


def _close_quietly(session):
    try:
        session.close()
    except Exception:  # a lost worker's error, reported already by the run
        pass


class DeviceLost(Exception):
    """A device of a cluster failed during a run (a worker stopped or became unreachable): TensorFlow's error,
    raised where the run was; the last Progress yielded holds the best image so far."""

    def __init__(self, error):
        super().__init__(error)
        self.error = error

    def __str__(self):
        return self.error.message.strip().splitlines()[0] if getattr(self.error, 'message', '') else str(self.error)


def _deepest(layers):
    return max(layers, key=vgg.LAYERS.index)


def _normalized(weights, count, default):
    weights = np.full(count, default, dtype=np.float64) if weights is None else np.asarray(weights, np.float64)
    if weights.shape != (count,):
        raise ValueError(f'{len(weights)} weights given for {count} items')
    return weights


def layer_guides(mask, layers):
    """A mask [height, width] over the image, downsampled to each layer's resolution as the network pools it
    (2x2 averages with stride 2, a border window of an odd size averaging the pixels inside): layer -> guide."""
    guides, guide = {}, np.asarray(mask, np.float64)
    for name in vgg.layers_up_to(_deepest(layers)):
        if name.startswith('pool'):
            height, width = guide.shape
            rows, columns = np.arange(0, height, 2), np.arange(0, width, 2)
            sums = np.add.reduceat(np.add.reduceat(guide, rows, axis=0), columns, axis=1)
            counts = np.outer(np.minimum(2, height - rows), np.minimum(2, width - columns))
            guide = sums / counts
        if name in layers:
            guides[name] = guide
    return guides


def layer_features(net, images, content_layers, style_layers, pooling, device, dtype='float32', placement=None):
    """For each image, its features at `content_layers` (P^l, for the content image) and its Gram matrices at
    `style_layers` (A^l, for a style image).

    Returns a list of (features, grams, positions) per image: dicts by layer of NumPy arrays, and M_l of each
    style layer. All images go through one graph (with one set of fetches, so TensorFlow prepares it once), in
    a graph of its own that is freed afterwards: the optimization graph holds only constants.
    """
    tf = _tf()
    graph = tf.Graph()
    with graph.as_default(), tf.device(device):
        x = tf.placeholder(tf.float32, [1, None, None, 3])
        layers = vgg.build_network(net, x, _deepest(list(content_layers) + list(style_layers)), pooling, dtype)
        layers = {name: tf.cast(layers[name], tf.float32) for name in list(content_layers) + list(style_layers)}
        fetches = ({name: layers[name] for name in content_layers},
                   {name: gram_matrix(layers[name]) for name in style_layers},
                   {name: tf.shape(layers[name])[1] * tf.shape(layers[name])[2] for name in style_layers})
    with _opened(graph, placement) as session:
        return [session.run(fetches, {x: vgg.preprocess(np.asarray(image, np.float32), net.mean_pixel)[None]})
                for image in images]


def objective(net, image, content_targets, style_targets, *, content_layer_weights, style_layer_weights,
              style_blend_weights, content_weight, style_weight, tv_weight, pooling, dtype='float32',
              style_guides=None, temporal_targets=None, temporal_weight=0.0):
    """The weighted loss terms of eq. 7 for the image tensor `image` ([1, h, w, 3], preprocessed).

    content_targets: layer -> P^l. style_targets: one dict per style image, layer -> (A^l, M_l of that style);
    their style losses are summed with style_blend_weights, normalized to sum 1.
    When a style image's size differs from the output's, Grams are compared per position, A^l / M_style
    against G^l / M_l, by scaling A^l by M_l / M_style: identical to the paper when the sizes match.
    style_guides: None, or one dict per style image, layer -> T^l [h_l, w_l]: that style's loss then uses the
    guided Gram G^l_r with M_l replaced by sum T^l^2, the guided count of positions (as the authors' code
    normalizes its guides); a guide of ones is the unguided loss.
    temporal_targets: None, or (w, c) pairs, w [1, h, w, 3] preprocessed and c [h, w]: adds the term
    'temporal', temporal_weight times the sum of their L_temporal.
    """
    tf = _tf()
    layer_names = list(content_layer_weights) + list(style_layer_weights)
    layers = vgg.build_network(net, image, _deepest(layer_names), pooling, dtype)
    layers = {name: tf.cast(layers[name], tf.float32) for name in layer_names}
    L_content = tf.add_n([float(w) * content_loss(layers[name], tf.constant(content_targets[name]))
                          for name, w in content_layer_weights.items()])
    blend_weights = np.asarray(style_blend_weights, np.float64) / np.sum(style_blend_weights)
    L_style = 0.0
    for name, w in style_layer_weights.items():
        F = layers[name]
        N, M = int(F.shape[3]), int(F.shape[1]) * int(F.shape[2])
        G = gram_matrix(F)
        for blend, targets, guides in zip(blend_weights, style_targets,
                                          style_guides or [None] * len(style_targets)):
            A, M_style = targets[name]
            G_r, M_r = G, M
            if guides is not None:
                T = guides[name]
                G_r = guided_gram_matrix(F, tf.constant(T[None, :, :, None].astype(np.float32)))
                M_r = np.sum(T ** 2)
            A = tf.constant((A * (M_r / M_style)).astype(np.float32))
            L_style += float(blend * w) * style_layer_loss(G_r, A, N, M_r)
    terms = {'content': content_weight * L_content,
             'style': style_weight * L_style,
             'tv': tv_weight * total_variation(image)}
    terms['total'] = terms['content'] + terms['style'] + terms['tv']
    if temporal_targets:
        terms['temporal'] = temporal_weight * tf.add_n(
            [temporal_loss(image, tf.constant(np.asarray(w, np.float32)),
                           tf.constant(np.asarray(c, np.float32)[None, :, :, None])) for w, c in temporal_targets])
        terms['total'] += terms['temporal']
    return terms


def stylize(net, content, styles, *, initial=None, noise_blend=0.0, seed=None,
            content_layers=CONTENT_LAYERS, content_layer_weights=None,
            style_layers=STYLE_LAYERS, style_layer_weights=None, style_blend_weights=None, style_masks=None,
            content_weight=CONTENT_WEIGHT, style_weight=STYLE_WEIGHT, tv_weight=TV_WEIGHT, pooling=POOLING,
            optimizer=OPTIMIZER, iterations=ITERATIONS, lbfgs_history=LBFGS_HISTORY,
            learning_rate=LEARNING_RATE, beta1=BETA1, beta2=BETA2, epsilon=EPSILON, device=None,
            precision=PRECISION, tile_size=None, max_memory=None, placement=None, temporal_targets=None,
            temporal_weight=0.0):
    """Paints `content` in the style of `styles`, yielding a Progress after every iteration (and for the start).

    net: vgg.VGG19. content: RGB 0..255 [h, w, 3]; the output has its size. styles: a list of RGB images at
    the size their features should be taken at. initial: the starting image (content's size), or None for
    white noise, the paper's start; noise_blend mixes that much white noise into it. seed fixes the noise.
    precision 'mixed' runs the convolutions in 16 bits (see compute_dtype).
    Layer weights default to 1/(number of layers) (the paper's w_l); blend weights are normalized to sum 1.
    style_masks: None, or one mask per style image, [h, w] of the content's size with values in 0..1: the
    region of the output that style governs (spatial control with guided Grams; see objective).
    tile_size: evaluate the objective exactly over tiles of this size (tiling.py), in bounded memory; or None
    with max_memory (bytes): tiled with the largest tile that fits when the estimated peak does not
    (tiling.plan); neither: untiled.
    device: where the graphs run (default: the GPU if there is one); or placement: several devices, whose
    sessions may have a cluster's master (Placement). With several devices the evaluation is tiled (with
    tile_size, or tiling.spread's size), the tiles of one pass running on all of them at once. A device of a
    cluster that fails raises DeviceLost.
    temporal_targets: for a video frame, None or (w, c) pairs: w a warped earlier stylized frame (RGB 0..255,
    content's size), c its consistency weights [h, w] in 0..1; the objective then adds temporal_weight (gamma_t)
    times the sum of their L_temporal (untiled only).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f'unknown optimizer {optimizer!r}; choose one of {", ".join(OPTIMIZERS)}')
    for name in list(content_layers) + list(style_layers):
        if name not in vgg.LAYERS:
            raise ValueError(f'unknown layer {name!r}')
    for layers in (content_layers, style_layers):
        if len(set(layers)) != len(layers):  # each layer has one weight: a repeat would drop all but the last
            raise ValueError(f'a layer is named more than once in {list(layers)}')
    content_layer_weights = dict(zip(content_layers, _normalized(
        content_layer_weights, len(content_layers), 1.0 / len(content_layers))))
    style_layer_weights = dict(zip(style_layers, _normalized(
        style_layer_weights, len(style_layers), 1.0 / len(style_layers))))
    blend = _normalized(style_blend_weights, len(styles), 1.0)
    if blend.sum() <= 0:
        raise ValueError('style blend weights must sum to more than 0')
    style_guides = None
    if style_masks is not None:
        if len(style_masks) != len(styles):
            raise ValueError(f'{len(style_masks)} style masks given for {len(styles)} style images')
        for mask in style_masks:
            if np.shape(mask) != np.shape(content)[:2] or np.min(mask) < 0 or np.max(mask) > 1 or not np.any(mask):
                raise ValueError("a style mask must have the content's height and width, values in 0..1, "
                                 "and not be 0 everywhere")
        style_guides = [layer_guides(mask, style_layers) for mask in style_masks]
    for w, c in temporal_targets or []:
        if np.shape(w) != np.shape(content) or np.shape(c) != np.shape(content)[:2]:
            raise ValueError("a temporal target and its weights must have the content's height and width")
    placement = placement or Placement((existing_device(device) if device else default_device(),))
    device = placement.devices[0]
    dtype = compute_dtype(precision, device)

    content = np.asarray(content, np.float32)
    plan = tiling.plan(content.shape[:2], content_layers, style_layers, tile_size=tile_size,
                       max_memory=max_memory, optimizer=optimizer, lbfgs_history=lbfgs_history,
                       devices=len(placement.devices))
    if plan.tile_size is not None and temporal_targets:
        raise ValueError('a video frame with temporal targets is evaluated untiled, on one device')
    if plan.tile_size is not None:
        yield from _stylize_tiled(
            net, content, styles, plan.tile_size, initial=initial, noise_blend=noise_blend, seed=seed,
            content_layer_weights=content_layer_weights, style_layer_weights=style_layer_weights,
            style_blend_weights=blend, style_guides=style_guides, content_weight=content_weight,
            style_weight=style_weight, tv_weight=tv_weight, pooling=pooling, optimizer=optimizer,
            iterations=iterations, lbfgs_history=lbfgs_history, learning_rate=learning_rate, beta1=beta1,
            beta2=beta2, epsilon=epsilon, placement=placement, dtype=dtype)
        return
    targets = layer_features(net, [content] + list(styles), content_layers, style_layers, pooling, device, dtype,
                             placement)
    content_targets = targets[0][0]
    style_targets = [{name: (grams[name], positions[name]) for name in style_layers}
                     for _, grams, positions in targets[1:]]

    x0, lower, upper = _start(net, content.shape, initial, noise_blend, seed)
    weights = dict(content_layer_weights=content_layer_weights, style_layer_weights=style_layer_weights,
                   style_blend_weights=blend, content_weight=content_weight, style_weight=style_weight,
                   tv_weight=tv_weight, pooling=pooling, dtype=dtype, style_guides=style_guides,
                   temporal_targets=[(vgg.preprocess(np.asarray(w, np.float32), net.mean_pixel)[None], np.asarray(c))
                                     for w, c in temporal_targets or []],
                   temporal_weight=temporal_weight)

    tf = _tf()
    graph = tf.Graph()
    with graph.as_default(), tf.device(device):
        if optimizer == 'lbfgs':
            image = tf.placeholder(tf.float32, x0.shape)
            terms = objective(net, image, content_targets, style_targets, **weights)
            gradient = tf.gradients(terms['total'], image)[0]
        else:
            variable = tf.Variable(x0)
            image = variable.read_value()  # read once: the losses and the fetched image are the same iterate
            terms = objective(net, image, content_targets, style_targets, **weights)
            train = tf.train.AdamOptimizer(learning_rate, beta1, beta2, epsilon).minimize(
                terms['total'], var_list=[variable])
            with tf.control_dependencies([train]):  # projected: pixels stay in 0..255, as with L-BFGS's bounds
                step = variable.assign(tf.clip_by_value(variable.read_value(), lower, upper))
            init = tf.global_variables_initializer()
    with _opened(graph, placement) as session:
        if optimizer == 'lbfgs':
            events = _lbfgs_events(lambda pixels: session.run((terms, gradient), {image: pixels}),
                                   x0, lower, upper, iterations, lbfgs_history)
        else:
            session.run(init)
            events = _adam_events(session, image, terms, step, iterations)
        try:
            yield from _progress(_failures_of(placement, events), net.mean_pixel)
        finally:
            events.close()  # joins L-BFGS's worker before the session closes


def _start(net, shape, initial, noise_blend, seed):
    """The starting image (preprocessed, [1, h, w, 3]) and the bounds of the pixels, preprocessed likewise."""
    noise = white_noise(shape, net.mean_pixel, seed)
    start = noise if initial is None else (1 - noise_blend) * np.asarray(initial, np.float32) + noise_blend * noise
    x0 = vgg.preprocess(np.clip(start, *PIXEL_RANGE), net.mean_pixel)[None]
    lower = vgg.preprocess(np.full_like(x0, PIXEL_RANGE[0]), net.mean_pixel)
    upper = vgg.preprocess(np.full_like(x0, PIXEL_RANGE[1]), net.mean_pixel)
    return x0, lower, upper


def _stylize_tiled(net, content, styles, tile_size, *, initial, noise_blend, seed, content_layer_weights,
                   style_layer_weights, style_blend_weights, style_guides, content_weight, style_weight, tv_weight,
                   pooling, optimizer, iterations, lbfgs_history, learning_rate, beta1, beta2, epsilon, placement,
                   dtype):
    """stylize's optimization with the objective evaluated over tiles (tiling.TiledObjective): the targets
    tile by tile through the same network, the image, its gradient and the optimizer's state on the host."""
    networks = [tiling.TileNetwork(
        net, {name: content_weight * w for name, w in content_layer_weights.items()}, list(style_layer_weights),
        guided=len(styles) if style_guides else 0, pooling=pooling, dtype=dtype, device=device, placement=placement)
        for device in placement.devices]
    network = networks[0]
    try:
        def tiles_of(image):
            return tiling.make_tiles(*image.shape[:2], tile_size, network.deepest)

        def preprocessed(image):
            return vgg.preprocess(np.asarray(image, np.float32), net.mean_pixel)[None]

        content_targets = tiling.image_targets(networks, tiles_of(content), preprocessed(content))[0]
        style_targets = []
        for style in styles:
            _, grams, positions = tiling.image_targets(networks, tiles_of(style), preprocessed(style))
            style_targets.append({name: (grams[name], positions[name]) for name in style_layer_weights})
        objective = tiling.TiledObjective(
            networks, tiles_of(content), content_targets, style_targets,
            content_layer_weights=content_layer_weights, style_layer_weights=style_layer_weights,
            style_blend_weights=style_blend_weights, content_weight=content_weight, style_weight=style_weight,
            tv_weight=tv_weight, style_guides=style_guides)
        x0, lower, upper = _start(net, content.shape, initial, noise_blend, seed)
        lower, upper = lower[:, :1, :1].copy(), upper[:, :1, :1].copy()  # per channel: the image may be large
        if optimizer == 'lbfgs':
            events = _lbfgs_events(objective, x0, lower, upper, iterations, lbfgs_history)
        else:
            events = _host_adam_events(objective, x0, lower, upper, iterations, learning_rate, beta1, beta2, epsilon)
        del x0  # the optimizer's first iterate: not kept past it
        try:
            yield from _progress(_failures_of(placement, events), net.mean_pixel)
        finally:
            events.close()
    finally:
        for network in networks:
            network.close()


def _failures_of(placement, events):
    """The optimizer's events, TensorFlow's error for a device of a cluster that failed raised as DeviceLost."""
    tf = _tf()
    try:
        yield from events
    except tf.errors.OpError as error:
        if not placement.target:
            raise
        raise DeviceLost(error) from None


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


def _adam_events(session, image, terms, step, iterations):
    """Adam: each run evaluates the current iterate and takes one step from it."""
    for iteration in range(iterations):
        values, x, _ = session.run((terms, image, step))
        _check_finite(values, image=x)
        yield 'evaluation', values, x
        yield 'iteration', iteration
    values, x = session.run((terms, image))
    _check_finite(values, image=x)
    yield 'evaluation', values, x
    yield 'iteration', iterations


def _host_adam_events(evaluate, x0, lower, upper, iterations, learning_rate, beta1, beta2, epsilon):
    """Adam on the host, as TensorFlow's AdamOptimizer computes it (float32), then clipped to the pixel bounds:
    for an objective evaluated by `evaluate(image) -> (terms, gradient)`."""
    x, m, v = x0, np.zeros_like(x0), np.zeros_like(x0)
    del x0  # the first iterate is kept only while it is the best
    beta1, beta2 = np.float32(beta1), np.float32(beta2)
    for iteration in range(iterations):
        values, gradient = evaluate(x)
        _check_finite(values, gradient)
        yield 'evaluation', values, x
        t = iteration + 1
        step = np.float32(learning_rate * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t))
        m += (gradient - m) * (1 - beta1)
        gradient *= gradient
        v += (gradient - v) * (1 - beta2)
        del gradient
        update = np.sqrt(v)  # one image-sized temporary: the image may be large
        update += np.float32(epsilon)
        np.divide(m, update, out=update)
        update *= step
        x = np.subtract(x, update, out=update)  # a new array: the last iterate may be kept as the best
        del update
        np.clip(x, lower, upper, out=x)
        yield 'iteration', iteration
    values, _ = evaluate(x, gradient=False)
    _check_finite(values)
    yield 'evaluation', values, x
    yield 'iteration', iterations


LBFGS_THREAD = 'L-BFGS worker'


class _Stopped(Exception):
    pass


def _lbfgs_events(evaluate_image, x0, lower, upper, iterations, history):
    """L-BFGS-B over the pixels, one state for the whole run, each pixel bounded to 0..255;
    evaluate_image(image [1, h, w, 3] float32) -> (terms, gradient).

    scipy drives the loop, so it runs in a worker thread and reports through a queue; closing this
    generator (an interrupt, say) stops the worker at its next evaluation.
    """
    import scipy.optimize

    events, stop = queue.Queue(), threading.Event()
    last = {'iteration': 0}

    def evaluate(x):
        if stop.is_set():
            raise _Stopped
        pixels = x.reshape(x0.shape).astype(np.float32)
        values, grad = evaluate_image(pixels)
        _check_finite(values, grad)  # scipy must never see a NaN: it would carry on with it silently
        last['x'] = x.copy()
        events.put(('evaluation', values, pixels))
        if 'started' not in last:
            last['started'] = True
            events.put(('iteration', 0))
        return float(values['total']), grad.ravel().astype(np.float64)

    def callback(intermediate_result):
        if not np.array_equal(intermediate_result.x, last['x']):  # report the iterate's own losses
            evaluate(intermediate_result.x)
        last['iteration'] += 1
        events.put(('iteration', last['iteration']))

    def work():
        try:
            scipy.optimize.minimize(
                evaluate, x0.ravel().astype(np.float64), jac=True, method='L-BFGS-B',
                bounds=scipy.optimize.Bounds(np.broadcast_to(lower, x0.shape).ravel(),
                                             np.broadcast_to(upper, x0.shape).ravel()), callback=callback,
                # Only --iterations ends the run (or a line search that can make no progress).
                options=dict(maxiter=iterations, maxcor=history, maxfun=2 ** 31 - 1, ftol=0.0, gtol=0.0))
        except _Stopped:
            pass
        except BaseException as error:  # handed to the consumer's thread
            events.put(('error', error))
        events.put(('done',))

    worker = threading.Thread(target=work, daemon=True, name=LBFGS_THREAD)
    worker.start()
    try:
        while True:
            event = events.get()
            if event[0] == 'done':
                return
            if event[0] == 'error':
                raise event[1]
            yield event
    finally:
        stop.set()
        worker.join()
