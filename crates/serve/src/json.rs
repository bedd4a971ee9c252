//! JSON tensors read without a tree of `serde_json::Value`s: a request of numbers is read
//! straight into `f32`s (at most twice its text: `0,` is two bytes, an `f32` four), where a
//! `Value` per number would take sixteen times the body — a body at the size limit must not
//! take gigabytes.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// The numbers of a JSON tensor (a number, or arrays nested to any depth; `true`/`false` are
/// 1/0), row-major, and the length of its outermost array (`None` for a lone number).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Flat {
    pub values: Vec<f32>,
    pub outer: Option<usize>,
}

/// A number read as `f32`: finite (JSON has no NaN) and within `f32`'s range.
fn number<E: de::Error>(v: f64) -> Result<f32, E> {
    if v.is_finite() && v.abs() <= f32::MAX as f64 {
        Ok(v as f32)
    } else {
        Err(E::custom(format!("{v} is not a 32-bit number")))
    }
}

struct Numbers<'a> {
    out: &'a mut Vec<f32>,
}

impl<'de> Visitor<'de> for Numbers<'_> {
    /// the length of the array read (`None`: a number)
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("numbers, or arrays of them")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.out.push(number(v as f64)?);
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.out.push(number(v as f64)?);
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.out.push(number(v)?);
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.out.push(f32::from(u8::from(v)));
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut n = 0;
        while seq
            .next_element_seed(NumbersSeed {
                out: &mut *self.out,
            })?
            .is_some()
        {
            n += 1;
        }
        Ok(Some(n))
    }
}

struct NumbersSeed<'a> {
    out: &'a mut Vec<f32>,
}

impl<'de> DeserializeSeed<'de> for NumbersSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(Numbers { out: self.out }).map(|_| ())
    }
}

impl<'de> Deserialize<'de> for Flat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut values = Vec::new();
        let outer = d.deserialize_any(Numbers { out: &mut values })?;
        // what doubling left over goes back: the numbers take 4 bytes each, no more
        values.shrink_to_fit();
        Ok(Flat { values, outer })
    }
}

/// A value of TF Serving's REST API: a tensor, an encoded image (`{"b64": "…"}`), a list of
/// images, or values by input name (`{"image": …}`).
#[derive(Debug, PartialEq)]
pub(crate) enum TfValue {
    Tensor(Flat),
    Image(String),
    Images(Vec<String>),
    Named(Vec<(String, TfValue)>),
}

/// An element of an array: numbers (read into the shared list) or an image.
enum Element {
    Numbers,
    Image(String),
}

struct ElementSeed<'a> {
    out: &'a mut Vec<f32>,
}

impl<'de> DeserializeSeed<'de> for ElementSeed<'_> {
    type Value = Element;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Element, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ElementSeed<'_> {
    type Value = Element;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"numbers, arrays of them, or {"b64": "…"}"#)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Element, E> {
        Numbers { out: self.out }
            .visit_u64(v)
            .map(|_| Element::Numbers)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Element, E> {
        Numbers { out: self.out }
            .visit_i64(v)
            .map(|_| Element::Numbers)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Element, E> {
        Numbers { out: self.out }
            .visit_f64(v)
            .map(|_| Element::Numbers)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Element, E> {
        Numbers { out: self.out }
            .visit_bool(v)
            .map(|_| Element::Numbers)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Element, A::Error> {
        Numbers { out: self.out }
            .visit_seq(seq)
            .map(|_| Element::Numbers)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Element, A::Error> {
        match TfVisitor.visit_map(map)? {
            TfValue::Image(b64) => Ok(Element::Image(b64)),
            _ => Err(de::Error::custom(
                r#"an array holds an object that is not {"b64": "…"}"#,
            )),
        }
    }
}

/// A lone number as a tensor.
fn lone<E: de::Error>(v: f64) -> Result<TfValue, E> {
    Ok(TfValue::Tensor(Flat {
        values: vec![number(v)?],
        outer: None,
    }))
}

struct TfVisitor;

impl<'de> Visitor<'de> for TfVisitor {
    type Value = TfValue;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a tensor, {"b64": "…"}, or values by input name"#)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<TfValue, E> {
        lone(v as f64)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<TfValue, E> {
        lone(v as f64)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<TfValue, E> {
        lone(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<TfValue, E> {
        lone(f64::from(u8::from(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TfValue, A::Error> {
        let mut values = Vec::new();
        let mut images = Vec::new();
        let (mut n, mut tensors) = (0, 0);
        while let Some(e) = seq.next_element_seed(ElementSeed { out: &mut values })? {
            n += 1;
            match e {
                Element::Numbers => tensors += 1,
                Element::Image(b64) => images.push(b64),
            }
        }
        match (tensors, images.len()) {
            (_, 0) => {
                values.shrink_to_fit();
                Ok(TfValue::Tensor(Flat {
                    values,
                    outer: Some(n),
                }))
            }
            (0, _) => Ok(TfValue::Images(images)),
            _ => Err(de::Error::custom("an array mixes b64 images and numbers")),
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TfValue, A::Error> {
        let mut named = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "b64" {
                let b64: String = map.next_value()?;
                if map.next_key::<de::IgnoredAny>()?.is_some() || !named.is_empty() {
                    return Err(de::Error::custom(r#"{"b64": …} holds other keys"#));
                }
                return Ok(TfValue::Image(b64));
            }
            let value: TfValue = map.next_value()?;
            named.push((key, value));
        }
        Ok(TfValue::Named(named))
    }
}

impl<'de> Deserialize<'de> for TfValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TfVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_are_flattened_in_row_order() {
        let f: Flat = serde_json::from_str("[[1, 2.5], [true, -3]]").unwrap();
        assert_eq!(f.values, [1.0, 2.5, 1.0, -3.0]);
        assert_eq!(f.outer, Some(2));
        let f: Flat = serde_json::from_str("7").unwrap();
        assert_eq!((f.values, f.outer), (vec![7.0], None));
        for bad in [r#"[1, "x"]"#, r#"[{"a": 1}]"#, "[1e300]", "null"] {
            assert!(serde_json::from_str::<Flat>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tf_serving_values_are_told_apart() {
        let v: TfValue = serde_json::from_str(r#"{"b64": "aGk="}"#).unwrap();
        assert_eq!(v, TfValue::Image("aGk=".into()));
        let v: TfValue = serde_json::from_str(r#"[{"b64": "a"}, {"b64": "b"}]"#).unwrap();
        assert_eq!(v, TfValue::Images(vec!["a".into(), "b".into()]));
        let v: TfValue = serde_json::from_str(r#"{"image": [[1, 2]]}"#).unwrap();
        let TfValue::Named(named) = v else {
            panic!("named")
        };
        assert_eq!(named[0].0, "image");
        assert_eq!(
            named[0].1,
            TfValue::Tensor(Flat {
                values: vec![1.0, 2.0],
                outer: Some(1)
            })
        );
        for bad in [
            r#"[{"b64": "a"}, [1]]"#,
            r#"{"b64": "a", "x": 1}"#,
            r#"[{"x": 1}]"#,
            r#"{"b64": 3}"#,
        ] {
            assert!(serde_json::from_str::<TfValue>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostile_text_is_an_error_never_a_panic_or_a_deep_recursion() {
        // nesting far past serde_json's recursion limit: an error, not a stack overflow
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(serde_json::from_str::<Flat>(&deep).is_err());
        assert!(serde_json::from_str::<TfValue>(&deep).is_err());
        let deep = format!("{}1{}", r#"{"a":"#.repeat(50_000), "}".repeat(50_000));
        assert!(serde_json::from_str::<TfValue>(&deep).is_err());
        // every prefix of valid texts, and each with bytes changed (a fixed xorshift, so a
        // failure repeats): parsed or refused, nothing else
        let texts = [
            r#"[[1, 2.5], [true, -3e2]]"#,
            r#"[{"b64": "aGk="}, {"b64": "aGk="}]"#,
            r#"{"image": [[1, 2]], "scale": [0.5]}"#,
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        const SET: &[u8] = b"[]{}\",:0123456789.eE-+tfnul\\\x00\xff";
        for text in texts {
            for end in 0..=text.len() {
                let _ = serde_json::from_slice::<Flat>(&text.as_bytes()[..end]);
                let _ = serde_json::from_slice::<TfValue>(&text.as_bytes()[..end]);
            }
            for _ in 0..2000 {
                let mut bytes = text.as_bytes().to_vec();
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] = SET[(next() as usize) % SET.len()];
                }
                let _ = serde_json::from_slice::<Flat>(&bytes);
                let _ = serde_json::from_slice::<TfValue>(&bytes);
            }
        }
    }

    #[test]
    fn a_request_of_numbers_takes_at_most_twice_its_text() {
        let text = format!("[{}0]", "0,".repeat(100_000));
        let f: Flat = serde_json::from_str(&text).unwrap();
        assert_eq!(f.values.len(), 100_001);
        assert!(f.values.capacity() * 4 <= 2 * text.len() + 4096);
    }
}
