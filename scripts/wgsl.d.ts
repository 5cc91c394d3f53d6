// WGSL files are bundled as text by esbuild (loader `.wgsl: text`, see scripts/build.mjs).
declare module '*.wgsl' {
  const source: string;
  export default source;
}
