"""PyTorch peers of metagrad's layer-list benchmark rows (bench/nets.ts): one MAML meta-iteration on
  conv4      MAML's Omniglot Conv-4 (../shared/SPEC.md "Layers and losses", "Conv-4"; src/models/
             layers.ts conv4Omniglot): 4 × [conv 3×3, stride 2, padding 1 → per-task norm (per channel
             over the set's rows and positions, biased variance, eps 1e-3, no affine) → ReLU], mean over
             space, dense N; softmax cross-entropy;
  regressor  MAML's sinusoid regressor (SPEC.md "Sinusoid regression"): dense 1 → h → ReLU → … → dense 1,
             mean squared error (mean over rows of (ŷ − y)²).
  inner: θ'_t = θ − α ∇ L(θ; S_t) (innerSteps times); outer: θ ← θ − β · mean_t g_t (SGD), g_t the exact
  order-2 meta-gradient (create_graph through the inner steps) or, order 1, ∇ L(θ'_t; Q_t).
Two implementations:
  torch  "torch batched": every task at once. Conv-4: the tasks are the groups of grouped convolutions
         (a task's C channels are group t of T·C channels, its filters group t of the weights), so one
         conv2d per layer serves the whole batch with per-task weights; F.batch_norm over that tensor
         is exactly the per-task norm (its statistics are per channel, i.e. per task and channel, over
         rows × positions); the head is one einsum. Regressor: one batched matmul (baddbmm) per layer.
  loop   "torch loop": the learn2learn way: per task, adapt a copy of θ with autograd.grad, the query
         loss .backward() accumulates into θ.grad, then ÷ tasks and step.

Parameters are one flat float32 vector in metagrad's layout: per conv layer W (k × k × C_in × C_out,
C_out fastest) then b; per dense layer W (in × out, row-major) then b. Conv-4 rows are images H × W × C,
channel fastest (Omniglot: 28 × 28 × 1); regressor rows are x (one float), labels the targets y.

Usage:
  net_peers.py BATCH.bin META.json OUT_DIR [--device cpu|cuda|auto]
      BATCH.bin: θ0, supportX, supportY, queryX, queryY (float32, task-major). META.json: model
      ({kind: 'conv4', image: [h, w, c], filters, classes} or {kind: 'regressor', hidden: [...]}), tasks,
      supportShots, queryShots, innerLr, outerLr, innerSteps, seconds, capSeconds, tolerance, jobs:
      [{name, impl, order, expected}]. Each job verifies one step from θ0 against `expected`
      (metagrad's θ after one step): rel = max|Δθ_peer − Δθ_ref| / max|Δθ_ref| ≤ tolerance, else it is
      not timed; then timed steps; one JSON line per job.
  net_peers.py --selftest [--device ...]
      for both models: batched vs loop on one step; the order-2 meta-gradient against central finite
      differences in float64.
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


def conv4_layout(model):
    """[(kind, offset, cin, cout, b offset)]: conv layers, then the head; and the parameter count."""
    h, w, c = model['image']
    filters, classes = model['filters'], model['classes']
    layers = []
    off = 0
    cin = c
    for _ in range(4):
        layers.append(('conv', off, cin, filters, off + 9 * cin * filters))
        off += 9 * cin * filters + filters
        cin = filters
    layers.append(('dense', off, filters, classes, off + filters * classes))
    off += filters * classes + classes
    return layers, off


def dense_layout(widths):
    """[(kind, offset, fin, fout, b offset)]: dense layers widths[0] → widths[1] → …; the count."""
    layers = []
    off = 0
    for fin, fout in zip(widths, widths[1:]):
        layers.append(('dense', off, fin, fout, off + fin * fout))
        off += fin * fout + fout
    return layers, off


def regressor_layout(model):
    """dense 1 → hidden … → 1 (ReLU between)."""
    return dense_layout([1, *model['hidden'], 1])


def mlp_layout(model):
    """dense D → hidden … → classes (ReLU between)."""
    return dense_layout([model['dim'], *model['hidden'], model['classes']])


def layout(model, body=False):
    """The model's layers and parameter count; body: without its head (a protonet's embedding net)."""
    layers, count = {'conv4': conv4_layout, 'regressor': regressor_layout, 'mlp': mlp_layout}[model['kind']](model)
    return (layers[:-1], layers[-1][1]) if body else (layers, count)


def embed_shared(theta, x, model, layers):
    """A protonet's body with one θ for every task, over all rows at once: x (T × rows × D) → (T × rows × F).
    Conv-4: one convolution over the T·rows images per layer; its per-task norm folds the tasks into the
    channels (statistics per task and channel over the task's rows and positions)."""
    T, rows = x.shape[0], x.shape[1]
    if model['kind'] == 'conv4':
        h, w, c = model['image']
        a = x.reshape(T * rows, h, w, c).permute(0, 3, 1, 2)
        for kind, wo, cin, cout, bo in layers:
            W = theta[wo:wo + 9 * cin * cout].view(3, 3, cin, cout).permute(3, 2, 0, 1)
            a = F.conv2d(a, W, theta[bo:bo + cout], stride=2, padding=1)
            hh, ww = a.shape[2], a.shape[3]
            a = a.view(T, rows, cout, hh, ww).permute(1, 0, 2, 3, 4).reshape(rows, T * cout, hh, ww)
            a = F.relu(F.batch_norm(a, None, None, training=True, eps=1e-3))
            a = a.view(rows, T, cout, hh, ww).permute(1, 0, 2, 3, 4).reshape(T * rows, cout, hh, ww)
        return a.mean(dim=(2, 3)).view(T, rows, -1)
    a = x.reshape(T * rows, -1)
    for _, wo, fin, fout, bo in layers:
        a = F.relu(torch.addmm(theta[bo:bo + fout], a, theta[wo:wo + fin * fout].view(fin, fout)))
    return a.view(T, rows, -1)


def proto_loss(zs, ys, zq, yq, classes):
    """Mean over tasks of the query cross-entropy against −squared distances to the class means of the
    support embeddings: zs (T × S × F), zq (T × Q × F), labels (T × S), (T × Q)."""
    onehot = F.one_hot(ys.long(), classes).to(zs.dtype)                     # T × S × N
    protos = onehot.transpose(1, 2) @ zs / onehot.sum(1).unsqueeze(-1)       # T × N × F
    logits = -((zq.unsqueeze(2) - protos.unsqueeze(1)) ** 2).sum(-1)         # T × Q × N
    return F.cross_entropy(logits.reshape(-1, classes), yq.reshape(-1).long())


def proto_grad(theta, sx, sy, qx, qy, meta, impl):
    """A protonet's gradient: batched (every task's episode through the shared body at once) or a loop."""
    model = meta['model']
    layers, _ = layout(model, body=True)
    if impl == 'torch':
        z = embed_shared(theta, torch.cat([sx, qx], dim=1), model, layers)
        S = sx.shape[1]
        loss = proto_loss(z[:, :S], sy, z[:, S:], qy, model['classes'])
        g, = torch.autograd.grad(loss, theta)
        return g
    if theta.grad is not None:
        theta.grad = None
    T = sx.shape[0]
    for t in range(T):
        z = embed_shared(theta, torch.cat([sx[t:t + 1], qx[t:t + 1]], dim=1), model, layers)
        S = sx.shape[1]
        (proto_loss(z[:, :S], sy[t:t + 1], z[:, S:], qy[t:t + 1], model['classes']) / T).backward()
    return theta.grad


def conv4_losses(fast, x, y, model, layers):
    """Per-task mean loss (T,) of T tasks at once: fast (T × P), x (T × rows × H·W·C), y (T × rows)."""
    T, rows = x.shape[0], x.shape[1]
    h, w, c = model['image']
    filters = model['filters']
    # NHWC rows → (rows, T·C, H, W): task t's channels are group t.
    a = x.view(T, rows, h, w, c).permute(1, 0, 4, 2, 3).reshape(rows, T * c, h, w)
    for kind, wo, cin, cout, bo in layers[:-1]:
        W = fast[:, wo:wo + 9 * cin * cout].view(T, 3, 3, cin, cout).permute(0, 4, 3, 1, 2).reshape(T * cout, cin, 3, 3)
        b = fast[:, bo:bo + cout].reshape(T * cout)
        a = F.conv2d(a, W, b, stride=2, padding=1, groups=T)
        a = F.batch_norm(a, None, None, training=True, eps=1e-3)
        a = F.relu(a)
    feats = a.mean(dim=(2, 3)).view(rows, T, filters)
    _, wo, fin, n, bo = layers[-1]
    Wd = fast[:, wo:wo + fin * n].view(T, fin, n)
    bd = fast[:, bo:bo + n]
    logits = torch.einsum('rtf,tfn->trn', feats, Wd) + bd.unsqueeze(1)
    ce = F.cross_entropy(logits.reshape(T * rows, n), y.reshape(T * rows).long(), reduction='none')
    return ce.view(T, rows).mean(dim=1)


def regressor_losses(fast, x, y, model, layers):
    """Per-task MSE (T,): x (T × rows × 1), y (T × rows); one batched matmul per layer."""
    T = x.shape[0]
    a = x
    for i, (_, wo, fin, fout, bo) in enumerate(layers):
        W = fast[:, wo:wo + fin * fout].view(T, fin, fout)
        a = torch.baddbmm(fast[:, bo:bo + fout].unsqueeze(1), a, W)
        if i < len(layers) - 1:
            a = F.relu(a)
    return ((a.squeeze(-1) - y) ** 2).mean(dim=1)


def task_losses(fast, x, y, model, layers):
    return (conv4_losses if model['kind'] == 'conv4' else regressor_losses)(fast, x, y, model, layers)


def meta_grad_batched(theta, sx, sy, qx, qy, meta, order):
    """mean_t g_t for all tasks at once."""
    T = sx.shape[0]
    layers, _ = layout(meta['model'])
    args = (meta['model'], layers)
    fast = theta.unsqueeze(0).expand(T, -1)
    for _ in range(meta['innerSteps']):
        loss = task_losses(fast, sx, sy, *args).sum()
        g, = torch.autograd.grad(loss, fast, create_graph=(order == 2))
        fast = fast - meta['innerLr'] * g
    q = task_losses(fast, qx, qy, *args).mean()
    g, = torch.autograd.grad(q, theta)
    return g


def meta_grad_loop(theta, sx, sy, qx, qy, meta, order):
    T = sx.shape[0]
    layers, _ = layout(meta['model'])
    args = (meta['model'], layers)
    if theta.grad is not None:
        theta.grad = None
    for t in range(T):
        fast = theta.unsqueeze(0)
        for _ in range(meta['innerSteps']):
            loss = task_losses(fast, sx[t:t + 1], sy[t:t + 1], *args).sum()
            g, = torch.autograd.grad(loss, fast, create_graph=(order == 2))
            fast = fast - meta['innerLr'] * g
        task_losses(fast, qx[t:t + 1], qy[t:t + 1], *args).sum().backward()
    return theta.grad / T


def step(theta, data, meta, impl, order):
    if meta.get('algorithm') == 'protonet':
        g = proto_grad(theta, *data, meta, impl)
    else:
        g = (meta_grad_batched if impl == 'torch' else meta_grad_loop)(theta, *data, meta, order)
    with torch.no_grad():
        theta -= meta['outerLr'] * g
        if theta.grad is not None:
            theta.grad = None


def pick_device(want):
    if want == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    return want


def run(batch_file, meta_file, out_dir, device):
    meta = json.load(open(meta_file))
    T, Ks, Kq = meta['tasks'], meta['supportShots'], meta['queryShots']
    model = meta['model']
    D = int(np.prod(model['image'])) if model['kind'] == 'conv4' else model.get('dim', 1)
    _, P = layout(model, body=meta.get('algorithm') == 'protonet')
    raw = np.fromfile(batch_file, dtype=np.float32)
    sizes = [P, T * Ks * D, T * Ks, T * Kq * D, T * Kq]
    parts, off = [], 0
    for n in sizes:
        parts.append(raw[off:off + n])
        off += n
    theta0, sx, sy, qx, qy = parts
    dev = pick_device(device)
    torch.set_num_threads(os.cpu_count() or 1)  # as the other peers: every core (metagrad's CPU backend uses them)
    tensor = lambda a, shape: torch.tensor(a, device=dev).view(*shape)
    data = (tensor(sx, (T, Ks, D)), tensor(sy, (T, Ks)), tensor(qx, (T, Kq, D)), tensor(qy, (T, Kq)))
    sync = (lambda: torch.cuda.synchronize()) if dev == 'cuda' else (lambda: None)
    for job in meta['jobs']:
        out = {'name': job['name'], 'device': dev, 'version': f'torch {torch.__version__}', 'threads': torch.get_num_threads()}
        try:
            theta = torch.tensor(theta0, device=dev, requires_grad=True)
            t0 = time.perf_counter()
            step(theta, data, meta, job['impl'], job['order'])
            sync()
            out['first_s'] = time.perf_counter() - t0
            theta1 = theta.detach().cpu().numpy().astype(np.float32)
            theta1.tofile(os.path.join(out_dir, job['name'] + '.bin'))
            if job.get('expected'):
                ref = np.fromfile(os.path.join(out_dir, job['expected']), dtype=np.float32).astype(np.float64)
                change = np.max(np.abs(ref - theta0.astype(np.float64)))
                diff = np.max(np.abs(theta1.astype(np.float64) - ref))
                rel = float(diff / change) if change > 0 else float('inf')
                out['verify'] = {'rel_err': rel, 'max_abs_diff': float(diff), 'ok': rel <= meta['tolerance']}
                if rel > meta['tolerance']:
                    out['failed'] = f'rel err {rel:.2e} > {meta["tolerance"]}'
                    print(json.dumps(out), flush=True)
                    continue
            times = []
            start = time.perf_counter()
            while True:
                t0 = time.perf_counter()
                step(theta, data, meta, job['impl'], job['order'])
                sync()
                times.append(time.perf_counter() - t0)
                spent = time.perf_counter() - start
                if spent + times[-1] > meta['capSeconds'] or (spent >= meta['seconds'] and len(times) >= 3):
                    break
            med = float(np.median(times))
            out.update({'tasks_per_s': T / med, 'median_s': med, 'min_s': min(times), 'max_s': max(times), 'repeats': len(times), 'capped': len(times) < 3})
        except Exception as e:  # reported, not fatal: the other jobs still run
            out['failed'] = f'{type(e).__name__}: {e}'
        print(json.dumps(out), flush=True)


def selftest(device):
    torch.manual_seed(0)
    dev = pick_device(device)
    dt = torch.float64
    models = [
        ({'kind': 'conv4', 'image': [12, 12, 1], 'filters': 3, 'classes': 3}, 144, lambda n: torch.randint(0, 3, n, device=dev).to(dt)),
        ({'kind': 'regressor', 'hidden': [6, 5]}, 1, lambda n: torch.randn(n, dtype=dt, device=dev)),
    ]
    for model, D, labels in models:
        meta = {'model': model, 'innerLr': 0.3 if model['kind'] == 'conv4' else 0.05, 'innerSteps': 2}
        _, P = layout(model)
        T, Ks, Kq = 3, 4, 5
        theta = (0.3 * torch.randn(P, dtype=dt, device=dev)).requires_grad_()
        data = (torch.rand(T, Ks, D, dtype=dt, device=dev), labels((T, Ks)), torch.rand(T, Kq, D, dtype=dt, device=dev), labels((T, Kq)))
        for order in (1, 2):
            gb = meta_grad_batched(theta, *data, meta, order)
            gl = meta_grad_loop(theta, *data, meta, order)
            assert torch.allclose(gb, gl, rtol=1e-9, atol=1e-12), f'{model["kind"]} order {order}: batched vs loop'
        # Order 2 against finite differences of the adapted query loss (float64).
        layers, _ = layout(model)
        args = (model, layers)

        def objective(th):
            fast = th.unsqueeze(0).expand(T, -1)
            with torch.enable_grad():
                for _ in range(meta['innerSteps']):
                    g, = torch.autograd.grad(task_losses(fast, data[0], data[1], *args).sum(), fast)
                    fast = fast - meta['innerLr'] * g
            return task_losses(fast, data[2], data[3], *args).mean().item()

        g2 = meta_grad_batched(theta, *data, meta, 2)
        u = torch.randn(P, dtype=dt, device=dev)
        h = 1e-5
        th = theta.detach()
        fd = (objective((th + h * u).requires_grad_()) - objective((th - h * u).requires_grad_())) / (2 * h)
        assert abs(float(g2 @ u) - fd) <= 1e-6 * max(1, abs(fd)), f'{model["kind"]} order 2 vs finite differences: {float(g2 @ u)} vs {fd}'
    # Protonet: batched (shared body over every episode) = loop; its gradient against finite differences.
    for model, D in (({'kind': 'mlp', 'dim': 10, 'hidden': [7, 5], 'classes': 3}, 10), ({'kind': 'conv4', 'image': [12, 12, 1], 'filters': 3, 'classes': 3}, 144)):
        meta = {'model': model, 'algorithm': 'protonet'}
        _, P = layout(model, body=True)
        T, N = 3, 3
        theta = (0.3 * torch.randn(P, dtype=dt, device=dev)).requires_grad_()
        labels = lambda k: torch.arange(N, device=dev).repeat(T, k).to(dt)
        data = (torch.rand(T, 2 * N, D, dtype=dt, device=dev), labels(2), torch.rand(T, 2 * N, D, dtype=dt, device=dev), labels(2))
        gb = proto_grad(theta, *data, meta, 'torch')
        gl = proto_grad(theta, *data, meta, 'loop').clone()
        assert torch.allclose(gb, gl, rtol=1e-9, atol=1e-12), f'protonet {model["kind"]}: batched vs loop'
        layers, _ = layout(model, body=True)

        def objective(th):
            z = embed_shared(th, torch.cat([data[0], data[2]], dim=1), model, layers)
            return proto_loss(z[:, :2 * N], data[1], z[:, 2 * N:], data[3], N).item()

        u = torch.randn(P, dtype=dt, device=dev)
        h = 1e-6
        th = theta.detach()
        fd = (objective(th + h * u) - objective(th - h * u)) / (2 * h)
        assert abs(float(gb @ u) - fd) <= 1e-6 * max(1, abs(fd)), f'protonet {model["kind"]} vs finite differences: {float(gb @ u)} vs {fd}'
    print('net peers selftest: ok (conv4 and regressor: batched = loop at both orders; order 2 = finite differences; protonet (mlp, conv4 bodies): batched = loop = finite differences)')


if __name__ == '__main__':
    if torch is None:
        print(json.dumps({'skipped': 'no torch'}))
        sys.exit(0)
    device = sys.argv[sys.argv.index('--device') + 1] if '--device' in sys.argv else 'cpu'
    if '--selftest' in sys.argv:
        selftest(device)
    else:
        run(sys.argv[1], sys.argv[2], sys.argv[3], device)
