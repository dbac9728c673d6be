"""The optimizers over small objectives: Adam bit for bit against TensorFlow's AdamOptimizer (and that the
comparison sees one operation reordered), L-BFGS-B against scipy's own run, and their events."""
import threading

import numpy as np
import pytest
import scipy.optimize

from styletransfer.method import optimizers

ADAM = dict(learning_rate=2.0, beta1=0.9, beta2=0.999, epsilon=1e-8)
STEPS = 6


def gradients(shape, seed=0):
    """Random gradients, one per step, large and small, as a run's are."""
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=shape) * 10.0 ** rng.uniform(-3, 3, size=shape)).astype(np.float32)
            for _ in range(STEPS)]


def start_and_bounds(shape):
    x0 = np.random.default_rng(1).normal(0, 20, size=shape).astype(np.float32)
    lower = np.array([-30.0, -25.0, -20.0], np.float32).reshape(1, 1, 1, 3)
    return x0, lower, lower + np.float32(50)


def tensorflow_iterates(shape):
    """The iterates of tf.train.AdamOptimizer fed `gradients`, each step then clipped to the bounds: the graph
    of stylize's in-graph Adam of version 1.1."""
    import tensorflow.compat.v1 as tf
    x0, lower, upper = start_and_bounds(shape)
    graph = tf.Graph()
    with graph.as_default():
        variable = tf.Variable(x0)
        gradient = tf.placeholder(tf.float32, shape)
        train = tf.train.AdamOptimizer(ADAM['learning_rate'], ADAM['beta1'], ADAM['beta2'],
                                       ADAM['epsilon']).apply_gradients([(gradient, variable)])
        with tf.control_dependencies([train]):
            step = variable.assign(tf.clip_by_value(variable.read_value(), np.broadcast_to(lower, shape),
                                                    np.broadcast_to(upper, shape)))
        init = tf.global_variables_initializer()
    with tf.Session(graph=graph) as session:
        session.run(init)
        return [x0] + [session.run(step, {gradient: g}) for g in gradients(shape)]


def host_iterates(adam, shape):
    """The images `adam` evaluates, fed `gradients`."""
    x0, lower, upper = start_and_bounds(shape)
    fed = iter(gradients(shape))

    def evaluate(image, gradient=True):
        return {'total': np.float32(0)}, next(fed).copy() if gradient else None

    return [x.copy() for kind, *data in adam(evaluate, x0, lower, upper, STEPS, **ADAM) if kind == 'evaluation'
            for _, x in [data]]


def reordered_adam(evaluate, x0, lower, upper, iterations, learning_rate, beta1, beta2, epsilon):
    """optimizers.adam with one operation reordered: m / (sqrt(v) + epsilon) * alpha for TensorFlow's
    m * alpha / (sqrt(v) + epsilon)."""
    x, m, v = x0, np.zeros_like(x0), np.zeros_like(x0)
    one, beta1, beta2 = np.float32(1), np.float32(beta1), np.float32(beta2)
    beta1_power, beta2_power = beta1, beta2
    for _ in range(iterations):
        _, gradient = evaluate(x)
        yield 'evaluation', None, x
        alpha = np.float32(learning_rate) * np.sqrt(one - beta2_power) / (one - beta1_power)
        m += (gradient - m) * (one - beta1)
        v += (gradient * gradient - v) * (one - beta2)
        x = np.clip(x - m / (np.sqrt(v) + np.float32(epsilon)) * alpha, lower, upper)
        beta1_power, beta2_power = beta1_power * beta1, beta2_power * beta2
    yield 'evaluation', None, x


# 189 values: TensorFlow's kernel goes value by value; 192: in SIMD packets.
@pytest.mark.parametrize('shape', [(1, 7, 9, 3), (1, 8, 8, 3)])
def test_adam_is_tensorflows_adam_bit_for_bit(shape):
    expected, iterates = tensorflow_iterates(shape), host_iterates(optimizers.adam, shape)
    assert len(iterates) == len(expected) == STEPS + 1
    for k, (x, y) in enumerate(zip(iterates, expected)):
        assert x.dtype == np.float32 and np.array_equal(x, y), (k, np.abs(x - y).max())


def test_the_comparison_sees_one_operation_reordered():
    shape = (1, 8, 8, 3)
    expected, iterates = tensorflow_iterates(shape), host_iterates(reordered_adam, shape)
    assert not all(np.array_equal(x, y) for x, y in zip(iterates, expected))
    assert max(np.abs(x - y).max() for x, y in zip(iterates, expected)) < 1e-3  # the last bits only


def quadratic(target, scale):
    """sum scale (x - target)^2 and its gradient."""
    def evaluate(image, gradient=True):
        difference = image.astype(np.float64) - target
        terms = {'total': np.float32(np.sum(scale * difference ** 2))}
        return terms, (2 * scale * difference).astype(np.float32) if gradient else None
    return evaluate


def events_of(steps):
    evaluations, iterations, last = 0, [], None
    for kind, *data in steps:
        if kind == 'evaluation':
            evaluations += 1
            last = data[1]
        else:
            iterations.append(data[0])
    return evaluations, iterations, last


def test_lbfgs_is_scipys_run_and_reports_every_iteration():
    rng = np.random.default_rng(2)
    shape = (1, 4, 5, 3)
    target, scale = rng.normal(0, 40, shape), rng.uniform(0.5, 2.0, shape)
    x0, lower, upper = start_and_bounds(shape)
    evaluations, iterations, last = events_of(optimizers.lbfgs(quadratic(target, scale), x0, lower, upper, 8, 5))
    assert iterations == list(range(9)) and evaluations >= 9
    evaluate = quadratic(target, scale)

    def flat(x):  # scipy's own loop over the same float32 evaluations
        terms, gradient = evaluate(x.reshape(shape).astype(np.float32))
        return float(terms['total']), gradient.ravel().astype(np.float64)

    expected = scipy.optimize.minimize(
        flat, x0.ravel().astype(np.float64), jac=True, method='L-BFGS-B',
        bounds=scipy.optimize.Bounds(np.broadcast_to(lower, shape).ravel(), np.broadcast_to(upper, shape).ravel()),
        options=dict(maxiter=8, maxcor=5, ftol=0.0, gtol=0.0)).x
    assert np.array_equal(last, expected.reshape(shape).astype(np.float32))
    assert np.all(last >= lower) and np.all(last <= upper)


def test_adam_lowers_the_objective_within_the_bounds():
    shape = (1, 4, 5, 3)
    target = np.random.default_rng(3).normal(0, 40, shape)
    x0, lower, upper = start_and_bounds(shape)
    evaluate = quadratic(target, 1.0)
    evaluations, iterations, last = events_of(optimizers.adam(evaluate, x0, lower, upper, 50, **ADAM))
    assert (evaluations, iterations) == (51, list(range(51)))
    assert evaluate(last)[0]['total'] < 0.5 * evaluate(x0)[0]['total']
    assert np.all(last >= lower) and np.all(last <= upper)


def test_closing_lbfgs_stops_its_worker():
    """The worker held in its second evaluation while the first is consumed: alive then, gone once closed."""
    shape = (1, 4, 5, 3)
    x0, lower, upper = start_and_bounds(shape)
    evaluate, release, calls = quadratic(np.zeros(shape), 1.0), threading.Event(), []

    def held(image, gradient=True):
        calls.append(image)
        if len(calls) > 1:
            release.wait(10)
        return evaluate(image, gradient)

    steps = optimizers.lbfgs(held, x0, lower, upper, 100, 5)
    next(steps)
    assert optimizers.LBFGS_THREAD in [thread.name for thread in threading.enumerate()]
    release.set()
    steps.close()
    assert optimizers.LBFGS_THREAD not in [thread.name for thread in threading.enumerate()]
    assert len(calls) < 10
