-- Summaries of closed hours and UTC days for stats(), written by the library's summary pass.
-- Without these tables stats() refuses to run (SUMMARIES_MISSING): apply this migration.
-- CreateTable
CREATE TABLE "job_log_periods" (
    "span" TEXT NOT NULL,
    "start" TIMESTAMPTZ(3) NOT NULL,
    "stale" BOOLEAN NOT NULL DEFAULT false,
    "summarised_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "job_log_periods_pkey" PRIMARY KEY ("span","start")
);

-- CreateTable
CREATE TABLE "job_log_period_types" (
    "span" TEXT NOT NULL,
    "start" TIMESTAMPTZ(3) NOT NULL,
    "job_type" "JobType" NOT NULL,
    "started" INTEGER NOT NULL,
    "finished" INTEGER NOT NULL,
    "failed" INTEGER NOT NULL,
    "dead" INTEGER NOT NULL,
    "skipped" INTEGER NOT NULL,
    "duration_max" DOUBLE PRECISION,
    "duration_buckets" INTEGER[],
    "duration_counts" INTEGER[],

    CONSTRAINT "job_log_period_types_pkey" PRIMARY KEY ("span","start","job_type")
);

-- AddForeignKey
ALTER TABLE "job_log_period_types" ADD CONSTRAINT "job_log_period_types_span_start_fkey" FOREIGN KEY ("span", "start") REFERENCES "job_log_periods"("span", "start") ON DELETE CASCADE ON UPDATE CASCADE;


