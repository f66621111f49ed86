// Command-line flags of `npm run bench`.
import { parseArgs } from 'node:util';
import { MODES, type Mode } from './throughput.ts';

export const PARTS = ['throughput', 'claims', 'queries', 'prune', 'memory', 'scaling'] as const;
export type Part = (typeof PARTS)[number];

export interface BenchArgs {
  quick: boolean;
  rows: number;
  only: Part[];
  /** The throughput part's modes, when given (else the plan's). */
  modes?: Mode[];
  write: boolean;
}

const USAGE = `usage: npm run bench -- [--quick] [--rows N] [--only ${PARTS.join(',')}] [--no-write]
  --quick      fewer rounds, jobs and rows, no scaling: under two minutes (docs/benchmarks.md is not rewritten)
  --rows N     rows in the log for the query and prune measurements (default 1000000)
  --only a,b   run only these parts (docs/benchmarks.md is then not rewritten)
  --modes a,b  the throughput part's modes (${MODES.join(', ')}); untracked is always run
  --no-write   do not rewrite docs/benchmarks.md`;

export function parseBenchArgs(argv: string[]): BenchArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean', default: false },
        rows: { type: 'string', default: '1000000' },
        only: { type: 'string' },
        modes: { type: 'string' },
        'no-write': { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const rows = Number(values.rows);
  if (!Number.isSafeInteger(rows) || rows < 10_000) throw new Error(`--rows must be an integer of at least 10000, got ${values.rows}\n${USAGE}`);
  const only = values.only ? values.only.split(',').map((p) => p.trim()) : [...PARTS];
  for (const part of only) {
    if (!(PARTS as readonly string[]).includes(part)) throw new Error(`--only: unknown part '${part}'\n${USAGE}`);
  }
  const modes = values.modes ? ['untracked', ...values.modes.split(',').map((m) => m.trim()).filter((m) => m !== 'untracked')] : undefined;
  for (const mode of modes ?? []) {
    if (!(MODES as readonly string[]).includes(mode)) throw new Error(`--modes: unknown mode '${mode}'\n${USAGE}`);
  }
  return {
    quick: values.quick, rows, only: only as Part[], ...(modes ? { modes: modes as Mode[] } : {}),
    write: !values['no-write'] && !values.only && !values.modes && !values.quick,
  };
}
