//! Workflows: record deployments, decide on alerts, drive rollbacks through their states as durable jobs.

#![forbid(unsafe_code)]
