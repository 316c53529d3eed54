-- The W3C traceparent of the span that enqueued the job (NULL without tracing), so the
-- span of each run joins the trace of the request that asked for it (docs/observability.md).
ALTER TABLE jobs ADD COLUMN traceparent TEXT;
