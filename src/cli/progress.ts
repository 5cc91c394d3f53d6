// A one-line progress bar on stderr: iterations, it/s, ETA, elapsed time, and the last metrics. On a
// terminal it redraws in place; otherwise (CI logs, pipes) it prints a line every 10% so logs stay short.

export class ProgressBar {
  private lastPrinted = -1;
  constructor(private readonly total: number, private readonly start: number, private readonly stream = process.stderr) {}

  /** `elapsedSeconds`: training time of the whole run (a resumed run counts from its checkpoint's). */
  update(done: number, iterationsPerSecond: number, extra: string, elapsedSeconds?: number): void {
    const fraction = (done - this.start) / Math.max(1, this.total - this.start);
    const eta = iterationsPerSecond > 0 ? (this.total - done) / iterationsPerSecond : NaN;
    const width = 24;
    const filled = Math.round(width * Math.min(1, Math.max(0, fraction)));
    const line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${this.total} it  ${iterationsPerSecond.toFixed(1)} it/s  ETA ${formatSeconds(eta)}${elapsedSeconds !== undefined ? `  elapsed ${formatSeconds(elapsedSeconds)}` : ''}${extra ? '  ' + extra : ''}`;
    if (this.stream.isTTY) {
      this.stream.write(`\r${line}\x1b[K`);
    } else {
      const decile = Math.floor(fraction * 10);
      if (decile !== this.lastPrinted || done === this.total) {
        this.lastPrinted = decile;
        this.stream.write(line + '\n');
      }
    }
  }

  finish(): void {
    if (this.stream.isTTY) this.stream.write('\n');
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const m = Math.floor(s / 60);
  const sec = Math.round(s % 60);
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}
