-- AlterTable
ALTER TABLE "job_logs" ADD COLUMN     "lease_until" TIMESTAMPTZ(3),
ADD COLUMN     "waited_ms" INTEGER;


