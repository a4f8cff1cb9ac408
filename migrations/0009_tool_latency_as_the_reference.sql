-- Latency per tool as the ToolOrchestra reference defines it (evaluation/analyze_tool_latency.py):
-- the tool's own time, the sum of its components (search = query_llm + retrieval, answer =
-- expert_llm + judge, enhance_reasoning = expert_llm + code_exec), counted when its LLM ran
-- (search: and retrieval ran, as the reference skips a search without `_retrieval_ms`). The
-- orchestrator call that chose a tool is its own row, tool 'orchestrator'. The per-tool and
-- per-component views cover each task's final attempt; tool_step_latency has every attempt
-- with a `final` flag. Endpoint, error and retry views keep every HTTP attempt.
CREATE VIEW `tool_step_latency` AS
WITH steps AS (
  SELECT `run_id`, `task_id`, `attempt`, `step`, `tool`,
    sum(CASE WHEN `component` <> 'orchestrator' THEN `ms` END) AS own,
    max(CASE WHEN `component` = 'orchestrator' THEN `ms` END) AS orch,
    sum(CASE WHEN `component` IN ('query_llm', 'expert_llm') THEN `ms` END) AS llm,
    sum(CASE WHEN `component` = 'retrieval' THEN `ms` END) AS ret
  FROM `latency_components` GROUP BY `run_id`, `task_id`, `attempt`, `step`
)
SELECT s.`run_id`, s.`task_id`, s.`attempt`, s.`step`, s.`tool`, s.own AS `ms`,
  coalesce(s.`attempt` = t.`attempt`, 1) AS `final`
FROM steps s LEFT JOIN `tasks` t ON t.`id` = s.`task_id`
WHERE s.`tool` <> 'orchestrator' AND s.llm > 0 AND (s.`tool` <> 'search' OR s.ret > 0)
UNION ALL
SELECT s.`run_id`, s.`task_id`, s.`attempt`, s.`step`, 'orchestrator', s.orch,
  coalesce(s.`attempt` = t.`attempt`, 1)
FROM steps s LEFT JOIN `tasks` t ON t.`id` = s.`task_id`
WHERE s.orch IS NOT NULL;
--> statement-breakpoint
DROP VIEW IF EXISTS `tool_latency_stats`;
--> statement-breakpoint
CREATE VIEW `tool_latency_stats` AS
WITH ranked AS (
  SELECT `run_id`, `tool`, `ms`,
    row_number() OVER (PARTITION BY `run_id`, `tool` ORDER BY `ms`) AS rn,
    count(*) OVER (PARTITION BY `run_id`, `tool`) AS n
  FROM `tool_step_latency` WHERE `final`
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
DROP VIEW IF EXISTS `component_latency_stats`;
--> statement-breakpoint
CREATE VIEW `component_latency_stats` AS
WITH ranked AS (
  SELECT lc.`run_id`, lc.`tool`, lc.`component`, lc.`ms`, lc.`retries`, lc.`status`,
    row_number() OVER (PARTITION BY lc.`run_id`, lc.`tool`, lc.`component` ORDER BY lc.`ms`) AS rn,
    count(*) OVER (PARTITION BY lc.`run_id`, lc.`tool`, lc.`component`) AS n
  FROM `latency_components` lc LEFT JOIN `tasks` t ON t.`id` = lc.`task_id`
  WHERE coalesce(lc.`attempt` = t.`attempt`, 1)
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
DROP VIEW IF EXISTS `tool_latency_histogram`;
--> statement-breakpoint
-- Ten equal-width bins between each tool's fastest and slowest call; bin 9 includes the max.
CREATE VIEW `tool_latency_histogram` AS
WITH calls AS (SELECT `run_id`, `tool`, `ms` FROM `tool_step_latency` WHERE `final`),
bounds AS (SELECT `run_id`, `tool`, min(`ms`) AS lo, max(`ms`) AS hi, count(*) AS n FROM calls GROUP BY `run_id`, `tool`),
bins(bin) AS (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)),
counts AS (
  SELECT c.`run_id`, c.`tool`,
    CASE WHEN b.hi = b.lo THEN 0 ELSE min(9, CAST((c.`ms` - b.lo) * 10 / (b.hi - b.lo) AS INTEGER)) END AS bin,
    count(*) AS calls
  FROM calls c JOIN bounds b ON b.`run_id` = c.`run_id` AND b.`tool` = c.`tool`
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
DROP VIEW IF EXISTS `tool_latency_log_histogram`;
--> statement-breakpoint
CREATE VIEW `tool_latency_log_histogram` AS
WITH bins(bin, lo_ms, hi_ms, label) AS (VALUES
  (0, 0, 1, '<1ms'), (1, 1, 10, '1-10ms'), (2, 10, 100, '10-100ms'), (3, 100, 1000, '0.1-1s'),
  (4, 1000, 10000, '1-10s'), (5, 10000, 100000, '10-100s'), (6, 100000, NULL, '>=100s')),
calls AS (SELECT `run_id`, `tool`, `ms` FROM `tool_step_latency` WHERE `final`),
tools AS (SELECT `run_id`, `tool`, count(*) AS n FROM calls GROUP BY 1, 2),
counts AS (
  SELECT `run_id`, `tool`,
    CASE WHEN `ms` < 1 THEN 0 WHEN `ms` < 10 THEN 1 WHEN `ms` < 100 THEN 2
      WHEN `ms` < 1000 THEN 3 WHEN `ms` < 10000 THEN 4 WHEN `ms` < 100000 THEN 5 ELSE 6 END AS bin,
    count(*) AS calls
  FROM calls GROUP BY 1, 2, 3
)
SELECT t.`run_id`, t.`tool`, bins.bin AS `bin`, bins.label AS `label`, bins.lo_ms AS `lo_ms`, bins.hi_ms AS `hi_ms`,
  coalesce(k.calls, 0) AS `calls`, round(100.0 * coalesce(k.calls, 0) / t.n, 2) AS `pct`
FROM tools t CROSS JOIN bins
LEFT JOIN counts k ON k.`run_id` = t.`run_id` AND k.`tool` = t.`tool` AND k.bin = bins.bin;
--> statement-breakpoint
-- The report's one grouped pass over a run's components (every step's own time and its
-- orchestrator call) reads only this index.
CREATE INDEX IF NOT EXISTS `latency_components_step_report_idx` ON `latency_components` (`run_id`, `task_id`, `attempt`, `step`, `component`, `ms`, `tool`);
--> statement-breakpoint
-- Component percentiles walk this index in ms order; task_id and attempt at its end keep the
-- walk inside the index when abandoned attempts are left out.
DROP INDEX IF EXISTS `latency_components_report_idx`;
--> statement-breakpoint
CREATE INDEX `latency_components_report_idx` ON `latency_components` (`run_id`, `tool`, `component`, `ms`, `retries`, `status`, `task_id`, `attempt`);
--> statement-breakpoint
-- Tasks retried at least once: the only ones with abandoned attempts.
CREATE INDEX IF NOT EXISTS `tasks_retried_idx` ON `tasks` (`run_id`, `attempt`) WHERE `attempt` > 1;
