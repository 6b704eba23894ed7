//! Documents between REEF's store-neutral JSON and BSON.
//!
//! Invariant: timestamps become BSON dates (so TTL indexes, time-series collections, `$lt` on
//! dates and mongosh's `new Date()` all agree), and come back as REEF's RFC 3339 strings; other
//! programs' ObjectIds come back as their hex strings.

use mongodb::bson::{self, oid::ObjectId, Bson, Document};
use reef_core::time::{fmt_ts, from_millis, parse_ts};
use serde_json::{Map, Value};

/// Field names whose string values are instants.
pub fn is_time_field(key: &str) -> bool {
    key.ends_with("_at") || key == "at" || key == "timestamp"
}

pub fn to_bson(v: &Value) -> Bson {
    to_bson_keyed(None, v)
}

fn to_bson_keyed(key: Option<&str>, v: &Value) -> Bson {
    match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Bson::Int64(i),
            None => Bson::Double(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => {
            if key.is_some_and(is_time_field) {
                if let Ok(t) = parse_ts(s) {
                    return Bson::DateTime(bson::DateTime::from_millis(t.timestamp_millis()));
                }
            }
            Bson::String(s.clone())
        }
        Value::Array(a) => Bson::Array(a.iter().map(|x| to_bson_keyed(None, x)).collect()),
        Value::Object(o) => Bson::Document(to_document(o)),
    }
}

pub fn to_document(o: &Map<String, Value>) -> Document {
    let mut d = Document::new();
    for (k, v) in o {
        d.insert(k.clone(), to_bson_keyed(Some(k), v));
    }
    d
}

/// Any serialisable value as a BSON document (it must serialise to a JSON object).
pub fn doc_of<T: serde::Serialize>(t: &T) -> Result<Document, reef_core::StoreError> {
    match serde_json::to_value(t) {
        Ok(Value::Object(o)) => Ok(to_document(&o)),
        Ok(_) => Err(reef_core::StoreError::Backend("value is not a document".into())),
        Err(e) => Err(reef_core::StoreError::Backend(format!("encoding a document: {e}"))),
    }
}

pub fn to_json(b: &Bson) -> Value {
    match b {
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::Boolean(x) => Value::Bool(*x),
        Bson::Int32(i) => Value::from(*i),
        Bson::Int64(i) => Value::from(*i),
        Bson::Double(f) => serde_json::Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null),
        Bson::Decimal128(d) => {
            d.to_string().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number).unwrap_or(Value::Null)
        }
        Bson::String(s) => Value::String(s.clone()),
        Bson::DateTime(t) => Value::String(fmt_ts(&from_millis(t.timestamp_millis()))),
        Bson::ObjectId(o) => Value::String(o.to_hex()),
        Bson::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Bson::Document(d) => Value::Object(d.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        other => other.clone().into_relaxed_extjson(),
    }
}

pub fn doc_to_json(d: &Document) -> Value {
    to_json(&Bson::Document(d.clone()))
}

/// The id of a document as REEF shows it.
pub fn id_string(d: &Document) -> String {
    match d.get("_id") {
        Some(Bson::String(s)) => s.clone(),
        Some(Bson::ObjectId(o)) => o.to_hex(),
        Some(other) => other.to_string(),
        None => "(no _id)".into(),
    }
}

/// A filter matching `_id == id` whether the document's id is a string or, for documents other
/// programs inserted, the ObjectId spelled by `id`.
pub fn id_filter(id: &str) -> Document {
    match ObjectId::parse_str(id) {
        Ok(oid) => bson::doc! {"_id": {"$in": [id, oid]}},
        Err(_) => bson::doc! {"_id": id},
    }
}

pub fn date(t: &reef_core::Timestamp) -> bson::DateTime {
    bson::DateTime::from_millis(t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn time_fields_become_dates_and_come_back_identical() {
        let v = json!({"_id": "t1", "created_at": "2026-11-21T08:00:00.123Z", "lease": {"expires_at": "2026-11-21T08:00:30.000Z", "token": "x"},
                       "title": "2026-11-21T08:00:00.000Z", "priority": 3, "score": 0.5, "tags": ["a"]});
        let d = to_document(v.as_object().unwrap());
        assert!(matches!(d.get("created_at"), Some(Bson::DateTime(_))));
        assert!(matches!(d.get_document("lease").unwrap().get("expires_at"), Some(Bson::DateTime(_))));
        assert!(matches!(d.get("title"), Some(Bson::String(_))), "only time-named fields are converted");
        assert_eq!(d.get("priority"), Some(&Bson::Int64(3)));
        assert_eq!(doc_to_json(&d), v);
    }

    #[test]
    fn object_ids_and_int32_from_other_programs_read_cleanly() {
        let oid = ObjectId::parse_str("65f1a2b3c4d5e6f708192a3b").unwrap();
        let d = bson::doc! {"_id": oid, "priority": 2i32, "created_at": bson::DateTime::from_millis(0)};
        let j = doc_to_json(&d);
        assert_eq!(j, json!({"_id": "65f1a2b3c4d5e6f708192a3b", "priority": 2, "created_at": "1970-01-01T00:00:00.000Z"}));
        assert_eq!(id_string(&d), "65f1a2b3c4d5e6f708192a3b");
        assert_eq!(id_filter("65f1a2b3c4d5e6f708192a3b"), bson::doc! {"_id": {"$in": ["65f1a2b3c4d5e6f708192a3b", oid]}});
        assert_eq!(id_filter("01a1fd3c-5c2c"), bson::doc! {"_id": "01a1fd3c-5c2c"});
    }
}
