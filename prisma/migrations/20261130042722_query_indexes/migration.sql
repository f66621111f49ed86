-- DropIndex
DROP INDEX "job_logs_user_started_idx";

-- CreateIndex
CREATE INDEX "job_logs_started_id_idx" ON "job_logs"("started_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "job_logs_user_started_idx" ON "job_logs"("user_id", "started_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "job_logs_state_finished_idx" ON "job_logs"("state", "finished_at");


