-- The report over a million latency rows without a full pass per question (issue #12).
--
-- latency_steps: one row per (task, attempt, step), the reference's per-step numbers
-- (migration 0009's tool_step_latency before its final-attempt filter): own = sum of the
-- step's non-orchestrator components, orch = its orchestrator call, llm / ret the parts that
-- decide whether the step counts. `ms` is the tool's own time when the step counts (its LLM
-- ran; search: and retrieval ran; never tool 'orchestrator'), NULL otherwise. Kept by the
-- triggers below inside the statements that write latency_components, so every value is
-- the same row-for-row as the grouped pass it replaces; a sorted partial index per (run, tool)
-- makes each nearest-rank percentile a short index walk. Which attempt is final is still decided at read
-- time (tasks.attempt), so a retried task needs no write here.
CREATE TABLE `latency_steps` (
	`task_id` integer NOT NULL,
	`attempt` integer NOT NULL,
	`step` integer NOT NULL,
	`run_id` integer NOT NULL,
	`tool` text NOT NULL,
	`own` real,
	`orch` real,
	`llm` real,
	`ret` real,
	-- written with the others rather than GENERATED: SQLite does not read a generated
	-- column from an index, so every walk would visit the table
	`ms` real,
	PRIMARY KEY (`task_id`, `attempt`, `step`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `latency_steps` (`task_id`, `attempt`, `step`, `run_id`, `tool`, `own`, `orch`, `llm`, `ret`, `ms`)
SELECT *, CASE WHEN `tool` <> 'orchestrator' AND `llm` > 0 AND (`tool` <> 'search' OR `ret` > 0) THEN `own` END
FROM (SELECT `task_id`, `attempt`, `step`, `run_id`, `tool`,
    sum(CASE WHEN `component` <> 'orchestrator' THEN `ms` END) AS `own`,
    max(CASE WHEN `component` = 'orchestrator' THEN `ms` END) AS `orch`,
    sum(CASE WHEN `component` IN ('query_llm', 'expert_llm') THEN `ms` END) AS `llm`,
    sum(CASE WHEN `component` = 'retrieval' THEN `ms` END) AS `ret`
  FROM `latency_components` GROUP BY `task_id`, `attempt`, `step`);
--> statement-breakpoint
CREATE INDEX `latency_steps_tool_ms_idx` ON `latency_steps` (`run_id`, `tool`, `ms`, `task_id`, `attempt`) WHERE `ms` IS NOT NULL;
--> statement-breakpoint
-- A component adds itself to its step (the first one creates it). Rows that already exist are
-- not re-inserted (the writers use ON CONFLICT DO NOTHING, which fires no trigger). `ms` (indexed)
-- and `orch` are written only when their value changes: an UPDATE naming an indexed column
-- rewrites that index's entry even when the value stays, and those random index pages were
-- most of this trigger's cost.
CREATE TRIGGER `latency_steps_insert` AFTER INSERT ON `latency_components` BEGIN
  INSERT INTO `latency_steps` (`task_id`, `attempt`, `step`, `run_id`, `tool`, `own`, `orch`, `llm`, `ret`, `ms`)
  VALUES (new.`task_id`, new.`attempt`, new.`step`, new.`run_id`, new.`tool`,
    CASE WHEN new.`component` <> 'orchestrator' THEN new.`ms` END,
    CASE WHEN new.`component` = 'orchestrator' THEN new.`ms` END,
    CASE WHEN new.`component` IN ('query_llm', 'expert_llm') THEN new.`ms` END,
    CASE WHEN new.`component` = 'retrieval' THEN new.`ms` END,
    -- one component alone counts only as the LLM of a tool other than search
    CASE WHEN new.`tool` NOT IN ('orchestrator', 'search') AND new.`component` IN ('query_llm', 'expert_llm') AND new.`ms` > 0 THEN new.`ms` END)
  -- a sum over NULLs is NULL, as sum() over no rows: coalesce(a + b, a, b)
  ON CONFLICT (`task_id`, `attempt`, `step`) DO UPDATE SET
    `own` = coalesce(`own` + excluded.`own`, `own`, excluded.`own`),
    `llm` = coalesce(`llm` + excluded.`llm`, `llm`, excluded.`llm`),
    `ret` = coalesce(`ret` + excluded.`ret`, `ret`, excluded.`ret`);
  UPDATE `latency_steps` SET `orch` = new.`ms`
  WHERE new.`component` = 'orchestrator' AND `task_id` = new.`task_id` AND `attempt` = new.`attempt` AND `step` = new.`step`
    AND (`orch` IS NULL OR new.`ms` > `orch`);
  UPDATE `latency_steps` SET `ms` = CASE WHEN `tool` <> 'orchestrator' AND `llm` > 0 AND (`tool` <> 'search' OR `ret` > 0) THEN `own` END
  WHERE new.`component` <> 'orchestrator' AND `task_id` = new.`task_id` AND `attempt` = new.`attempt` AND `step` = new.`step`
    AND `ms` IS NOT (CASE WHEN `tool` <> 'orchestrator' AND `llm` > 0 AND (`tool` <> 'search' OR `ret` > 0) THEN `own` END);
END;
--> statement-breakpoint
-- Deletes and updates are rare (a migration fixing rows, a cleanup): the step is recomputed
-- from what is left of it.
CREATE TRIGGER `latency_steps_delete` AFTER DELETE ON `latency_components` BEGIN
  DELETE FROM `latency_steps` WHERE `task_id` = old.`task_id` AND `attempt` = old.`attempt` AND `step` = old.`step`;
  INSERT INTO `latency_steps` (`task_id`, `attempt`, `step`, `run_id`, `tool`, `own`, `orch`, `llm`, `ret`, `ms`)
  SELECT *, CASE WHEN `tool` <> 'orchestrator' AND `llm` > 0 AND (`tool` <> 'search' OR `ret` > 0) THEN `own` END
  FROM (SELECT `task_id`, `attempt`, `step`, `run_id`, `tool`,
    sum(CASE WHEN `component` <> 'orchestrator' THEN `ms` END) AS `own`,
    max(CASE WHEN `component` = 'orchestrator' THEN `ms` END) AS `orch`,
    sum(CASE WHEN `component` IN ('query_llm', 'expert_llm') THEN `ms` END) AS `llm`,
    sum(CASE WHEN `component` = 'retrieval' THEN `ms` END) AS `ret`
  FROM `latency_components` WHERE `task_id` = old.`task_id` AND `attempt` = old.`attempt` AND `step` = old.`step`
  GROUP BY `task_id`, `attempt`, `step`);
END;
--> statement-breakpoint
CREATE TRIGGER `latency_steps_update` AFTER UPDATE OF `run_id`, `task_id`, `attempt`, `step`, `tool`, `component`, `ms` ON `latency_components` BEGIN
  DELETE FROM `latency_steps` WHERE (`task_id` = old.`task_id` AND `attempt` = old.`attempt` AND `step` = old.`step`)
    OR (`task_id` = new.`task_id` AND `attempt` = new.`attempt` AND `step` = new.`step`);
  INSERT INTO `latency_steps` (`task_id`, `attempt`, `step`, `run_id`, `tool`, `own`, `orch`, `llm`, `ret`, `ms`)
  SELECT *, CASE WHEN `tool` <> 'orchestrator' AND `llm` > 0 AND (`tool` <> 'search' OR `ret` > 0) THEN `own` END
  FROM (SELECT `task_id`, `attempt`, `step`, `run_id`, `tool`,
    sum(CASE WHEN `component` <> 'orchestrator' THEN `ms` END) AS `own`,
    max(CASE WHEN `component` = 'orchestrator' THEN `ms` END) AS `orch`,
    sum(CASE WHEN `component` IN ('query_llm', 'expert_llm') THEN `ms` END) AS `llm`,
    sum(CASE WHEN `component` = 'retrieval' THEN `ms` END) AS `ret`
  FROM `latency_components` WHERE (`task_id` = old.`task_id` AND `attempt` = old.`attempt` AND `step` = old.`step`)
    OR (`task_id` = new.`task_id` AND `attempt` = new.`attempt` AND `step` = new.`step`)
  GROUP BY `task_id`, `attempt`, `step`);
END;
--> statement-breakpoint
-- llm_call_buckets: llm_calls (every HTTP attempt, as the endpoint and token tables count
-- them) by (run, endpoint, role, model) and value bucket of total_ms (see the buckets below):
-- the endpoint's percentiles are walks inside one bucket, its counts and token sums are
-- sums over its buckets.
CREATE TABLE `llm_call_buckets` (
	`run_id` integer NOT NULL,
	`endpoint` text NOT NULL,
	`role` text NOT NULL,
	`model` text NOT NULL,
	`bucket` integer NOT NULL,
	`calls` integer NOT NULL,
	`total_ms` real NOT NULL,
	`ttft_ms` real NOT NULL,
	`ttft_calls` integer NOT NULL,
	`prompt_tokens` integer NOT NULL,
	`completion_tokens` integer NOT NULL,
	`errors` integer NOT NULL,
	`timeouts` integer NOT NULL,
	`retries` integer NOT NULL,
	`truncated` integer NOT NULL,
	PRIMARY KEY (`run_id`, `endpoint`, `role`, `model`, `bucket`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `llm_call_buckets`
SELECT `run_id`, `endpoint`, `role`, `model`, CASE WHEN `total_ms` < 1 THEN 0 ELSE length(CAST(CAST(`total_ms` AS INTEGER) AS TEXT)) * 100 + CAST(substr(CAST(CAST(`total_ms` AS INTEGER) AS TEXT), 1, 2) AS INTEGER) END, count(*), total(`total_ms`), total(`ttft_ms`), count(`ttft_ms`),
    total(`prompt_tokens`), total(`completion_tokens`), sum(`outcome` <> 'ok'), sum(instr(`outcome`, 'timeout') > 0),
    sum(`http_attempt` > 1), sum(coalesce(`finish_reason` = 'length', 0))
FROM `llm_calls` WHERE `run_id` IS NOT NULL GROUP BY 1, 2, 3, 4, 5;
--> statement-breakpoint
CREATE TRIGGER `llm_call_buckets_insert` AFTER INSERT ON `llm_calls` WHEN new.`run_id` IS NOT NULL BEGIN
  INSERT INTO `llm_call_buckets` VALUES (new.`run_id`, new.`endpoint`, new.`role`, new.`model`, CASE WHEN new.`total_ms` < 1 THEN 0 ELSE length(CAST(CAST(new.`total_ms` AS INTEGER) AS TEXT)) * 100 + CAST(substr(CAST(CAST(new.`total_ms` AS INTEGER) AS TEXT), 1, 2) AS INTEGER) END, 1, new.`total_ms`,
    coalesce(new.`ttft_ms`, 0), new.`ttft_ms` IS NOT NULL, coalesce(new.`prompt_tokens`, 0), coalesce(new.`completion_tokens`, 0),
    new.`outcome` <> 'ok', instr(new.`outcome`, 'timeout') > 0, new.`http_attempt` > 1, coalesce(new.`finish_reason` = 'length', 0))
  ON CONFLICT (`run_id`, `endpoint`, `role`, `model`, `bucket`) DO UPDATE SET
    `calls` = `calls` + 1, `total_ms` = `total_ms` + excluded.`total_ms`, `ttft_ms` = `ttft_ms` + excluded.`ttft_ms`,
    `ttft_calls` = `ttft_calls` + excluded.`ttft_calls`, `prompt_tokens` = `prompt_tokens` + excluded.`prompt_tokens`,
    `completion_tokens` = `completion_tokens` + excluded.`completion_tokens`, `errors` = `errors` + excluded.`errors`,
    `timeouts` = `timeouts` + excluded.`timeouts`, `retries` = `retries` + excluded.`retries`, `truncated` = `truncated` + excluded.`truncated`;
END;
--> statement-breakpoint
-- Rare (a cleanup, a migration fixing rows): the endpoint's buckets are recomputed from its rows.
CREATE TRIGGER `llm_call_buckets_delete` AFTER DELETE ON `llm_calls` WHEN old.`run_id` IS NOT NULL BEGIN
  DELETE FROM `llm_call_buckets` WHERE `run_id` = old.`run_id` AND `endpoint` = old.`endpoint` AND `role` = old.`role` AND `model` = old.`model`;
  INSERT INTO `llm_call_buckets`
  SELECT `run_id`, `endpoint`, `role`, `model`, CASE WHEN `total_ms` < 1 THEN 0 ELSE length(CAST(CAST(`total_ms` AS INTEGER) AS TEXT)) * 100 + CAST(substr(CAST(CAST(`total_ms` AS INTEGER) AS TEXT), 1, 2) AS INTEGER) END, count(*), total(`total_ms`), total(`ttft_ms`), count(`ttft_ms`),
    total(`prompt_tokens`), total(`completion_tokens`), sum(`outcome` <> 'ok'), sum(instr(`outcome`, 'timeout') > 0),
    sum(`http_attempt` > 1), sum(coalesce(`finish_reason` = 'length', 0))
  FROM `llm_calls` WHERE `run_id` = old.`run_id` AND `endpoint` = old.`endpoint` AND `role` = old.`role` AND `model` = old.`model` GROUP BY 1, 2, 3, 4, 5;
END;
--> statement-breakpoint
CREATE TRIGGER `llm_call_buckets_update` AFTER UPDATE ON `llm_calls` BEGIN
  DELETE FROM `llm_call_buckets` WHERE (`run_id` = old.`run_id` AND `endpoint` = old.`endpoint` AND `role` = old.`role` AND `model` = old.`model`) OR (`run_id` = new.`run_id` AND `endpoint` = new.`endpoint` AND `role` = new.`role` AND `model` = new.`model`);
  INSERT INTO `llm_call_buckets`
  SELECT `run_id`, `endpoint`, `role`, `model`, CASE WHEN `total_ms` < 1 THEN 0 ELSE length(CAST(CAST(`total_ms` AS INTEGER) AS TEXT)) * 100 + CAST(substr(CAST(CAST(`total_ms` AS INTEGER) AS TEXT), 1, 2) AS INTEGER) END, count(*), total(`total_ms`), total(`ttft_ms`), count(`ttft_ms`),
    total(`prompt_tokens`), total(`completion_tokens`), sum(`outcome` <> 'ok'), sum(instr(`outcome`, 'timeout') > 0),
    sum(`http_attempt` > 1), sum(coalesce(`finish_reason` = 'length', 0))
  FROM `llm_calls` WHERE (`run_id` = old.`run_id` AND `endpoint` = old.`endpoint` AND `role` = old.`role` AND `model` = old.`model`) OR (`run_id` = new.`run_id` AND `endpoint` = new.`endpoint` AND `role` = new.`role` AND `model` = new.`model`) GROUP BY 1, 2, 3, 4, 5;
END;
--> statement-breakpoint
-- Value buckets: how many values of a distribution fall in each of ~90 buckets per decade
-- (bucket = digits of the integer part * 100 + its first two digits; 0 below 1 ms; the same
-- function as db/analysis.ts bucketOf, and monotonic in the value). With them the report
-- finds which bucket holds a nearest-rank percentile and walks the sorted index only inside
-- that bucket from its lower edge: the value is still read from the index, so percentiles
-- stay exact, but a walk touches one bucket instead of half the run. Counts, sums, the
-- share under 5 s and the decade histogram are sums over buckets (5 s and every power of ten
-- are bucket edges). Every attempt is counted: the report uses them only when no task of
-- the run has rows from an abandoned attempt, and walks the filtered index otherwise.
--
-- latency_step_buckets: the per-tool own times (latency_steps.ms) by tool. The orchestrator's
-- calls (latency_steps.orch) are the 'orchestrator' components of latency_component_buckets,
-- and "all tools" is the sum of the tools' buckets: neither needs an index or buckets here.
CREATE TABLE `latency_step_buckets` (
	`run_id` integer NOT NULL,
	`tool` text NOT NULL,
	`bucket` integer NOT NULL,
	`calls` integer NOT NULL,
	`total_ms` real NOT NULL,
	PRIMARY KEY (`run_id`, `tool`, `bucket`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `latency_step_buckets`
SELECT `run_id`, `tool`, CASE WHEN `ms` < 1 THEN 0 ELSE length(CAST(CAST(`ms` AS INTEGER) AS TEXT)) * 100 + CAST(substr(CAST(CAST(`ms` AS INTEGER) AS TEXT), 1, 2) AS INTEGER) END, count(*), total(`ms`) FROM `latency_steps` WHERE `ms` IS NOT NULL GROUP BY 1, 2, 3;
--> statement-breakpoint
CREATE TRIGGER `latency_step_buckets_insert` AFTER INSERT ON `latency_steps` BEGIN
  INSERT INTO `latency_step_buckets` SELECT new.`run_id`, new.`tool`, CASE WHEN new.`ms` < 1 THEN 0 ELSE length(CAST(CAST(new.`ms` AS INTEGER) AS TEXT)) * 100 + CAST(substr(CAST(CAST(new.`ms` AS INTEGER) AS TEXT), 1, 2) AS INTEGER) END, 1, new.`ms` WHERE new.`ms` IS NOT NULL
  ON CONFLICT (`run_id`, `tool`, `bucket`) DO UPDATE SET `calls` = `calls` + 1, `total_ms` = `total_ms` + excluded.`total_ms`;
END;
--> statement-breakpoint
CREATE TRIGGER `latency_step_buckets_delete` AFTER DELETE ON `latency_steps` BEGIN
  UPDATE `latency_step_buckets` SET `calls` = `calls` - 1, `total_ms` = `total_ms` - old.`ms`
  WHERE old.`ms` IS NOT NULL AND `run_id` = old.`run_id` AND `tool` = old.`tool` AND `bucket` = CASE WHEN old.`ms` < 1 THEN 0 ELSE length(CAST(CAST(old.`ms` AS INTEGER) AS TEXT)) * 100 + CAST(substr(CAST(CAST(old.`ms` AS INTEGER) AS TEXT), 1, 2) AS INTEGER) END;
END;
--> statement-breakpoint
-- a step's own time appears (or changes) when its second component is written
CREATE TRIGGER `latency_step_buckets_update` AFTER UPDATE OF `ms` ON `latency_steps`
WHEN old.`ms` IS NOT new.`ms` BEGIN
  UPDATE `latency_step_buckets` SET `calls` = `calls` - 1, `total_ms` = `total_ms` - old.`ms`
  WHERE old.`ms` IS NOT NULL AND old.`ms` IS NOT new.`ms` AND `run_id` = old.`run_id` AND `tool` = old.`tool` AND `bucket` = CASE WHEN old.`ms` < 1 THEN 0 ELSE length(CAST(CAST(old.`ms` AS INTEGER) AS TEXT)) * 100 + CAST(substr(CAST(CAST(old.`ms` AS INTEGER) AS TEXT), 1, 2) AS INTEGER) END;
  INSERT INTO `latency_step_buckets` SELECT new.`run_id`, new.`tool`, CASE WHEN new.`ms` < 1 THEN 0 ELSE length(CAST(CAST(new.`ms` AS INTEGER) AS TEXT)) * 100 + CAST(substr(CAST(CAST(new.`ms` AS INTEGER) AS TEXT), 1, 2) AS INTEGER) END, 1, new.`ms` WHERE new.`ms` IS NOT NULL AND old.`ms` IS NOT new.`ms`
  ON CONFLICT (`run_id`, `tool`, `bucket`) DO UPDATE SET `calls` = `calls` + 1, `total_ms` = `total_ms` + excluded.`total_ms`;
END;
--> statement-breakpoint
-- latency_component_buckets: latency_components.ms by (run, tool, component), every attempt,
-- with the retry and status counts of the per-component table.
CREATE TABLE `latency_component_buckets` (
	`run_id` integer NOT NULL,
	`tool` text NOT NULL,
	`component` text NOT NULL,
	`bucket` integer NOT NULL,
	`calls` integer NOT NULL,
	`total_ms` real NOT NULL,
	`retries` integer NOT NULL,
	`retried` integer NOT NULL,
	`timeouts` integer NOT NULL,
	`fallbacks` integer NOT NULL,
	`unavailable` integer NOT NULL,
	`errors` integer NOT NULL,
	PRIMARY KEY (`run_id`, `tool`, `component`, `bucket`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `latency_component_buckets`
SELECT `run_id`, `tool`, `component`, CASE WHEN `ms` < 1 THEN 0 ELSE length(CAST(CAST(`ms` AS INTEGER) AS TEXT)) * 100 + CAST(substr(CAST(CAST(`ms` AS INTEGER) AS TEXT), 1, 2) AS INTEGER) END, count(*), total(`ms`), sum(`retries`), sum(`retries` > 0), sum(`status` = 'timeout'), sum(`status` = 'fallback'), sum(`status` = 'retrieval_unavailable'), sum(`status` NOT IN ('ok', 'fallback')) FROM `latency_components` GROUP BY 1, 2, 3, 4;
--> statement-breakpoint
CREATE TRIGGER `latency_component_buckets_insert` AFTER INSERT ON `latency_components` BEGIN
  INSERT INTO `latency_component_buckets` VALUES (new.`run_id`, new.`tool`, new.`component`, CASE WHEN new.`ms` < 1 THEN 0 ELSE length(CAST(CAST(new.`ms` AS INTEGER) AS TEXT)) * 100 + CAST(substr(CAST(CAST(new.`ms` AS INTEGER) AS TEXT), 1, 2) AS INTEGER) END, 1, new.`ms`, new.`retries`, new.`retries` > 0, new.`status` = 'timeout', new.`status` = 'fallback', new.`status` = 'retrieval_unavailable', new.`status` NOT IN ('ok', 'fallback'))
  ON CONFLICT (`run_id`, `tool`, `component`, `bucket`) DO UPDATE SET `calls` = `calls` + 1, `total_ms` = `total_ms` + excluded.`total_ms`, `retries` = `retries` + excluded.`retries`, `retried` = `retried` + excluded.`retried`, `timeouts` = `timeouts` + excluded.`timeouts`, `fallbacks` = `fallbacks` + excluded.`fallbacks`, `unavailable` = `unavailable` + excluded.`unavailable`, `errors` = `errors` + excluded.`errors`;
END;
--> statement-breakpoint
CREATE TRIGGER `latency_component_buckets_delete` AFTER DELETE ON `latency_components` BEGIN
  UPDATE `latency_component_buckets` SET `calls` = `calls` - 1, `total_ms` = `total_ms` - old.`ms`, `retries` = `retries` - (old.`retries`), `retried` = `retried` - (old.`retries` > 0), `timeouts` = `timeouts` - (old.`status` = 'timeout'), `fallbacks` = `fallbacks` - (old.`status` = 'fallback'), `unavailable` = `unavailable` - (old.`status` = 'retrieval_unavailable'), `errors` = `errors` - (old.`status` NOT IN ('ok', 'fallback'))
  WHERE `run_id` = old.`run_id` AND `tool` = old.`tool` AND `component` = old.`component` AND `bucket` = CASE WHEN old.`ms` < 1 THEN 0 ELSE length(CAST(CAST(old.`ms` AS INTEGER) AS TEXT)) * 100 + CAST(substr(CAST(CAST(old.`ms` AS INTEGER) AS TEXT), 1, 2) AS INTEGER) END;
END;
--> statement-breakpoint
CREATE TRIGGER `latency_component_buckets_update` AFTER UPDATE OF `run_id`, `tool`, `component`, `ms`, `retries`, `status` ON `latency_components` BEGIN
  UPDATE `latency_component_buckets` SET `calls` = `calls` - 1, `total_ms` = `total_ms` - old.`ms`, `retries` = `retries` - (old.`retries`), `retried` = `retried` - (old.`retries` > 0), `timeouts` = `timeouts` - (old.`status` = 'timeout'), `fallbacks` = `fallbacks` - (old.`status` = 'fallback'), `unavailable` = `unavailable` - (old.`status` = 'retrieval_unavailable'), `errors` = `errors` - (old.`status` NOT IN ('ok', 'fallback'))
  WHERE `run_id` = old.`run_id` AND `tool` = old.`tool` AND `component` = old.`component` AND `bucket` = CASE WHEN old.`ms` < 1 THEN 0 ELSE length(CAST(CAST(old.`ms` AS INTEGER) AS TEXT)) * 100 + CAST(substr(CAST(CAST(old.`ms` AS INTEGER) AS TEXT), 1, 2) AS INTEGER) END;
  INSERT INTO `latency_component_buckets` VALUES (new.`run_id`, new.`tool`, new.`component`, CASE WHEN new.`ms` < 1 THEN 0 ELSE length(CAST(CAST(new.`ms` AS INTEGER) AS TEXT)) * 100 + CAST(substr(CAST(CAST(new.`ms` AS INTEGER) AS TEXT), 1, 2) AS INTEGER) END, 1, new.`ms`, new.`retries`, new.`retries` > 0, new.`status` = 'timeout', new.`status` = 'fallback', new.`status` = 'retrieval_unavailable', new.`status` NOT IN ('ok', 'fallback'))
  ON CONFLICT (`run_id`, `tool`, `component`, `bucket`) DO UPDATE SET `calls` = `calls` + 1, `total_ms` = `total_ms` + excluded.`total_ms`, `retries` = `retries` + excluded.`retries`, `retried` = `retried` + excluded.`retried`, `timeouts` = `timeouts` + excluded.`timeouts`, `fallbacks` = `fallbacks` + excluded.`fallbacks`, `unavailable` = `unavailable` + excluded.`unavailable`, `errors` = `errors` + excluded.`errors`;
END;
