-- DropIndex
DROP INDEX "job_logs_state_started_idx";

-- DropIndex
DROP INDEX "job_logs_type_started_idx";

-- CreateIndex
CREATE INDEX "job_logs_state_started_idx" ON "job_logs"("state", "started_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "job_logs_type_started_idx" ON "job_logs"("job_type", "started_at" DESC, "id" DESC);


