// Pieces shared by the MLP kernels' hosts (src/kernels/mlp-*.ts): uniforms laid out from their WGSL
// struct by webgpu-utils (the layout is written once, in the shader), grids folded into x/y/z when a
// dispatch has more workgroups than one dimension allows, and small dummy buffers for unused bindings.
import { makeShaderDataDefinitions, makeStructuredView, type ShaderDataDefinitions } from 'webgpu-utils';
import { LimitError } from '../errors.js';
import { createBuffer, createUniform, type BoundDispatch } from '../gpu/resources.js';

const definitions = new Map<string, ShaderDataDefinitions>();

/**
 * A uniform buffer holding `values` laid out as the WGSL `var<uniform> name` of `code` declares it.
 * Each call makes its own buffer: bound dispatches recorded into one pass must not share a uniform.
 */
export function writeUniform(device: GPUDevice, label: string, code: string, name: string, values: Record<string, unknown>): GPUBuffer {
  let defs = definitions.get(code);
  if (!defs) definitions.set(code, (defs = makeShaderDataDefinitions(code)));
  const def = defs.uniforms[name];
  if (!def) throw new Error(`${label}: the shader declares no uniform '${name}'`);
  const view = makeStructuredView(def);
  view.set(values);
  const uniform = createUniform(device, label, view.arrayBuffer.byteLength);
  device.queue.writeBuffer(uniform, 0, view.arrayBuffer);
  return uniform;
}

/** Options every MLP kernel's constructor takes. */
export interface MlpKernelOptions {
  /** Fold grids as if the device allowed at most this many workgroups per dimension (tests of the y/z fold). */
  maxWorkgroupsPerDimension?: number;
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
