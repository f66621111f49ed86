// OpenTelemetry spans, one per attempt whose handler runs, when the app has @opentelemetry/api.
// The API is an optional peer: without it no span is made and nothing is loaded per job.
import type { Span, Tracer } from '@opentelemetry/api';
import { recordError } from './rows.ts';
import type { JobIdentity } from './store.ts';

/** How an attempt ended, as its span's `joblog.outcome` says: `retry` while pg-boss will retry it. */
export type AttemptOutcome = 'finished' | 'retry' | 'failed' | 'dead';

/** Runs one attempt's handler inside its span; the span ends with the attempt's outcome. */
export interface AttemptTracer {
  run<R>(job: JobIdentity, fn: () => Promise<R>, outcomeOnError: AttemptOutcome): Promise<R>;
}

type Api = typeof import('@opentelemetry/api');

/** The tracer of `@opentelemetry/api`, or undefined when the app does not have it installed. */
export async function loadTracer(): Promise<AttemptTracer | undefined> {
  let api: Api;
  try {
    api = await import('@opentelemetry/api');
  } catch {
    return undefined;
  }
  return attemptTracer(api, api.trace.getTracer('pg-boss-joblog'));
}

/**
 * `attempt <queue>`, an internal span: pg-boss 12 makes its own CONSUMER span `process <queue>`
 * per batch (when an SDK is registered), and each attempt's span is a child of it. Attributes follow
 * OpenTelemetry's messaging conventions where they fit (the job id as the message id); the log's
 * own facts are `joblog.*`. The handler runs with the span active, so its own spans (Prisma's,
 * fetch's) nest under it.
 */
function attemptTracer(api: Api, tracer: Tracer): AttemptTracer {
  return {
    async run(job, fn, outcomeOnError) {
      const span = tracer.startSpan(`attempt ${job.queue}`, {
        kind: api.SpanKind.INTERNAL,
        attributes: {
          'messaging.system': 'pg-boss',
          'messaging.operation.type': 'process',
          'messaging.destination.name': job.queue,
          'messaging.message.id': job.jid,
          'joblog.job_type': job.type,
          'joblog.attempt': job.attempt,
          'joblog.max_attempts': job.maxAttempts,
          ...(job.userId === null ? {} : { 'joblog.user_id': job.userId }),
          ...(job.group === null ? {} : { 'joblog.group': job.group }),
        },
      });
      // No SDK registered (or the sampler dropped it): the handler runs as if untraced.
      if (!span.isRecording()) return fn();
      try {
        const result = await api.context.with(api.trace.setSpan(api.context.active(), span), fn);
        end(span, 'finished');
        return result;
      } catch (error) {
        // What the row records of the error (the one sanitiser): a thrown string, a NUL or a 1 MB message too.
        const recorded = recordError(error);
        span.recordException({ name: recorded.name, message: recorded.message, ...(recorded.stack ? { stack: recorded.stack } : {}) });
        span.setStatus({ code: api.SpanStatusCode.ERROR, message: recorded.message });
        end(span, outcomeOnError);
        throw error;
      }
    },
  };
}

function end(span: Span, outcome: AttemptOutcome): void {
  span.setAttribute('joblog.outcome', outcome);
  span.end();
}
