//! Authentication of each provider: valid, tampered, wrong key, stale and
//! future timestamps, truncated and empty signatures, rotated keys, another
//! URL, another provider's credentials, look-alike tokens.

use chrono::{DateTime, TimeZone, Utc};
use http::HeaderMap;
use switchboard_providers::{
    bird, partoo, AuthError, Bird, Inbound, Partoo, WebhookProvider, Zipmessage,
};
use switchboard_tests::{fixture, keys, partoo_signature};

const URL: &str = "https://hooks.example.com/webhooks/bird";

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_795_000_000, 0)
        .single()
        .expect("valid time")
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.insert(
            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            v.parse().expect("value"),
        );
    }
    map
}

fn check(
    provider: &dyn WebhookProvider,
    headers: &HeaderMap,
    body: &[u8],
    token: Option<&str>,
) -> Result<(), AuthError> {
    provider
        .authenticate(&Inbound::new(headers, body, token), now())
        .map(|_| ())
}

fn partoo() -> Partoo {
    Partoo::new(&keys::partoo_public_keys()).expect("keys parse")
}

#[test]
fn partoo_accepts_the_current_and_the_rotated_out_key() {
    let body = fixture("partoo", "message_created.json");
    for key in [keys::partoo(), keys::partoo_old()] {
        let sig = partoo_signature(&key, &body);
        assert_eq!(
            check(
                &partoo(),
                &headers(&[("X-Partoo-Signature-v1", &sig)]),
                &body,
                None
            ),
            Ok(())
        );
    }
}

#[test]
fn partoo_rejects_tampering_wrong_keys_and_malformed_signatures() {
    let body = fixture("partoo", "message_created.json");
    let sig = partoo_signature(&keys::partoo(), &body);
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert_eq!(
        check(
            &partoo(),
            &headers(&[("x-partoo-signature-v1", &sig)]),
            &tampered,
            None
        ),
        Err(AuthError::InvalidSignature(partoo::SIGNED))
    );
    let stranger = partoo_signature(&keys::partoo_stranger(), &body);
    assert_eq!(
        check(
            &partoo(),
            &headers(&[("x-partoo-signature-v1", &stranger)]),
            &body,
            None
        ),
        Err(AuthError::InvalidSignature(partoo::SIGNED))
    );
    let other_body = partoo_signature(&keys::partoo(), b"{}");
    assert_eq!(
        check(
            &partoo(),
            &headers(&[("x-partoo-signature-v1", &other_body)]),
            &body,
            None
        ),
        Err(AuthError::InvalidSignature(partoo::SIGNED))
    );
    assert_eq!(
        check(&partoo(), &headers(&[]), &body, None),
        Err(AuthError::MissingSignature("X-Partoo-Signature-v1"))
    );
    assert_eq!(
        check(
            &partoo(),
            &headers(&[("x-partoo-signature-v1", "")]),
            &body,
            None
        ),
        Err(AuthError::MissingSignature("X-Partoo-Signature-v1"))
    );
    // Truncated: a valid prefix of the right signature must not pass.
    let truncated = &sig[..sig.len() - 8];
    assert!(matches!(
        check(
            &partoo(),
            &headers(&[("x-partoo-signature-v1", truncated)]),
            &body,
            None
        ),
        Err(AuthError::MalformedSignature(_))
    ));
    assert!(matches!(
        check(
            &partoo(),
            &headers(&[("x-partoo-signature-v1", "not base64!")]),
            &body,
            None
        ),
        Err(AuthError::MalformedSignature(_))
    ));
    // Partoo's documented production key does not verify our test signature.
    let production = Partoo::new(&[switchboard_providers::partoo::PRODUCTION_KEY]).expect("parses");
    assert_eq!(
        check(
            &production,
            &headers(&[("x-partoo-signature-v1", &sig)]),
            &body,
            None
        ),
        Err(AuthError::InvalidSignature(partoo::SIGNED))
    );
}

/// Bird with the default past tolerance (36 h).
fn bird_provider() -> Bird {
    Bird::new(
        &[keys::bird_key(), keys::bird_old_key()],
        URL,
        bird::DEFAULT_TOLERANCE_SECS,
    )
    .expect("config")
}

fn bird_headers(key: &str, ts: i64, url: &str, body: &[u8]) -> HeaderMap {
    let ts = ts.to_string();
    let sig = bird::sign(key.as_bytes(), &ts, url, body);
    headers(&[
        ("messagebird-request-timestamp", &ts),
        ("messagebird-signature", &sig),
    ])
}

#[test]
fn bird_accepts_both_active_keys_within_the_window() {
    // Bird retries for hours with the original timestamp and signature.
    let body = fixture("bird", "conversation.updated.json");
    let t = now().timestamp();
    let past = bird::DEFAULT_TOLERANCE_SECS as i64;
    for key in [keys::bird_key(), keys::bird_old_key()] {
        for ts in [t, t - 300, t - 4 * 3600, t - 24 * 3600, t - past, t + 300] {
            assert_eq!(
                check(
                    &bird_provider(),
                    &bird_headers(key, ts, URL, &body),
                    &body,
                    None
                ),
                Ok(()),
                "{key} {ts}"
            );
        }
    }
}

#[test]
fn bird_rejects_timestamps_past_the_window_only_once_signed() {
    assert_eq!(bird::DEFAULT_TOLERANCE_SECS, 129_600, "36 h by default");
    let body = fixture("bird", "conversation.updated.json");
    let t = now().timestamp();
    let past = bird::DEFAULT_TOLERANCE_SECS as i64;
    for (ts, direction, tolerance) in [
        (t - past - 1, "before", 129_600),
        (t - 48 * 3600, "before", 129_600),
        (t + 301, "after", 300),
    ] {
        assert_eq!(
            check(
                &bird_provider(),
                &bird_headers(keys::bird_key(), ts, URL, &body),
                &body,
                None
            ),
            Err(AuthError::TimestampOutOfWindow {
                skew_secs: (t - ts).unsigned_abs(),
                direction,
                tolerance_secs: tolerance
            })
        );
    }
    // The signature is checked first: a forged request says so, whatever
    // its timestamp, and a stale one is told it is stale only when genuine.
    for ts in [t - 48 * 3600, 0] {
        assert_eq!(
            check(
                &bird_provider(),
                &bird_headers("not-the-key", ts, URL, &body),
                &body,
                None
            ),
            Err(AuthError::InvalidSignature(bird::SIGNED)),
            "{ts}"
        );
    }
    let h = headers(&[
        ("messagebird-request-timestamp", "yesterday"),
        ("messagebird-signature", "AAAA"),
    ]);
    assert!(matches!(
        check(&bird_provider(), &h, &body, None),
        Err(AuthError::MalformedTimestamp(_))
    ));
    let h = headers(&[("messagebird-signature", "AAAA")]);
    assert!(matches!(
        check(&bird_provider(), &h, &body, None),
        Err(AuthError::MissingTimestamp(_))
    ));
}

#[test]
fn bird_rejects_tampering_other_urls_wrong_keys_and_bad_signatures() {
    let body = fixture("bird", "conversation.updated.json");
    let t = now().timestamp();
    let mut tampered = body.clone();
    tampered[5] ^= 1;
    let good = bird_headers(keys::bird_key(), t, URL, &body);
    assert_eq!(
        check(&bird_provider(), &good, &tampered, None),
        Err(AuthError::InvalidSignature(bird::SIGNED))
    );
    let other_url = bird_headers(
        keys::bird_key(),
        t,
        "https://attacker.example/webhooks/bird",
        &body,
    );
    assert_eq!(
        check(&bird_provider(), &other_url, &body, None),
        Err(AuthError::InvalidSignature(bird::SIGNED))
    );
    let wrong_key = bird_headers("not-the-key", t, URL, &body);
    assert_eq!(
        check(&bird_provider(), &wrong_key, &body, None),
        Err(AuthError::InvalidSignature(bird::SIGNED))
    );
    // The signature covers the timestamp: replaying it with another timestamp fails.
    let mut replay = good.clone();
    replay.insert(
        "messagebird-request-timestamp",
        (t + 1).to_string().parse().expect("value"),
    );
    assert_eq!(
        check(&bird_provider(), &replay, &body, None),
        Err(AuthError::InvalidSignature(bird::SIGNED))
    );
    let sig = good
        .get("messagebird-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let ts = t.to_string();
    for bad in [&sig[..20], "", "%%%"] {
        let h = headers(&[
            ("messagebird-request-timestamp", &ts),
            ("messagebird-signature", bad),
        ]);
        assert!(check(&bird_provider(), &h, &body, None).is_err(), "{bad:?}");
    }
    // Partoo's credentials are no good at Bird.
    let partoo_sig = partoo_signature(&keys::partoo(), &body);
    let h = headers(&[
        ("x-partoo-signature-v1", &partoo_sig),
        ("messagebird-request-timestamp", &ts),
    ]);
    assert!(matches!(
        check(&bird_provider(), &h, &body, None),
        Err(AuthError::MissingSignature(_))
    ));
}

#[test]
fn zipmessage_tokens_match_exactly_in_constant_time() {
    let zip =
        Zipmessage::new(&[keys::zipmessage_token(), keys::zipmessage_old_token()]).expect("tokens");
    let h = HeaderMap::new();
    assert_eq!(
        check(&zip, &h, b"{}", Some(keys::zipmessage_token())),
        Ok(())
    );
    assert_eq!(
        check(&zip, &h, b"{}", Some(keys::zipmessage_old_token())),
        Ok(()),
        "rotation"
    );
    let upper = keys::zipmessage_token().to_uppercase();
    let extra = format!("{}x", keys::zipmessage_token());
    let short = &keys::zipmessage_token()[..keys::zipmessage_token().len() - 1];
    for bad in [upper.as_str(), extra.as_str(), short, keys::bird_key(), "x"] {
        assert_eq!(
            check(&zip, &h, b"{}", Some(bad)),
            Err(AuthError::InvalidToken),
            "{bad}"
        );
    }
    assert_eq!(check(&zip, &h, b"{}", None), Err(AuthError::MissingToken));
    assert_eq!(
        check(&zip, &h, b"{}", Some("")),
        Err(AuthError::MissingToken)
    );
}

#[test]
fn keys_never_show_in_debug_output() {
    let zip = Zipmessage::new(&[keys::zipmessage_token()]).expect("tokens");
    let bird = bird_provider();
    let shown = format!("{zip:?} {bird:?}");
    assert!(
        !shown.contains(keys::zipmessage_token()) && !shown.contains(keys::bird_key()),
        "{shown}"
    );
}
