"""A short run of the JAX training example (bindings/python/examples/
jax_train_shapes.py): the loss falls, and the first step's losses and
gradients wrt the network outputs are bitwise those of mbx.MultiBoxLoss
(the eager C call) on the same batch."""

import importlib.util
import os

import numpy as np
import pytest

from conftest import REPO

jax = pytest.importorskip("jax")
pytest.importorskip("optax")
import jax.numpy as jnp  # noqa: E402

import mbx  # noqa: E402

EXAMPLE = os.path.join(REPO, "bindings", "python", "examples", "jax_train_shapes.py")


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("jax_train_shapes", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_first_step_matches_the_c_call(example):
    size, batch = 96, 8
    priors = jnp.asarray(mbx.priors_retinanet(size, size))
    params = example.init_params(jax.random.PRNGKey(0))
    images, gt_boxes, gt_labels, gt_counts = example.make_batch(np.random.default_rng(0), batch, size)
    loc, conf = jax.jit(example.apply)(params, jnp.asarray(images))

    def total(loc, conf):
        a, b, n = example.mj.multibox_loss(priors, gt_boxes, gt_labels, gt_counts, loc, conf,
                                           **example.LOSS_OPTIONS)
        return a + b, (a, b, n)
    (_, (loss_loc, loss_conf, num_pos)), (grad_loc, grad_conf) = jax.jit(
        jax.value_and_grad(total, argnums=(0, 1), has_aux=True))(loc, conf)
    opts = dict(example.LOSS_OPTIONS)
    eager = mbx.MultiBoxLoss(opts.pop("preset"), **opts)(
        np.asarray(priors), gt_boxes, gt_labels, gt_counts, np.asarray(loc), np.asarray(conf))
    assert float(loss_loc) == np.float32(eager.loss_loc)
    assert float(loss_conf) == np.float32(eager.loss_conf)
    np.testing.assert_array_equal(np.asarray(num_pos), eager.num_pos)
    np.testing.assert_array_equal(np.asarray(grad_loc), eager.grad_loc)
    np.testing.assert_array_equal(np.asarray(grad_conf), eager.grad_conf)


def test_short_training_run_lowers_the_loss(example):
    result = example.train(steps=40, batch=8, size=96, eval_images=20, log_every=10,
                           verbose=False)
    curve = [loss for _, loss in result["curve"]]
    assert curve[-1] < 0.8 * curve[0], curve
    assert 0.0 <= result["map50"] <= 1.0
    # Reproducible: the same seed gives the same curve.
    again = example.train(steps=10, batch=8, size=96, eval_images=0, log_every=10, verbose=False)
    first = example.train(steps=10, batch=8, size=96, eval_images=0, log_every=10, verbose=False)
    assert again["curve"] == first["curve"]
