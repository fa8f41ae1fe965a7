//! One module per area of the HTTP surface.

pub mod app_ref;
pub mod apps;
pub mod health;
pub mod rollbacks;
pub mod ui;
pub mod webhooks;
