// Test-only entry of the L2-ball projection (shaders/norm-clip.wgsl, put in front with
// logistic-common.wgsl), which training runs inside maml-task.wgsl; tested against its CPU twin:
// point_m ← Π_ε(point_m) around centre_m, one workgroup per model m.

struct ClipParams { models: u32, dim4: u32, groupsPerRow: u32, _pad: u32, radius: f32, _pad1: f32, _pad2: f32, _pad3: f32 }

@group(0) @binding(0) var<uniform> cp: ClipParams;
@group(0) @binding(1) var<storage, read_write> points: array<vec4<f32>>;   // M×D4
@group(0) @binding(2) var<storage, read_write> centres: array<vec4<f32>>;  // M×D4

@compute @workgroup_size(WG)
fn clip_to_ball(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let m = taskIndex(wid, cp.groupsPerRow);
  if (m >= cp.models) { return; }
  clipPerturbation(&points, &centres, m * cp.dim4, cp.dim4, cp.radius, lid);
}
