//! Webhook ingestion tests, driven by the real payloads in `tests/fixtures/`
//! (see its README for where each one comes from). One test binary keeps the
//! link step cheap.

mod alertmanager;
mod argo_rollouts;
mod argocd;
mod common;
mod flagger;
mod flux;
mod github;
mod module_docs;
mod robustness;
mod samples;
mod verify;
