"""Train a small SSD-style detector in JAX with mbx.jax.multibox_loss.

    PYTHONPATH=<build>/python python bindings/python/examples/jax_train_shapes.py \
        [--steps 400] [--batch 32] [--size 96] [--eval-images 200] [--seed 0]

Needs jax and optax only (from PyPI) besides mbx. Data: a synthetic "shapes"
set generated here: size x size images (64..128 px) of noisy backgrounds with
1..4 filled rectangles, ellipses and triangles (3 classes), boxes = the tight
bounding box of each shape's visible pixels. Priors: mbx.priors_retinanet
(pyramid levels 3..7, 9 anchors per cell, CORNERS in pixels). Model: seven
stride-2 3x3 convolutions (pure jax.lax) with a 3x3 head per level 3..7
predicting 4 offsets + 4 logits (background + 3 classes) per anchor. Loss:
the ssd_pytorch preset (softmax CE with hard negative mining 3:1, smooth-L1)
with prior_format=CORNERS, through one fused mbx custom call per step under
jax.value_and_grad. Adam (optax). Every step's batch is drawn from a seeded
generator, so a run is reproducible bitwise on one machine.

Evaluation on a held-out set (another seed): mbx.decode of the offsets,
softmax scores, per-class NMS (IoU 0.45, score >= 0.05, 100 boxes per image)
and VOC-style AP at IoU 0.5 (all-point interpolation); mAP@0.5 is the mean
over the 3 classes.
"""

import argparse
import time

import numpy as np

import jax
import jax.numpy as jnp
import optax

import mbx
import mbx.jax as mj

CLASSES = ("rectangle", "ellipse", "triangle")
MAX_OBJECTS = 4
LOSS_OPTIONS = dict(preset="ssd_pytorch", prior_format="CORNERS")


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

def draw_image(rng, size):
    """One image [size, size, 3] float32 in [0, 1] and its boxes / labels."""
    background = rng.uniform(0.2, 0.8, 3)
    img = np.broadcast_to(background, (size, size, 3)).copy()
    img += rng.normal(0.0, 0.08, img.shape)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    owner = np.full((size, size), -1, np.int32)
    n = int(rng.integers(1, MAX_OBJECTS + 1))
    labels = rng.integers(0, len(CLASSES), n)
    for i, label in enumerate(labels):
        w, h = rng.uniform(0.2, 0.5, 2) * size
        x0, y0 = rng.uniform(0, size - w), rng.uniform(0, size - h)
        if label == 0:
            mask = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
        elif label == 1:
            cx, cy = x0 + w / 2, y0 + h / 2
            mask = ((xx - cx) / (w / 2)) ** 2 + ((yy - cy) / (h / 2)) ** 2 <= 1.0
        else:  # a triangle: apex on top, base at the bottom
            apex = x0 + rng.uniform(0.2, 0.8) * w
            t = (yy - y0) / h
            mask = (t >= 0) & (t <= 1) & (xx >= apex - t * (apex - x0)) & \
                   (xx <= apex + t * (x0 + w - apex))
        color = rng.uniform(0, 1, 3)
        while np.abs(color - background).max() < 0.3:
            color = rng.uniform(0, 1, 3)
        img[mask] = color + rng.normal(0.0, 0.04, (int(mask.sum()), 3))
        owner[mask] = i
    boxes, kept = [], []
    for i, label in enumerate(labels):
        ys, xs = np.nonzero(owner == i)
        if len(xs) < 16:  # almost fully covered by later shapes
            continue
        boxes.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
        kept.append(label)
    return np.clip(img, 0, 1).astype(np.float32), np.array(boxes, np.float32).reshape(-1, 4), \
        np.array(kept, np.int32)


def make_batch(rng, batch, size):
    """images [B, S, S, 3], gt_boxes [B, 4, 4] (padded), gt_labels [B, 4], gt_counts [B]."""
    images = np.zeros((batch, size, size, 3), np.float32)
    gt_boxes = np.zeros((batch, MAX_OBJECTS, 4), np.float32)
    gt_labels = np.zeros((batch, MAX_OBJECTS), np.int32)
    gt_counts = np.zeros((batch,), np.int32)
    for b in range(batch):
        images[b], boxes, labels = draw_image(rng, size)
        gt_boxes[b, :len(boxes)] = boxes
        gt_labels[b, :len(labels)] = labels
        gt_counts[b] = len(boxes)
    return images, gt_boxes, gt_labels, gt_counts


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------

WIDTHS = (16, 32, 64, 64, 64, 64, 64)  # seven stride-2 convolutions: S/2 .. S/128
HEAD_FROM = 2                          # levels 3..7 = outputs of convolutions 2..6
ANCHORS = 9
NUM_LOGITS = 1 + len(CLASSES)


def init_params(key):
    params = {"backbone": [], "heads": []}
    cin = 3
    for cout in WIDTHS:
        key, k = jax.random.split(key)
        params["backbone"].append({
            "w": jax.random.normal(k, (3, 3, cin, cout), jnp.float32) * np.sqrt(2.0 / (9 * cin)),
            "b": jnp.zeros((cout,), jnp.float32)})
        cin = cout
    for cout in WIDTHS[HEAD_FROM:]:
        key, k = jax.random.split(key)
        bias = np.zeros((ANCHORS, 4 + NUM_LOGITS), np.float32)
        bias[:, 4] = np.log(len(CLASSES) * 20.0)  # start with "mostly background"
        params["heads"].append({
            "w": jax.random.normal(k, (3, 3, cout, ANCHORS * (4 + NUM_LOGITS)), jnp.float32) * 0.01,
            "b": jnp.asarray(bias.reshape(-1))})
    return params


def _conv(x, p, stride):
    y = jax.lax.conv_general_dilated(x, p["w"], (stride, stride), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + p["b"]


def apply(params, images):
    """images [B, S, S, 3] -> loc [B, P, 4], conf [B, P, 4]; the anchor order of
    mbx.priors_retinanet (level, row, column, anchor)."""
    x = images - 0.5
    feats = []
    for i, p in enumerate(params["backbone"]):
        x = jax.nn.relu(_conv(x, p, 2))
        if i >= HEAD_FROM:
            feats.append(x)
    locs, confs = [], []
    for f, p in zip(feats, params["heads"]):
        y = _conv(f, p, 1)
        y = y.reshape(y.shape[0], -1, ANCHORS, 4 + NUM_LOGITS).reshape(y.shape[0], -1, 4 + NUM_LOGITS)
        locs.append(y[..., :4])
        confs.append(y[..., 4:])
    return jnp.concatenate(locs, 1), jnp.concatenate(confs, 1)


def loss_fn(params, priors, images, gt_boxes, gt_labels, gt_counts):
    loc, conf = apply(params, images)
    loss_loc, loss_conf, num_pos = mj.multibox_loss(priors, gt_boxes, gt_labels, gt_counts, loc,
                                                    conf, **LOSS_OPTIONS)
    return loss_loc + loss_conf, (loss_loc, loss_conf, num_pos)


def make_train_step(optimizer):
    @jax.jit
    def step(params, opt_state, priors, images, gt_boxes, gt_labels, gt_counts):
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, priors, images, gt_boxes, gt_labels, gt_counts)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, aux
    return step


# ---------------------------------------------------------------------------
# Evaluation: decode, NMS, AP@0.5
# ---------------------------------------------------------------------------

def iou_one_to_many(box, boxes):
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), 1)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-12)


def nms(boxes, scores, iou_threshold=0.45, top_k=100):
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size and len(keep) < top_k:
        i = order[0]
        keep.append(i)
        order = order[1:][iou_one_to_many(boxes[i], boxes[order[1:]]) <= iou_threshold]
    return np.array(keep, np.int64)


def detect(boxes, probs, score_threshold=0.05, top_k=100):
    """Per-class NMS on one image: list of (class, score, box)."""
    out = []
    for c in range(len(CLASSES)):
        s = probs[:, c + 1]
        idx = np.nonzero(s >= score_threshold)[0]
        if idx.size == 0:
            continue
        keep = idx[nms(boxes[idx], s[idx], top_k=top_k)]
        out += [(c, float(s[k]), boxes[k]) for k in keep]
    out.sort(key=lambda d: -d[1])
    return out[:top_k]


def average_precision(recall, precision):
    """VOC all-point interpolated AP."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    i = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def evaluate(params, priors, data, iou_threshold=0.5):
    """mAP@0.5 and the per-class APs on (images, gt_boxes, gt_labels, gt_counts)."""
    images, gt_boxes, gt_labels, gt_counts = data
    detections = {c: [] for c in range(len(CLASSES))}
    num_gt = np.zeros(len(CLASSES), np.int64)
    forward = jax.jit(apply)
    for start in range(0, len(images), 50):
        loc, conf = forward(params, jnp.asarray(images[start:start + 50]))
        boxes = np.asarray(mbx.decode(np.asarray(priors), np.asarray(loc), **LOSS_OPTIONS))
        probs = np.asarray(jax.nn.softmax(conf, -1))
        for j in range(len(boxes)):
            b = start + j
            gt = gt_boxes[b, :gt_counts[b]]
            labels = gt_labels[b, :gt_counts[b]]
            for c in range(len(CLASSES)):
                num_gt[c] += int((labels == c).sum())
            for c, score, box in detect(boxes[j], probs[j]):
                detections[c].append((score, b, box))
    aps = []
    for c in range(len(CLASSES)):
        dets = sorted(detections[c], key=lambda d: -d[0])
        used = {}
        tp = np.zeros(len(dets))
        for k, (_, b, box) in enumerate(dets):
            gt = gt_boxes[b, :gt_counts[b]]
            mask = gt_labels[b, :gt_counts[b]] == c
            if not mask.any():
                continue
            ious = np.where(mask, iou_one_to_many(box, gt), -1.0)
            g = int(np.argmax(ious))
            if ious[g] >= iou_threshold and not used.get((b, g)):
                used[(b, g)] = True
                tp[k] = 1
        ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
        recall = ctp / max(num_gt[c], 1)
        precision = ctp / np.maximum(ctp + cfp, 1e-12)
        aps.append(average_precision(recall, precision) if len(dets) else 0.0)
    return float(np.mean(aps)), aps


# ---------------------------------------------------------------------------

def train(steps=400, batch=32, size=96, eval_images=200, seed=0, log_every=25, lr=3e-3,
          verbose=True):
    """Runs the training; returns a dict with the loss curve and mAP@0.5."""
    assert 64 <= size <= 128, "images are 64..128 px"
    priors = jnp.asarray(mbx.priors_retinanet(size, size))
    params = init_params(jax.random.PRNGKey(seed))
    schedule = optax.cosine_decay_schedule(lr, max(steps, 1), alpha=0.05)
    optimizer = optax.adam(schedule)
    opt_state = optimizer.init(params)
    step = make_train_step(optimizer)
    rng = np.random.default_rng(seed)
    curve, window = [], []
    t0 = time.perf_counter()
    for i in range(steps):
        images, gt_boxes, gt_labels, gt_counts = make_batch(rng, batch, size)
        params, opt_state, loss, (loss_loc, loss_conf, num_pos) = step(
            params, opt_state, priors, images, gt_boxes, gt_labels, gt_counts)
        window.append(float(loss))
        if (i + 1) % log_every == 0 or i == 0 or i + 1 == steps:
            curve.append((i + 1, float(np.mean(window))))
            if verbose:
                print("step %4d  loss %.4f  (loc %.4f conf %.4f, %d positives)  %.1f s"
                      % (i + 1, curve[-1][1], float(loss_loc), float(loss_conf),
                         int(np.sum(num_pos)), time.perf_counter() - t0), flush=True)
            window = []
    train_seconds = time.perf_counter() - t0
    result = {"curve": curve, "train_seconds": train_seconds, "params": params,
              "priors": priors}
    if eval_images:
        held_out = make_batch(np.random.default_rng(seed + 10_000), eval_images, size)
        m, aps = evaluate(params, priors, held_out)
        result["map50"], result["ap50"] = m, aps
        if verbose:
            print("mAP@0.5 on %d held-out images: %.3f  (%s)" % (
                eval_images, m, ", ".join("%s %.3f" % kv for kv in zip(CLASSES, aps))))
    if verbose:
        print("training: %d steps of %d images in %.1f s" % (steps, batch, train_seconds))
    return result


def main():
    ap = argparse.ArgumentParser(description="Train a small SSD-style detector on synthetic "
                                             "shapes with mbx.jax.multibox_loss.")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=96, help="image side, 64..128 px")
    ap.add_argument("--eval-images", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=3e-3)
    args = ap.parse_args()
    print("mbx %s, jax %s (%s), optax %s" % (mbx.version(), jax.__version__,
                                             jax.devices()[0].platform, optax.__version__))
    train(args.steps, args.batch, args.size, args.eval_images, args.seed, lr=args.lr)


if __name__ == "__main__":
    main()
