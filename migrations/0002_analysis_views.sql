-- Views that make the common questions about a run one short query. Percentiles are
-- nearest-rank: the value at rank ceil(p/100 * n) of the ascending values, computed as
-- (p * n + 99) / 100 in integer arithmetic so no math extension is needed.
-- Latency per tool is the tool call's own duration (tool_calls.duration_ms, invalid steps
-- excluded); latency per component is latency_components.ms.
--
-- Indexes: covering indexes for the report. It reads percentiles by walking them in order
-- and aggregates without touching table rows, which keeps a full report over a million
-- latency rows under a second (table lookups alone cost seconds at that size).
CREATE INDEX IF NOT EXISTS `latency_components_report_idx` ON `latency_components` (`run_id`, `tool`, `component`, `ms`, `retries`, `status`);
--> statement-breakpoint
-- The rare rows (retried, timed out, fell back, failed) get their own small indexes, so
-- counting them never walks the million ordinary ones.
CREATE INDEX IF NOT EXISTS `latency_components_rare_idx` ON `latency_components` (`run_id`, `tool`, `component`, `status`, `retries`, `endpoint`, `backend`) WHERE `status` <> 'ok' OR `retries` > 0;
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS `llm_calls_rare_idx` ON `llm_calls` (`run_id`, `endpoint`, `role`, `model`, `outcome`, `http_attempt`, `finish_reason`) WHERE `outcome` <> 'ok' OR `http_attempt` > 1 OR `finish_reason` = 'length';
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS `latency_components_retrieval_idx` ON `latency_components` (`run_id`, `endpoint`, `backend`, `ms`, `status`, `retries`) WHERE `component` = 'retrieval';
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS `tool_calls_report_idx` ON `tool_calls` (`run_id`, `tool`, `duration_ms`, `status`) WHERE `status` <> 'invalid';
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS `tool_calls_run_duration_idx` ON `tool_calls` (`run_id`, `duration_ms`, `status`) WHERE `status` <> 'invalid';
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS `tool_calls_errors_idx` ON `tool_calls` (`run_id`, `tool`, `status`, `error_class`) WHERE `status` <> 'ok';
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS `llm_calls_report_idx` ON `llm_calls` (`run_id`, `endpoint`, `role`, `model`, `total_ms`, `outcome`, `http_attempt`, `ttft_ms`, `prompt_tokens`, `completion_tokens`, `finish_reason`);
--> statement-breakpoint
-- One row per latency component of a tool call, with the task's dataset id: where ad-hoc
-- analysis starts.
CREATE VIEW `tool_latency` AS
SELECT lc.`run_id`, lc.`task_id`, t.`external_id`, lc.`attempt`, lc.`step`, lc.`tool`,
  coalesce(lc.`model`, tc.`model`) AS `model`, lc.`component`, lc.`ms`, lc.`retries`,
  lc.`backend`, lc.`endpoint`, lc.`status`, tc.`status` AS `call_status`, lc.`started_at`
FROM `latency_components` lc
LEFT JOIN `tasks` t ON t.`id` = lc.`task_id`
LEFT JOIN `tool_calls` tc ON tc.`task_id` = lc.`task_id` AND tc.`attempt` = lc.`attempt` AND tc.`step` = lc.`step`;
--> statement-breakpoint
CREATE VIEW `tool_latency_stats` AS
WITH ranked AS (
  SELECT `run_id`, `tool`, `duration_ms` AS ms,
    row_number() OVER (PARTITION BY `run_id`, `tool` ORDER BY `duration_ms`) AS rn,
    count(*) OVER (PARTITION BY `run_id`, `tool`) AS n
  FROM `tool_calls` WHERE `status` <> 'invalid'
)
SELECT `run_id`, `tool`, count(*) AS `calls`, avg(ms) AS `mean_ms`, min(ms) AS `min_ms`,
  max(CASE WHEN rn = (50 * n + 99) / 100 THEN ms END) AS `p50_ms`,
  max(CASE WHEN rn = (80 * n + 99) / 100 THEN ms END) AS `p80_ms`,
  max(CASE WHEN rn = (90 * n + 99) / 100 THEN ms END) AS `p90_ms`,
  max(CASE WHEN rn = (95 * n + 99) / 100 THEN ms END) AS `p95_ms`,
  max(CASE WHEN rn = (99 * n + 99) / 100 THEN ms END) AS `p99_ms`,
  max(ms) AS `max_ms`,
  avg(CASE WHEN ms < 5000 THEN 1.0 ELSE 0.0 END) AS `under_5s`
FROM ranked GROUP BY `run_id`, `tool`;
--> statement-breakpoint
CREATE VIEW `component_latency_stats` AS
WITH ranked AS (
  SELECT `run_id`, `tool`, `component`, `ms`, `retries`, `status`,
    row_number() OVER (PARTITION BY `run_id`, `tool`, `component` ORDER BY `ms`) AS rn,
    count(*) OVER (PARTITION BY `run_id`, `tool`, `component`) AS n
  FROM `latency_components`
)
SELECT `run_id`, `tool`, `component`, count(*) AS `calls`, avg(ms) AS `mean_ms`, min(ms) AS `min_ms`,
  max(CASE WHEN rn = (50 * n + 99) / 100 THEN ms END) AS `p50_ms`,
  max(CASE WHEN rn = (80 * n + 99) / 100 THEN ms END) AS `p80_ms`,
  max(CASE WHEN rn = (90 * n + 99) / 100 THEN ms END) AS `p90_ms`,
  max(CASE WHEN rn = (95 * n + 99) / 100 THEN ms END) AS `p95_ms`,
  max(CASE WHEN rn = (99 * n + 99) / 100 THEN ms END) AS `p99_ms`,
  max(ms) AS `max_ms`,
  avg(CASE WHEN ms < 5000 THEN 1.0 ELSE 0.0 END) AS `under_5s`,
  sum(`retries`) AS `retries`
FROM ranked GROUP BY `run_id`, `tool`, `component`;
--> statement-breakpoint
-- Ten equal-width bins between each tool's fastest and slowest call; bin 9 includes the max.
CREATE VIEW `tool_latency_histogram` AS
WITH bounds AS (
  SELECT `run_id`, `tool`, min(`duration_ms`) AS lo, max(`duration_ms`) AS hi, count(*) AS n
  FROM `tool_calls` WHERE `status` <> 'invalid' GROUP BY `run_id`, `tool`
),
bins(bin) AS (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)),
counts AS (
  SELECT c.`run_id`, c.`tool`,
    CASE WHEN b.hi = b.lo THEN 0 ELSE min(9, CAST((c.`duration_ms` - b.lo) * 10 / (b.hi - b.lo) AS INTEGER)) END AS bin,
    count(*) AS calls
  FROM `tool_calls` c JOIN bounds b ON b.`run_id` = c.`run_id` AND b.`tool` = c.`tool`
  WHERE c.`status` <> 'invalid'
  GROUP BY 1, 2, 3
)
SELECT b.`run_id`, b.`tool`, bins.bin AS `bin`,
  b.lo + (b.hi - b.lo) * bins.bin / 10.0 AS `lo_ms`,
  b.lo + (b.hi - b.lo) * (bins.bin + 1) / 10.0 AS `hi_ms`,
  coalesce(k.calls, 0) AS `calls`,
  round(100.0 * coalesce(k.calls, 0) / b.n, 2) AS `pct`
FROM bounds b CROSS JOIN bins
LEFT JOIN counts k ON k.`run_id` = b.`run_id` AND k.`tool` = b.`tool` AND k.bin = bins.bin;
--> statement-breakpoint
-- Fixed decade bins (<1 ms, 1-10 ms, ..., >=100 s): the same edges for every tool and run,
-- so two runs' histograms line up.
CREATE VIEW `tool_latency_log_histogram` AS
WITH bins(bin, lo_ms, hi_ms, label) AS (VALUES
  (0, 0, 1, '<1ms'), (1, 1, 10, '1-10ms'), (2, 10, 100, '10-100ms'), (3, 100, 1000, '0.1-1s'),
  (4, 1000, 10000, '1-10s'), (5, 10000, 100000, '10-100s'), (6, 100000, NULL, '>=100s')),
tools AS (SELECT `run_id`, `tool`, count(*) AS n FROM `tool_calls` WHERE `status` <> 'invalid' GROUP BY 1, 2),
counts AS (
  SELECT `run_id`, `tool`,
    CASE WHEN `duration_ms` < 1 THEN 0 WHEN `duration_ms` < 10 THEN 1 WHEN `duration_ms` < 100 THEN 2
      WHEN `duration_ms` < 1000 THEN 3 WHEN `duration_ms` < 10000 THEN 4 WHEN `duration_ms` < 100000 THEN 5 ELSE 6 END AS bin,
    count(*) AS calls
  FROM `tool_calls` WHERE `status` <> 'invalid' GROUP BY 1, 2, 3
)
SELECT t.`run_id`, t.`tool`, bins.bin AS `bin`, bins.label AS `label`, bins.lo_ms AS `lo_ms`, bins.hi_ms AS `hi_ms`,
  coalesce(k.calls, 0) AS `calls`, round(100.0 * coalesce(k.calls, 0) / t.n, 2) AS `pct`
FROM tools t CROSS JOIN bins
LEFT JOIN counts k ON k.`run_id` = t.`run_id` AND k.`tool` = t.`tool` AND k.bin = bins.bin;
--> statement-breakpoint
-- Per endpoint: LLM HTTP attempts (every retry is a row) and retrieval calls. An error is an
-- attempt that did not succeed; a retrieval that was served by its fallback counts against
-- nothing here (the fallback endpoint is the one recorded).
CREATE VIEW `endpoint_latency` AS
WITH calls AS (
  SELECT `run_id`, 'llm' AS kind, `role` AS component, `model` AS name, `endpoint`, `total_ms` AS ms,
    CASE WHEN `outcome` = 'ok' THEN 0 ELSE 1 END AS is_error,
    CASE WHEN `outcome` LIKE '%timeout%' THEN 1 ELSE 0 END AS is_timeout,
    CASE WHEN `http_attempt` > 1 THEN 1 ELSE 0 END AS is_retry,
    `ttft_ms` AS ttft_ms
  FROM `llm_calls`
  UNION ALL
  SELECT `run_id`, 'retrieval', `component`, `backend`, `endpoint`, `ms`,
    CASE WHEN `status` IN ('ok', 'fallback') THEN 0 ELSE 1 END,
    CASE WHEN `status` = 'timeout' THEN 1 ELSE 0 END,
    CASE WHEN `retries` > 0 THEN 1 ELSE 0 END,
    NULL
  FROM `latency_components` WHERE `component` = 'retrieval' AND `endpoint` IS NOT NULL
),
ranked AS (
  SELECT *, row_number() OVER (PARTITION BY `run_id`, kind, component, name, `endpoint` ORDER BY ms) AS rn,
    count(*) OVER (PARTITION BY `run_id`, kind, component, name, `endpoint`) AS n
  FROM calls
)
SELECT `run_id`, kind AS `kind`, component AS `component`, name AS `name`, `endpoint`,
  count(*) AS `calls`, sum(is_error) AS `errors`, round(avg(is_error), 4) AS `error_rate`,
  sum(is_timeout) AS `timeouts`, sum(is_retry) AS `retries`,
  avg(ms) AS `mean_ms`,
  max(CASE WHEN rn = (50 * n + 99) / 100 THEN ms END) AS `p50_ms`,
  max(CASE WHEN rn = (90 * n + 99) / 100 THEN ms END) AS `p90_ms`,
  max(CASE WHEN rn = (95 * n + 99) / 100 THEN ms END) AS `p95_ms`,
  max(CASE WHEN rn = (99 * n + 99) / 100 THEN ms END) AS `p99_ms`,
  max(ms) AS `max_ms`, avg(ttft_ms) AS `mean_ttft_ms`
FROM ranked GROUP BY `run_id`, kind, component, name, `endpoint`;
--> statement-breakpoint
-- Tool calls that did not end 'ok', by tool, status and error class.
CREATE VIEW `error_breakdown` AS
SELECT c.`run_id`, c.`tool`, c.`status`, coalesce(c.`error_class`, c.`status`) AS `error_class`,
  count(*) AS `calls`, count(DISTINCT c.`task_id`) AS `tasks`,
  round(1.0 * count(*) / (SELECT count(*) FROM `tool_calls` a WHERE a.`run_id` = c.`run_id` AND a.`tool` = c.`tool`), 4) AS `share_of_tool_calls`
FROM `tool_calls` c WHERE c.`status` <> 'ok'
GROUP BY c.`run_id`, c.`tool`, c.`status`, coalesce(c.`error_class`, c.`status`);
--> statement-breakpoint
-- Per tool and component: how many calls retried, timed out, fell back or found the
-- retriever unavailable.
CREATE VIEW `retry_summary` AS
SELECT `run_id`, `tool`, `component`, count(*) AS `calls`,
  sum(CASE WHEN `retries` > 0 THEN 1 ELSE 0 END) AS `calls_with_retries`,
  sum(`retries`) AS `retries`,
  sum(CASE WHEN `status` = 'timeout' THEN 1 ELSE 0 END) AS `timeouts`,
  sum(CASE WHEN `status` = 'fallback' THEN 1 ELSE 0 END) AS `fallbacks`,
  sum(CASE WHEN `status` = 'unavailable' THEN 1 ELSE 0 END) AS `unavailable`,
  sum(CASE WHEN `status` NOT IN ('ok', 'fallback') THEN 1 ELSE 0 END) AS `errors`
FROM `latency_components` GROUP BY `run_id`, `tool`, `component`;
--> statement-breakpoint
-- One row per task with its outcome. An infrastructure failure is a failed task whose
-- class is a known infrastructure class, or whose class was already retried on an earlier
-- attempt (the runner retries only infrastructure failures).
CREATE VIEW `task_outcomes` AS
SELECT t.`run_id`, t.`id` AS `task_id`, t.`external_id`, t.`status`, t.`correct`, t.`prediction`,
  t.`attempt`, t.`error_class`, t.`error_message`, t.`started_at`, t.`finished_at`,
  CASE WHEN t.`status` = 'failed' AND (
      t.`error_class` IN ('endpoint_unreachable', 'retrieval_unavailable', 'lease_expired', 'lease_lost',
        'connection_refused', 'connection_reset', 'timeout', 'deadline_exceeded', 'http_5xx', 'rate_limited',
        'server_error', 'stream_cut', 'endpoint_misconfigured')
      OR EXISTS (SELECT 1 FROM `task_attempts` a WHERE a.`task_id` = t.`id` AND a.`outcome` = 'retry'
        AND a.`error_class` = t.`error_class`))
    THEN 1 ELSE 0 END AS `infra_failure`,
  (SELECT count(*) FROM `tool_calls` c WHERE c.`task_id` = t.`id` AND c.`attempt` = t.`attempt`) AS `steps`
FROM `tasks` t;
--> statement-breakpoint
-- Per run: tasks by status and accuracy two ways: over all tasks, and over the tasks that
-- did not fail on infrastructure (what the model would have scored on healthy hardware).
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
--> statement-breakpoint
CREATE VIEW `run_tokens` AS
SELECT `run_id`, `role`, `model`, count(*) AS `calls`,
  coalesce(sum(`prompt_tokens`), 0) AS `prompt_tokens`,
  coalesce(sum(`completion_tokens`), 0) AS `completion_tokens`,
  coalesce(sum(`prompt_tokens`), 0) + coalesce(sum(`completion_tokens`), 0) AS `total_tokens`,
  sum(CASE WHEN `finish_reason` = 'length' THEN 1 ELSE 0 END) AS `truncated`
FROM `llm_calls` GROUP BY `run_id`, `role`, `model`;
--> statement-breakpoint
-- Every task that has not succeeded: the ids to re-run, with why.
CREATE VIEW `missing_tasks` AS
SELECT t.`run_id`, t.`external_id`, t.`id` AS `task_id`, t.`status`, t.`attempt`, t.`error_class`, t.`error_message`
FROM `tasks` t WHERE t.`status` <> 'succeeded';
