//! A verified argocd delivery with an arbitrary body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind_ingest::WebhookSource;

fuzz_target!(|body: &[u8]| {
    rewind_fuzz::deliver(WebhookSource::Argocd, body, "");
});
