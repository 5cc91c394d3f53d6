"""Peers of metagrad's benchmark: the same meta-iteration in numpy (vectorised over tasks), in PyTorch
batched over tasks (bmm + autograd, create_graph for order 2), and in the per-task PyTorch loop that
learn2learn-style code runs (clone θ, adapt each task, sum the query losses, backward).

Usage: peers.py BATCH.bin META.json OUT_DIR
BATCH.bin holds θ0 (D) then supportX, supportY, queryX, queryY (float32, task-major). META.json gives the
shape and a list of jobs {name, impl: numpy|torch|loop, algorithm: maml|adml|meta-sgd|reptile, order}
(meta-sgd and reptile: numpy and torch batched; Meta-SGD's jobs start from [θ0 | α0 = innerLr·1] and
their result is [θ1 | α1]). For each job this
writes OUT_DIR/<name>.bin (θ after one SGD meta-iteration from θ0, for the benchmark's verify-first
check), then times repeated steps and prints one JSON line. A job whose library is missing prints
{"name", "skipped": reason}.
"""
import json
import os
import sys
import time

import numpy as np

try:
    import torch
except ImportError:  # the torch jobs print why they were skipped
    torch = None


# ---------------------------------------------------------------- numpy, vectorised over tasks

def np_sigmoid(a):
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def np_fgsm(theta, x, y, eps):
    return x + eps * np.sign(np_sigmoid(x @ theta) - y)[:, :, None] * np.sign(theta)[None, None, :]


def np_meta_gradient(theta, xs, ys, xq, yq, lr, steps, order):
    tasks, ks, _ = xs.shape
    kq = xq.shape[1]
    adapted = np.broadcast_to(theta, (tasks, theta.shape[0])).copy()
    probs = []
    for _ in range(steps):
        p = np_sigmoid(np.matmul(xs, adapted[:, :, None])[:, :, 0])
        probs.append(p)
        adapted -= lr / ks * np.matmul((p - ys)[:, None, :], xs)[:, 0, :]
    residual = np_sigmoid(np.matmul(xq, adapted[:, :, None])[:, :, 0]) - yq
    v = np.matmul(residual[:, None, :], xq)[:, 0, :] / kq
    if order == 2:
        for p in reversed(probs):
            xv = np.matmul(xs, v[:, :, None])[:, :, 0] * p * (1.0 - p)
            v = v - lr / ks * np.matmul(xv[:, None, :], xs)[:, 0, :]
    return v.mean(axis=0)


def np_meta_sgd_step(both, data, m):
    """Meta-SGD, order 1: θ'_t = θ − α ⊙ Σ_s g_s; g_θ = mean_t v_t, g_α = mean_t −(Σ_s g_s) ⊙ v_t."""
    xs, ys, xq, yq = data
    d = both.shape[0] // 2
    theta, alpha = both[:d], both[d:]
    tasks, ks, _ = xs.shape
    adapted = np.broadcast_to(theta, (tasks, d)).copy()
    inner_sum = np.zeros_like(adapted)
    for _ in range(m["innerSteps"]):
        g = np.matmul((np_sigmoid(np.matmul(xs, adapted[:, :, None])[:, :, 0]) - ys)[:, None, :], xs)[:, 0, :] / ks
        inner_sum += g
        adapted -= alpha * g
    v = np.matmul((np_sigmoid(np.matmul(xq, adapted[:, :, None])[:, :, 0]) - yq)[:, None, :], xq)[:, 0, :] / xq.shape[1]
    return both - m["outerLr"] * np.concatenate([v.mean(axis=0), (-inner_sum * v).mean(axis=0)])


def np_reptile_step(theta, data, m):
    xs, ys, xq, yq = data
    x, y = np.concatenate([xs, xq], axis=1), np.concatenate([ys, yq], axis=1)
    adapted = np.broadcast_to(theta, (x.shape[0], theta.shape[0])).copy()
    for _ in range(m["innerSteps"]):
        adapted -= m["innerLr"] / x.shape[1] * np.matmul((np_sigmoid(np.matmul(x, adapted[:, :, None])[:, :, 0]) - y)[:, None, :], x)[:, 0, :]
    return theta + m["outerLr"] * (adapted.mean(axis=0) - theta)


def np_step(theta, data, m, job):
    xs, ys, xq, yq = data
    n, order = m["innerSteps"], job["order"]
    if job["algorithm"] == "meta-sgd":
        return np_meta_sgd_step(theta, data, m)
    if job["algorithm"] == "reptile":
        return np_reptile_step(theta, data, m)
    if job["algorithm"] == "adml":
        xs_adv, xq_adv = np_fgsm(theta, xs, ys, m["epsilon"]), np_fgsm(theta, xq, yq, m["epsilon"])
        g_c = np_meta_gradient(theta, xs, ys, xq_adv, yq, m["innerLr"], n, order)
        g_a = np_meta_gradient(theta, xs_adv, ys, xq, yq, m["innerLrAdv"], n, order)
        return theta - m["outerLr"] * g_c - m["outerLrAdv"] * g_a
    return theta - m["outerLr"] * np_meta_gradient(theta, xs, ys, xq, yq, m["innerLr"], n, order)


# ---------------------------------------------------------------- PyTorch, batched over tasks

def t_task_losses(x, y, params):
    """Per-task mean BCE of logits x·params_t (params: T×D), in the stable logits form."""
    logits = torch.bmm(x, params[:, :, None])[:, :, 0]
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(dim=1)


def t_batched_meta_gradient(theta, xs, ys, xq, yq, lr, steps, order):
    adapted = theta.expand(xs.shape[0], -1)
    for _ in range(steps):
        # The sum over tasks of per-task means: its gradient w.r.t. adapted[t] is task t's own gradient.
        g, = torch.autograd.grad(t_task_losses(xs, ys, adapted).sum(), adapted, create_graph=order == 2)
        adapted = adapted - lr * g
    g, = torch.autograd.grad(t_task_losses(xq, yq, adapted).mean(), theta)
    return g


def t_fgsm(theta, x, y, eps):
    with torch.no_grad():
        residual = torch.sigmoid(x @ theta) - y
        return x + eps * torch.sign(residual)[:, :, None] * torch.sign(theta)[None, None, :]


def t_meta_sgd_step(both0, data, m, order):
    xs, ys, xq, yq = data
    both = both0.detach().requires_grad_(True)
    d = both.shape[0] // 2
    adapted = both[:d].expand(xs.shape[0], -1)
    for _ in range(m["innerSteps"]):
        g, = torch.autograd.grad(t_task_losses(xs, ys, adapted).sum(), adapted, create_graph=order == 2)
        adapted = adapted - both[d:] * g  # order 1: g is a constant, α ⊙ g still reaches α
    g, = torch.autograd.grad(t_task_losses(xq, yq, adapted).mean(), both)
    return (both - m["outerLr"] * g).detach()


def t_reptile_step(theta, data, m):
    xs, ys, xq, yq = data
    x, y = torch.cat([xs, xq], 1), torch.cat([ys, yq], 1)
    adapted = theta.detach().expand(x.shape[0], -1).clone().requires_grad_(True)
    for _ in range(m["innerSteps"]):
        g, = torch.autograd.grad(t_task_losses(x, y, adapted).sum(), adapted)
        adapted = (adapted - m["innerLr"] * g).detach().requires_grad_(True)
    return theta + m["outerLr"] * (adapted.detach().mean(dim=0) - theta)


def t_step(theta0, data, m, job, meta_gradient):
    xs, ys, xq, yq = data
    if job["algorithm"] == "meta-sgd":
        return t_meta_sgd_step(theta0, data, m, job["order"])
    if job["algorithm"] == "reptile":
        return t_reptile_step(theta0, data, m)
    theta = theta0.detach().requires_grad_(True)
    n, order = m["innerSteps"], job["order"]
    if job["algorithm"] == "adml":
        xs_adv, xq_adv = t_fgsm(theta, xs, ys, m["epsilon"]), t_fgsm(theta, xq, yq, m["epsilon"])
        g_c = meta_gradient(theta, xs, ys, xq_adv, yq, m["innerLr"], n, order)
        g_a = meta_gradient(theta, xs_adv, ys, xq, yq, m["innerLrAdv"], n, order)
        return (theta - m["outerLr"] * g_c - m["outerLrAdv"] * g_a).detach()
    return (theta - m["outerLr"] * meta_gradient(theta, xs, ys, xq, yq, m["innerLr"], n, order)).detach()


# ---------------------------------------------------------------- PyTorch, one task at a time (learn2learn style)

def t_loop_meta_gradient(theta, xs, ys, xq, yq, lr, steps, order):
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    total = 0.0
    for t in range(xs.shape[0]):
        adapted = theta  # learn2learn: learner = maml.clone()
        for _ in range(steps):
            g, = torch.autograd.grad(bce(xs[t] @ adapted, ys[t]), adapted, create_graph=order == 2)
            adapted = adapted - lr * g  # learner.adapt(loss)
        total = total + bce(xq[t] @ adapted, yq[t])
    g, = torch.autograd.grad(total / xs.shape[0], theta)  # (evaluation_error / tasks).backward()
    return g


def main():
    batch_path, meta_path, out_dir = sys.argv[1:4]
    m = json.load(open(meta_path))
    t, ks, kq, d = m["tasks"], m["supportShots"], m["queryShots"], m["dim"]
    flat = np.fromfile(batch_path, dtype=np.float32)
    sizes = [d, t * ks * d, t * ks, t * kq * d, t * kq]
    theta0, xs, ys, xq, yq = np.split(flat, np.cumsum(sizes)[:-1])
    np_data = (xs.reshape(t, ks, d), ys.reshape(t, ks), xq.reshape(t, kq, d), yq.reshape(t, kq))
    if torch is not None:
        torch.set_num_threads(os.cpu_count() or 1)
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        t_data = tuple(torch.from_numpy(a.copy()).to(dev) for a in np_data)
        t_theta0 = torch.from_numpy(theta0.copy()).to(dev)
        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    # Meta-SGD starts from [θ0 | α0 = innerLr·1].
    with_alpha = lambda a, cat: cat([a, a * 0 + m["innerLr"]])
    for job in m["jobs"]:
        sgd = job["algorithm"] == "meta-sgd"
        mj = {**m, **({"innerSteps": job["innerSteps"]} if "innerSteps" in job else {})}  # a row's own n (Reptile)
        if job["impl"] == "numpy":
            step = lambda theta, job=job, mj=mj: np_step(theta, np_data, mj, job)
            start, to_numpy, sync_fn, device, version = theta0, (lambda a: a), (lambda: None), "cpu", "numpy " + np.__version__
        elif torch is None:
            print(json.dumps({"name": job["name"], "skipped": "no PyTorch in this python (Debian: apt-get install python3-torch)"}), flush=True)
            continue
        else:
            fn = t_batched_meta_gradient if job["impl"] == "torch" else t_loop_meta_gradient
            step = lambda theta, fn=fn, job=job, mj=mj: t_step(theta, t_data, mj, job, fn)
            start, to_numpy, sync_fn, device, version = t_theta0, (lambda a: a.cpu().numpy()), sync, str(dev), "torch " + torch.__version__
        if sgd:
            start = with_alpha(start, np.concatenate if job["impl"] == "numpy" else torch.cat)
        to_numpy(step(start)).astype(np.float32).tofile(os.path.join(out_dir, job["name"] + ".bin"))
        theta = step(start)  # warm-up
        sync_fn()
        times = []
        budget = time.perf_counter() + m.get("seconds", 1.0)
        while len(times) < 2 or (time.perf_counter() < budget and len(times) < 50):
            begin = time.perf_counter()
            theta = step(theta)
            sync_fn()
            times.append(time.perf_counter() - begin)
        times.sort()
        median = times[len(times) // 2]
        print(json.dumps({"name": job["name"], "median_s": median, "min_s": times[0], "max_s": times[-1], "repeats": len(times),
                          "tasks_per_s": t / median, "device": device, "version": version}), flush=True)


if __name__ == "__main__":
    main()
