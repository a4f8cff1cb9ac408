-- Fewer pages per completion (issue 12). A file database's claim + complete rate is bound by the
-- bytes its commits write: every B-tree page a completion touches is a frame in the WAL, and the
-- WAL's fsync at each checkpoint (about 2 ms here) grows with those bytes. A completion wrote
-- about 7 pages; these two indexes were two or three of them.
--
-- 1. No index by lease owner. A runner's heartbeat finds its leases among the running tasks
--    (tasks_lease_idx holds only those: a runner's in-flight work, thousands at most, read every
--    few seconds), instead of every claim and completion writing an owner entry.
DROP INDEX IF EXISTS `tasks_owner_idx`;
--> statement-breakpoint
-- 2. The per-run status index holds finished tasks only. A task enters it once, when it
--    finishes, instead of moving within it at submit, claim and completion. Queued and running
--    tasks are found by their own partial indexes (tasks_run_queue_idx, tasks_lease_idx), and
--    per-run counts are run_counts. Every finished task has finished_at (the queue sets it on
--    each finishing statement); rows written otherwise get it here so none falls out.
UPDATE `tasks` SET `finished_at` = `updated_at`
WHERE `finished_at` IS NULL AND `status` IN ('succeeded', 'failed', 'canceled');
--> statement-breakpoint
DROP INDEX IF EXISTS `tasks_run_status_idx`;
--> statement-breakpoint
CREATE INDEX `tasks_run_finished_idx` ON `tasks` (`run_id`, `status`, `finished_at`) WHERE `finished_at` IS NOT NULL;
