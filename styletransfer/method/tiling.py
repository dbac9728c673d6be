"""Exact evaluation of the objective and its gradient over aligned tiles with halos, in bounded memory.

A feature of VGG-19 at a tile's own position equals the untiled one when the tile's input crop holds that
position's whole receptive field (the halo) and the crop starts on a multiple of the deepest loss layer's
stride (the alignment: then every pooling window of the crop is one of the whole image's). The objective needs
the whole image only through the Gram matrices G^l, so one evaluation is two passes over the tiles:

- pass 1, forward only: each tile's features at its own positions; G^l = sum over tiles of F_tile' F_tile
  (and the guided Grams), the content loss against the matching part of P^l;
- pass 2: each tile back-propagates a surrogate whose gradient with respect to its own features is the
  objective's: alpha w_l (F - P) for the content, and for the style, with D = G^l - A^l fed in as a constant,
  c sum_ij D_ij (F_tile' F_tile)_ij, whose gradient 2 c F_tile D is dE_l/dF = F (G - A) / (N^2 M^2) for
  c = 1 / (2 N^2 M^2). The tiles' input gradients are added into the image's gradient (overlap-add).

The total variation is computed on the whole image on the host (it is cheap). The image, its gradient and the
optimizer's state stay in host memory; only tiles go through the network.
"""
import concurrent.futures
import math
import os
from dataclasses import dataclass

import numpy as np

import vgg
from styletransfer.compute import devices
from styletransfer.method import losses


# The receptive field, from the layer list.

def reach(last_layer):
    """(before, after): how far outside its own stride x stride block of input pixels a position of
    `last_layer` sees, in input pixels. A 3x3 convolution at stride s widens the field by s on each side; a
    2x2 pooling with stride 2 joins two neighbouring blocks into one, adding nothing outside the new block."""
    before = after = 0
    stride = 1
    for name in vgg.layers_up_to(last_layer):
        if name.startswith('conv'):
            before, after = before + stride, after + stride
        elif name.startswith('pool'):
            stride *= 2
    return before, after


def alignment(last_layer):
    """The stride of `last_layer`: tile origins on its multiples make every pooling window of a tile one of
    the whole image's."""
    return vgg.strides(last_layer)[last_layer]


def halo(last_layer):
    """The margin a tile's input needs around its own region: the reach, rounded up to the alignment so that
    the crop starts on an aligned pixel too."""
    step = alignment(last_layer)
    return step * _ceil_div(max(reach(last_layer)), step)


def _ceil_div(a, b):
    return -(-a // b)


@dataclass(frozen=True)
class Tile:
    """A tile: its own region (whose features it contributes) and its input crop (own region plus halo, cut at
    the image's border), each (top, left, bottom, right) in image pixels, bottom and right exclusive."""
    own: tuple
    crop: tuple

    def own_positions(self, stride):
        """(top, left, bottom, right) of the tile's own positions at a layer of this stride, in the layer's
        coordinates of the whole image: the positions whose stride x stride block starts inside the own region."""
        return tuple(_ceil_div(edge, stride) for edge in self.own)

    def own_box(self, stride):
        """The own positions in the coordinates of the crop's feature map at that layer."""
        top, left, bottom, right = self.own_positions(stride)
        crop_top, crop_left = _ceil_div(self.crop[0], stride), _ceil_div(self.crop[1], stride)
        return top - crop_top, bottom - crop_top, left - crop_left, right - crop_left

    @property
    def crop_pixels(self):
        return (self.crop[2] - self.crop[0]) * (self.crop[3] - self.crop[1])


def _spans(length, size, margin, origin):
    """(own start, own end, crop start, crop end) along one axis: own regions of `size` on the grid origin +
    k size (the first one shorter when origin > 0), crops `margin` wider on each side within 0..length."""
    edges = [0] + list(range(origin or size, length, size)) + [length]
    return [(a, b, max(0, a - margin), min(length, b + margin)) for a, b in zip(edges, edges[1:])]


def make_tiles(height, width, tile_size, last_layer, *, margin=None, origin=0):
    """The tiles of a height x width image: own regions tile_size square (a multiple of the alignment), on a
    grid from the top-left corner; crops with the halo of `last_layer`. margin and origin override the halo
    and shift the grid (by origin pixels from the corner): only a test breaking the exactness uses them."""
    step = alignment(last_layer)
    if tile_size <= 0 or tile_size % step:
        raise ValueError(f'the tile size must be a positive multiple of {step} (the stride of {last_layer}), '
                         f'not {tile_size}')
    margin = halo(last_layer) if margin is None else margin
    return [Tile(own=(top, left, bottom, right), crop=(crop_top, crop_left, crop_bottom, crop_right))
            for top, bottom, crop_top, crop_bottom in _spans(height, tile_size, margin, origin)
            for left, right, crop_left, crop_right in _spans(width, tile_size, margin, origin)]


# The network over one tile.

class TileNetwork:
    """One graph and session: for a tile's input crop ([1, h, w, 3], preprocessed) and its own boxes, the
    features at the content layers and the (guided) Grams at the style layers over the tile's own positions
    (pass 1, forward only), and the crop's gradient of the pass-2 surrogate. A [1, None, None, 3] placeholder
    serves every tile shape. Several TileNetworks, on several devices, share the tiles of one evaluation
    (run_tiles).

    content_coefficients: layer -> alpha w_l. guided: the number of guided styles (0: unguided). device: where
    the graph runs; placement: the devices.Placement whose session (master, cluster) it runs in.
    """

    def __init__(self, net, content_coefficients, style_layers, *, guided=0, pooling, padding='zero',
                 dtype, device, placement=None):
        import tensorflow.compat.v1 as tf

        self.content_layers, self.style_layers = list(content_coefficients), list(style_layers)
        names = list(dict.fromkeys(self.content_layers + self.style_layers))
        self.deepest = vgg.deepest(names)
        self.strides = vgg.strides(self.deepest)
        graph = tf.Graph()
        with graph.as_default(), tf.device(device):
            self.x = tf.placeholder(tf.float32, [1, None, None, 3], name='crop')
            # Any padding is exact: its effect at a crop's edge stays in the halo, and a crop's edge on the
            # image's border is padded as the image is.
            layers = vgg.build_network(net, self.x, self.deepest, pooling, dtype, padding,
                                       devices.convolutions(device, dtype, tiled=True))
            self.boxes, own = {}, {}
            for name in names:
                box = self.boxes[name] = tf.placeholder(tf.int32, [4], name=f'box_{name}')
                own[name] = tf.cast(layers[name], tf.float32)[:, box[0]:box[1], box[2]:box[3], :]
            self.features = {name: own[name] for name in self.content_layers}
            self.grams = {name: losses.gram_matrix(own[name]) for name in self.style_layers}
            self.guides = [{name: tf.placeholder(tf.float32, [1, None, None, 1]) for name in self.style_layers}
                           for _ in range(guided)]
            self.guided_grams = [{name: losses.guided_gram_matrix(own[name], T[name])
                                  for name in self.style_layers} for T in self.guides]
            # Pass 2: the content targets over the own positions, and D = c (G - A) per style layer (per guided
            # style), fed in.
            self.P = {name: tf.placeholder(tf.float32, own[name].shape) for name in self.content_layers}
            self.D = [{name: tf.placeholder(tf.float32, [own[name].shape[-1]] * 2) for name in self.style_layers}
                      for _ in range(max(guided, 1))]
            surrogate = tf.add_n(
                [float(weight) * losses.content_loss(own[name], self.P[name])
                 for name, weight in content_coefficients.items()] +
                [_style_surrogate(own[name] if not guided else own[name] * self.guides[r][name], D[name])
                 for r, D in enumerate(self.D) for name in self.style_layers])
            self.gradient = tf.gradients(surrogate, self.x)[0]
        self.session, self.placement = devices.session(graph, placement, TILE_GRAPPLER_PASSES), placement

    def feeds(self, crop, tile):
        feed = {self.x: crop}
        for name, box in self.boxes.items():
            feed[box] = tile.own_box(self.strides[name])
        return feed

    def close(self):
        devices.close(self.session, self.placement)


# Grappler's passes for the tile graph: its layout optimizer and remapper (the fused convolutions). The full set
# that devices.session runs copies the graph, weights included, per pass: more memory at the peak for little CPU
# time (docs/development.md, Measurement history).
TILE_GRAPPLER_PASSES = ('layout', 'remap')


def _style_surrogate(F, D):
    """sum_ij D_ij (F' F)_ij for a feature map F [1, h, w, N], as sum_k (F D)_k . F_k (the same sum)."""
    import tensorflow.compat.v1 as tf
    F = tf.reshape(F, [-1, F.shape[-1]])
    return tf.reduce_sum(tf.matmul(F, D) * F)


def _crop(array, tile):
    top, left, bottom, right = tile.crop
    return array[:, top:bottom, left:right, :]


def _positions(array, tile, stride):
    """The tile's own positions of a whole-image layer map [1, h_l, w_l, ...] or guide [h_l, w_l]."""
    top, left, bottom, right = tile.own_positions(stride)
    return array[..., top:bottom, left:right, :] if array.ndim == 4 else array[top:bottom, left:right]


def run_tiles(networks, tiles, request, consume):
    """For each tile, network.session.run(*request(network, tile)) on networks[k % len(networks)] for the k-th
    tile, then consume(network, tile, result) in the tiles' order. With several networks the tiles of a wave (one
    per network) run at the same time, each Session.run in a thread of its own (TensorFlow releases the GIL), and
    are consumed in the same order as on one network: the sums come out the same. Returns the bytes fed and
    fetched (what travels to and from a remote device)."""
    moved = 0

    def run(job):
        network, tile = job
        fetches, feed = request(network, tile)
        result = network.session.run(fetches, feed)
        return result, sum(np.asarray(value).nbytes for value in feed.values()) + _nbytes(result)

    pool = concurrent.futures.ThreadPoolExecutor(len(networks))
    try:
        for start in range(0, len(tiles), len(networks)):
            wave = list(zip(networks, tiles[start:start + len(networks)]))
            for (network, tile), (result, nbytes) in zip(wave, pool.map(run, wave) if len(wave) > 1 else
                                                         map(run, wave)):
                consume(network, tile, result)
                moved += nbytes
    except BaseException:  # an interrupt: not waiting for runs that may never end (a cluster's end when its
        pool.shutdown(wait=False, cancel_futures=True)  # sessions close: devices.ClusterSession)
        raise
    pool.shutdown()
    return moved


def _nbytes(result):
    if isinstance(result, dict):
        return sum(_nbytes(value) for value in result.values())
    if isinstance(result, (list, tuple)):
        return sum(_nbytes(value) for value in result)
    return np.asarray(result).nbytes


def image_targets(networks, tiles, image):
    """P^l (whole-image features at the content layers) and A^l (Grams at the style layers) of a preprocessed
    image [1, h, w, 3], tile by tile through `networks` (run_tiles): ({layer: P}, {layer: A}, {layer: M_l}). The
    fetches are pass 1's (unguided), so that TensorFlow prepares one executor, and holds one copy of the
    weights, for both."""
    network = networks[0]
    height, width = image.shape[1:3]
    P = {name: np.zeros((1,) + vgg.layer_shape(height, width, network.strides[name]) + (vgg.channels(name),),
                        np.float32) for name in network.content_layers}
    A = dict.fromkeys(network.style_layers, 0.0)

    def request(network, tile):
        return (network.features, [network.grams]), network.feeds(_crop(image, tile), tile)

    def consume(network, tile, result):
        features, (grams,) = result
        for name, F in features.items():
            top, left, bottom, right = tile.own_positions(network.strides[name])
            P[name][:, top:bottom, left:right, :] = F
        for name, G in grams.items():
            A[name] = A[name] + G.astype(np.float64)

    run_tiles(networks, tiles, request, consume)
    positions = {name: int(np.prod(vgg.layer_shape(height, width, network.strides[name]))) for name in A}
    return P, {name: G.astype(np.float32) for name, G in A.items()}, positions


def tiled_objective(net, content, styles, settings, tile_size, *, style_guides=None, placement, dtype='float32'):
    """The TiledObjective of a run in tiles of tile_size pixels, a TileNetwork on each of the placement's
    devices, the targets computed tile by tile through them (image_targets). content, styles: RGB 0..255."""
    content_coefficients = {name: settings.content_weight * w for name, w in settings.content_weights().items()}
    networks = [TileNetwork(net, content_coefficients, settings.style_layers,
                            guided=len(styles) if style_guides else 0, pooling=settings.pooling,
                            padding=settings.padding, dtype=dtype, device=device, placement=placement)
                for device in placement.devices]
    try:
        def tiles_of(image):
            return make_tiles(*image.shape[:2], tile_size, settings.deepest())

        def preprocessed(image):
            return vgg.preprocess(np.asarray(image, np.float32), net.mean_pixel)[None]

        content_targets = image_targets(networks, tiles_of(content), preprocessed(content))[0]
        style_targets = []
        for style in styles:
            _, grams, positions = image_targets(networks, tiles_of(style), preprocessed(style))
            style_targets.append({name: (grams[name], positions[name]) for name in settings.style_layers})
        return TiledObjective(networks, tiles_of(content), content_targets, style_targets, settings, style_guides)
    except BaseException:
        for network in networks:
            network.close()
        raise


class TiledObjective:
    """losses.objective's terms and their gradient with respect to the image, evaluated over `tiles` in two
    passes (module docstring): evaluate(image, gradient=True) -> (terms, gradient) for a preprocessed image
    [1, h, w, 3] (float32), terms as losses.objective's, float32; the gradient float32 [1, h, w, 3], as
    losses.UntiledObjective's. close() closes the networks.

    networks: the TileNetworks to run the tiles on (run_tiles); tile k goes to networks[k % len(networks)].
    After a call, `moved` holds the bytes fed to and fetched from the networks (docs/devices.md).
    content_targets: layer -> P^l over the whole image. style_targets: one dict per style image, layer ->
    (A^l, M_l of that style). settings: a stylize.Settings (the weights and layers). style_guides: None, or one
    dict per style, layer -> T^l over the whole image.
    """

    def __init__(self, networks, tiles, content_targets, style_targets, settings, style_guides=None):
        self.networks, self.tiles = list(networks), list(tiles)
        self.P, self.style_targets, self.style_guides = content_targets, style_targets, style_guides
        self.content_layer_weights, self.style_layer_weights = settings.content_weights(), settings.style_weights()
        self.blend, self.settings = settings.blend(len(style_targets)), settings
        self.shape = max(tile.own[2] for tile in self.tiles), max(tile.own[3] for tile in self.tiles)

    def evaluate(self, image, gradient=True):
        """(terms, gradient); with gradient=False, pass 1 only and (terms, None)."""
        grams, L_content = self._pass1(image)
        L_style, differences = self._style(grams)
        if gradient:
            gradient = self._pass2(image, differences)
            if self.settings.tv_weight:
                losses.add_total_variation_gradient(image, self.settings.tv_weight, gradient)
        else:
            gradient = None
        L_tv = losses.total_variation(image) if self.settings.tv_weight else 0.0
        # float32, as the untiled graph's: a term too large for it overflows the same way.
        terms = losses.total_loss(self.settings, L_content, L_style, L_tv)
        return {name: np.float32(value) for name, value in terms.items()}, gradient

    def close(self):
        for network in self.networks:
            network.close()

    def _guided(self):
        return self.style_guides is not None

    def _pass1(self, image):
        """The Grams (one per style layer, or one per guided style and layer) and L_content, tile by tile."""
        grams = [dict.fromkeys(self.style_layer_weights, 0.0) for _ in (self.style_guides or [None])]
        L_content = 0.0

        def request(network, tile):
            feed = network.feeds(_crop(image, tile), tile)
            if self._guided():
                gram_fetches = network.guided_grams
                for T, guides in zip(network.guides, self.style_guides):
                    for name in self.style_layer_weights:
                        feed[T[name]] = _positions(guides[name], tile, network.strides[name])[None, :, :, None]
            else:
                gram_fetches = [network.grams]
            return (network.features, gram_fetches), feed

        def consume(network, tile, result):
            nonlocal L_content
            features, tile_grams = result
            for name, w in self.content_layer_weights.items():
                P = _positions(self.P[name], tile, network.strides[name])
                L_content += w * losses.content_loss(features[name].astype(np.float64), P)
            for total, tile_gram in zip(grams, tile_grams):
                for name in total:
                    total[name] = total[name] + tile_gram[name].astype(np.float64)

        self.moved = run_tiles(self.networks, self.tiles, request, consume)
        return grams, L_content

    def _style(self, grams):
        """L_style from the whole image's Grams, and per Gram the constant D = c (G - A) of the pass-2
        surrogate, c = beta b_r w_l / (2 N^2 M^2), summed over the styles sharing an unguided Gram."""
        L_style = 0.0
        differences = [{} for _ in grams]
        for name, w in self.style_layer_weights.items():
            N = grams[0][name].shape[0]
            M = np.prod(vgg.layer_shape(*self.shape, self.networks[0].strides[name]))
            for r, (blend, targets) in enumerate(zip(self.blend, self.style_targets)):
                G = grams[r if self._guided() else 0][name]
                A, M_r = losses.style_target(*targets[name], M, self.style_guides[r][name] if self._guided() else None)
                L_style += blend * w * losses.style_layer_loss(G, A, N, M_r)
                slot = differences[r if self._guided() else 0]
                c = self.settings.style_weight * blend * w / (2.0 * N ** 2 * M_r ** 2)
                slot[name] = slot.get(name, 0.0) + c * (G - A)
        return L_style, differences

    def _pass2(self, image, differences):
        gradient = np.zeros_like(image)

        def request(network, tile):
            feed = network.feeds(_crop(image, tile), tile)
            for name in self.content_layer_weights:
                feed[network.P[name]] = _positions(self.P[name], tile, network.strides[name])
            for D, values in zip(network.D, differences):
                for name in self.style_layer_weights:
                    feed[D[name]] = values[name].astype(np.float32)
            if self._guided():
                for T, guides in zip(network.guides, self.style_guides):
                    for name in self.style_layer_weights:
                        feed[T[name]] = _positions(guides[name], tile, network.strides[name])[None, :, :, None]
            return network.gradient, feed

        def consume(network, tile, tile_gradient):
            top, left, bottom, right = tile.crop
            gradient[:, top:bottom, left:right, :] += tile_gradient

        self.moved += run_tiles(self.networks, self.tiles, request, consume)
        return gradient


# How much memory a run takes, and whether and how to tile it.

MEMORY_SHARE = 0.5  # the default budget: half the machine's RAM, leaving the rest to the system and other programs
# An upper bound of the peak RSS, not far above it, since it decides what fits: fitted on the peaks that
# docs/large-outputs.md gives (and benchmarks/memory_plot.py holds), untiled and in tiles, with L-BFGS and Adam.
UNTILED_BASE_BYTES = 1.7e9  # TensorFlow, the weights, the targets' and the objective's graphs
TILED_BASE_BYTES = 1.6e9  # TensorFlow, the weights, one graph for both passes and the targets
UNTILED_BYTES_PER_FLOAT = 5.5  # per activation float of the whole image: 3.4 KB a pixel up to relu5_1
# L-BFGS's worker thread: its float64 copies of the image and gradient, and glibc's allocator (docs/development.md,
# Measurement history)
LBFGS_WORKER_BYTES = 0.25e9
# Adam untiled: measured above L-BFGS's peak while its optimizer ran in the graph (docs/large-outputs.md); kept as
# an upper bound now that it runs on the host (tests/test_memory.py)
UNTILED_ADAM_BYTES = 0.35e9
TILED_BYTES_PER_FLOAT = 5.5  # per activation float of a tile's crop: 3.4 KB a pixel up to relu5_1


def default_memory():
    """MEMORY_SHARE of the machine's RAM, in GB."""
    return MEMORY_SHARE * os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1e9

@dataclass(frozen=True)
class Plan:
    """tile_size: None for an untiled run; peak: the estimated peak memory in bytes; budget: the limit it was
    planned for (None: none given)."""
    tile_size: object
    peak: float
    budget: object


def plan(shape, content_layers, style_layers, *, tile_size, max_memory, optimizer, lbfgs_history, devices=1):
    """Whether and how to tile a run whose output is `shape` (height, width) with these loss layers: the
    given tile_size; else untiled if the estimated peak fits in max_memory (bytes), else the largest tile that
    fits (the smallest, an alignment step, if none does); untiled when neither is given. With several devices
    and no tile_size, tiled so that each device has a tile (spread), in tiles no larger than would fit. A tile
    that would cover the whole image is no tiling: untiled computes the same in one pass instead of two (a
    --scales run's small stages under a --tile-size chosen for its last)."""
    height, width = shape
    if tile_size is not None and tile_size >= max(height, width):
        tile_size = None
    deepest = vgg.deepest(list(content_layers) + list(style_layers))
    if tile_size is None and devices > 1:
        fitting = plan(shape, content_layers, style_layers, tile_size=None, max_memory=max_memory,
                       optimizer=optimizer, lbfgs_history=lbfgs_history).tile_size
        tile_size = min(spread(shape, content_layers, style_layers, devices), fitting or math.inf)

    def peak(size):
        return estimate_peak(height, width, content_layers, style_layers, size, optimizer, lbfgs_history)

    if tile_size is not None or max_memory is None or peak(None) <= max_memory:
        return Plan(tile_size, peak(tile_size), max_memory)
    step = alignment(deepest)
    sizes = range(step * _ceil_div(max(height, width), step), 0, -step)
    size = next((size for size in sizes if peak(size) <= max_memory), step)
    return Plan(size, peak(size), max_memory)



def spread(shape, content_layers, style_layers, count):
    """The largest tile size (a multiple of the alignment) that cuts an image of `shape` (height, width) into
    at least `count` tiles, one for each of `count` devices; the smallest, one alignment step, if none does."""
    height, width = shape
    step = alignment(vgg.deepest(list(content_layers) + list(style_layers)))
    sizes = range(step * _ceil_div(max(height, width), step), 0, -step)
    return next((size for size in sizes if _ceil_div(height, size) * _ceil_div(width, size) >= count), step)


def activation_floats(deepest):
    """Floats per input pixel of the feature maps from the input up to `deepest` (each layer's channels over
    its stride squared): what a forward and backward pass keeps, about 610 up to relu5_1."""
    floats = 3
    for name, stride in vgg.strides(deepest).items():
        floats += vgg.channels(name) / stride ** 2
    return floats


def host_bytes_per_pixel(optimizer, lbfgs_history, content_floats):
    """Bytes per output pixel held on the host by a run: float32 RGB images (12 bytes a pixel: the content and
    style images, the iterate, its gradient, the best image and the one reported, the next iterate), the content
    targets, and the optimizer's state: Adam's two moments and its update; scipy's L-BFGS-B: 2 m + 5 float64
    vectors in its workspace, the iterate, gradient and bounds in float64, and 4 int32 per variable."""
    images = 8
    if optimizer == 'adam':
        return 12 * (images + 3) + 4 * content_floats
    return 12 * images + 4 * content_floats + 24 * (2 * lbfgs_history + 5 + 6) + 12 * 4


def estimate_peak(height, width, content_layers, style_layers, tile_size, optimizer, lbfgs_history):
    """The estimated peak memory of a run in bytes: the fixed part (TensorFlow, the weights and their graph),
    the network's feature maps for the whole image or for the largest tile's crop, and the host's images and
    optimizer state (host_bytes_per_pixel)."""
    deepest = vgg.deepest(list(content_layers) + list(style_layers))
    content_floats = sum(vgg.channels(name) / vgg.strides(deepest)[name] ** 2 for name in content_layers)
    pixels = height * width
    if tile_size is None:
        network = UNTILED_BYTES_PER_FLOAT * activation_floats(deepest) * pixels
        base = UNTILED_BASE_BYTES + (UNTILED_ADAM_BYTES if optimizer == 'adam' else 0.0)
    else:
        crop = max(tile.crop_pixels for tile in make_tiles(height, width, tile_size, deepest))
        network = TILED_BYTES_PER_FLOAT * activation_floats(deepest) * crop
        base = TILED_BASE_BYTES
    worker = LBFGS_WORKER_BYTES if optimizer == 'lbfgs' else 0.0
    return base + worker + network + host_bytes_per_pixel(optimizer, lbfgs_history, content_floats) * pixels
