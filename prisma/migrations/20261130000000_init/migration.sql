-- CreateEnum
CREATE TYPE "JobType" AS ENUM ('financial_data_import', 'reconciliation', 'report_export', 'welcome_email');

-- CreateEnum
CREATE TYPE "JobState" AS ENUM ('started', 'finished', 'failed', 'dead', 'skipped');

-- CreateTable
CREATE TABLE "job_logs" (
    "id" BIGSERIAL NOT NULL,
    "jid" UUID NOT NULL,
    "queue" TEXT NOT NULL,
    "job_type" "JobType" NOT NULL,
    "state" "JobState" NOT NULL DEFAULT 'started',
    "user_id" TEXT,
    "group" TEXT,
    "attempt" INTEGER NOT NULL DEFAULT 1,
    "max_attempts" INTEGER NOT NULL,
    "holder_jid" UUID,
    "queued_at" TIMESTAMPTZ(3),
    "started_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),
    "duration_ms" INTEGER,
    "error" JSONB,
    "errors" JSONB NOT NULL DEFAULT '[]',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "job_logs_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "job_logs_jid_key" ON "job_logs"("jid");

-- CreateIndex
CREATE INDEX "job_logs_user_started_idx" ON "job_logs"("user_id", "started_at" DESC);

-- CreateIndex
CREATE INDEX "job_logs_state_started_idx" ON "job_logs"("state", "started_at");

-- CreateIndex
CREATE INDEX "job_logs_type_started_idx" ON "job_logs"("job_type", "started_at");

-- Critical sections, written by hand (Prisma cannot express a partial unique index):
-- at most one started job per (user, group). A NULL user or group takes no section.
CREATE UNIQUE INDEX "job_logs_section_key" ON "job_logs"("user_id", "group") WHERE "state" = 'started';
