//! A verified GitHub delivery: the first byte picks the event rewind reads
//! (or one it ignores), the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind_ingest::WebhookSource;

const EVENTS: [&str; 6] = [
    "pull_request",
    "pull_request_review",
    "issue_comment",
    "push",
    "ping",
    "check_run",
];

fuzz_target!(|data: &[u8]| {
    let Some((first, body)) = data.split_first() else {
        return;
    };
    let event = EVENTS[usize::from(*first) % EVENTS.len()];
    rewind_fuzz::deliver(WebhookSource::Github, body, event);
});
