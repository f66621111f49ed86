// A progress bar on stderr, so stdout keeps only the table and the final line.

export interface Progress {
  /** Start a named step; the bar advances by one unit per step. */
  step(label: string): void;
  /** Redraw with a new label, without advancing. */
  note(label: string): void;
  done(): void;
}

export function progress(total: number): Progress {
  let current = 0;
  const started = performance.now();
  const tty = process.stderr.isTTY;
  const draw = (label: string) => {
    const width = 30;
    const filled = Math.round((current / total) * width);
    const seconds = ((performance.now() - started) / 1000).toFixed(0);
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${current}/${total} ${seconds}s ${label}`;
    if (tty) process.stderr.write(`\r\x1b[2K${line}`);
    else process.stderr.write(`${line}\n`);
  };
  return {
    step(label) {
      current = Math.min(total, current + 1);
      draw(label);
    },
    note(label) {
      if (tty) draw(label);
    },
    done() {
      if (tty) process.stderr.write('\n');
    },
  };
}
