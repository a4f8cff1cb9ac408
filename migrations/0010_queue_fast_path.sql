-- Queue fast path (issue 12). Measured on claim + complete: most of a finishing write's cost is
-- the B-tree pages it dirties, and every dirty page is written to the WAL on each commit.
--
-- 1. The queue's indexes cover only the rows they are searched for: tasks running (expired
--    leases), tasks held (heartbeats by owner); tasks waiting are in 0012's per-run lane
--    (tasks_run_queue_idx), which replaces the global claim index. A finished task leaves them
--    and is never written into them again: a million finished tasks cost the claim nothing.
DROP INDEX IF EXISTS `tasks_claim_idx`;
--> statement-breakpoint
DROP INDEX IF EXISTS `tasks_lease_idx`;
--> statement-breakpoint
CREATE INDEX `tasks_lease_idx` ON `tasks` (`lease_expires_at`) WHERE `status` = 'running';
--> statement-breakpoint
DROP INDEX IF EXISTS `tasks_owner_idx`;
--> statement-breakpoint
CREATE INDEX `tasks_owner_idx` ON `tasks` (`lease_owner`) WHERE `lease_owner` IS NOT NULL;
--> statement-breakpoint
-- 2. Attempt history stays two writes per attempt (a row when it begins, its end on the same row),
--    atomic with the state change, but the end finds its row by (task, attempt) — an index written
--    in claim order — instead of a unique index on a random token, which dirtied a random page per
--    attempt. The token still has to match: rows from before attempt numbers were never reused.
DROP TRIGGER IF EXISTS `tasks_attempt_end`;
--> statement-breakpoint
DROP INDEX IF EXISTS `task_attempts_token_idx`;
--> statement-breakpoint
CREATE TRIGGER `tasks_attempt_end` AFTER UPDATE OF `lease_token` ON `tasks`
WHEN OLD.`lease_token` IS NOT NULL AND NEW.`lease_token` IS NOT OLD.`lease_token`
BEGIN
  UPDATE `task_attempts` SET
    `outcome` = CASE
      WHEN NEW.`status` = 'running' THEN 'expired'
      WHEN NEW.`status` = 'queued' AND NEW.`max_attempts` > OLD.`max_attempts` THEN 'released'
      WHEN NEW.`status` = 'queued' THEN 'retry'
      ELSE NEW.`status`
    END,
    `error_class` = CASE
      WHEN NEW.`status` = 'running' THEN 'lease_expired'
      WHEN NEW.`status` = 'queued' AND NEW.`max_attempts` > OLD.`max_attempts` THEN NULL
      WHEN NEW.`status` IN ('failed', 'queued') THEN NEW.`error_class`
      ELSE NULL
    END,
    `error_message` = CASE
      WHEN NEW.`status` = 'queued' AND NEW.`max_attempts` > OLD.`max_attempts` THEN NULL
      WHEN NEW.`status` IN ('failed', 'queued') THEN NEW.`error_message`
      ELSE NULL
    END,
    `ended_at` = NEW.`updated_at`
  WHERE `task_id` = OLD.`id` AND `attempt` = OLD.`attempt` AND `lease_token` = OLD.`lease_token`;
END;
--> statement-breakpoint
-- 3. Per-run counters, kept by the statements that change a task's state (triggers run inside
--    them), so a run's summary is one row read at any run size. Only a change of status or of
--    correct touches them: heartbeats and progress do not.
CREATE TABLE `run_counts` (
	`run_id` integer PRIMARY KEY NOT NULL,
	`queued` integer DEFAULT 0 NOT NULL,
	`running` integer DEFAULT 0 NOT NULL,
	`succeeded` integer DEFAULT 0 NOT NULL,
	`failed` integer DEFAULT 0 NOT NULL,
	`canceled` integer DEFAULT 0 NOT NULL,
	`correct` integer DEFAULT 0 NOT NULL,
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
INSERT INTO `run_counts` (`run_id`, `queued`, `running`, `succeeded`, `failed`, `canceled`, `correct`)
SELECT r.`id`,
  coalesce(sum(t.`status` = 'queued'), 0), coalesce(sum(t.`status` = 'running'), 0),
  coalesce(sum(t.`status` = 'succeeded'), 0), coalesce(sum(t.`status` = 'failed'), 0),
  coalesce(sum(t.`status` = 'canceled'), 0), coalesce(sum(t.`status` = 'succeeded' AND t.`correct` IS 1), 0)
FROM `runs` r LEFT JOIN `tasks` t ON t.`run_id` = r.`id`
GROUP BY r.`id`;
--> statement-breakpoint
CREATE TRIGGER `run_counts_run_insert` AFTER INSERT ON `runs`
BEGIN
  INSERT OR IGNORE INTO `run_counts` (`run_id`) VALUES (NEW.`id`);
END;
--> statement-breakpoint
CREATE TRIGGER `run_counts_task_insert` AFTER INSERT ON `tasks`
BEGIN
  UPDATE `run_counts` SET
    `queued` = `queued` + (NEW.`status` = 'queued'),
    `running` = `running` + (NEW.`status` = 'running'),
    `succeeded` = `succeeded` + (NEW.`status` = 'succeeded'),
    `failed` = `failed` + (NEW.`status` = 'failed'),
    `canceled` = `canceled` + (NEW.`status` = 'canceled'),
    `correct` = `correct` + (NEW.`status` = 'succeeded' AND NEW.`correct` IS 1)
  WHERE `run_id` = NEW.`run_id`;
END;
--> statement-breakpoint
CREATE TRIGGER `run_counts_task_update` AFTER UPDATE OF `status`, `correct` ON `tasks`
WHEN OLD.`status` IS NOT NEW.`status` OR OLD.`correct` IS NOT NEW.`correct`
BEGIN
  UPDATE `run_counts` SET
    `queued` = `queued` + (NEW.`status` = 'queued') - (OLD.`status` = 'queued'),
    `running` = `running` + (NEW.`status` = 'running') - (OLD.`status` = 'running'),
    `succeeded` = `succeeded` + (NEW.`status` = 'succeeded') - (OLD.`status` = 'succeeded'),
    `failed` = `failed` + (NEW.`status` = 'failed') - (OLD.`status` = 'failed'),
    `canceled` = `canceled` + (NEW.`status` = 'canceled') - (OLD.`status` = 'canceled'),
    `correct` = `correct` + (NEW.`status` = 'succeeded' AND NEW.`correct` IS 1) - (OLD.`status` = 'succeeded' AND OLD.`correct` IS 1)
  WHERE `run_id` = NEW.`run_id`;
END;
--> statement-breakpoint
CREATE TRIGGER `run_counts_task_delete` AFTER DELETE ON `tasks`
BEGIN
  UPDATE `run_counts` SET
    `queued` = `queued` - (OLD.`status` = 'queued'),
    `running` = `running` - (OLD.`status` = 'running'),
    `succeeded` = `succeeded` - (OLD.`status` = 'succeeded'),
    `failed` = `failed` - (OLD.`status` = 'failed'),
    `canceled` = `canceled` - (OLD.`status` = 'canceled'),
    `correct` = `correct` - (OLD.`status` = 'succeeded' AND OLD.`correct` IS 1)
  WHERE `run_id` = OLD.`run_id`;
END;
--> statement-breakpoint
-- 4. Tasks finished in the last minutes (a run's rate and ETA): a range of the run's status
--    index, which now ends in finished_at, however large the run.
DROP INDEX IF EXISTS `tasks_run_status_idx`;
--> statement-breakpoint
CREATE INDEX `tasks_run_status_idx` ON `tasks` (`run_id`, `status`, `finished_at`);
