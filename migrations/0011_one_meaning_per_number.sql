-- One meaning per number, the same in the API, the CLI, the page and these views:
--   finished = succeeded + failed; not_finished = queued + running;
--   missing = failed + canceled (terminal and not succeeded: the ids to re-run);
--   accuracy = correct / finished; score = correct / all tasks;
--   score_excluding_infra = correct / (all tasks - infrastructure failures).
-- The old `accuracy` (correct / all tasks) is now `score`; `accuracy_excluding_infra` is gone.
DROP VIEW IF EXISTS `run_summary`;
--> statement-breakpoint
CREATE VIEW `run_summary` AS
SELECT r.`id` AS `run_id`, r.`name`, r.`benchmark`, r.`created_at`,
  count(o.`task_id`) AS `tasks`,
  coalesce(sum(o.`status` = 'queued'), 0) AS `queued`,
  coalesce(sum(o.`status` = 'running'), 0) AS `running`,
  coalesce(sum(o.`status` = 'succeeded'), 0) AS `succeeded`,
  coalesce(sum(o.`status` = 'failed'), 0) AS `failed`,
  coalesce(sum(o.`status` = 'canceled'), 0) AS `canceled`,
  coalesce(sum(o.`status` IN ('succeeded', 'failed')), 0) AS `finished`,
  coalesce(sum(o.`status` IN ('queued', 'running')), 0) AS `not_finished`,
  coalesce(sum(o.`status` IN ('failed', 'canceled')), 0) AS `missing`,
  coalesce(sum(o.`correct` = 1), 0) AS `correct`,
  coalesce(sum(o.`infra_failure`), 0) AS `infra_failed`,
  round(1.0 * coalesce(sum(o.`correct` = 1), 0) / nullif(sum(o.`status` IN ('succeeded', 'failed')), 0), 4) AS `accuracy`,
  round(1.0 * coalesce(sum(o.`correct` = 1), 0) / nullif(count(o.`task_id`), 0), 4) AS `score`,
  round(1.0 * coalesce(sum(o.`correct` = 1), 0) / nullif(count(o.`task_id`) - coalesce(sum(o.`infra_failure`), 0), 0), 4) AS `score_excluding_infra`,
  avg(CASE WHEN o.`status` IN ('succeeded', 'failed') THEN o.`steps` END) AS `mean_steps`
FROM `runs` r LEFT JOIN `task_outcomes` o ON o.`run_id` = r.`id`
GROUP BY r.`id`;
--> statement-breakpoint
DROP VIEW IF EXISTS `missing_tasks`;
--> statement-breakpoint
-- Terminal tasks that did not succeed (queued and running ones are not finished, not missing).
CREATE VIEW `missing_tasks` AS
SELECT t.`run_id`, t.`external_id`, t.`id` AS `task_id`, t.`status`, t.`attempt`, t.`error_class`, t.`error_message`
FROM `tasks` t WHERE t.`status` IN ('failed', 'canceled');
