-- One name for "no retrieval backend answered": `retrieval_unavailable`, what the runner
-- writes (runner/retrieval-client.ts) on the retrieval component and the tool call. The view
-- counted 'unavailable', which only the latency generator wrote, so real runs read 0.
-- Rows an older generator wrote are renamed so every database uses the one name.
UPDATE `latency_components` SET `status` = 'retrieval_unavailable' WHERE `component` = 'retrieval' AND `status` = 'unavailable';
--> statement-breakpoint
DROP VIEW IF EXISTS `retry_summary`;
--> statement-breakpoint
CREATE VIEW `retry_summary` AS
SELECT `run_id`, `tool`, `component`, count(*) AS `calls`,
  sum(CASE WHEN `retries` > 0 THEN 1 ELSE 0 END) AS `calls_with_retries`,
  sum(`retries`) AS `retries`,
  sum(CASE WHEN `status` = 'timeout' THEN 1 ELSE 0 END) AS `timeouts`,
  sum(CASE WHEN `status` = 'fallback' THEN 1 ELSE 0 END) AS `fallbacks`,
  sum(CASE WHEN `status` = 'retrieval_unavailable' THEN 1 ELSE 0 END) AS `unavailable`,
  sum(CASE WHEN `status` NOT IN ('ok', 'fallback') THEN 1 ELSE 0 END) AS `errors`
FROM `latency_components` GROUP BY `run_id`, `tool`, `component`;
