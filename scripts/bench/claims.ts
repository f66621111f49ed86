// Section claim latency under 16-way contention: 16 connections call joblog.section() at once,
// on one section (one wins, the rest are told "busy") and on 16 distinct sections (all win);
// and, for the floor, one connection alone.
// Latency is from the call to entering the section, or to the SectionBusyError. Inside, each
// holds the section for 1 ms (a short request), then leaves.
import { setTimeout as sleep } from 'node:timers/promises';
import { isSectionBusyError } from '../../src/index.ts';
import type { BenchContext } from './context.ts';
import { percentile } from './stats.ts';

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

export const CONTENDERS = 16;
type Scenario = 'one connection' | 'one section' | 'distinct sections';
export const HOLD_MS = 1;

export async function measureClaims(ctx: BenchContext, perContender: number, onDone: (label: string) => void): Promise<ClaimLatency[]> {
  const results: ClaimLatency[] = [];
  for (const scenario of ['one connection', 'one section', 'distinct sections'] as const) {
    const samples: number[] = [];
    let won = 0;
    let busy = 0;
    const contenders = scenario === 'one connection' ? 1 : CONTENDERS;
    const each = scenario === 'one connection' ? perContender * 4 : perContender;
    const began = performance.now();
    await Promise.all(Array.from({ length: contenders }, async (_, c) => {
      for (let i = 0; i < each; i++) {
        const userId = scenario === 'one section' ? 'contended' : `distinct-${c}`;
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
    onDone(`claims: ${scenario}`);
  }
  return results;
}
