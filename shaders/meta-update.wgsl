// The across-task half of a meta-iteration: one invocation per parameter d.
//   g_d = Σ_t w_t · metaGrad[t, d]          (w_t = 1/T for MAML; other weights for GA-MAML)
//   θ_d ← θ_d − β g_d                       (sgd)
//   Adam (Kingma & Ba 2015) with bias correction, the step count kept on the GPU in optState[2D]
//   so that several meta-iterations can be recorded into one command buffer.
// Reading metaGrad[t, d] for fixed t across consecutive invocations is coalesced.

struct UpdateParams {
  tasks: u32,
  dim: u32,
  rule: u32,          // 0 = sgd, 1 = adam, 2 = none (only write meanGrad)
  _pad0: u32,
  outerLr: f32,       // β
  beta1: f32,
  beta2: f32,
  epsilon: f32,
}

@group(0) @binding(0) var<uniform> up: UpdateParams;
@group(0) @binding(1) var<storage, read> metaGrad: array<f32>;      // T×D
@group(0) @binding(2) var<storage, read> taskWeight: array<f32>;    // T
@group(0) @binding(3) var<storage, read_write> theta: array<f32>;   // D
@group(0) @binding(4) var<storage, read_write> optState: array<f32>; // Adam m (D) | v (D) | step count
@group(0) @binding(5) var<storage, read_write> meanGrad: array<f32>; // D, the applied meta-gradient

override WG_UPDATE: u32 = 64u;

@compute @workgroup_size(WG_UPDATE)
fn update(@builtin(global_invocation_id) gid: vec3<u32>) {
  let d = gid.x;
  let D = up.dim;
  if (d >= D) { return; }
  var g = 0.0;
  for (var t = 0u; t < up.tasks; t++) { g += taskWeight[t] * metaGrad[t * D + d]; }
  meanGrad[d] = g;
  if (up.rule == 0u) {
    theta[d] -= up.outerLr * g;
  } else if (up.rule == 1u) {
    let step = optState[2u * D];
    let m = up.beta1 * optState[d] + (1.0 - up.beta1) * g;
    let v = up.beta2 * optState[D + d] + (1.0 - up.beta2) * g * g;
    optState[d] = m;
    optState[D + d] = v;
    let mHat = m / (1.0 - pow(up.beta1, step));
    let vHat = v / (1.0 - pow(up.beta2, step));
    theta[d] -= up.outerLr * mHat / (sqrt(vHat) + up.epsilon);
  }
}

// Adam's step counter, bumped by a single invocation before `update` in the same command buffer.
@compute @workgroup_size(1)
fn count_step() { optState[2u * up.dim] += 1.0; }
