//! Tokens, signatures and content types: checked before anything is parsed.

use rewind_ingest::{
    IngestError, WebhookSource, ingest, parse_argocd, verify_alertmanager, verify_argocd,
    verify_flux, verify_github,
};

use crate::common::*;

fn is_unauthorized<T: std::fmt::Debug>(result: Result<T, IngestError>) -> bool {
    matches!(result, Err(IngestError::Unauthorized(_)))
}

/// Flips one bit of byte `i`.
fn flipped(bytes: &[u8], i: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[i] ^= 0x01;
    out
}

/// Changes one hex digit of a `<algo>=<hex>` header value.
fn altered_signature(header: &str, i: usize) -> String {
    let (algo, hex) = header.split_once('=').unwrap();
    let mut digits: Vec<char> = hex.chars().collect();
    digits[i] = if digits[i] == '0' { '1' } else { '0' };
    format!("{algo}={}", digits.into_iter().collect::<String>())
}

#[test]
fn every_signature_test_vector_verifies_and_one_byte_changes_fail() {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/signature-test-vectors.json")).unwrap();
    let vectors = vectors.as_array().unwrap();
    assert_eq!(vectors.len(), 2);
    for vector in vectors {
        let secret = vector["secret"].as_str().unwrap();
        let body: Vec<u8> = match vector.get("payload_file") {
            Some(file) => {
                assert_eq!(file, "flux/generic-hmac.upstream-test-vector.body.json");
                FLUX_VECTOR.to_vec()
            }
            None => vector["payload"].as_str().unwrap().as_bytes().to_vec(),
        };
        let check = |body: &[u8], signature: &str| -> bool {
            if vector.get("x_hub_signature_256").is_some() {
                let h = headers(&[
                    ("x-hub-signature-256", signature),
                    ("x-github-event", "ping"),
                ]);
                verify_github(&h, body, secret).is_ok()
            } else {
                let h = headers(&[("x-signature", signature)]);
                verify_flux(&h, body, secret).is_ok()
            }
        };
        let signature = vector
            .get("x_hub_signature_256")
            .or_else(|| vector.get("x_signature"))
            .and_then(|v| v.as_str())
            .unwrap();
        let name = vector["name"].as_str().unwrap();
        assert!(check(&body, signature), "{name}: vector does not verify");
        for i in [0, body.len() / 2, body.len() - 1] {
            assert!(
                !check(&flipped(&body, i), signature),
                "{name}: body byte {i} changed"
            );
        }
        let mut longer = body.clone();
        longer.push(b'\n');
        assert!(
            !check(&longer, signature),
            "{name}: trailing newline accepted"
        );
        for i in [0, 31, 63] {
            assert!(
                !check(&body, &altered_signature(signature, i)),
                "{name}: signature digit {i} changed"
            );
        }
    }
}

#[test]
fn flux_upstream_vector_verifies_with_its_captured_headers() {
    let h = captured_headers(FLUX_VECTOR_HEADERS);
    let verified = verify_flux(&h, FLUX_VECTOR, FLUX_KEY).unwrap();
    assert_eq!(verified.source(), WebhookSource::Flux);
    assert_eq!(verified.body(), FLUX_VECTOR);
    assert!(is_unauthorized(verify_flux(&h, FLUX_VECTOR, "another key")));
}

#[test]
fn flux_accepts_the_other_sha2_hashes_and_refuses_others() {
    use hmac::{Hmac, Mac};
    fn sign<M: Mac + hmac::digest::KeyInit>(body: &[u8]) -> String {
        let mut mac = <M as Mac>::new_from_slice(FLUX_KEY.as_bytes()).unwrap();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }
    let body = FLUX_REAL;
    for (algo, sig) in [
        ("sha224", sign::<Hmac<sha2::Sha224>>(body)),
        ("sha384", sign::<Hmac<sha2::Sha384>>(body)),
        ("sha512", sign::<Hmac<sha2::Sha512>>(body)),
        ("SHA256", sign::<Hmac<sha2::Sha256>>(body)),
    ] {
        let h = headers(&[("x-signature", &format!("{algo}={sig}"))]);
        assert!(verify_flux(&h, body, FLUX_KEY).is_ok(), "{algo}");
    }
    // A sha512 MAC labelled sha256 is refused: the label chooses the hash.
    let h = headers(&[(
        "x-signature",
        &format!("sha256={}", sign::<Hmac<sha2::Sha512>>(body)),
    )]);
    assert!(is_unauthorized(verify_flux(&h, body, FLUX_KEY)));
    let h = headers(&[(
        "x-signature",
        &format!("md5={}", hmac_sha256_hex(FLUX_KEY, body)),
    )]);
    assert!(is_unauthorized(verify_flux(&h, body, FLUX_KEY)));
    for bad in ["", "sha256=", "sha256=zz", "sha256", "=abcd"] {
        let h = headers(&[("x-signature", bad)]);
        assert!(is_unauthorized(verify_flux(&h, body, FLUX_KEY)), "{bad:?}");
    }
    assert!(is_unauthorized(verify_flux(&headers(&[]), body, FLUX_KEY)));
}

#[test]
fn github_signature_must_be_sha256_and_event_header_is_required() {
    let body = GH_PR_OPENED;
    let mut h = github_headers("pull_request", body);
    assert!(verify_github(&h, body, GITHUB_SECRET).is_ok());
    assert!(is_unauthorized(verify_github(&h, body, "wrong secret")));
    assert!(is_unauthorized(verify_github(&h, body, "")));
    // The legacy SHA-1 header alone does not authenticate.
    h.remove("x-hub-signature-256");
    h.insert("x-hub-signature", "sha1=0000".parse().unwrap());
    assert!(is_unauthorized(verify_github(&h, body, GITHUB_SECRET)));

    let mut h = github_headers("pull_request", body);
    h.remove("x-github-event");
    match verify_github(&h, body, GITHUB_SECRET) {
        Err(IngestError::Malformed { field, .. }) => assert_eq!(field, "X-GitHub-Event"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bearer_tokens() {
    let body = AM_FIRING;
    let captured = captured_headers(AM_FIRING_HEADERS);
    assert!(verify_alertmanager(&captured, body, ALERTMANAGER_TOKEN).is_ok());
    assert!(verify_argocd(&bearer(ARGOCD_TOKEN), body, ARGOCD_TOKEN).is_ok());
    assert!(
        verify_argocd(
            &headers(&[("authorization", "bearer argocd-test-token")]),
            body,
            ARGOCD_TOKEN
        )
        .is_ok()
    );
    for bad in [
        "Bearer argocd-test-token2",
        "Bearer argocd-test-toke",
        "Bearer ",
        "Basic argocd-test-token",
        "argocd-test-token",
        "Bearer ARGOCD-TEST-TOKEN",
    ] {
        let h = headers(&[("authorization", bad)]);
        assert!(
            is_unauthorized(verify_argocd(&h, body, ARGOCD_TOKEN)),
            "{bad:?}"
        );
    }
    assert!(is_unauthorized(verify_argocd(
        &headers(&[]),
        body,
        ARGOCD_TOKEN
    )));
    // An empty configured token never matches, even an empty header.
    assert!(is_unauthorized(verify_argocd(
        &headers(&[("authorization", "Bearer ")]),
        body,
        ""
    )));
}

#[test]
fn nothing_is_parsed_before_authentication() {
    // Garbage bodies with bad credentials are refused as unauthorized, not
    // reported as malformed: the parser never saw them.
    let s = settings();
    let garbage = b"{not json at all";
    for source in [
        WebhookSource::Argocd,
        WebhookSource::Flux,
        WebhookSource::Alertmanager,
        WebhookSource::Github,
    ] {
        let h = headers(&[
            ("authorization", "Bearer wrong"),
            ("x-signature", "sha256=00"),
            ("x-hub-signature-256", "sha256=00"),
            ("x-github-event", "push"),
        ]);
        let result = ingest(source, &h, garbage, &s);
        assert!(is_unauthorized(result), "{source}");
    }
}

#[test]
fn unconfigured_secrets_refuse_everything() {
    let s = rewind_ingest::IngestSettings {
        argocd_token: Some(String::new()),
        ..settings()
    };
    let h = headers(&[("authorization", "Bearer ")]);
    assert!(is_unauthorized(ingest(
        WebhookSource::Argocd,
        &h,
        ARGOCD_ON_DEPLOYED,
        &s
    )));
    let s = rewind_ingest::IngestSettings {
        github_webhook_secret: None,
        ..settings()
    };
    let h = github_headers("pull_request", GH_PR_OPENED);
    assert!(is_unauthorized(ingest(
        WebhookSource::Github,
        &h,
        GH_PR_OPENED,
        &s
    )));
}

#[test]
fn a_body_verified_for_one_source_is_refused_by_another_parser() {
    let verified = verify_alertmanager(
        &bearer(ALERTMANAGER_TOKEN),
        ARGOCD_ON_DEPLOYED,
        ALERTMANAGER_TOKEN,
    )
    .unwrap();
    assert!(is_unauthorized(parse_argocd(verified, &settings())));
}

#[test]
fn content_types() {
    let s = settings();
    let with_type = |ct: Option<&str>| {
        let mut h = bearer(ALERTMANAGER_TOKEN);
        h.remove("content-type");
        if let Some(ct) = ct {
            h.insert("content-type", ct.parse().unwrap());
        }
        ingest(WebhookSource::Alertmanager, &h, AM_FIRING, &s)
    };
    for ok in [
        None,
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("Application/JSON"),
        Some("application/vnd.alertmanager+json"),
    ] {
        assert!(with_type(ok).is_ok(), "{ok:?}");
    }
    for bad in [
        "text/plain",
        "application/xml",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
    ] {
        assert!(
            matches!(
                with_type(Some(bad)),
                Err(IngestError::UnsupportedMediaType(_))
            ),
            "{bad}"
        );
    }
    // The media type is checked first: even a bad token gets 415.
    let h = headers(&[
        ("content-type", "text/html"),
        ("authorization", "Bearer wrong"),
    ]);
    let err = ingest(WebhookSource::Argocd, &h, b"", &s).unwrap_err();
    assert_eq!(err.http_status(), 415);
}
