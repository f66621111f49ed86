// A one-line progress bar on stderr. On a terminal it redraws in place; elsewhere (a log file,
// `--progress` in CI) it prints a line at most every 10 %.

const WIDTH = 30;

export class ProgressBar {
  readonly #stream: NodeJS.WritableStream & { isTTY?: boolean };
  readonly #total: number;
  readonly #label: string;
  readonly #started = performance.now();
  #lastTenth = -1;

  constructor(stream: NodeJS.WritableStream & { isTTY?: boolean }, total: number, label: string) {
    this.#stream = stream;
    this.#total = Math.max(1, total);
    this.#label = label;
  }

  update(done: number): void {
    const fraction = Math.min(1, done / this.#total);
    if (this.#stream.isTTY) {
      this.#stream.write(`\r${this.#line(done, fraction)}`);
      return;
    }
    const tenth = Math.floor(fraction * 10);
    if (tenth > this.#lastTenth) {
      this.#lastTenth = tenth;
      this.#stream.write(`${this.#line(done, fraction)}\n`);
    }
  }

  done(): void {
    if (this.#stream.isTTY) this.#stream.write('\n');
  }

  #line(done: number, fraction: number): string {
    const filled = Math.round(fraction * WIDTH);
    const seconds = (performance.now() - this.#started) / 1000;
    const rate = seconds > 0 ? Math.round(done / seconds) : 0;
    return `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ` +
      `${done}/${this.#total} ${this.#label}, ${rate} rows/s`;
  }
}
