"""Optical flow between video frames, warping by a flow, and the flow's consistency weights (Ruder et al.).

A flow w of frame a towards frame b is an array [height, width, 2] of (dx, dy) in pixels: the point p of a is
seen at p + w(p) in b. Warping b by w brings b onto a's grid: warp(b, w)(p) = b(p + w(p)).
"""
import numpy as np

FLOW_METHODS = ('dis', 'farneback')
FLOW_METHOD = 'dis'  # OpenCV's DIS (Kroeger et al. 2016): fast and accurate enough on a CPU; the paper used DeepFlow
DIS_MIN_SIDE = 12  # OpenCV's DIS refuses smaller frames
DIS_REFINEMENT_ITERATIONS = 25  # the medium preset's 5 were too few in flat regions (see optical_flow)
# The consistency checker of Ruder, Dosovitskiy & Brox (GCPR 2016 eqs. for c; consistencyChecker.cpp):
FORWARD_BACKWARD_RELATIVE = 0.01  # |w~ + w^|^2 > 0.01 (|w~|^2 + |w^|^2) + 0.5: forward and backward disagree
FORWARD_BACKWARD_ABSOLUTE = 0.5
MOTION_BOUNDARY_RELATIVE = 0.01  # |grad u^|^2 + |grad v^|^2 > 0.01 |w^|^2 + 0.002: a motion boundary
MOTION_BOUNDARY_ABSOLUTE = 0.002
SMOOTHING_SIGMA = 0.8  # consistencyChecker.cpp: the weights are then blurred by a Gaussian of this sigma ...
SMOOTHING_RADIUS = 2  # ... truncated at ceil(2 sigma) pixels (CSmooth(0.8, 2.0))


def _grey(image):
    """RGB 0..255 to 8-bit luma, what OpenCV's flow methods take."""
    weights = np.array([0.299, 0.587, 0.114])
    return np.clip(np.rint(np.asarray(image, np.float64) @ weights), 0, 255).astype(np.uint8)


def optical_flow(a, b, method=FLOW_METHOD):
    """The flow of RGB frame a towards frame b (see the module's docstring), float32 [height, width, 2]."""
    import cv2

    if method not in FLOW_METHODS:
        raise ValueError(f'unknown flow method {method!r}; choose one of {", ".join(FLOW_METHODS)}')
    a, b = _grey(a), _grey(b)
    if method == 'dis':
        if min(a.shape) < DIS_MIN_SIDE:
            raise ValueError(f'DIS optical flow needs frames of at least {DIS_MIN_SIDE}x{DIS_MIN_SIDE} pixels')
        # The medium preset: on a translated texture of sinusoids (the tests') it erred by at most 0.06 px,
        # 'fast' by 0.16 and 'ultrafast' by 0.40. More variational refinement than its 5 iterations: in the
        # flat sky of the benchmark's clip 5 left the flow 1.2 px off, the two directions disagreed and the
        # consistency weights were 0 over the whole sky; 25 brought it to 0.7 px and the weights to 1.
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        dis.setVariationalRefinementIterations(DIS_REFINEMENT_ITERATIONS)
        return dis.calc(a, b, None)
    # OpenCV's documented example parameters for Farneback's polynomial expansion.
    return cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=3, winsize=15, iterations=3,
                                        poly_n=5, poly_sigma=1.2, flags=0)


def _bilinear(image, x, y):
    """image [height, width, channels] sampled at the points (x, y), all inside [0, width-1] x [0, height-1]."""
    height, width = image.shape[:2]
    x0 = np.minimum(np.floor(x).astype(np.int64), width - 2) if width > 1 else np.zeros(x.shape, np.int64)
    y0 = np.minimum(np.floor(y).astype(np.int64), height - 2) if height > 1 else np.zeros(y.shape, np.int64)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    top = (1 - fx) * image[y0, x0] + fx * image[y0, x1]
    bottom = (1 - fx) * image[y1, x0] + fx * image[y1, x1]
    return (1 - fy) * top + fy * bottom


def _cubic(image, x, y):
    """image [height, width, channels] sampled at the points (x, y), all inside the image, by interpolating
    cubic B-splines (borders continued by their nearest pixel)."""
    from scipy.ndimage import map_coordinates

    return np.stack([map_coordinates(image[:, :, k], [y, x], order=3, mode='nearest')
                     for k in range(image.shape[2])], axis=2)


INTERPOLATIONS = {'bilinear': _bilinear, 'cubic': _cubic}


def warp(image, flow, interpolation='bilinear'):
    """image [height, width, channels] (or [height, width]) brought onto the grid of the flow's frame:
    image(p + flow(p)), interpolated bilinearly or by cubic B-splines ('cubic': sharper, see video.py).
    Returns (warped, inside): inside is True where p + flow(p) lies within the image; elsewhere the warped
    pixel is the image's nearest border pixel."""
    image = np.asarray(image, np.float64)
    flat = image.ndim == 2
    if flat:
        image = image[:, :, None]
    height, width = image.shape[:2]
    rows, columns = np.mgrid[0:height, 0:width]
    x, y = columns + flow[:, :, 0].astype(np.float64), rows + flow[:, :, 1].astype(np.float64)
    inside = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
    warped = INTERPOLATIONS[interpolation](image, np.clip(x, 0, width - 1), np.clip(y, 0, height - 1))
    return (warped[:, :, 0] if flat else warped), inside


def _gaussian_smoothing(weights):
    """The consistency checker's Gaussian blur (sigma 0.8, radius 2, normalized), borders mirrored."""
    from scipy.ndimage import correlate1d

    taps = np.exp(-np.arange(-SMOOTHING_RADIUS, SMOOTHING_RADIUS + 1) ** 2 / (2 * SMOOTHING_SIGMA ** 2))
    taps /= taps.sum()
    return correlate1d(correlate1d(weights, taps, axis=0, mode='mirror'), taps, axis=1, mode='mirror')


def consistency(backward, forward):
    """The per-pixel weights c in 0..1 of the temporal loss, on the grid of the frame the flow `backward`
    starts from (frame i, `backward` pointing to an earlier or later frame j, `forward` from j back to i).

    c is 0 where the two flows disagree (w^ = backward at p, w~ = forward at p + w^: a disocclusion),
    where p + w^ leaves frame j, and at motion boundaries of w^; 1 elsewhere; then blurred, with the
    disagreeing pixels counted as -1 so that the zeros spread outwards (as the authors' checker does)."""
    height, width = backward.shape[:2]
    backward, forward = np.asarray(backward, np.float64), np.asarray(forward, np.float64)
    # The authors' checker also drops the last row and column (it needs floor(x) + 1 < width); here a point
    # is inside where bilinear sampling is defined, 0 <= x <= width - 1, as in warp.
    forward_there, inside = warp(forward, backward)
    disagree = (np.sum((backward + forward_there) ** 2, axis=2) >=
                FORWARD_BACKWARD_RELATIVE * (np.sum(backward ** 2, axis=2) + np.sum(forward_there ** 2, axis=2))
                + FORWARD_BACKWARD_ABSOLUTE)
    gradient = [np.gradient(backward[:, :, k], axis=axis) if backward.shape[axis] > 1 else np.zeros((height, width))
                for k in (0, 1) for axis in (0, 1)]  # central differences (-1/2, 0, 1/2), one-sided at borders
    boundary = sum(g ** 2 for g in gradient) > (MOTION_BOUNDARY_RELATIVE * np.sum(backward ** 2, axis=2)
                                                 + MOTION_BOUNDARY_ABSOLUTE)
    weights = np.ones((height, width))
    weights[boundary] = 0.0
    weights[disagree] = -1.0
    weights[~inside] = 0.0
    return np.clip(_gaussian_smoothing(weights), 0.0, 1.0).astype(np.float32)


def long_term_weights(weights):
    """c_long for previous frames sorted closest first (Ruder et al. eq. for long-term consistency):
    c_long_j = max(c_j - sum of c_k over the closer frames k, 0), so each pixel is tied to the closest
    previous frame in which it was visible."""
    result, closer = [], np.zeros_like(np.asarray(weights[0], np.float64))
    for c in weights:
        c = np.asarray(c, np.float64)
        result.append(np.maximum(c - closer, 0.0).astype(np.float32))
        closer = closer + c
    return result
