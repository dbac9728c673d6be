"""The paper's equations as functions of tensors or arrays, the layers' features and Grams, and the untiled
objective (eq. 7).

Notation of the paper (arXiv 1508.06576 eqs. 1-7; CVPR 2016 sec. 2). For a layer l with N_l channels and
M_l positions (height x width):
    F^l  the feature map of the image being generated, P^l that of the content image
    G^l = F^l' F^l, the Gram matrix of the generated image, A^l that of the style image

    L_content = 1/2 sum_ij (F^l_ij - P^l_ij)^2                          (eq. 1)
    E_l       = 1/(4 N_l^2 M_l^2) sum_ij (G^l_ij - A^l_ij)^2             (eq. 4)
    L_style   = sum_l w_l E_l                                            (eq. 5)
    L_total   = alpha L_content + beta L_style (+ gamma L_tv, not in the paper, gamma 3 by default)   (eq. 7)

Video (Ruder, Dosovitskiy & Brox, GCPR 2016 / IJCV 2018): a frame x adds gamma_t times the temporal loss
    L_temporal = 1/D sum_k c_k (x_k - w_k)^2
over the D = height x width x 3 values, w the previous stylized frame warped onto this one and c the per-pixel
consistency weights; several (w, c) pairs (long-term consistency) add up.

Spatial control (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer"): with a
guide T^l_r (a mask over the output, downsampled to layer l) for the region r a style image governs, the output's
Gram is the guided one, G^l_r = (T^l_r o F^l)' (T^l_r o F^l), compared per guided position with A^l.
"""
import numpy as np

import vgg
from styletransfer.compute import devices


# The loss terms, each a pure function of tensors (in a graph) or arrays (tiling.py's host sums).

def sum_of_squares(x):
    """sum x^2 of a tensor, or of an array in float64, an image [1, h, w, c] in bands of 256 rows: its float64
    squares at once would take twice its size, and the image may be large."""
    if isinstance(x, np.ndarray):
        bands = np.array_split(x, max(1, x.shape[1] // 256), axis=1) if x.ndim == 4 else [x]
        return sum(float(np.sum(np.square(band, dtype=np.float64))) for band in bands)
    import tensorflow.compat.v1 as tf
    return tf.reduce_sum(tf.square(x))


def content_loss(F, P):
    """L_content = 1/2 sum_ij (F_ij - P_ij)^2   (eq. 1)."""
    return 0.5 * sum_of_squares(F - P)


def gram_matrix(features):
    """G = F' F for a [1, height, width, N] feature map: the N x N inner products over its M positions (eq. 3).

    Its gradient is dL/dF = F (dL/dG + dL/dG'), one M x N x N product, where TensorFlow's gradient of a product
    computes F dL/dG' and F dL/dG and adds them: the same sum, for half the work (what that saves:
    docs/performance.md)."""
    import tensorflow.compat.v1 as tf
    F = tf.reshape(features, [-1, features.shape[-1]])  # M x N
    _register_gram_gradient()
    with tf.get_default_graph().gradient_override_map({'MatMul': GRAM_GRADIENT}):
        return tf.matmul(F, F, transpose_a=True)


GRAM_GRADIENT = 'NeuralStyleGramGradient'  # the gradient override's name in TensorFlow


def _register_gram_gradient():
    """Registers gram_matrix's gradient with TensorFlow, once per process (as vgg.py's convolution gradient)."""
    import tensorflow.compat.v1 as tf

    def gram_gradient(op, dG):
        F = op.inputs[0]  # both inputs are F: its whole gradient goes to the first, none to the second
        return tf.matmul(F, dG + tf.transpose(dG)), None

    try:
        tf.RegisterGradient(GRAM_GRADIENT)(gram_gradient)
    except KeyError:  # TensorFlow's registry refuses a name twice: registered already in this process
        pass


def style_layer_loss(G, A, N, M):
    """E_l = 1/(4 N_l^2 M_l^2) sum_ij (G_ij - A_ij)^2   (eq. 4)."""
    return sum_of_squares(G - A) / (4.0 * N ** 2 * M ** 2)


def guided_gram_matrix(features, guide):
    """G_r = (T_r o F)' (T_r o F): the Gram of a [1, height, width, N] feature map weighted by a guide
    [1, height, width, 1] at each position (Gatys et al. 2017, guided Gram matrices)."""
    return gram_matrix(features * guide)


def temporal_loss(x, w, c):
    """L_temporal = 1/D sum_k c_k (x_k - w_k)^2: x and w [1, h, w, 3], c [1, h, w, 1] (Ruder et al. 2016)."""
    import tensorflow.compat.v1 as tf
    D = int(np.prod(x.shape[1:]))
    return tf.reduce_sum(c * tf.square(x - w)) / D


def total_variation(image):
    """sum of squared differences between horizontally and vertically neighbouring pixels (not in the paper)."""
    return (sum_of_squares(image[:, 1:, :, :] - image[:, :-1, :, :]) +
            sum_of_squares(image[:, :, 1:, :] - image[:, :, :-1, :]))


def add_total_variation_gradient(image, weight, gradient):
    """Adds `weight` times the gradient of total_variation at an image array [1, h, w, 3] to `gradient`, where
    there is no automatic differentiation (tiling.py): 2 d at the pixel ahead of each difference d, -2 d at the
    one behind. Float32, one difference image at a time: the image may be large."""
    for axis in (1, 2):
        difference = np.diff(image, axis=axis)
        difference *= np.float32(2 * weight)
        ahead = [slice(None)] * 4
        ahead[axis] = slice(1, None)
        gradient[tuple(ahead)] += difference
        ahead[axis] = slice(None, -1)
        gradient[tuple(ahead)] -= difference


def total_loss(settings, L_content, L_style, L_tv):
    """The weighted terms of eq. 7 and their total, L_total = alpha L_content + beta L_style + gamma L_tv."""
    terms = {'content': settings.content_weight * L_content,
             'style': settings.style_weight * L_style,
             'tv': settings.tv_weight * L_tv}
    terms['total'] = terms['content'] + terms['style'] + terms['tv']
    return terms


def style_target(A, M_style, M, guide=None):
    """A style image's Gram A^l compared per position with the output's: (A^l M_r / M_style, M_r), M_r the
    output's count of positions M_l, or with a guide T^l the guided count sum T^2 (as the authors' code
    normalizes its guides). When the style's size is the output's, A^l itself: the paper's E_l."""
    M_r = M if guide is None else np.sum(guide ** 2)
    return np.asarray(A, np.float64) * (M_r / M_style), M_r


# Spatial guides

def layer_guides(mask, layers):
    """A mask [height, width] over the image, downsampled to each layer's resolution as the network pools it
    (2x2 averages with stride 2, a border window of an odd size averaging the pixels inside): layer -> guide."""
    guides, guide = {}, np.asarray(mask, np.float64)
    for name in vgg.layers_up_to(vgg.deepest(layers)):
        if name.startswith('pool'):
            height, width = guide.shape
            rows, columns = np.arange(0, height, 2), np.arange(0, width, 2)
            sums = np.add.reduceat(np.add.reduceat(guide, rows, axis=0), columns, axis=1)
            counts = np.outer(np.minimum(2, height - rows), np.minimum(2, width - columns))
            guide = sums / counts
        if name in layers:
            guides[name] = guide
    return guides


# The targets and the objective

def layer_features(net, images, content_layers, style_layers, pooling, padding, device, dtype='float32',
                   placement=None):
    """For each image, its features at `content_layers` (P^l, for the content image) and its Gram matrices at
    `style_layers` (A^l, for a style image).

    Returns a list of (features, grams, positions) per image: dicts by layer of NumPy arrays, and M_l of each
    style layer. All images go through one graph (with one set of fetches, so TensorFlow prepares it once), in
    a graph of its own that is freed afterwards: the optimization graph holds only constants.
    """
    import tensorflow.compat.v1 as tf

    graph = tf.Graph()
    with graph.as_default(), tf.device(device):
        x = tf.placeholder(tf.float32, [1, None, None, 3])
        layers = vgg.build_network(net, x, vgg.deepest(list(content_layers) + list(style_layers)), pooling, dtype,
                                   padding)
        layers = {name: tf.cast(layers[name], tf.float32) for name in list(content_layers) + list(style_layers)}
        fetches = ({name: layers[name] for name in content_layers},
                   {name: gram_matrix(layers[name]) for name in style_layers},
                   {name: tf.shape(layers[name])[1] * tf.shape(layers[name])[2] for name in style_layers})
    with devices.opened(graph, placement) as session:
        return [session.run(fetches, {x: vgg.preprocess(np.asarray(image, np.float32), net.mean_pixel)[None]})
                for image in images]


def objective(net, image, content_targets, style_targets, settings, *, dtype='float32', style_guides=None,
              temporal_targets=None, convolutions='tensorflow'):
    """The weighted loss terms of eq. 7 for the image tensor `image` ([1, h, w, 3], preprocessed).

    settings: a stylize.Settings (the weights alpha, beta, gamma, gamma_t, the layers and their weights w_l,
    the pooling and padding). content_targets: layer -> P^l. style_targets: one dict per style image, layer -> (A^l, M_l of
    that style); their style losses are summed with the settings' blend weights, normalized to sum 1.
    When a style image's size differs from the output's, Grams are compared per position (style_target).
    style_guides: None, or one dict per style image, layer -> T^l [h_l, w_l]: that style's loss then uses the
    guided Gram G^l_r; a guide of ones is the unguided loss.
    temporal_targets: None, or (w, c) pairs, w [1, h, w, 3] preprocessed and c [h, w]: adds the term
    'temporal', gamma_t times the sum of their L_temporal. convolutions: vgg.build_network's.
    """
    import tensorflow.compat.v1 as tf

    content_weights, style_weights = settings.content_weights(), settings.style_weights()
    layers = vgg.build_network(net, image, vgg.deepest(list(content_weights) + list(style_weights)),
                               settings.pooling, dtype, settings.padding, convolutions)
    layers = {name: tf.cast(layers[name], tf.float32) for name in list(content_weights) + list(style_weights)}
    L_content = tf.add_n([float(w) * content_loss(layers[name], tf.constant(content_targets[name]))
                          for name, w in content_weights.items()])
    L_style = 0.0
    for name, w in style_weights.items():
        F = layers[name]
        N, M = int(F.shape[3]), int(F.shape[1]) * int(F.shape[2])
        G = gram_matrix(F)
        for blend, targets, guides in zip(settings.blend(len(style_targets)), style_targets,
                                          style_guides or [None] * len(style_targets)):
            guide = None if guides is None else guides[name]
            G_r = G if guide is None else guided_gram_matrix(F, tf.constant(guide[None, :, :, None].astype(np.float32)))
            A, M_r = style_target(*targets[name], M, guide)
            L_style += float(blend * w) * style_layer_loss(G_r, tf.constant(A.astype(np.float32)), N, M_r)
    terms = total_loss(settings, L_content, L_style, total_variation(image))
    if temporal_targets:
        terms['temporal'] = settings.temporal_weight * tf.add_n(
            [temporal_loss(image, tf.constant(np.asarray(w, np.float32)),
                           tf.constant(np.asarray(c, np.float32)[None, :, :, None])) for w, c in temporal_targets])
        terms['total'] += terms['temporal']
    return terms


class UntiledObjective:
    """The objective in one graph on the placement's first device, the targets computed once (layer_features)
    and held as constants: evaluate(image, gradient=True) -> (terms, gradient) for a preprocessed image
    [1, h, w, 3] (float32), terms as objective's (float32), the gradient float32 [1, h, w, 3] (None with
    gradient=False), as tiling.TiledObjective's. close() closes its session.

    content, styles: RGB 0..255; style_guides as objective's; temporal_targets: None or (w, c) pairs, w RGB
    0..255 of the content's size, c [h, w]. placement: a devices.Placement; dtype: the convolutions'.
    """

    def __init__(self, net, content, styles, settings, *, style_guides=None, temporal_targets=None, placement,
                 dtype='float32'):
        import tensorflow.compat.v1 as tf

        device = placement.devices[0]
        targets = layer_features(net, [content] + list(styles), settings.content_layers, settings.style_layers,
                                 settings.pooling, settings.padding, device, dtype, placement)
        style_targets = [{name: (grams[name], positions[name]) for name in settings.style_layers}
                         for _, grams, positions in targets[1:]]
        temporal_targets = [(vgg.preprocess(np.asarray(w, np.float32), net.mean_pixel)[None], np.asarray(c))
                            for w, c in temporal_targets or []]
        graph = tf.Graph()
        with graph.as_default(), tf.device(device):
            self.image = tf.placeholder(tf.float32, (1,) + np.shape(content))
            self.terms = objective(net, self.image, targets[0][0], style_targets, settings, dtype=dtype,
                                   style_guides=style_guides, temporal_targets=temporal_targets,
                                   convolutions=devices.convolutions(device, dtype, settings.convolutions))
            self.gradient = tf.gradients(self.terms['total'], self.image)[0]
        self.session, self.placement = devices.session(graph, placement), placement
        vgg.initialize(self.session)

    def evaluate(self, image, gradient=True):
        if gradient:
            return self.session.run((self.terms, self.gradient), {self.image: image})
        return self.session.run(self.terms, {self.image: image}), None

    def close(self):
        devices.close(self.session, self.placement)
