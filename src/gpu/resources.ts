import { LimitError } from '../errors.js';
// Small helpers over the WebGPU API: labelled buffers, explicit bind-group layouts, a per-device pipeline
// cache (a WeakMap, so a destroyed device frees its pipelines) and float readback.

export type BindingKind = 'uniform' | 'read' | 'rw';

export function createBuffer(device: GPUDevice, label: string, floats: number, usage = 0): GPUBuffer {
  // Sizes round up to whole vec4s (the kernels bind arrays of vec4), never 0 (an invalid binding).
  return device.createBuffer({
    label,
    size: Math.max(16, Math.ceil(floats / 4) * 16),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC | usage,
  });
}

export function createUniform(device: GPUDevice, label: string, bytes: number): GPUBuffer {
  return device.createBuffer({ label, size: bytes, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
}

const layoutCache = new WeakMap<GPUDevice, Map<string, GPUBindGroupLayout>>();
const pipelineCache = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

export function bindGroupLayout(device: GPUDevice, label: string, kinds: BindingKind[]): GPUBindGroupLayout {
  let perDevice = layoutCache.get(device);
  if (!perDevice) layoutCache.set(device, (perDevice = new Map()));
  const key = `${label}:${kinds.join(',')}`;
  let layout = perDevice.get(key);
  if (!layout) {
    layout = device.createBindGroupLayout({
      label,
      entries: kinds.map((kind, binding) => ({
        binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: kind === 'uniform' ? 'uniform' : kind === 'read' ? 'read-only-storage' : 'storage' },
      })),
    });
    perDevice.set(key, layout);
  }
  return layout;
}

export function computePipeline(
  device: GPUDevice, label: string, code: string, entryPoint: string,
  layout: GPUBindGroupLayout, constants: Record<string, number>,
): GPUComputePipeline {
  let perDevice = pipelineCache.get(device);
  if (!perDevice) pipelineCache.set(device, (perDevice = new Map()));
  const key = `${label}:${entryPoint}:${JSON.stringify(constants)}`;
  let pipeline = perDevice.get(key);
  if (!pipeline) {
    const module = device.createShaderModule({ label, code });
    pipeline = device.createComputePipeline({
      label: `${label}.${entryPoint}`,
      layout: device.createPipelineLayout({ label, bindGroupLayouts: [layout] }),
      compute: { module, entryPoint, constants },
    });
    perDevice.set(key, pipeline);
  }
  return pipeline;
}

export function bindGroup(device: GPUDevice, label: string, layout: GPUBindGroupLayout, buffers: GPUBuffer[]): GPUBindGroup {
  return device.createBindGroup({ label, layout, entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })) });
}

/** Copies `floats` values from `buffer` (at float offset `offset`) to the CPU. */
export async function readFloats(device: GPUDevice, buffer: GPUBuffer, floats: number, offset = 0): Promise<Float32Array> {
  const bytes = Math.max(4, floats * 4);
  const staging = device.createBuffer({ label: `readback:${buffer.label}`, size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = device.createCommandEncoder({ label: 'readback' });
  encoder.copyBufferToBuffer(buffer, offset * 4, staging, 0, bytes);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(staging.getMappedRange().slice(0, floats * 4));
  staging.unmap();
  staging.destroy();
  return out;
}

/** Workgroup grid for one workgroup per task: 2-D when T exceeds the per-dimension limit. */
export function taskGrid(tasks: number, maxPerDim: number): { x: number; y: number } {
  const x = Math.min(tasks, maxPerDim);
  return { x, y: Math.ceil(tasks / x) };
}

/** A dispatch with its pipeline, bind group and grid fixed: record it into any compute pass. */
export interface BoundDispatch {
  encode(pass: GPUComputePassEncoder): void;
}

export function boundDispatch(pipeline: GPUComputePipeline, group: GPUBindGroup, x: number, y = 1, z = 1): BoundDispatch {
  return {
    encode(pass) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(x, y, z);
    },
  };
}

/** `groups` workgroups folded into a 2-D grid (x, y) within the adapter's per-dimension limit; the
 * kernel recovers its index as y·x_count + x and skips the overshoot. */
export function paramGrid(groups: number, maxPerDim: number, what: string): { x: number; y: number } {
  const x = Math.max(1, Math.min(groups, maxPerDim));
  const y = Math.ceil(groups / x);
  if (y > maxPerDim) {
    throw new LimitError(`${what} need ${groups} workgroups, over the adapter's grid of ${maxPerDim}².`, 'Use a smaller model or dimension.');
  }
  return { x, y };
}

/** queue.writeBuffer for float arrays (TS types reject SharedArrayBuffer-backed views; WebGPU takes any). */
export function writeFloats(device: GPUDevice, buffer: GPUBuffer, byteOffset: number, data: Float32Array): void {
  device.queue.writeBuffer(buffer, byteOffset, data as Float32Array<ArrayBuffer>);
}
