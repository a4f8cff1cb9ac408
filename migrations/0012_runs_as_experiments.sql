-- Runs as experiments (issue 14). A run may be derived from another (parent_run_id, and each
-- task its parent_task_id: the task it re-runs), belong to a sweep (sweep_id with the values
-- that sweep point varies), repeat each question (tasks.repeat 0..K-1 beside the dataset id,
-- so the same id may appear K times in one run), and carry the two claim controls: priority
-- (higher first, FIFO within a priority) and max_concurrency (at most N running at once).
CREATE TABLE `sweeps` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`benchmark` text NOT NULL,
	`base_config` text NOT NULL,
	`vary` text NOT NULL,
	`repeats` integer DEFAULT 1 NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE `runs` ADD `parent_run_id` integer;
--> statement-breakpoint
ALTER TABLE `runs` ADD `sweep_id` integer;
--> statement-breakpoint
ALTER TABLE `runs` ADD `sweep_values` text;
--> statement-breakpoint
ALTER TABLE `runs` ADD `repeats` integer DEFAULT 1 NOT NULL;
--> statement-breakpoint
ALTER TABLE `runs` ADD `priority` integer DEFAULT 0 NOT NULL;
--> statement-breakpoint
ALTER TABLE `runs` ADD `max_concurrency` integer;
--> statement-breakpoint
ALTER TABLE `tasks` ADD `parent_task_id` integer;
--> statement-breakpoint
ALTER TABLE `tasks` ADD `repeat` integer DEFAULT 0 NOT NULL;
--> statement-breakpoint
DROP INDEX IF EXISTS `tasks_run_external_idx`;
--> statement-breakpoint
CREATE UNIQUE INDEX `tasks_run_external_idx` ON `tasks` (`run_id`,`external_id`,`repeat`);
--> statement-breakpoint
CREATE INDEX `runs_parent_idx` ON `runs` (`parent_run_id`);
--> statement-breakpoint
CREATE INDEX `runs_sweep_idx` ON `runs` (`sweep_id`);
--> statement-breakpoint
CREATE INDEX `tasks_parent_idx` ON `tasks` (`parent_task_id`);
--> statement-breakpoint
-- The claim's lane per run (db/queue.ts claimTasks): a run's queued tasks in the order they
-- became available, so priority and max_concurrency cost an index walk per run with queued
-- work and never a walk over another run's backlog. Partial: a task leaves it when claimed.
CREATE INDEX IF NOT EXISTS `tasks_run_queue_idx` ON `tasks` (`run_id`,`available_at`,`id`) WHERE `status` = 'queued';
