//! HTTP: axum router, webhooks, API, web UI, metrics, error mapping.

#![forbid(unsafe_code)]
