"""PyTorch peers of metagrad's MLP benchmark rows: one MAML meta-iteration on an MLP with ReLU hidden
layers and an N-way softmax head (../shared/SPEC.md "Neural models", "MAML"):
  inner: θ'_t = θ − α ∇ L(θ; S_t) (innerSteps times), L = mean over rows of softmax cross-entropy;
  outer: θ ← θ − β · mean_t g_t, g_t = d/dθ L(θ'_t; Q_t) (order 2, exact: create_graph through the inner
         steps) or ∇ L(θ'_t; Q_t) at the adapted parameters (order 1, first-order MAML).
The other meta-learners of metagrad (SPEC.md "Meta-SGD, Reptile, ANIL"), batched like `torch`:
  meta-sgd  θ'_t = θ − α ⊙ ∇L(θ; S_t) with a learned α (starting at innerLr everywhere); θ and α both take
            the SGD step with their meta-gradients (order 1: the inner gradients as constants); the job's
            result is [θ1 | α1].
  anil      only the last layer adapts; the body's features of the support and query rows are computed
            once for all tasks with the shared body weights (order 2 through the head's steps).
  reptile   θ'_t = innerSteps SGD steps on S_t ∪ Q_t; θ ← θ + β · mean_t(θ'_t − θ).
Two implementations of MAML:
  torch  "torch batched": every task at once, per-task fast weights as batched tensors (T × in × out,
         baddbmm), one autograd graph for the whole batch;
  loop   "torch loop": the learn2learn way: per task, clone θ, adapt with autograd.grad (create_graph for
         order 2), evaluation loss .backward() (gradients accumulate in θ.grad), then ÷ tasks and step.

Parameters are one flat float32 vector in metagrad's layout (src/models/mlp.ts): for each layer l,
W_l (in × out, row-major: W[i·out + j] maps input i to unit j), then b_l.

Usage:
  mlp_peers.py BATCH.bin META.json OUT_DIR [--device cpu|cuda|auto]
      BATCH.bin: θ0 (P floats), supportX (T·Ks·D), supportY (T·Ks), queryX (T·Kq·D), queryY (T·Kq), float32,
      task-major, labels are class indices 0..N−1. META.json: tasks, supportShots, queryShots, dim, hidden,
      classes, innerLr, outerLr, innerSteps, seconds (time per job), capSeconds (per-job cap on timing),
      tolerance, jobs: [{name, impl: torch|loop, order, expected: file name in OUT_DIR or null}].
      Per job, verify first: one step from θ0, written to OUT_DIR/<name>.bin; when `expected` (metagrad's θ
      after one step) is given, rel = max|Δθ_peer − Δθ_ref| / max|Δθ_ref| (Δθ = θ1 − θ0, float64) must be
      ≤ tolerance or the job is not timed ({"name", "failed", ...}). Then time repeated steps (the verifying
      step is the warm-up; at least one timed step, more while the next would end within capSeconds and
      until `seconds` and 3 steps) and print one JSON line per job.
  mlp_peers.py --selftest [--device ...]
      Checks the peers on their own: batched vs loop on one step, order 2 vs order 1, and both orders'
      meta-gradients against central finite differences in float64.
"""
import json
import os
import sys
import time

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None


def layout(dim, hidden, classes):
    """[(inputs, outputs, w offset, b offset)] per layer and the parameter count."""
    widths = [dim, *hidden, classes]
    layers, offset = [], 0
    for i, o in zip(widths[:-1], widths[1:]):
        layers.append((i, o, offset, offset + i * o))
        offset += i * o + o
    return layers, offset


def views(theta, layers):
    """[W_1, b_1, W_2, b_2, …] as views of the flat vector (gradients land in the flat vector)."""
    out = []
    for i, o, w, b in layers:
        out += [theta[w:b].view(i, o), theta[b:b + o]]
    return out


# ---------------------------------------------------------------- batched over tasks

def forward_batched(x, fast):
    """x: T × K × D; fast: [W_l (T × in × out), b_l (T × out), …] → logits T × K × N."""
    h = x
    n = len(fast) // 2
    for l in range(n):
        h = torch.baddbmm(fast[2 * l + 1].unsqueeze(1), h, fast[2 * l])
        if l < n - 1:
            h = torch.relu(h)
    return h


def task_losses(logits, y):
    """Per-task mean softmax cross-entropy: T."""
    t, k, n = logits.shape
    return F.cross_entropy(logits.reshape(t * k, n), y.reshape(t * k), reduction="none").view(t, k).mean(dim=1)


def batched_step(theta0, data, m, order, layers):
    xs, ys, xq, yq = data
    theta = theta0.detach().requires_grad_(True)
    params = views(theta, layers)
    tasks = xs.shape[0]
    fast = [p.expand(tasks, *p.shape) for p in params]
    for _ in range(m["innerSteps"]):
        # The sum over tasks of per-task means: its gradient w.r.t. fast[.][t] is task t's own gradient.
        grads = torch.autograd.grad(task_losses(forward_batched(xs, fast), ys).sum(), fast, create_graph=order == 2)
        fast = [f - m["innerLr"] * g for f, g in zip(fast, grads)]
    g, = torch.autograd.grad(task_losses(forward_batched(xq, fast), yq).mean(), theta)
    return (theta - m["outerLr"] * g).detach()


def meta_sgd_step(theta0, data, m, order, layers):
    xs, ys, xq, yq = data
    p = theta0.shape[0] // 2
    both = theta0.detach().requires_grad_(True)
    theta, alpha = both[:p], both[p:]
    params, rates = views(theta, layers), views(alpha, layers)
    tasks = xs.shape[0]
    fast = [w.expand(tasks, *w.shape) for w in params]
    for _ in range(m["innerSteps"]):
        # Order 1 (no create_graph): the gradients are constants, but α ⊙ g still reaches α.
        grads = torch.autograd.grad(task_losses(forward_batched(xs, fast), ys).sum(), fast, create_graph=order == 2)
        fast = [f - a * g for f, a, g in zip(fast, rates, grads)]
    g, = torch.autograd.grad(task_losses(forward_batched(xq, fast), yq).mean(), both)
    return (both - m["outerLr"] * g).detach()


def anil_step(theta0, data, m, order, layers):
    xs, ys, xq, yq = data
    theta = theta0.detach().requires_grad_(True)
    params = views(theta, layers)
    body, head = params[:-2], params[-2:]
    tasks = xs.shape[0]

    def features(x):  # T × K × H: one batched pass with the shared body weights
        h = x
        for l in range(len(body) // 2):
            h = torch.relu(torch.matmul(h, body[2 * l]) + body[2 * l + 1])
        return h

    fs, fq = features(xs), features(xq)
    fast = [w.expand(tasks, *w.shape) for w in head]
    for _ in range(m["innerSteps"]):
        grads = torch.autograd.grad(task_losses(forward_batched(fs, fast), ys).sum(), fast, create_graph=order == 2)
        fast = [f - m["innerLr"] * g for f, g in zip(fast, grads)]
    g, = torch.autograd.grad(task_losses(forward_batched(fq, fast), yq).mean(), theta)
    return (theta - m["outerLr"] * g).detach()


def reptile_step(theta0, data, m, order, layers):
    xs, ys, xq, yq = data
    x, y = torch.cat([xs, xq], dim=1), torch.cat([ys, yq], dim=1)
    tasks = xs.shape[0]
    fast = [w.detach().expand(tasks, *w.shape).clone().requires_grad_(True) for w in views(theta0, layers)]
    for _ in range(m["innerSteps"]):
        grads = torch.autograd.grad(task_losses(forward_batched(x, fast), y).sum(), fast)
        fast = [(f - m["innerLr"] * g).detach().requires_grad_(True) for f, g in zip(fast, grads)]
    adapted_mean = torch.cat([f.detach().mean(dim=0).reshape(-1) for f in fast])
    return theta0 + m["outerLr"] * (adapted_mean - theta0)


# ---------------------------------------------------------------- per-task loop (learn2learn style)

def forward_one(x, fast):
    h = x
    n = len(fast) // 2
    for l in range(n):
        h = torch.addmm(fast[2 * l + 1], h, fast[2 * l])
        if l < n - 1:
            h = torch.relu(h)
    return h


def loop_step(theta0, data, m, order, layers):
    xs, ys, xq, yq = data
    theta = theta0.detach().requires_grad_(True)
    params = views(theta, layers)
    tasks = xs.shape[0]
    for t in range(tasks):
        fast = list(params)  # learner = maml.clone()
        for _ in range(m["innerSteps"]):  # learner.adapt(loss)
            grads = torch.autograd.grad(F.cross_entropy(forward_one(xs[t], fast), ys[t]), fast, create_graph=order == 2)
            fast = [f - m["innerLr"] * g for f, g in zip(fast, grads)]
        F.cross_entropy(forward_one(xq[t], fast), yq[t]).backward()  # evaluation_error.backward()
    return (theta - m["outerLr"] * theta.grad / tasks).detach()  # p.grad /= meta_batch_size; opt.step()


STEPS = {"torch": batched_step, "loop": loop_step}
# Batched peers of the other algorithms (job "algorithm"; MAML's are STEPS).
ALGORITHM_STEPS = {"meta-sgd": meta_sgd_step, "anil": anil_step, "reptile": reptile_step}


def pick_device(choice):
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu"), None
    if choice == "cuda" and not torch.cuda.is_available():
        return None, f"--device cuda but torch {torch.__version__} has no CUDA device (torch.cuda.is_available() is False)"
    return torch.device(choice), None


def device_name(dev):
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def rel_change_error(theta0, theta1, reference):
    """max|Δθ − Δθ_ref| / max|Δθ_ref| with Δθ = θ1 − θ0, in float64 (θ's are float32)."""
    t0 = theta0.astype(np.float64)
    d, dref = theta1.astype(np.float64) - t0, reference.astype(np.float64) - t0
    scale = np.abs(dref).max()
    return float(np.abs(d - dref).max() / scale) if scale > 0 else float("inf"), float(np.abs(theta1.astype(np.float64) - reference).max())


def run(batch_path, meta_path, out_dir, device_choice):
    m = json.load(open(meta_path))
    t, ks, kq, d = m["tasks"], m["supportShots"], m["queryShots"], m["dim"]
    layers, p = layout(d, m["hidden"], m["classes"])
    if torch is None:
        for job in m["jobs"]:
            print(json.dumps({"name": job["name"], "skipped": "no PyTorch in this python (Debian: apt-get install python3-torch)"}), flush=True)
        return
    torch.set_num_threads(os.cpu_count() or 1)
    torch.set_float32_matmul_precision("highest")  # no TF32 on CUDA: float32 like metagrad
    dev, why = pick_device(device_choice)
    if dev is None:
        for job in m["jobs"]:
            print(json.dumps({"name": job["name"], "skipped": why}), flush=True)
        return
    flat = np.fromfile(batch_path, dtype=np.float32)
    sizes = [p, t * ks * d, t * ks, t * kq * d, t * kq]
    if flat.size != sum(sizes):
        raise SystemExit(f"{batch_path}: {flat.size} floats, expected {sum(sizes)} for meta {m}")
    theta0, xs, ys, xq, yq = np.split(flat, np.cumsum(sizes)[:-1])
    to = lambda a, *shape: torch.from_numpy(a.copy()).reshape(*shape).to(dev)
    data = (to(xs, t, ks, d), to(ys, t, ks).long(), to(xq, t, kq, d), to(yq, t, kq).long())
    t_theta0 = to(theta0, p)
    # Meta-SGD's jobs start from [θ0 | α0 = innerLr·1] (θ's layout for α).
    t_theta0_alpha = torch.cat([t_theta0, torch.full_like(t_theta0, m["innerLr"])])
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    version = f"torch {torch.__version__}"
    tolerance = m.get("tolerance", 1e-3)
    for job in m["jobs"]:
        algorithm = job.get("algorithm", "maml")
        fn = STEPS[job["impl"]] if algorithm == "maml" else ALGORITHM_STEPS[algorithm]
        step = lambda theta, job=job, fn=fn: fn(theta, data, m, job["order"], layers)
        base = {"name": job["name"], "device": device_name(dev), "version": version, "threads": torch.get_num_threads()}
        start_point = t_theta0_alpha if algorithm == "meta-sgd" else t_theta0
        theta0_np = start_point.cpu().numpy()
        begin = time.perf_counter()
        try:
            theta1 = step(start_point)
            sync()
        except RuntimeError as e:  # e.g. out of memory: say so and go on with the next job
            print(json.dumps({**base, "skipped": f"RuntimeError: {str(e).splitlines()[0][:200]}"}), flush=True)
            continue
        first_s = time.perf_counter() - begin
        theta1 = theta1.cpu().numpy().astype(np.float32)
        theta1.tofile(os.path.join(out_dir, job["name"] + ".bin"))
        verify = None
        if job.get("expected"):
            expected = np.fromfile(os.path.join(out_dir, job["expected"]), dtype=np.float32)
            rel, max_abs = rel_change_error(theta0_np, theta1, expected)
            verify = {"rel_err": rel, "max_abs_diff": max_abs, "tolerance": tolerance, "ok": bool(rel <= tolerance)}
            if not verify["ok"]:
                print(json.dumps({**base, "failed": f"θ after one step differs from metagrad's: rel {rel:.2e} > {tolerance:g}", "verify": verify}), flush=True)
                continue
        times = []
        theta = start_point
        start = time.perf_counter()
        budget = start + m.get("seconds", 1.0)
        cap = m.get("capSeconds", float("inf"))
        capped = False
        while len(times) < 3 or (time.perf_counter() < budget and len(times) < 50):
            if times and time.perf_counter() - start + times[-1] > cap:
                capped = True
                break
            b = time.perf_counter()
            theta = step(theta)
            sync()
            times.append(time.perf_counter() - b)
        times.sort()
        median = times[len(times) // 2]
        print(json.dumps({**base, "median_s": median, "min_s": times[0], "max_s": times[-1], "repeats": len(times), "capped": capped,
                          "first_s": first_s, "tasks_per_s": t / median, "verify": verify}), flush=True)


# ---------------------------------------------------------------- self-test (no metagrad needed)

def selftest(device_choice):
    if torch is None:
        raise SystemExit("selftest needs PyTorch")
    torch.set_num_threads(os.cpu_count() or 1)
    torch.set_float32_matmul_precision("highest")
    dev, why = pick_device(device_choice)
    if dev is None:
        raise SystemExit(why)
    print(f"torch {torch.__version__}, {device_name(dev)}")
    failures = []

    def check(what, ok, detail):
        print(f"{'ok  ' if ok else 'FAIL'} {what}: {detail}")
        if not ok:
            failures.append(what)

    def make(t, ks, kq, d, hidden, n, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        layers, p = layout(d, hidden, n)
        theta = torch.zeros(p, dtype=torch.float64)
        for i, o, w, b in layers:
            theta[w:b] = torch.randn(i * o, generator=g, dtype=torch.float64) * (2.0 / i) ** 0.5
            theta[b:b + o] = 0.1 * torch.randn(o, generator=g, dtype=torch.float64)
        protos = torch.rand(t, n, d, generator=g, dtype=torch.float64)
        ys = torch.arange(ks).remainder(n).repeat(t, 1)
        yq = torch.randint(0, n, (t, kq), generator=g)
        xs = 0.6 * protos[torch.arange(t)[:, None], ys] + 0.4 * torch.rand(t, ks, d, generator=g, dtype=torch.float64)
        xq = 0.6 * protos[torch.arange(t)[:, None], yq] + 0.4 * torch.rand(t, kq, d, generator=g, dtype=torch.float64)
        cast = lambda a: a.to(dev, dtype) if a.is_floating_point() else a.to(dev)
        return layers, cast(theta), tuple(cast(a) for a in (xs, ys, xq, yq))

    # 1. Batched vs loop, one step at the bench's shape (fewer tasks), float32.
    m = {"innerLr": 0.4, "outerLr": 0.1, "innerSteps": 1}
    layers, theta0, data = make(8, 5, 5, 784, [256, 128, 64, 64], 5, torch.float32, 1)
    th0 = theta0.cpu().numpy()
    out = {}
    for order in (1, 2):
        for impl in ("torch", "loop"):
            out[impl, order] = STEPS[impl](theta0, data, m, order, layers).cpu().numpy()
        rel, _ = rel_change_error(th0, out["loop", order], out["torch", order])
        check(f"order {order}: batched == loop (float32, T=8, D=784, [256,128,64,64], N=5)", rel <= 1e-5, f"rel Δθ error {rel:.1e} (≤ 1e-5)")
    rel, _ = rel_change_error(th0, out["torch", 1], out["torch", 2])
    check("order 2 differs from order 1", rel > 1e-3, f"rel Δθ difference {rel:.1e} (> 1e-3)")
    m2 = dict(m, innerSteps=2)
    a, b = (STEPS[i](theta0, data, m2, 2, layers).cpu().numpy() for i in ("torch", "loop"))
    rel, _ = rel_change_error(th0, b, a)
    check("2 inner steps, order 2: batched == loop", rel <= 1e-5, f"rel Δθ error {rel:.1e} (≤ 1e-5)")

    # 2. Meta-gradients against central finite differences, float64, a small net (no ReLU kink in reach).
    layers, theta0, data = make(3, 5, 5, 12, [10, 8], 4, torch.float64, 2)
    xs, ys, xq, yq = data
    alpha, steps = 0.5, 2

    def outer_loss(theta):  # mean over tasks of L(θ'_t(θ); Q_t), each task adapted on its own
        losses = []
        theta = theta.detach().requires_grad_(True)
        for t in range(xs.shape[0]):
            fast = views(theta, layers)
            for _ in range(steps):
                g = torch.autograd.grad(F.cross_entropy(forward_one(xs[t], fast), ys[t]), fast, create_graph=True)
                fast = [f - alpha * gi for f, gi in zip(fast, g)]
            losses.append(F.cross_entropy(forward_one(xq[t], fast), yq[t]))
        return torch.stack(losses).mean()

    mm = {"innerLr": alpha, "outerLr": 1.0, "innerSteps": steps}
    gen = torch.Generator().manual_seed(3)
    eps = 1e-6
    for impl in ("torch", "loop"):
        g2 = (theta0 - STEPS[impl](theta0, data, mm, 2, layers))  # β = 1: the meta-gradient itself
        worst = 0.0
        for _ in range(4):
            v = torch.randn(theta0.shape, generator=gen, dtype=torch.float64).to(dev)
            with torch.enable_grad():
                fd = (outer_loss(theta0 + eps * v) - outer_loss(theta0 - eps * v)).item() / (2 * eps)
            worst = max(worst, abs(fd - (g2 * v).sum().item()) / max(abs(fd), 1e-12))
        check(f"{impl} order 2 = d/dθ mean_t L(θ'_t(θ); Q_t) (finite differences, float64)", worst < 1e-6, f"worst rel error {worst:.1e} over 4 directions")
        g1 = (theta0 - STEPS[impl](theta0, data, mm, 1, layers))
        worst = 0.0
        for _ in range(4):
            v = torch.randn(theta0.shape, generator=gen, dtype=torch.float64).to(dev)
            fd = 0.0
            for t in range(xs.shape[0]):  # order 1: Σ_t ∇L(θ'_t; Q_t)·v at the fixed adapted point, ÷ T
                fast = views(theta0.detach().requires_grad_(True), layers)
                for _ in range(steps):
                    g = torch.autograd.grad(F.cross_entropy(forward_one(xs[t], fast), ys[t]), fast)
                    fast = [(f - alpha * gi).detach().requires_grad_(True) for f, gi in zip(fast, g)]
                pt = torch.cat([f.detach().reshape(-1) for f in fast])
                lq = lambda q: F.cross_entropy(forward_one(xq[t], views(q, layers)), yq[t]).item()
                fd += (lq(pt + eps * v) - lq(pt - eps * v)) / (2 * eps) / xs.shape[0]
            worst = max(worst, abs(fd - (g1 * v).sum().item()) / max(abs(fd), 1e-12))
        check(f"{impl} order 1 = mean_t ∇L(θ'_t; Q_t) at the adapted point (finite differences, float64)", worst < 1e-6, f"worst rel error {worst:.1e}")
    # 3. The other algorithms' peers against identities (float64, the small net).
    layers, theta0, data = make(3, 5, 5, 12, [10, 8], 4, torch.float64, 4)
    th0 = theta0.cpu().numpy()
    m = {"innerLr": 0.3, "outerLr": 0.1, "innerSteps": 2}
    for order in (1, 2):
        both = meta_sgd_step(torch.cat([theta0, torch.full_like(theta0, m["innerLr"])]), data, m, order, layers)
        rel, _ = rel_change_error(th0, both[:theta0.shape[0]].cpu().numpy(), batched_step(theta0, data, m, order, layers).cpu().numpy())
        check(f"meta-sgd order {order} with α = innerLr·1: θ's step = MAML's", rel <= 1e-10, f"rel Δθ error {rel:.1e}")
        one_layer, p1 = layout(12, [], 4)
        flat = theta0[:p1].clone()
        rel, _ = rel_change_error(flat.cpu().numpy(), anil_step(flat, data, m, order, one_layer).cpu().numpy(), batched_step(flat, data, m, order, one_layer).cpu().numpy())
        check(f"anil order {order} without a body = MAML", rel <= 1e-10, f"rel Δθ error {rel:.1e}")
    m1 = dict(m, innerSteps=1)
    xs, ys, xq, yq = data
    theta = theta0.detach().requires_grad_(True)
    fast = [w.expand(xs.shape[0], *w.shape) for w in views(theta, layers)]
    union = task_losses(forward_batched(torch.cat([xs, xq], 1), fast), torch.cat([ys, yq], 1)).mean()
    g, = torch.autograd.grad(union, theta)
    rel, _ = rel_change_error(th0, reptile_step(theta0, data, m1, 1, layers).cpu().numpy(), (theta0 - m1["outerLr"] * m1["innerLr"] * g).detach().cpu().numpy())
    check("reptile with one step = θ − βα·mean_t ∇L(θ; S_t ∪ Q_t)", rel <= 1e-10, f"rel Δθ error {rel:.1e}")
    print("selftest:", "FAILED " + ", ".join(failures) if failures else "all passed")
    return 1 if failures else 0


def main():
    args = sys.argv[1:]
    device = "cpu"
    if "--device" in args:
        i = args.index("--device")
        device = args[i + 1]
        del args[i:i + 2]
    if device not in ("cpu", "cuda", "auto"):
        raise SystemExit(f"--device must be cpu, cuda or auto, got {device}")
    if args and args[0] == "--selftest":
        sys.exit(selftest(device))
    if len(args) != 3:
        raise SystemExit(__doc__)
    run(*args, device)


if __name__ == "__main__":
    main()
