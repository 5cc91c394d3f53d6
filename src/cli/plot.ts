// Learning curves as a standalone SVG (no dependencies): one panel per metric group, a line per
// series, axes with ticks, and the 95% interval as a band when a series has one.

export interface Series { name: string; color: string; points: Array<{ x: number; y: number; ci?: number }> }
/** xLabel: the panel's own x axis (default: the plot's). */
export interface Panel { title: string; yLabel: string; xLabel?: string; series: Series[]; yRange?: [number, number] }

const W = 520, H = 300, M = { left: 56, right: 16, top: 30, bottom: 44 };
const esc = (s: string) => s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);

function ticks(lo: number, hi: number, n = 5): number[] {
  const step0 = (hi - lo) / n || 1;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function panel(p: Panel, xLabel: string, offsetX: number): string {
  const pts = p.series.flatMap((s) => s.points);
  if (pts.length === 0) return '';
  const xs = pts.map((q) => q.x);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
  const [y0, y1] = p.yRange ?? [Math.min(...pts.map((q) => q.y - (q.ci ?? 0))), Math.max(...pts.map((q) => q.y + (q.ci ?? 0)))];
  const pad = (y1 - y0) * 0.05 || 0.5;
  const [lo, hi] = p.yRange ?? [y0 - pad, y1 + pad];
  const sx = (x: number) => offsetX + M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
  const sy = (y: number) => M.top + (1 - (y - lo) / (hi - lo)) * (H - M.top - M.bottom);
  const out: string[] = [];
  out.push(`<text x="${offsetX + W / 2}" y="18" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
  for (const t of ticks(lo, hi)) {
    out.push(`<line x1="${offsetX + M.left}" x2="${offsetX + W - M.right}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${offsetX + M.left - 6}" y="${sy(t) + 4}" text-anchor="end">${t}</text>`);
  }
  for (const t of ticks(x0, x1)) out.push(`<text x="${sx(t)}" y="${H - M.bottom + 16}" text-anchor="middle">${t}</text>`);
  out.push(`<rect x="${offsetX + M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${offsetX + W / 2}" y="${H - 8}" text-anchor="middle">${esc(xLabel)}</text>`);
  out.push(`<text transform="translate(${offsetX + 14} ${H / 2}) rotate(-90)" text-anchor="middle">${esc(p.yLabel)}</text>`);
  p.series.forEach((s, i) => {
    const sorted = [...s.points].sort((a, b) => a.x - b.x);
    if (sorted.some((q) => q.ci !== undefined && Number.isFinite(q.ci))) {
      const upper = sorted.map((q) => `${sx(q.x)},${sy(q.y + (q.ci ?? 0))}`);
      const lower = sorted.map((q) => `${sx(q.x)},${sy(q.y - (q.ci ?? 0))}`).reverse();
      out.push(`<polygon points="${[...upper, ...lower].join(' ')}" fill="${s.color}" opacity="0.15"/>`);
    }
    out.push(`<polyline points="${sorted.map((q) => `${sx(q.x)},${sy(q.y)}`).join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const q of sorted) out.push(`<circle cx="${sx(q.x)}" cy="${sy(q.y)}" r="2.5" fill="${s.color}"/>`);
    out.push(`<rect x="${offsetX + M.left + 10}" y="${M.top + 8 + 16 * i}" width="12" height="3" fill="${s.color}"/>`);
    out.push(`<text x="${offsetX + M.left + 28}" y="${M.top + 13 + 16 * i}">${esc(s.name)}</text>`);
  });
  return out.join('\n');
}

/** Panels side by side in one SVG document. */
export function svgPlot(panels: Panel[], xLabel: string): string {
  const shown = panels.filter((p) => p.series.some((s) => s.points.length > 0));
  const width = W * Math.max(shown.length, 1);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H}" viewBox="0 0 ${width} ${H}" font-family="sans-serif" font-size="11">\n` +
    `<rect width="100%" height="100%" fill="white"/>\n${shown.map((p, i) => panel(p, p.xLabel ?? xLabel, i * W)).join('\n')}\n</svg>\n`;
}
