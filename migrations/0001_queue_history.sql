-- Attempt history is kept by triggers so it is atomic with the single-statement claim and
-- the fenced finishing writes: no window in which a task changed hands without a record.
-- A new lease token means a new attempt began.
CREATE TRIGGER `tasks_attempt_begin` AFTER UPDATE OF `lease_token` ON `tasks`
WHEN NEW.`lease_token` IS NOT NULL AND NEW.`lease_token` IS NOT OLD.`lease_token`
BEGIN
  INSERT INTO `task_attempts` (`task_id`, `run_id`, `attempt`, `runner_id`, `lease_token`, `outcome`, `started_at`)
  VALUES (NEW.`id`, NEW.`run_id`, NEW.`attempt`, NEW.`lease_owner`, NEW.`lease_token`, 'running', NEW.`updated_at`);
END;
--> statement-breakpoint
-- The old token going away ends the old attempt; how it ended follows from the new state.
CREATE TRIGGER `tasks_attempt_end` AFTER UPDATE OF `lease_token` ON `tasks`
WHEN OLD.`lease_token` IS NOT NULL AND NEW.`lease_token` IS NOT OLD.`lease_token`
BEGIN
  UPDATE `task_attempts` SET
    `outcome` = CASE
      WHEN NEW.`status` = 'running' THEN 'expired'
      WHEN NEW.`status` = 'queued' AND NEW.`attempt` < OLD.`attempt` THEN 'released'
      WHEN NEW.`status` = 'queued' THEN 'retry'
      ELSE NEW.`status`
    END,
    `error_class` = CASE WHEN NEW.`status` IN ('failed', 'queued') AND NEW.`attempt` >= OLD.`attempt` THEN NEW.`error_class` WHEN NEW.`status` = 'running' THEN 'lease_expired' ELSE NULL END,
    `error_message` = CASE WHEN NEW.`status` IN ('failed', 'queued') AND NEW.`attempt` >= OLD.`attempt` THEN NEW.`error_message` ELSE NULL END,
    `ended_at` = NEW.`updated_at`
  WHERE `lease_token` = OLD.`lease_token`;
END;
