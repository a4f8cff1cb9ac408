-- llm_calls gets a natural key (a step calls each role at most once; every HTTP try of that
-- call has its own number), so a re-sent row batch is ignored instead of counted twice.
-- Duplicates already written by re-sent batches go first, keeping the earliest copy, or the
-- unique index could not be built. Rows outside a task (null task_id) are left alone.
DELETE FROM `llm_calls` WHERE `task_id` IS NOT NULL AND `id` NOT IN (
  SELECT min(`id`) FROM `llm_calls` WHERE `task_id` IS NOT NULL
  GROUP BY `task_id`, `attempt`, `step`, `role`, `http_attempt`
);--> statement-breakpoint
DROP INDEX `llm_calls_task_idx`;--> statement-breakpoint
CREATE UNIQUE INDEX `llm_calls_attempt_key_idx` ON `llm_calls` (`task_id`,`attempt`,`step`,`role`,`http_attempt`);--> statement-breakpoint
ALTER TABLE `tasks` ADD `error_infra` integer;
