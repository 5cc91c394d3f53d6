// CPU twin of shaders/finite-check.wgsl: the number of NaN and ±Infinity values among the first n.

export function countNonFinite(a: ArrayLike<number>, n = a.length): number {
  let count = 0;
  for (let i = 0; i < n; i++) if (!Number.isFinite(a[i])) count++;
  return count;
}
