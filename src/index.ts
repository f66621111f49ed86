export { createJobLog, JobLog, type JobLogEvents } from './joblog.ts';
export { isSectionBusyError } from './section.ts';
export { DURATION_MAX_MS, parseDuration } from './duration.ts';
export { GROUP_MAX_BYTES, USER_ID_MAX_BYTES } from './ids.ts';
export {
  createDashboard,
  nodeListener,
  serve,
  type DashboardHandler,
  type DashboardJobLog,
  type DashboardOptions,
  type FetchHandler,
  type ServedDashboard,
  type ServeOptions,
} from './dashboard/index.ts';
export {
  JobLogError,
  SectionBusyError,
  InvalidOptionsError,
  InvalidPayloadError,
  LogTableError,
  StaleAttemptError,
  AttemptAbortedError,
  ActionRefusedError,
  QueryTimeoutError,
  ReadCancelledError,
} from './errors.ts';
export type { ActionName, ActionOptions, ActionResult } from './actions.ts';
export type { MetricsOptions, MetricsRegistry } from './metrics.ts';
export type { BusyEvent, JobLogWarning } from './tracker.ts';
export type {
  BossJobState,
  BossLike,
  BusyPolicy,
  MaxHoldSeconds,
  ReapResult,
  ReaperOptions,
  WaitPolicy,
  DateInput,
  DurationInput,
  ErrorSummary,
  FindQuery,
  FindResult,
  HeldSection,
  JobTypeStats,
  PruneOptions,
  PruneResult,
  PruneSchedule,
  SectionsQuery,
  StatsBucket,
  StatsBucketRow,
  StatsQuery,
  StatsResult,
  SummariseResult,
  SummaryOptions,
  JobContext,
  FencedOptions,
  PrismaTransaction,
  JobLogOptions,
  JobLogListRow,
  JobLogRow,
  ReadOptions,
  JobState,
  PrismaLike,
  RecordedError,
  SectionOptions,
  TrackedHandler,
  WorkOptions,
} from './types.ts';
export type { StandardSchemaV1 } from './standard-schema.ts';
