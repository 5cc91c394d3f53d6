// Issue 22: the prototypical loss kernel (shaders/proto.wgsl) against its CPU twin (src/cpu/proto.ts),
// and the twin against the float64 oracle (protoLoss, src/cpu/net/losses.ts): loss, accuracy and δ of
// every row, over episodes with a class absent from the support rows, several support rows per class,
// more tasks than one grid dimension holds, and more queries and features than a workgroup has
// invocations. (test/protonet.test.ts checks the whole GPU engine against the CPU engine.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ProtoKernel } from '../src/kernels/proto.js';
import { protoEpisode, protoScratchFloats, type ProtoSpec } from '../src/cpu/proto.js';
import { protoLoss } from '../src/cpu/net/losses.js';
import { readFloats } from '../src/gpu/resources.js';
import { assertClose, randomArray, submit, upload, withGpu } from './helpers.js';

const CASES: Array<{ name: string; tasks: number; support: number; queries: number; features: number; classes: number; labels: (t: number, r: number, S: number) => number; maxPerDim?: number }> = [
  { name: '5-way 1-shot, 5 queries per class, 8 features', tasks: 3, support: 5, queries: 25, features: 8, classes: 5, labels: (_t, r, S) => (r < S ? r : r - S) % 5 },
  { name: '3 of 4 classes present, 2 shots, 70 queries (past one workgroup), 70 features', tasks: 2, support: 6, queries: 70, features: 70, classes: 4, labels: (t, r, S) => ((r < S ? r : r - S) + t) % 3 },
  { name: '7 tasks on a grid of 3 per dimension', tasks: 7, support: 4, queries: 6, features: 3, classes: 2, labels: (_t, r) => r % 2, maxPerDim: 3 },
];

for (const c of CASES) {
  test(`proto kernel matches its twin, and the twin the float64 oracle: ${c.name}`, () =>
    withGpu(async (acq) => {
      const rows = c.support + c.queries;
      const F = c.features;
      const scratch = protoScratchFloats({ rows, support: c.support, features: F, classes: c.classes });
      const stride = 2 * rows * F + scratch + 3;
      const spec: ProtoSpec = {
        tasks: c.tasks, rows, support: c.support, features: F, classes: c.classes, yOff: 2, zOff: 1, dOff: 1 + rows * F, scratchOff: 1 + 2 * rows * F,
        tapeTaskStride: stride, scale: 1 / c.queries, wantStats: true, statsOff: 2,
      };
      const data = new Float32Array(2 + c.tasks * rows);
      for (let t = 0; t < c.tasks; t++) for (let r = 0; r < rows; r++) data[2 + t * rows + r] = c.labels(t, r, c.support);
      const tape = randomArray(c.tasks * stride + 2, 7, 1);
      const stats = new Float32Array(2 + 2 * c.tasks);
      const [gData, gTape, gStats] = [upload(acq, 'data', data), upload(acq, 'tape', tape), upload(acq, 'stats', stats)];
      const bound = new ProtoKernel(acq.device, c.maxPerDim ? { maxWorkgroupsPerDimension: c.maxPerDim } : {}).bind({ data: gData, tape: gTape, stats: gStats }, spec, 'test');
      submit(acq, (pass) => bound.encode(pass));
      const [gpuTape, gpuStats] = [await readFloats(acq.device, gTape, tape.length), await readFloats(acq.device, gStats, stats.length)];
      const twin = { data, tape: tape.slice(), stats: stats.slice() };
      protoEpisode(twin, spec);
      // δ of every row and the statistics (float32 sums on the GPU against float64).
      for (let t = 0; t < c.tasks; t++) {
        const d = spec.dOff + t * stride;
        assertClose(`task ${t} δ`, gpuTape.subarray(d, d + rows * F), twin.tape.subarray(d, d + rows * F), 1e-5, 1e-3);
      }
      assertClose('stats', gpuStats, twin.stats, 1e-5, 1e-4);
      // The twin against the oracle, task by task.
      for (let t = 0; t < c.tasks; t++) {
        const z = Float64Array.from(tape.subarray(spec.zOff + t * stride, spec.zOff + t * stride + rows * F));
        const r = protoLoss(c.classes, z, rows, data, 2 + t * rows, c.support);
        assert.ok(Math.abs(twin.stats[2 + 2 * t] - r.loss) < 1e-5 * Math.max(1, r.loss), `task ${t} loss ${twin.stats[2 + 2 * t]} vs ${r.loss}`);
        assert.ok(Math.abs(twin.stats[3 + 2 * t] - r.metric) < 1e-6, `task ${t} accuracy`);
        const d = spec.dOff + t * stride;
        // The oracle's δ is of the mean over the queries: the kernel's with scale 1/Q.
        assertClose(`task ${t} δ vs oracle`, twin.tape.subarray(d, d + rows * F), Float32Array.from(r.dZ), 1e-6, 1e-4);
      }
      for (const b of [gData, gTape, gStats]) b.destroy();
    }));
}

test.run();
