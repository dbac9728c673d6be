"""An independent NumPy (float64) implementation of VGG-19 and the paper's losses, written from the
definitions rather than from the code under test: loops over kernel offsets, explicit pooling windows."""
import numpy as np

ORDER = ('conv1_1', 'conv1_2', 'pool1', 'conv2_1', 'conv2_2', 'pool2', 'conv3_1', 'conv3_2', 'conv3_3', 'conv3_4',
         'pool3', 'conv4_1', 'conv4_2', 'conv4_3', 'conv4_4', 'pool4', 'conv5_1', 'conv5_2', 'conv5_3', 'conv5_4')


def conv3x3(x, W_stored, b, padding='zero'):
    """x [h, w, in]; W_stored as MatConvNet stores it, [width, height, in, out]; padding of 1: zeros, or
    'reflect', the row and column next to the border mirrored over it."""
    h, w, _ = x.shape
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode='constant' if padding == 'zero' else 'reflect')
    out = np.zeros((h, w, W_stored.shape[3]))
    for dy in range(3):
        for dx in range(3):
            out += padded[dy:dy + h, dx:dx + w, :] @ W_stored[dx, dy].astype(np.float64)
    return out + b.reshape(-1)


def pool2x2(x, method):
    """2x2 windows with stride 2; a window at an odd border holds the pixels inside the image only."""
    h, w, c = x.shape
    out = np.zeros(((h + 1) // 2, (w + 1) // 2, c))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            window = x[2 * i:2 * i + 2, 2 * j:2 * j + 2, :].reshape(-1, c)
            out[i, j] = window.mean(axis=0) if method == 'avg' else window.max(axis=0)
    return out


def features(weights, mean_pixel, image, pooling='avg', padding='zero'):
    """All layers' outputs for an RGB 0..255 image [h, w, 3]: name -> [h_l, w_l, N_l]."""
    x = np.asarray(image, np.float64) - np.asarray(mean_pixel, np.float64)
    out = {}
    for name in ORDER:
        if name.startswith('conv'):
            x = conv3x3(x, *weights[name], padding)
            out[name] = x
            x = np.maximum(x, 0)
            out[name.replace('conv', 'relu')] = x
        else:
            x = pool2x2(x, pooling)
            out[name] = x
    return out


def content_loss(F, P):
    return 0.5 * np.sum((F - P) ** 2)


def gram(F):
    """G_ij = sum over positions k of F_ik F_jk, for channels i, j."""
    flat = F.reshape(-1, F.shape[-1])
    return np.einsum('ki,kj->ij', flat, flat)


def style_layer_loss(F, A, M_style):
    N = F.shape[-1]
    M = F.shape[0] * F.shape[1]
    A = A * M / M_style
    return np.sum((gram(F) - A) ** 2) / (4 * N ** 2 * M ** 2)


def total_variation(image):
    return np.sum(np.diff(image, axis=0) ** 2) + np.sum(np.diff(image, axis=1) ** 2)
