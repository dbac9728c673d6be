"""The optimizers, each over any objective: L-BFGS-B (the paper's) and Adam, on the host.

An objective's evaluate(image [1, h, w, 3] float32, gradient=True) -> (terms, gradient): the loss terms (a dict
with 'total') and their gradient (float32, the image's shape; None with gradient=False), as
losses.UntiledObjective and tiling.TiledObjective give them. It raises rather than return a value that is not
finite: L-BFGS would carry on with a NaN silently.

Each optimizer is a generator of events: ('evaluation', terms, image) for every evaluation, and
('iteration', k) after k steps (0: the start).
"""
import queue
import threading

import numpy as np


def adam(evaluate, x0, lower, upper, iterations, learning_rate, beta1, beta2, epsilon):
    """Adam (Kingma & Ba 2015) as TensorFlow's AdamOptimizer computes it: its ApplyAdam kernel, in float32 in
    its order of operations (the same iterates, bit for bit), each step then clipped to the bounds (lower and
    upper broadcast to the image), as L-BFGS's are."""
    x = x0
    del x0  # the first iterate is kept only while it is the best
    one, beta1, beta2 = np.float32(1), np.float32(beta1), np.float32(beta2)
    learning_rate, epsilon = np.float32(learning_rate), np.float32(epsilon)
    m, v = np.zeros_like(x), np.zeros_like(x)
    beta1_power, beta2_power = beta1, beta2  # TensorFlow's variables: beta^t by products, in float32
    for iteration in range(iterations):
        values, gradient = evaluate(x)
        yield 'evaluation', values, x
        alpha = learning_rate * np.sqrt(one - beta2_power) / (one - beta1_power)
        m += (gradient - m) * (one - beta1)
        gradient *= gradient
        v += (gradient - v) * (one - beta2)
        step = np.multiply(m, alpha, out=gradient)  # in place: the image may be large
        update = np.sqrt(v)
        update += epsilon
        np.divide(step, update, out=update)
        del gradient, step
        x = np.subtract(x, update, out=update)  # a new array: the last iterate may be kept as the best
        del update
        np.clip(x, lower, upper, out=x)
        beta1_power, beta2_power = beta1_power * beta1, beta2_power * beta2
        yield 'iteration', iteration
    values, _ = evaluate(x, gradient=False)
    yield 'evaluation', values, x
    yield 'iteration', iterations


LBFGS_THREAD = 'L-BFGS worker'


class _StopRequested(Exception):
    """Raised in L-BFGS's worker thread to end scipy's loop when the consumer has stopped."""


def lbfgs(evaluate, x0, lower, upper, iterations, history, *, wait=None):
    """L-BFGS-B over the pixels, one state for the whole run, each pixel bounded to lower..upper (broadcast to
    the image); history: the number of stored corrections.

    scipy drives the loop, so it runs in a worker thread and reports through a queue; closing this generator
    (an interrupt, say) stops the worker at its next evaluation, waited for `wait` seconds (None: until it
    ends; on a cluster, where an evaluation may never end, it is left to end when the session closes).
    """
    import scipy.optimize

    events, stop = queue.Queue(), threading.Event()
    last = {'iteration': 0}

    def evaluate_flat(x):
        if stop.is_set():
            raise _StopRequested
        pixels = x.reshape(x0.shape).astype(np.float32)
        values, gradient = evaluate(pixels)
        last['x'] = x.copy()
        events.put(('evaluation', values, pixels))
        if 'started' not in last:
            last['started'] = True
            events.put(('iteration', 0))
        return float(values['total']), gradient.ravel().astype(np.float64)

    def callback(intermediate_result):
        if not np.array_equal(intermediate_result.x, last['x']):  # report the iterate's own losses
            evaluate_flat(intermediate_result.x)
        last['iteration'] += 1
        events.put(('iteration', last['iteration']))

    def work():
        try:
            scipy.optimize.minimize(
                evaluate_flat, x0.ravel().astype(np.float64), jac=True, method='L-BFGS-B',
                bounds=scipy.optimize.Bounds(np.broadcast_to(lower, x0.shape).ravel(),
                                             np.broadcast_to(upper, x0.shape).ravel()), callback=callback,
                # Only --iterations ends the run (or a line search that can make no progress).
                options=dict(maxiter=iterations, maxcor=history, maxfun=2 ** 31 - 1, ftol=0.0, gtol=0.0))
        except _StopRequested:
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
        worker.join(wait)
