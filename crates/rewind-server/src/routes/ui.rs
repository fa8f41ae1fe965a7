//! The web UI: the fleet (search, filters, pages), each app with its
//! timeline and "roll back to this revision" (dry run first), and each
//! rollback with its review, wave, changes, risks, verification and
//! timeline, with approve / merge / cancel buttons. Server-rendered HTML
//! and SVG (maud escapes everything), no JavaScript, no front-end build.
//! With API tokens configured, people sign in with a token and get a
//! session (see `session.rs`: the cookie is a random id, every form
//! carries a CSRF token and must come from rewind's own origin). Unicode
//! bidi controls in shown text are made visible (`[U+202E]`), so a label
//! cannot reorder what a reviewer reads.
//!
//! - [`layout`]: the page frame, links, outside text made visible.
//! - [`fleet`]: `GET /`.
//! - [`app_page`]: `GET /ui/apps/{app}`, the dry-run preview and the
//!   confirmed proposal.
//! - [`timeline`]: the app's timeline as SVG and as text.
//! - [`rollback_page`]: `GET /ui/rollbacks/{id}`.
//! - [`actions`]: the rollback page's buttons.
//! - [`sign_in`]: signing in and out.

pub mod actions;
pub mod app_page;
pub mod fleet;
pub mod layout;
pub mod rollback_page;
pub mod sign_in;
pub mod timeline;

pub use actions::{CsrfForm, UiAction, act};
pub use app_page::{app, preview, propose};
pub use fleet::index;
pub use layout::neutralise_bidi;
pub use rollback_page::rollback;
pub use sign_in::{Login, login, login_form, logout};
