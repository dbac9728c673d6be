"""3x3 convolutions by Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional
Neural Networks", CVPR 2016, sec. 4-5): each 4x4 block of outputs is A^T [U ⊙ (B^T d B)] A, summed over the input
channels, with d the block's 6x6 inputs and U = G g G^T the kernel g transformed once. That is 36 products per
block and pair of channels where direct summation takes 16 x 9 = 144: the same sums in exact arithmetic, in
float32 with a rounding error about ten times direct summation's (docs/performance.md, "Winograd").

The products are one batched matrix product over the 36 positions of a block, [blocks, in] x [in, out] each; the
transforms are matrix products too. The gradient is TensorFlow's of these operations."""
import numpy as np

# Lavin & Gray's F(4x4, 3x3), from the interpolation points 0, 1, -1, 2, -2 and infinity.
B_T = np.array([[4, 0, -5, 0, 1, 0],
                [0, -4, -4, 1, 1, 0],
                [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0],
                [0, 2, -1, -2, 1, 0],
                [0, 4, 0, -5, 0, 1]], np.float64)
G = np.array([[1 / 4, 0, 0],
              [-1 / 6, -1 / 6, -1 / 6],
              [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6],
              [1 / 24, -1 / 12, 1 / 6],
              [0, 0, 1]], np.float64)
A_T = np.array([[1, 1, 1, 1, 1, 0],
                [0, 1, -1, 2, -2, 0],
                [0, 1, 1, 4, 4, 0],
                [0, 1, -1, 8, -8, 1]], np.float64)
OUT, IN = 4, 6  # a block's outputs and inputs per side


def transformed_kernel(kernel):
    """U = G g G^T of a [3, 3, in, out] kernel g for each pair of channels, in float64, as float32
    [36, in, out]: the 6x6 positions of a block row by row."""
    u = np.tensordot(G, np.tensordot(G, np.asarray(kernel, np.float64), axes=(1, 1)), axes=(1, 1))
    return u.reshape(IN * IN, *np.shape(kernel)[2:]).astype(np.float32)


def conv3x3(x, u, padding):
    """The 3x3 convolution with stride 1 of x [1, height, width, in] (float32) by the kernel whose
    transformed_kernel is the tensor u [36, in, out], with TensorFlow's SAME or VALID padding."""
    import tensorflow.compat.v1 as tf

    channels_in, channels_out = int(x.shape[3]), int(u.shape[2])
    if padding == 'SAME':
        x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    height, width = tf.shape(x)[1] - 2, tf.shape(x)[2] - 2  # the output's
    rows, columns = (height + OUT - 1) // OUT, (width + OUT - 1) // OUT  # blocks
    blocks = rows * columns
    # The last blocks reach past the input: zeros there, and their outputs past the edge cut off.
    x = tf.pad(x, [[0, 0], [0, OUT * rows - height], [0, OUT * columns - width], [0, 0]])
    d = tf.image.extract_patches(x, [1, IN, IN, 1], [1, OUT, OUT, 1], [1, 1, 1, 1], 'VALID')
    d = tf.transpose(tf.reshape(d, [blocks, IN * IN, channels_in]), [1, 0, 2])  # [36, blocks, in]
    # B^T d B of every block and channel at once: with d's 6x6 row by row, the Kronecker product B^T (x) B^T
    v = tf.matmul(tf.constant(np.kron(B_T, B_T), tf.float32), tf.reshape(d, [IN * IN, -1]))
    m = tf.matmul(tf.reshape(v, [IN * IN, blocks, channels_in]), u)  # [36, blocks, out]: summed over the inputs
    y = tf.matmul(tf.constant(np.kron(A_T, A_T), tf.float32), tf.reshape(m, [IN * IN, -1]))  # A^T m A: [16, ...]
    y = tf.transpose(tf.reshape(y, [OUT * OUT, rows, columns, channels_out]), [1, 2, 0, 3])
    y = tf.nn.depth_to_space(tf.reshape(y, [1, rows, columns, OUT * OUT * channels_out]), OUT)
    return y[:, :height, :width, :]
