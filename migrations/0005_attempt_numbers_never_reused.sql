-- Attempt numbers are never reused: latency rows are keyed by (task, attempt, step), so a
-- released or requeued task that ran again under an old number had its new rows silently
-- ignored as duplicates. A release now gives the attempt back by raising max_attempts
-- (attempt stays), and a requeue grants a fresh budget above the current attempt. The
-- history trigger recognises a release by that raise instead of by a lowered attempt.
DROP TRIGGER IF EXISTS `tasks_attempt_end`;
--> statement-breakpoint
CREATE TRIGGER `tasks_attempt_end` AFTER UPDATE OF `lease_token` ON `tasks`
WHEN OLD.`lease_token` IS NOT NULL AND NEW.`lease_token` IS NOT OLD.`lease_token`
BEGIN
  UPDATE `task_attempts` SET
    `outcome` = CASE
      WHEN NEW.`status` = 'running' THEN 'expired'
      WHEN NEW.`status` = 'queued' AND NEW.`max_attempts` > OLD.`max_attempts` THEN 'released'
      WHEN NEW.`status` = 'queued' THEN 'retry'
      ELSE NEW.`status`
    END,
    `error_class` = CASE
      WHEN NEW.`status` = 'running' THEN 'lease_expired'
      WHEN NEW.`status` = 'queued' AND NEW.`max_attempts` > OLD.`max_attempts` THEN NULL
      WHEN NEW.`status` IN ('failed', 'queued') THEN NEW.`error_class`
      ELSE NULL
    END,
    `error_message` = CASE
      WHEN NEW.`status` = 'queued' AND NEW.`max_attempts` > OLD.`max_attempts` THEN NULL
      WHEN NEW.`status` IN ('failed', 'queued') THEN NEW.`error_message`
      ELSE NULL
    END,
    `ended_at` = NEW.`updated_at`
  WHERE `lease_token` = OLD.`lease_token`;
END;
