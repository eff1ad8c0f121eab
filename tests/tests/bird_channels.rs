//! Bird's Channels events, which carry the actual messages: `<channel>.inbound`
//! and `<channel>.outbound` become `message.created` / `message.updated` in
//! the contact's conversation; `<channel>.interaction` passes through.
//! Bodies follow Bird's docs: the inbound shape is the documented "Receiving
//! messages" sample (`tests/fixtures/bird/sms.inbound.json`), the outbound one
//! reverses the roles as the send-message API does (the connector sends,
//! `receiver.contacts[]` receives). Needs the moto server `make test` starts.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use switchboard_tests::{fixture, TestStack};
use switchboard_types::Family;

const SETTLE: Duration = Duration::from_millis(1500);
const CONTACT: &str = "32cf5eee-f940-422c-ab8c-5f753aad5efd";
const PHONE: &str = "+31612345678";

/// A WhatsApp message from the contact, with an image: the documented
/// inbound shape on another platform.
fn whatsapp_inbound() -> Value {
    json!({
        "service": "channels",
        "event": "whatsapp.inbound",
        "payload": {
            "id": "0b8e3f2a-5c1d-4f7e-9a6b-2d4c8e1f3a5b",
            "channelId": "f1e2d3c4-b5a6-4789-8a0b-1c2d3e4f5a6b",
            "sender": {"contact": {
                "id": CONTACT,
                "identifierKey": "phonenumber",
                "identifierValue": PHONE,
                "annotations": {"name": "Jane Doe"}
            }},
            "receiver": {"connector": {
                "id": "5d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e",
                "identifierValue": "+3197010000000"
            }},
            "body": {"type": "image", "image": {
                "text": "the broken part",
                "images": [
                    {"mediaUrl": "https://media.api.bird.com/workspaces/w/messages/m/media/1", "altText": "photo"},
                    {"mediaUrl": "https://media.api.bird.com/workspaces/w/messages/m/media/2"}
                ]
            }},
            "parts": [{"platformReference": "wamid.HBgLMzE2MTIzNDU2NzgVAgASGBQzQUI"}],
            "status": "delivered",
            "direction": "incoming",
            "lastStatusAt": "2026-11-30T09:00:00.100Z",
            "createdAt": "2026-11-30T09:00:00.100Z",
            "updatedAt": "2026-11-30T09:00:00.100Z"
        }
    })
}

/// The business's SMS reply to the same contact, at `status`.
fn sms_outbound(status: &str, updated_at: &str) -> Value {
    json!({
        "service": "channels",
        "event": "sms.outbound",
        "payload": {
            "id": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "channelId": "614208aa-b153-4d5d-9989-2fddfc0ce4c3",
            "sender": {"connector": {
                "id": "86cc4dc0-3dc0-41b7-ac43-8ec829ead56f",
                "identifierValue": "+3197010000001"
            }},
            "receiver": {"contacts": [{
                "id": CONTACT,
                "identifierKey": "phonenumber",
                "identifierValue": PHONE
            }]},
            "body": {"type": "text", "text": {"text": "Thanks, a new part is on its way"}},
            "reference": "ticket-42",
            "replyTo": {"id": "0b8e3f2a-5c1d-4f7e-9a6b-2d4c8e1f3a5b", "type": "message"},
            "status": status,
            "direction": "outgoing",
            "lastStatusAt": updated_at,
            "createdAt": "2026-11-30T09:05:00.000Z",
            "updatedAt": updated_at
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_message_and_its_reply_share_one_conversation() {
    let t = TestStack::start().await;
    let bodies = [
        whatsapp_inbound(),
        sms_outbound("accepted", "2026-11-30T09:05:00.000Z"),
        sms_outbound("delivered", "2026-11-30T09:05:03.000Z"),
    ];
    for body in &bodies {
        let (status, reply) = t.post_bird(body.to_string().as_bytes(), &[]).await;
        assert_eq!(
            (status, reply["status"].as_str()),
            (200, Some("accepted")),
            "{reply}"
        );
    }
    // A redelivery of the delivered status is the same event.
    let (_, again) = t.post_bird(bodies[2].to_string().as_bytes(), &[]).await;
    assert_eq!(again["status"], "duplicate");

    let got = t.consume(Family::Messages, 3, SETTLE).await;
    assert_eq!(got.len(), 3, "three messages on the messages queue");
    let by_native: HashMap<String, Vec<&Value>> = got.iter().fold(HashMap::new(), |mut map, m| {
        let native = m.body["nativetype"].as_str().unwrap_or_default().to_owned();
        map.entry(native).or_default().push(&m.body);
        map
    });
    let inbound = by_native["whatsapp.inbound"][0];
    assert_eq!(inbound["type"], "message.created");
    let message = &inbound["data"]["message"];
    assert_eq!(message["direction"], "incoming");
    assert_eq!(message["channel"], "whatsapp");
    assert_eq!(message["kind"], "image");
    assert_eq!(message["text"], "the broken part");
    assert_eq!(
        message["media_urls"],
        json!([
            "https://media.api.bird.com/workspaces/w/messages/m/media/1",
            "https://media.api.bird.com/workspaces/w/messages/m/media/2"
        ])
    );
    assert_eq!(message["sender"]["phone"], PHONE);
    assert_eq!(message["sender"]["name"], "Jane Doe");
    assert_eq!(message["sender"]["kind"], "contact");

    let mut outbound = by_native["sms.outbound"].clone();
    outbound.sort_by_key(|e| e["time"].as_str().map(str::to_owned));
    assert_eq!(outbound[0]["type"], "message.created", "status accepted");
    assert_eq!(outbound[1]["type"], "message.updated", "status delivered");
    for event in &outbound {
        assert_eq!(event["data"]["message"]["direction"], "outgoing");
        assert_eq!(event["data"]["message"]["channel"], "sms");
        assert_eq!(event["data"]["message"]["sender"]["kind"], "connector");
    }
    assert_eq!(outbound[1]["data"]["message"]["status"], "delivered");

    // One conversation: the contact's, whichever channel and direction.
    let subjects: Vec<&Value> = got.iter().map(|m| &m.body["subject"]).collect();
    let key = format!("contact:{CONTACT}");
    assert!(subjects.iter().all(|s| **s == json!(key)), "{subjects:?}");
    assert!(got.iter().all(|m| m.group_id == format!("bird:{key}")));
    let participants = &inbound["data"]["conversation"]["participants"];
    assert_eq!(participants[0]["phone"], PHONE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_inbound_sms_is_a_message_and_an_interaction_passes_through() {
    let t = TestStack::start().await;
    let body = fixture("bird", "sms.inbound.json");
    let (status, _) = t.post_bird(&body, &[]).await;
    assert_eq!(status, 200);
    let interaction = json!({
        "service": "channels",
        "event": "sms.interaction",
        "payload": {
            "id": "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b",
            "channelId": "614208aa-b153-4d5d-9989-2fddfc0ce4c3",
            "messageId": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "type": "clicked",
            "createdAt": "2026-11-30T09:10:00.000Z"
        }
    });
    let (status, _) = t.post_bird(interaction.to_string().as_bytes(), &[]).await;
    assert_eq!(status, 200);

    let messages = t.drain(Family::Messages, 1, SETTLE).await;
    assert_eq!(messages.len(), 1);
    let event = &messages[0].body;
    assert_eq!(event["type"], "message.created");
    assert_eq!(event["subject"], format!("contact:{CONTACT}"));
    assert_eq!(event["time"], "2022-12-22T08:32:50.736Z");
    let message = &event["data"]["message"];
    assert_eq!(message["id"], "96a0b5fa-a986-453d-be5c-3117f989f025");
    assert_eq!(message["text"], "Sample incoming text message");
    assert_eq!(message["direction"], "incoming");
    assert_eq!(message["status"], "delivered");

    let other = t.drain(Family::Other, 1, SETTLE).await;
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].body["type"], "bird.sms.interaction");
}
