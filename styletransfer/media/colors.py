"""Colour preservation of Gatys, Bethge, Hertzmann & Shechtman, "Preserving Color in Neural Artistic Style
Transfer" (arXiv 1606.05897): NumPy transforms of RGB images, float [height, width, 3] in 0..255, and the modes of
--preserve-colors built from them (what the network is shown, and the result as written).

- luminance: style transfer on the luminance channel only. The network sees the content's and the style's
  luminance (the style's shifted and scaled to the content's mean and standard deviation), each as a grey
  RGB image; the result's luminance is then joined to the content's colour channels in YIQ.
- histogram: the style image's colours are matched to the content's (mean and covariance of RGB) by a linear
  transform before the transfer.
- post: the result's luminance is joined to the content's colour channels after an ordinary transfer.
"""
import numpy as np

from styletransfer.media import images

PRESERVE_COLORS = ('luminance', 'histogram', 'post')

# NTSC YIQ, the colour space of the paper's luminance-only transfer. The Y row sums to 1 and the I and Q rows
# to 0, so a grey pixel (L, L, L) has luminance L and no chroma.
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                       [0.596, -0.274, -0.322],
                       [0.211, -0.523, 0.312]])
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)

# Added to both covariances so that a flat or grey image (a singular covariance) still has a transform. The
# authors' code (leongatys/NeuralImageSynthesis, match_color) adds 1e-5 to images in 0..1, i.e. 0.65 here, which
# biases the matched covariance by a few percent where the style's colours vary little; this is far below the
# variance of 8-bit rounding (1/12), so the match is exact to that.
COVARIANCE_EPSILON = 1e-3

PIXEL_RANGE = (0.0, 255.0)


def rgb_to_yiq(image):
    return np.asarray(image, np.float64) @ RGB_TO_YIQ.T


def yiq_to_rgb(yiq):
    return np.asarray(yiq, np.float64) @ YIQ_TO_RGB.T


def luminance(image):
    """Y of YIQ: [height, width]."""
    return rgb_to_yiq(image)[:, :, 0]


def grey(luminance_channel):
    """A luminance channel as the RGB image the network is shown: the channel in R, G and B."""
    return np.repeat(np.asarray(luminance_channel, np.float32)[:, :, None], 3, axis=2)


def luminance_image(image):
    """The image's luminance as a grey RGB image."""
    return grey(np.clip(luminance(image), *PIXEL_RANGE))


def match_luminance(style, content):
    """The style's luminance as a grey RGB image, with the content's luminance mean and standard deviation:
    L_S' = sigma_C / sigma_S (L_S - mu_S) + mu_C   (arXiv 1606.05897, luminance-only transfer)."""
    L_S, L_C = luminance(style), luminance(content)
    sigma_S = max(L_S.std(), 1e-6)  # a flat style keeps its (then constant) luminance at the content's mean
    return grey(np.clip(L_C.std() / sigma_S * (L_S - L_S.mean()) + L_C.mean(), *PIXEL_RANGE))


def _sqrtm(covariance):
    """The symmetric square root of a covariance matrix, and its inverse."""
    values, vectors = np.linalg.eigh(covariance)
    return (vectors * np.sqrt(values)) @ vectors.T, (vectors / np.sqrt(values)) @ vectors.T


def _mean_and_covariance(image):
    pixels = np.asarray(image, np.float64).reshape(-1, 3)
    mean = pixels.mean(axis=0)
    centred = pixels - mean
    return mean, centred.T @ centred / len(pixels) + COVARIANCE_EPSILON * np.eye(3)


def match_histogram(style, content):
    """The style image with the content's RGB mean and covariance: x' = A (x - mu_S) + mu_C with
    A Sigma_S A' = Sigma_C (arXiv 1606.05897, colour histogram matching). A = Sigma_C^1/2 Sigma_S^-1/2 with
    symmetric square roots: the paper's Image Analogies variant, which the authors' code uses. Clipped to
    0..255, which changes the statistics only where the transform leaves the range."""
    mu_S, sigma_S = _mean_and_covariance(style)
    mu_C, sigma_C = _mean_and_covariance(content)
    A = _sqrtm(sigma_C)[0] @ _sqrtm(sigma_S)[1]
    matched = (np.asarray(style, np.float64) - mu_S) @ A.T + mu_C
    return np.clip(matched, *PIXEL_RANGE).astype(np.float32)


def transfer_luminance(image, content):
    """The image's luminance with the content's chroma (I and Q of YIQ), as RGB. Before the clip to 0..255
    the chroma is the content's exactly; the clip changes it only for colours outside the RGB cube."""
    yiq = rgb_to_yiq(content)
    yiq[:, :, 0] = luminance(image)
    return np.clip(yiq_to_rgb(yiq), *PIXEL_RANGE).astype(np.float32)


# The modes of --preserve-colors: what the network is shown, and the result as written.

def styles_seen(mode, styles, photo):
    """The style images the network sees: matched to the photograph's colours (histogram) or luminance."""
    if mode == 'histogram':
        return [match_histogram(style, photo) for style in styles]
    if mode == 'luminance':
        return [match_luminance(style, photo) for style in styles]
    return styles


def content_seen(mode, image):
    """A content (or starting) image as the network sees it: its luminance, for luminance-only transfer."""
    return luminance_image(image) if mode == 'luminance' else image


def recoloured(mode, image, photo):
    """A result as written: its luminance on the photograph's colours (resized to it), for luminance and post."""
    if mode in ('luminance', 'post'):
        return transfer_luminance(image, images.resize(photo, *image.shape[:2]))
    return image
