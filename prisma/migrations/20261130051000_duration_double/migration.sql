-- A job can span more than 24.8 days (retries, waits, a row reaped late): more milliseconds than an
-- integer holds.

-- AlterTable
ALTER TABLE "job_logs" ALTER COLUMN "duration_ms" SET DATA TYPE DOUBLE PRECISION;
