CREATE TABLE `endpoints` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`kind` text NOT NULL,
	`name` text NOT NULL,
	`base_url` text NOT NULL,
	`enabled` integer DEFAULT true NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `endpoints_name_url_idx` ON `endpoints` (`name`,`base_url`);--> statement-breakpoint
CREATE INDEX `endpoints_kind_idx` ON `endpoints` (`kind`,`enabled`);--> statement-breakpoint
CREATE TABLE `latency_components` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`run_id` integer NOT NULL,
	`task_id` integer NOT NULL,
	`attempt` integer NOT NULL,
	`step` integer NOT NULL,
	`tool` text NOT NULL,
	`component` text NOT NULL,
	`model` text,
	`ms` real NOT NULL,
	`retries` integer DEFAULT 0 NOT NULL,
	`backend` text,
	`endpoint` text,
	`status` text DEFAULT 'ok' NOT NULL,
	`started_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `latency_components_run_tool_idx` ON `latency_components` (`run_id`,`tool`,`component`);--> statement-breakpoint
CREATE UNIQUE INDEX `latency_components_step_idx` ON `latency_components` (`task_id`,`attempt`,`step`,`component`);--> statement-breakpoint
CREATE TABLE `llm_calls` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`run_id` integer,
	`task_id` integer,
	`attempt` integer,
	`step` integer,
	`tool` text,
	`role` text NOT NULL,
	`model` text NOT NULL,
	`endpoint` text NOT NULL,
	`http_attempt` integer NOT NULL,
	`outcome` text NOT NULL,
	`http_status` integer,
	`error_message` text,
	`ttft_ms` real,
	`total_ms` real NOT NULL,
	`prompt_tokens` integer,
	`completion_tokens` integer,
	`finish_reason` text,
	`started_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `llm_calls_run_role_idx` ON `llm_calls` (`run_id`,`role`);--> statement-breakpoint
CREATE INDEX `llm_calls_endpoint_idx` ON `llm_calls` (`endpoint`);--> statement-breakpoint
CREATE INDEX `llm_calls_task_idx` ON `llm_calls` (`task_id`,`attempt`,`step`);--> statement-breakpoint
CREATE TABLE `runners` (
	`id` text PRIMARY KEY NOT NULL,
	`host` text NOT NULL,
	`pid` integer NOT NULL,
	`slurm_job_id` text,
	`slurm_array_job_id` text,
	`slurm_array_task_id` text,
	`run_id` integer,
	`concurrency` integer DEFAULT 1 NOT NULL,
	`state` text DEFAULT 'running' NOT NULL,
	`version` text,
	`started_at` integer NOT NULL,
	`last_seen_at` integer NOT NULL,
	`stopped_at` integer,
	`ends_at` integer
);
--> statement-breakpoint
CREATE INDEX `runners_last_seen_idx` ON `runners` (`last_seen_at`);--> statement-breakpoint
CREATE TABLE `runs` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`benchmark` text NOT NULL,
	`config` text NOT NULL,
	`max_attempts` integer DEFAULT 3 NOT NULL,
	`task_count` integer DEFAULT 0 NOT NULL,
	`idempotency_key` text,
	`created_at` integer NOT NULL,
	`started_at` integer,
	`canceled_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `runs_idempotency_key_idx` ON `runs` (`idempotency_key`);--> statement-breakpoint
CREATE INDEX `runs_name_idx` ON `runs` (`name`);--> statement-breakpoint
CREATE TABLE `task_attempts` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`task_id` integer NOT NULL,
	`run_id` integer NOT NULL,
	`attempt` integer NOT NULL,
	`runner_id` text,
	`lease_token` text NOT NULL,
	`outcome` text DEFAULT 'running' NOT NULL,
	`error_class` text,
	`error_message` text,
	`started_at` integer NOT NULL,
	`ended_at` integer,
	FOREIGN KEY (`task_id`) REFERENCES `tasks`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `task_attempts_token_idx` ON `task_attempts` (`lease_token`);--> statement-breakpoint
CREATE INDEX `task_attempts_task_idx` ON `task_attempts` (`task_id`,`attempt`);--> statement-breakpoint
CREATE INDEX `task_attempts_runner_idx` ON `task_attempts` (`runner_id`);--> statement-breakpoint
CREATE TABLE `tasks` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`run_id` integer NOT NULL,
	`external_id` text NOT NULL,
	`input` text NOT NULL,
	`status` text DEFAULT 'queued' NOT NULL,
	`attempt` integer DEFAULT 0 NOT NULL,
	`max_attempts` integer DEFAULT 3 NOT NULL,
	`available_at` integer DEFAULT 0 NOT NULL,
	`lease_owner` text,
	`lease_token` text,
	`lease_expires_at` integer,
	`result` text,
	`prediction` text,
	`correct` integer,
	`error_class` text,
	`error_message` text,
	`progress` text,
	`created_at` integer NOT NULL,
	`started_at` integer,
	`finished_at` integer,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `tasks_run_external_idx` ON `tasks` (`run_id`,`external_id`);--> statement-breakpoint
CREATE INDEX `tasks_claim_idx` ON `tasks` (`status`,`available_at`);--> statement-breakpoint
CREATE INDEX `tasks_lease_idx` ON `tasks` (`status`,`lease_expires_at`);--> statement-breakpoint
CREATE INDEX `tasks_run_status_idx` ON `tasks` (`run_id`,`status`);--> statement-breakpoint
CREATE INDEX `tasks_owner_idx` ON `tasks` (`lease_owner`);--> statement-breakpoint
CREATE TABLE `tool_calls` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`run_id` integer NOT NULL,
	`task_id` integer NOT NULL,
	`attempt` integer NOT NULL,
	`step` integer NOT NULL,
	`tool` text NOT NULL,
	`model_alias` text,
	`model` text,
	`status` text NOT NULL,
	`error_class` text,
	`error_message` text,
	`started_at` integer NOT NULL,
	`duration_ms` real NOT NULL,
	`detail` text
);
--> statement-breakpoint
CREATE INDEX `tool_calls_run_tool_idx` ON `tool_calls` (`run_id`,`tool`);--> statement-breakpoint
CREATE UNIQUE INDEX `tool_calls_step_idx` ON `tool_calls` (`task_id`,`attempt`,`step`);