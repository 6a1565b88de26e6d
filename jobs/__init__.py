"""The job core: queued work written once for every kind (generation jobs, dataset preparations, training
runs, evaluations).

`jobs.models.QueuedJob` is the abstract row (status in one vocabulary, rq_job_id, worker, cancel flag,
error, timestamps); `jobs.core` queues, claims, cancels and reconciles a row of any kind, described by a
`JobKind`; `jobs.heartbeat` is the Redis key a worker keeps alive while it runs a row. Both apps use it;
it imports neither. The states each kind has and the actions each state allows are in docs/jobs.md.
"""
