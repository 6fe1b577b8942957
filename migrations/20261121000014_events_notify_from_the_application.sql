-- The events trigger no longer calls pg_notify (ADR 0013). A NOTIFY takes one database-wide lock
-- from the commit's start until its end, WAL flush included, so every appending transaction of
-- the cluster committed one after the other: measured at about 200 appends/s with 32 writers on a
-- machine whose single-row INSERT ceiling is 14,000/s (docs/benchmarks.md). A process now wakes
-- its own feed runners in memory after each append and tells other processes with one NOTIFY on
-- the same channel from a single task, outside any appending transaction.
DROP TRIGGER events_notify_after_insert ON events;
DROP FUNCTION events_notify();
