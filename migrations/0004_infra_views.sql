-- "Infrastructure failure" is now what the runner decided, not a guess: tasks.error_infra is
-- written by the fenced failure from the runner's retryable verdict (an endpoint still down
-- after its retries, no replica, the deadline, a runner error) and by the lease expiry on
-- the last attempt. Only rows without it (written before the column existed, or by tools
-- that insert tasks directly) fall back to the class list and the retried-before rule; keep
-- the list equal to INFRA_FALLBACK_CLASSES in db/analysis.ts.
DROP VIEW IF EXISTS `run_summary`;
--> statement-breakpoint
DROP VIEW IF EXISTS `task_outcomes`;
--> statement-breakpoint
CREATE VIEW `task_outcomes` AS
SELECT t.`run_id`, t.`id` AS `task_id`, t.`external_id`, t.`status`, t.`correct`, t.`prediction`,
  t.`attempt`, t.`error_class`, t.`error_message`, t.`started_at`, t.`finished_at`,
  CASE WHEN t.`status` = 'failed' AND coalesce(t.`error_infra`,
      t.`error_class` IN ('connection', 'timeout', 'http_408', 'rate_limited', 'server_error', 'stream_error',
        'stream_cut', 'malformed_response', 'deadline', 'no_endpoint', 'runner_error', 'lease_expired',
        'endpoint_unreachable', 'retrieval_unavailable', 'lease_lost', 'connection_refused', 'connection_reset',
        'deadline_exceeded', 'http_5xx', 'endpoint_misconfigured')
      OR EXISTS (SELECT 1 FROM `task_attempts` a WHERE a.`task_id` = t.`id` AND a.`outcome` = 'retry'
        AND a.`error_class` = t.`error_class`))
    THEN 1 ELSE 0 END AS `infra_failure`,
  (SELECT count(*) FROM `tool_calls` c WHERE c.`task_id` = t.`id` AND c.`attempt` = t.`attempt`) AS `steps`
FROM `tasks` t;
--> statement-breakpoint
CREATE VIEW `run_summary` AS
SELECT r.`id` AS `run_id`, r.`name`, r.`benchmark`, r.`created_at`,
  count(o.`task_id`) AS `tasks`,
  coalesce(sum(o.`status` = 'queued'), 0) AS `queued`,
  coalesce(sum(o.`status` = 'running'), 0) AS `running`,
  coalesce(sum(o.`status` = 'succeeded'), 0) AS `succeeded`,
  coalesce(sum(o.`status` = 'failed'), 0) AS `failed`,
  coalesce(sum(o.`status` = 'canceled'), 0) AS `canceled`,
  coalesce(sum(o.`correct` = 1), 0) AS `correct`,
  coalesce(sum(o.`infra_failure`), 0) AS `infra_failed`,
  round(1.0 * coalesce(sum(o.`correct` = 1), 0) / nullif(count(o.`task_id`), 0), 4) AS `accuracy`,
  round(1.0 * coalesce(sum(o.`correct` = 1), 0) / nullif(count(o.`task_id`) - coalesce(sum(o.`infra_failure`), 0), 0), 4) AS `accuracy_excluding_infra`,
  avg(CASE WHEN o.`status` IN ('succeeded', 'failed') THEN o.`steps` END) AS `mean_steps`
FROM `runs` r LEFT JOIN `task_outcomes` o ON o.`run_id` = r.`id`
GROUP BY r.`id`;
