DROP TABLE usage;
DROP TABLE tool_calls;
DROP TABLE turns;
DROP TABLE call_record_ops;
DROP TABLE calls;
