// Section claim latency under 16-way contention: 16 connections call joblog.section() at once,
// on one section (one wins, the rest are told "busy") and on 16 distinct sections (all win).
// Latency is from the call to entering the section, or to the SectionBusyError.
import { isSectionBusyError } from '../../src/index.ts';
import type { BenchContext } from './context.ts';
import { percentile } from './stats.ts';

export interface ClaimLatency {
  scenario: 'one section' | 'distinct sections';
  claims: number;
  won: number;
  busy: number;
  p50: number;
  p99: number;
}

export const CONTENDERS = 16;

export async function measureClaims(ctx: BenchContext, perContender: number, onDone: (label: string) => void): Promise<ClaimLatency[]> {
  const results: ClaimLatency[] = [];
  for (const scenario of ['one section', 'distinct sections'] as const) {
    const samples: number[] = [];
    let won = 0;
    let busy = 0;
    await Promise.all(Array.from({ length: CONTENDERS }, async (_, c) => {
      for (let i = 0; i < perContender; i++) {
        const userId = scenario === 'one section' ? 'contended' : `distinct-${c}`;
        const started = performance.now();
        try {
          await ctx.joblog.section({ type: 'reconciliation', userId, group: 'bench-claims' }, async () => {
            samples.push(performance.now() - started);
            won++;
          });
        } catch (error) {
          if (!isSectionBusyError(error)) throw error;
          samples.push(performance.now() - started);
          busy++;
        }
      }
    }));
    results.push({ scenario, claims: samples.length, won, busy, p50: percentile(samples, 50), p99: percentile(samples, 99) });
    onDone(`claims: ${scenario}`);
  }
  return results;
}
