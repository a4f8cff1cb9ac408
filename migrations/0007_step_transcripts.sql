-- Every step of every attempt kept whole (issue #13 point 3): the orchestrator's request and
-- reply, the tool's LLM calls, the documents retrieved, the code and its output, the grade.
-- body is gzip-compressed JSON (a FRAMES step is tens of kB of text): the runner compresses,
-- the server stores the bytes as they come and decompresses only when asked.
CREATE TABLE `step_transcripts` (
	`task_id` integer NOT NULL,
	`attempt` integer NOT NULL,
	`step` integer NOT NULL,
	`body` blob NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`task_id`, `attempt`, `step`)
);
