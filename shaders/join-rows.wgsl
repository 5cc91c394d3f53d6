// Support ∪ query rows per task (CPU twin: src/cpu/join-rows.ts), for Reptile, whose inner loop trains
// on both. From `data` with layout dataLayout(T, Ks, Kq, D) (src/kernels/layout.ts) into `joint` with
// layout dataLayout(T, Ks+Kq, Kq, D):
//   joint support rows of task t  = its Ks support rows, then its Kq query rows (labels likewise)
//   joint query rows and labels   = a copy of data's (the two query regions have the same size)
// so a per-task kernel bound with supportData = queryData = joint and supportRows = Ks+Kq sees the union
// as support and the query as query. Padding floats of joint's support labels are written as 0.
// Thread mapping: one invocation per vec4 word of joint, workgroups linearised and folded into x/y/z by
// the host; consecutive invocations write consecutive words (and read consecutive words of one row).

struct JoinParams {
  tasks: u32,
  supportRows: u32,    // Ks
  queryRows: u32,      // Kq
  dim4: u32,           // D4 vec4s per row
  // Offsets in `data`: rows in vec4 words, labels in floats.
  supportXIn: u32,
  supportYIn: u32,
  queryXIn: u32,       // data's query rows, then its query labels, contiguous to its end
  queryYIn: u32,
  // Offsets in `joint`, in vec4 words.
  supportYOut: u32,
  queryXOut: u32,
  totalOut: u32,
  gridX: u32,
  gridY: u32,
}

@group(0) @binding(0) var<uniform> jp: JoinParams;
@group(0) @binding(1) var<storage, read> data: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> joint: array<vec4<f32>>;

override WG: u32 = 256u;

// Label `i` of task-major joint labels: task i / (Ks+Kq), row i mod (Ks+Kq); support first, then query.
fn jointLabel(i: u32) -> f32 {
  let rows = jp.supportRows + jp.queryRows;
  if (i >= jp.tasks * rows) { return 0.0; }
  let t = i / rows;
  let r = i - t * rows;
  var src = jp.supportYIn + t * jp.supportRows + r;
  if (r >= jp.supportRows) { src = jp.queryYIn + t * jp.queryRows + (r - jp.supportRows); }
  return data[src / 4u][src % 4u];
}

@compute @workgroup_size(WG)
fn join_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = (wid.x + jp.gridX * (wid.y + jp.gridY * wid.z)) * WG + lid;
  if (w >= jp.totalOut) { return; }
  if (w >= jp.queryXOut) {
    // Query rows and labels: a straight copy.
    joint[w] = data[jp.queryXIn + (w - jp.queryXOut)];
  } else if (w >= jp.supportYOut) {
    // Support labels: a whole vec4 per invocation, so no two invocations write one word.
    let i = 4u * (w - jp.supportYOut);
    joint[w] = vec4<f32>(jointLabel(i), jointLabel(i + 1u), jointLabel(i + 2u), jointLabel(i + 3u));
  } else {
    let row = w / jp.dim4;
    let c = w - row * jp.dim4;
    let rows = jp.supportRows + jp.queryRows;
    let t = row / rows;
    let r = row - t * rows;
    var src = jp.supportXIn + (t * jp.supportRows + r) * jp.dim4 + c;
    if (r >= jp.supportRows) { src = jp.queryXIn + (t * jp.queryRows + (r - jp.supportRows)) * jp.dim4 + c; }
    joint[w] = data[src];
  }
}
