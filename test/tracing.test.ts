// One OpenTelemetry span per attempt whose handler runs, read back from the SDK's in-memory
// exporter: attributes, outcome, status, the handler's own spans nested under it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createJobLog } from '../src/index.ts';
import { setupTestDb } from './helpers/db.ts';
import { FAST, queueName, tracked, waitForBossState } from './helpers/joblog.ts';
import { waitFor } from './helpers/wait.ts';

const db = setupTestDb('tracing');
const exporter = new InMemorySpanExporter();
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
});
afterAll(() => {
  trace.disable();
  context.disable();
});

const spansOf = (jid: string): ReadableSpan[] =>
  exporter.getFinishedSpans().filter((s) => s.name.startsWith('attempt ') && s.attributes['messaging.message.id'] === jid)
    .sort((a, b) => Number(a.attributes['joblog.attempt']) - Number(b.attributes['joblog.attempt']));

describe('tracing', () => {
  test('a span per attempt: type, user, group, attempt and outcome; errors on the span, sanitised; the handler\'s spans nest under it, and it under pg-boss\'s batch span', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('traced');
    await boss.createQueue(queue, { retryLimit: 1, retryDelay: 0 });
    await joblog.work<{ userId: string; fail: boolean }>(queue, {
      ...FAST, type: 'financial_data_import', group: 'financial', userId: (j) => j.data.userId,
    }, async (job) => {
      await trace.getTracer('app').startActiveSpan('call the bank', async (span) => span.end());
      if (job.data.fail) throw 'bank\u0000down'; // a thrown string with a NUL: what a span exporter must still take
    });
    const ok = (await boss.send(queue, { userId: 'u-tr-1', fail: false }))!;
    const dies = (await boss.send(queue, { userId: 'u-tr-2', fail: true }))!;
    await waitForBossState(db, ok, ['completed']);
    await waitForBossState(db, dies, ['failed'], 20_000);
    await waitFor('three attempt spans', async () => (spansOf(ok).length + spansOf(dies).length >= 3) || undefined);

    const [span] = spansOf(ok);
    expect(spansOf(ok)).toHaveLength(1);
    expect(span!.name).toBe(`attempt ${queue}`);
    expect(span!.kind).toBe(SpanKind.INTERNAL);
    // A child of pg-boss's own span of the batch (a batch of one here).
    const batch = exporter.getFinishedSpans().find((s) => s.spanContext().spanId === span!.parentSpanContext?.spanId);
    expect(batch).toMatchObject({ name: `process ${queue}`, kind: SpanKind.CONSUMER, attributes: { 'messaging.message.id': ok } });
    expect(span!.attributes).toMatchObject({
      'messaging.system': 'pg-boss', 'messaging.destination.name': queue,
      'joblog.job_type': 'financial_data_import', 'joblog.user_id': 'u-tr-1', 'joblog.group': 'financial',
      'joblog.attempt': 1, 'joblog.max_attempts': 2, 'joblog.outcome': 'finished',
    });
    expect(span!.status.code).not.toBe(SpanStatusCode.ERROR);
    const child = exporter.getFinishedSpans().find((s) => s.name === 'call the bank' && s.parentSpanContext?.spanId === span!.spanContext().spanId);
    expect(child?.spanContext().traceId).toBe(span!.spanContext().traceId);

    const [first, last] = spansOf(dies);
    expect(spansOf(dies)).toHaveLength(2);
    expect(first!.attributes).toMatchObject({ 'joblog.attempt': 1, 'joblog.outcome': 'retry', 'joblog.user_id': 'u-tr-2' });
    expect(last!.attributes).toMatchObject({ 'joblog.attempt': 2, 'joblog.outcome': 'dead' });
    for (const s of [first!, last!]) {
      expect(s.status).toEqual({ code: SpanStatusCode.ERROR, message: 'bank\ufffddown' });
      expect(s.events.find((e) => e.name === 'exception')?.attributes?.['exception.message']).toBe('bank\ufffddown');
    }
    expect((await joblog.get(dies))!.state).toBe('dead'); // the span tells what the row tells
  });

  test('a job without a section has no user or group attributes; tracing: false makes no span', async () => {
    const boss = await db.boss();
    const quiet = createJobLog({ prisma: db.prisma, boss, tracing: false });
    const { joblog } = await tracked(db);
    const [loud, silent] = [queueName('loud'), queueName('silent')];
    await boss.createQueue(loud);
    await boss.createQueue(silent);
    await joblog.work(loud, { ...FAST, type: 'report_export' }, async () => {});
    await quiet.work(silent, { ...FAST, type: 'report_export' }, async () => {});
    const [a, b] = [(await boss.send(loud, {}))!, (await boss.send(silent, {}))!];
    await waitForBossState(db, a, ['completed']);
    await waitForBossState(db, b, ['completed']);
    await waitFor('the loud job\'s span', async () => spansOf(a).length > 0 || undefined);
    expect(Object.keys(spansOf(a)[0]!.attributes).filter((k) => k === 'joblog.user_id' || k === 'joblog.group')).toEqual([]);
    expect(spansOf(b)).toEqual([]);
  });

  test('without @opentelemetry/api installed nothing is loaded and no tracer is made', async () => {
    const script = `const { loadTracer } = await import(${JSON.stringify(new URL('../src/tracing.ts', import.meta.url).href)});
      console.log(String(await loadTracer()));`;
    const hook = new URL('./fixtures/no-peers/hide-peers.mjs', import.meta.url).pathname;
    const env = { ...process.env, HIDE_PEERS: '@opentelemetry/api' };
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', hook, '--input-type=module', '-e', script], { env });
    expect(stdout.trim()).toBe('undefined');
  });
});
