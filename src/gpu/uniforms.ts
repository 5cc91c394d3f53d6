// Uniform buffers laid out from their WGSL struct by webgpu-utils (makeShaderDataDefinitions +
// makeStructuredView): a kernel's host names the fields, the layout is written once, in the shader.
// The definitions are parsed lazily, once per shader source: webgpu-utils needs the WebGPU globals
// (GPUShaderStage), which exist only once a device is acquired, so never at module load.
import { makeShaderDataDefinitions, makeStructuredView, type ShaderDataDefinitions, type StructuredView } from 'webgpu-utils';
import { createUniform } from './resources.js';

const definitions = new Map<string, ShaderDataDefinitions>();

/** A fresh view of the WGSL `var<uniform> name` declared in `code`. */
export function uniformView(code: string, name: string, label: string): StructuredView {
  let defs = definitions.get(code);
  if (!defs) definitions.set(code, (defs = makeShaderDataDefinitions(code)));
  const def = defs.uniforms[name];
  if (!def) throw new Error(`${label}: the shader declares no uniform '${name}'`);
  return makeStructuredView(def);
}

/** A uniform buffer for `var<uniform> name` of `code`, and `write`, which fills it from named fields
 * (fields left out keep their last value; all start at 0). */
export interface UniformBuffer {
  buffer: GPUBuffer;
  write(values: Record<string, unknown>): void;
}

export function createUniformBuffer(device: GPUDevice, label: string, code: string, name: string): UniformBuffer {
  const view = uniformView(code, name, label);
  const buffer = createUniform(device, label, view.arrayBuffer.byteLength);
  return {
    buffer,
    write(values) {
      view.set(values);
      device.queue.writeBuffer(buffer, 0, view.arrayBuffer);
    },
  };
}

/**
 * A uniform buffer holding `values` laid out as the WGSL `var<uniform> name` of `code` declares it.
 * Each call makes its own buffer: bound dispatches recorded into one pass must not share a uniform.
 */
export function writeUniform(device: GPUDevice, label: string, code: string, name: string, values: Record<string, unknown>): GPUBuffer {
  const uniform = createUniformBuffer(device, label, code, name);
  uniform.write(values);
  return uniform.buffer;
}
