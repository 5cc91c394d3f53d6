// Pieces shared by the MLP kernels' hosts (src/kernels/mlp-*.ts; their uniforms are filled through
// src/gpu/uniforms.ts like every kernel's): grids folded into x/y/z when a
// dispatch has more workgroups than one dimension allows, and small dummy buffers for unused bindings.
import { LimitError } from '../errors.js';
import { createBuffer, type BoundDispatch } from '../gpu/resources.js';

/** Options every MLP kernel's constructor takes. */
export interface MlpKernelOptions {
  /** Fold grids as if the device allowed at most this many workgroups per dimension (tests of the y/z fold). */
  maxWorkgroupsPerDimension?: number;
  /** Pick the variants made for a CPU rasteriser (true) or a GPU (false); default: from device.adapterInfo. */
  software?: boolean;
}

/** True for CPU rasterisers (llvmpipe, lavapipe, SwiftShader), by the same test as src/gpu/device.ts. */
export function isSoftwareDevice(device: GPUDevice): boolean {
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo & { isFallbackAdapter?: boolean } }).adapterInfo;
  if (!info) return false;
  const text = [info.vendor, info.architecture, info.device, info.description].join(' ');
  return info.isFallbackAdapter === true || /llvmpipe|lavapipe|swiftshader|software|cpu/i.test(text);
}

/** A dispatch grid; `total` is the number of workgroups the shader uses (the rest return at once). */
export interface Grid { x: number; y: number; z: number; total: number }

/**
 * Folds `total` workgroups into x, then y, then z, each ≤ maxComputeWorkgroupsPerDimension. The shader
 * recovers the linear index as wid.x + x·(wid.y + y·wid.z) and drops indices ≥ total.
 */
export function foldGrid(device: GPUDevice, total: number, what: string, options?: MlpKernelOptions): Grid {
  const max = Math.min(device.limits.maxComputeWorkgroupsPerDimension, options?.maxWorkgroupsPerDimension ?? Infinity);
  if (total === 0) return { x: 0, y: 0, z: 0, total };
  const x = Math.min(total, max);
  const y = Math.min(Math.ceil(total / x), max);
  const z = Math.ceil(total / (x * y));
  if (z > max || total >= 2 ** 32) {
    throw new LimitError(`${what} needs ${total} workgroups, more than ${max}³ (or 2^32) that one dispatch can address.`,
      'Split the batch into fewer tasks per dispatch.');
  }
  return { x, y, z, total };
}

/** Records `pipeline` over `grid` (nothing when the grid is empty). */
export function gridDispatch(pipeline: GPUComputePipeline, group: GPUBindGroup, grid: Grid): BoundDispatch {
  return {
    encode(pass) {
      if (grid.total === 0) return;
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(grid.x, grid.y, grid.z);
    },
  };
}

const dummies = new WeakMap<GPUDevice, GPUBuffer[]>();

/**
 * A small storage buffer for a binding the spec does not use. `slot` picks one of several distinct
 * dummies, so that two unused writable bindings of one dispatch can get different buffers. The buffers
 * are cached per device and must not be destroyed by the caller.
 */
export function dummyBuffer(device: GPUDevice, slot = 0): GPUBuffer {
  let list = dummies.get(device);
  if (!list) dummies.set(device, (list = []));
  while (list.length <= slot) list.push(createBuffer(device, `mlp.dummy${list.length}`, 4));
  return list[slot];
}
