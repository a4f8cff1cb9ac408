-- Endpoints that launch themselves (issue 9): an endpoint agent inside a Slurm job registers
-- its service once it is ready, heartbeats, and drains it before it stops. `state` is what
-- runners route on (healthy gets calls; draining none new; gone none). Rows imported from a
-- ToolOrchestra model config have no lease (lease_expires_at NULL) and stay healthy.
ALTER TABLE `endpoints` ADD `state` text DEFAULT 'healthy' NOT NULL;
--> statement-breakpoint
ALTER TABLE `endpoints` ADD `role` text;
--> statement-breakpoint
ALTER TABLE `endpoints` ADD `service` text;
--> statement-breakpoint
ALTER TABLE `endpoints` ADD `lease_expires_at` integer;
--> statement-breakpoint
ALTER TABLE `endpoints` ADD `last_heartbeat_at` integer;
--> statement-breakpoint
ALTER TABLE `endpoints` ADD `node` text;
--> statement-breakpoint
ALTER TABLE `endpoints` ADD `slurm_job_id` text;
--> statement-breakpoint
ALTER TABLE `endpoints` ADD `slurm_array_job_id` text;
--> statement-breakpoint
ALTER TABLE `endpoints` ADD `slurm_array_task_id` text;
--> statement-breakpoint
CREATE INDEX `endpoints_state_idx` ON `endpoints` (`state`, `lease_expires_at`);
