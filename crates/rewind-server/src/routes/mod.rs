//! One module per area of the HTTP surface.

pub mod app_ref;
pub mod apps;
pub mod audit;
pub mod health;
pub mod page;
pub mod rollbacks;
pub mod tokens;
pub mod ui;
pub mod ui_report;
pub mod webhooks;
