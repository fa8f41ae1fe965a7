//! Webhooks in: verify(headers, bytes), then parse Argo CD, Flux, Alertmanager and GitHub payloads into domain events.

#![forbid(unsafe_code)]
