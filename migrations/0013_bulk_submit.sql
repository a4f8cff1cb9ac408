-- Submitting a run (issue 12): 100k tasks went through the per-row counter trigger, one
-- UPDATE of run_counts for every inserted task. db/runs.ts createRun now adds its queued
-- tasks to the counters with one UPDATE in the same batch as the inserts, so the trigger
-- only counts inserts of any other status (imports, test fixtures that insert finished
-- tasks). The counters mean what they meant: existing databases need no recount.
-- Any other code that inserts queued tasks must add them to run_counts itself.
DROP TRIGGER IF EXISTS `run_counts_task_insert`;
--> statement-breakpoint
CREATE TRIGGER `run_counts_task_insert` AFTER INSERT ON `tasks`
WHEN NEW.`status` IS NOT 'queued'
BEGIN
  UPDATE `run_counts` SET
    `running` = `running` + (NEW.`status` = 'running'),
    `succeeded` = `succeeded` + (NEW.`status` = 'succeeded'),
    `failed` = `failed` + (NEW.`status` = 'failed'),
    `canceled` = `canceled` + (NEW.`status` = 'canceled'),
    `correct` = `correct` + (NEW.`status` = 'succeeded' AND NEW.`correct` IS 1)
  WHERE `run_id` = NEW.`run_id`;
END;
--> statement-breakpoint
-- Only derived runs have a parent task, and nothing looks tasks up by it except such runs:
-- a partial index leaves every ordinary submit with one index fewer to write.
DROP INDEX IF EXISTS `tasks_parent_idx`;
--> statement-breakpoint
CREATE INDEX `tasks_parent_idx` ON `tasks` (`parent_task_id`) WHERE `parent_task_id` IS NOT NULL;
