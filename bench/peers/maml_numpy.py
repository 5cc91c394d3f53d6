"""Vectorised numpy peer of metagrad's MAML and ADML steps (shared/SPEC.md), batched over tasks.

Usage: maml_numpy.py BATCH.bin META.json OUT_THETA.bin   (META.json "algorithm": "maml" | "adml")
Reads the batch and θ that the TS benchmark wrote, writes θ after one SGD meta-iteration (for the
benchmark's "verify first" check), then times repeated steps and prints one JSON line of figures.
"""
import json
import sys
import time

import numpy as np


def sigmoid(a):
    # Stable for any float32 logit: exp of a non-positive number only.
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def fgsm(theta, x, y, eps):
    """x + eps * sign((sigma(x.theta) - y) * theta) for every row of every task (no clipping)."""
    residual = sigmoid(x @ theta) - y
    return x + eps * np.sign(residual)[:, :, None] * np.sign(theta)[None, None, :]


def meta_gradient(theta, xs, ys, xq, yq, inner_lr, steps, order):
    """Per-task mean of the MAML meta-gradients (order 1 or exact order 2)."""
    tasks, ks, _ = xs.shape
    kq = xq.shape[1]
    adapted = np.broadcast_to(theta, (tasks, theta.shape[0])).copy()
    probs = []
    for _ in range(steps):
        p = sigmoid(np.matmul(xs, adapted[:, :, None])[:, :, 0])
        probs.append(p)
        adapted -= inner_lr / ks * np.matmul((p - ys)[:, None, :], xs)[:, 0, :]
    residual = sigmoid(np.matmul(xq, adapted[:, :, None])[:, :, 0]) - yq
    v = np.matmul(residual[:, None, :], xq)[:, 0, :] / kq
    if order == 2:
        for p in reversed(probs):
            xv = np.matmul(xs, v[:, :, None])[:, :, 0] * p * (1.0 - p)
            v = v - inner_lr / ks * np.matmul(xv[:, None, :], xs)[:, 0, :]
    return v.mean(axis=0)


def maml_step(theta, xs, ys, xq, yq, meta):
    g = meta_gradient(theta, xs, ys, xq, yq, meta["innerLr"], meta["innerSteps"], meta["order"])
    return theta - meta["outerLr"] * g


def adml_step(theta, xs, ys, xq, yq, meta):
    """ADML, cross pairing (the paper): theta - b1 * g(clean S -> adv Q) - b2 * g(adv S -> clean Q)."""
    eps, n, order = meta["epsilon"], meta["innerSteps"], meta["order"]
    xs_adv = fgsm(theta, xs, ys, eps)
    xq_adv = fgsm(theta, xq, yq, eps)
    g_clean = meta_gradient(theta, xs, ys, xq_adv, yq, meta["innerLr"], n, order)
    g_adv = meta_gradient(theta, xs_adv, ys, xq, yq, meta["innerLrAdv"], n, order)
    return theta - meta["outerLr"] * g_clean - meta["outerLrAdv"] * g_adv


def main():
    batch_path, meta_path, out_path = sys.argv[1:4]
    meta = json.load(open(meta_path))
    t, ks, kq, d = meta["tasks"], meta["supportShots"], meta["queryShots"], meta["dim"]
    flat = np.fromfile(batch_path, dtype=np.float32)
    sizes = [d, t * ks * d, t * ks, t * kq * d, t * kq]
    parts = np.split(flat, np.cumsum(sizes)[:-1])
    theta = parts[0]
    xs = parts[1].reshape(t, ks, d)
    ys = parts[2].reshape(t, ks)
    xq = parts[3].reshape(t, kq, d)
    yq = parts[4].reshape(t, kq)
    step = {"maml": maml_step, "adml": adml_step}[meta.get("algorithm", "maml")]
    args = (xs, ys, xq, yq, meta)
    step(theta, *args).astype(np.float32).tofile(out_path)

    step(theta, *args)  # warm-up
    times = []
    budget = time.perf_counter() + meta.get("seconds", 2.0)
    while len(times) < 3 or (time.perf_counter() < budget and len(times) < 50):
        start = time.perf_counter()
        theta = step(theta, *args)
        times.append(time.perf_counter() - start)
    times.sort()
    median = times[len(times) // 2]
    print(json.dumps({"median_s": median, "min_s": times[0], "max_s": times[-1], "repeats": len(times),
                      "tasks_per_s": t / median, "numpy": np.__version__}))


if __name__ == "__main__":
    main()
