// Section claim latency: 2, 4 and 16 connections call joblog.section() at once on one section
// (one enters, the others are told "busy"), 16 on 16 distinct sections (all enter), and one
// connection alone for the floor. One claim is one call of joblog.section() until it enters fn or
// throws SectionBusyError: every statement the library issues for that claim, busy outcomes
// included (a busy claim is a sample like an entered one). Inside, each holds the section for
// 1 ms (a short request), then leaves; leaving is not timed. The Prisma pool's connections are
// opened before the first scenario: a scenario with more contenders than the one before would
// otherwise time the opening of its new connections as claims (12 of them for 16 contenders,
// which were then the p99 of a quick run's 300 claims).
import { setTimeout as sleep } from 'node:timers/promises';
import { isSectionBusyError } from '../../src/index.ts';
import type { BenchContext } from './context.ts';
import { percentile } from './stats.ts';

export type Scenario = 'one connection' | 'one section' | 'distinct sections';

export interface ClaimLatency {
  scenario: Scenario;
  contenders: number;
  claims: number;
  /** Claims (entered or busy) per second, all contenders together. */
  perSecond: number;
  won: number;
  busy: number;
  p50: number;
  p99: number;
}

export const HOLD_MS = 1;

const SCENARIOS: { scenario: Scenario; contenders: number }[] = [
  { scenario: 'one connection', contenders: 1 },
  { scenario: 'one section', contenders: 2 },
  { scenario: 'one section', contenders: 4 },
  { scenario: 'one section', contenders: 16 },
  { scenario: 'distinct sections', contenders: 16 },
];

/** `claims`: samples per scenario, shared out among its contenders. */
export async function measureClaims(ctx: BenchContext, claims: number, onDone: (label: string) => void): Promise<ClaimLatency[]> {
  const most = Math.max(...SCENARIOS.map((s) => s.contenders));
  // Held open together, so the pool has to open `most` connections.
  await Promise.all(Array.from({ length: most }, () => ctx.prisma.$queryRawUnsafe('SELECT pg_sleep(0.05)::text')));
  const results: ClaimLatency[] = [];
  for (const { scenario, contenders } of SCENARIOS) {
    const samples: number[] = [];
    let won = 0;
    let busy = 0;
    const each = Math.ceil(claims / contenders);
    const began = performance.now();
    await Promise.all(Array.from({ length: contenders }, async (_, c) => {
      const userId = scenario === 'one section' ? `contended-${contenders}` : `distinct-${c}`;
      for (let i = 0; i < each; i++) {
        const started = performance.now();
        try {
          await ctx.joblog.section({ type: 'reconciliation', userId, group: 'bench-claims' }, async () => {
            samples.push(performance.now() - started);
            won++;
            await sleep(HOLD_MS);
          });
        } catch (error) {
          if (!isSectionBusyError(error)) throw error;
          samples.push(performance.now() - started);
          busy++;
        }
      }
    }));
    const perSecond = samples.length / ((performance.now() - began) / 1000);
    results.push({ scenario, contenders, claims: samples.length, perSecond, won, busy, p50: percentile(samples, 50), p99: percentile(samples, 99) });
    onDone(`claims: ${scenario}, ${contenders} connection(s)`);
  }
  return results;
}

export const CLAIM_SCENARIOS = SCENARIOS.length;
