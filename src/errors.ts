/** Every error the library throws carries a stable `code` and, where there is one, a `cause`. */
export class JobLogError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Another job holds the (user, group) section. */
export class SectionBusyError extends JobLogError {
  readonly userId: string;
  readonly group: string;
  /** pg-boss id of the job that holds the section, when it could be read. */
  readonly holderJid: string | null;

  /** `options.gaveUpAfterSeconds`: an `onBusy: { wait }` job that waited that long and gave up. */
  constructor(userId: string, group: string, holderJid: string | null, options?: { cause?: unknown; gaveUpAfterSeconds?: number }) {
    const holder = holderJid ? ` (held by job ${holderJid})` : '';
    const what = options?.gaveUpAfterSeconds === undefined
      ? `user ${userId}, group ${group}`
      : `gave up after ${options.gaveUpAfterSeconds} s`;
    super('SECTION_BUSY', `section busy: ${what}${holder}`, options);
    this.userId = userId;
    this.group = group;
    this.holderJid = holderJid;
  }
}

/**
 * The log's table (createJobLog's `table`) cannot be used: it is missing (`LOG_TABLE_MISSING`),
 * lacks a column of the model or has an unsupported user_id type (`LOG_TABLE_INVALID`), or has no
 * section index (`SECTION_INDEX_MISSING`). The message says what to fix.
 */
export class LogTableError extends JobLogError {}

/** Options given to `createJobLog`, `work` or `section` are invalid; the message names each field. */
export class InvalidOptionsError extends JobLogError {
  readonly issues: { path: string; message: string }[];

  constructor(where: string, issues: { path: string; message: string }[], options?: { cause?: unknown }) {
    const lines = issues.map((i) => `  - ${i.path || '(options)'}: ${i.message}`).join('\n');
    super('INVALID_OPTIONS', `invalid options for ${where}:\n${lines}`, options);
    this.issues = issues;
  }
}

/** A job's payload failed the worker's schema, or its user id could not be read. Never retried. */
export class InvalidPayloadError extends JobLogError {
  readonly jid: string;
  readonly issues: { path: string; message: string }[];

  constructor(jid: string, issues: { path: string; message: string }[], options?: { cause?: unknown }) {
    const lines = issues.map((i) => `${i.path || '(payload)'}: ${i.message}`).join('; ');
    super('INVALID_PAYLOAD', `invalid payload: ${lines}`, options);
    this.jid = jid;
    this.issues = issues;
  }
}

/**
 * This attempt no longer owns its row: a newer attempt of the same job took it over (pg-boss
 * ran the job again after a timeout), or the row was settled by the reaper.
 */
export class StaleAttemptError extends JobLogError {
  readonly jid: string;
  readonly attempt: number;

  constructor(jid: string, attempt: number, options?: { cause?: unknown }) {
    super('STALE_ATTEMPT', `job ${jid} attempt ${attempt} no longer owns its log row`, options);
    this.jid = jid;
    this.attempt = attempt;
  }
}

/** pg-boss gave up on this attempt (its `signal` aborted: timeout, lost heartbeat, shutdown) before its handler could start. */
export class AttemptAbortedError extends JobLogError {
  readonly jid: string;
  readonly attempt: number;

  constructor(jid: string, attempt: number) {
    super('ATTEMPT_ABORTED', `job ${jid} attempt ${attempt} was not started: pg-boss gave up on it (its signal aborted) before its handler could run`);
    this.jid = jid;
    this.attempt = attempt;
  }
}

/** An action (`retry`, `cancel`, `release`) that must not be done to this job now; `reason` says why. */
export class ActionRefusedError extends JobLogError {
  readonly action: string;
  readonly jid: string;
  readonly reason: string;

  constructor(action: string, jid: string, reason: string, options?: { cause?: unknown }) {
    super('ACTION_REFUSED', `${action} of job ${jid} refused: ${reason}`, options);
    this.action = action;
    this.jid = jid;
    this.reason = reason;
  }
}

/** A read ran past its `statementTimeoutMs` (the server cancelled it), or found no connection in that time. */
export class QueryTimeoutError extends JobLogError {
  readonly timeoutMs: number;

  constructor(what: string, timeoutMs: number, options?: { cause?: unknown }) {
    super('QUERY_TIMEOUT', `${what}: the query ran longer than ${timeoutMs} ms and was cancelled (statement timeout); narrow the filters or window, or allow more time`, options);
    this.timeoutMs = timeoutMs;
  }
}

/** A read's `signal` aborted: its statement was cancelled on the server. */
export class ReadCancelledError extends JobLogError {
  constructor(what: string, options?: { cause?: unknown }) {
    super('READ_CANCELLED', `${what}: cancelled by its signal`, options);
  }
}
