//! DynamoDB write cost of an item, by DynamoDB's documented item-size rules:
//! attribute names count; strings and binaries by their byte length; numbers
//! about one byte per two significant digits plus one; booleans and nulls one
//! byte; lists and maps three bytes plus one per element plus their contents.
//! A standard write costs one write request unit per started 1 KB. An index
//! entry is the table key, the index key and the projected attributes, plus
//! 100 bytes of overhead.

use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// The size of an attribute value in bytes.
pub fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => {
            let digits = n.chars().filter(char::is_ascii_digit).collect::<String>();
            let significant = digits
                .trim_start_matches('0')
                .trim_end_matches('0')
                .len()
                .max(1);
            significant.div_ceil(2) + 1
        }
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.len() * 21,
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

/// The size of an item in bytes.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

/// Write request units of a standard write of `bytes`.
pub fn write_units(bytes: usize) -> usize {
    bytes.div_ceil(1024).max(1)
}

/// Size of an index entry projecting `attributes` (None = ALL), or None when
/// the item lacks the index's key (sparse index: no write).
pub fn index_entry_size(
    item: &HashMap<String, AttributeValue>,
    table_key: &[&str],
    index_key: &[&str],
    attributes: Option<&[&str]>,
) -> Option<usize> {
    if !index_key.iter().all(|k| item.contains_key(*k)) {
        return None;
    }
    let size = match attributes {
        None => item_size(item),
        Some(projected) => item
            .iter()
            .filter(|(name, _)| {
                table_key.contains(&name.as_str())
                    || index_key.contains(&name.as_str())
                    || projected.contains(&name.as_str())
            })
            .map(|(name, value)| name.len() + value_size(value))
            .sum(),
    };
    Some(size + 100)
}

/// The item a seed event is stored as, delivered as its provider delivers
/// it: Bird sends a request id (a UUID), which is stored.
pub fn seed_item(
    provider: switchboard_types::Provider,
    body: &[u8],
) -> switchboard_types::StoredEvent {
    use switchboard_providers::{decode_body, Delivery};
    let delivery = Delivery {
        test: false,
        delivery_id: (provider == switchboard_types::Provider::Bird)
            .then(|| "6c2b0a1e-8f0d-4a51-9d3e-2f1c7b9a4e55".to_owned()),
        tenant: None,
    };
    switchboard_pipeline::item::build(
        provider,
        &decode_body(provider, body),
        &delivery,
        body,
        chrono::Utc::now(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The webhook picks the body's form by `item::stored_size`, which has
    /// no SDK types; it must agree with these rules on what is written.
    #[test]
    fn the_pipelines_own_item_size_is_the_written_items() {
        let mut items: Vec<_> = crate::seed_parts()
            .into_iter()
            .map(|(provider, _, body)| seed_item(provider, &body))
            .collect();
        let mut kept = seed_item(switchboard_types::Provider::Partoo, b"not json");
        kept.expires_at = Some(1_800_000_000);
        kept.reprocessed_to = Some("another-id".into());
        kept.test = true;
        kept.headers = Some([("content-type".to_owned(), "text/plain".to_owned())].into());
        items.push(kept);
        for item in &items {
            assert_eq!(
                switchboard_pipeline::item::stored_size(item),
                item_size(&switchboard_aws::dynamo::attributes(item)),
                "{}",
                item.event_id
            );
        }
    }

    #[test]
    fn sizes_follow_dynamodb_rules() {
        assert_eq!(value_size(&AttributeValue::S("héllo".into())), 6);
        assert_eq!(value_size(&AttributeValue::N("12345".into())), 4);
        assert_eq!(value_size(&AttributeValue::Bool(true)), 1);
        let item = HashMap::from([("pk".to_owned(), AttributeValue::S("abc".into()))]);
        assert_eq!(item_size(&item), 5);
        assert_eq!(write_units(1024), 1);
        assert_eq!(write_units(1025), 2);
        assert_eq!(index_entry_size(&item, &["pk"], &["missing"], None), None);
        assert_eq!(
            index_entry_size(&item, &["pk"], &["pk"], Some(&[])),
            Some(105)
        );
    }
}
