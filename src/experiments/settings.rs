//! Typed, documented, range-checked experiment configurations.
//!
//! Every experiment's `Config` is a serde struct with documented defaults
//! ([`Default`]) and a list of [`Key`]s: the dotted name of every leaf value
//! (`model.hidden`), one line of documentation and its valid [`Range`]. The gallery
//! layer reads and writes configurations as TOML through these keys; [`Settings::validate`]
//! checks a configuration built in code against the same ranges.

use serde::Serialize;
use serde::de::DeserializeOwned;
use toml::Value;

use crate::error::{Error, Result};

/// The values a key accepts: a closed interval, of integers or of real numbers (a real
/// lower bound may be exclusive, as for a learning rate), or one of a few names.
#[derive(Clone, Copy, Debug)]
pub enum Range {
    /// An integer in `min..=max`.
    Int(i64, i64),
    /// A finite real number in `[min, max]`, or `(min, max]` if `open_min`.
    Real {
        /// The lower bound.
        min: f64,
        /// Whether the lower bound itself is excluded.
        open_min: bool,
        /// The upper bound.
        max: f64,
    },
    /// One of the names an enum's variants serialize to ([`Range::choice`]).
    Choice(fn() -> Vec<String>),
}

/// An enum whose every variant is a valid value of a configuration key.
pub trait Variants: Serialize + Sized + 'static {
    /// Every variant.
    const ALL: &'static [Self];
}

/// The names the variants of `T` serialize to: the names a configuration file holds.
fn variant_names<T: Variants>() -> Vec<String> {
    T::ALL
        .iter()
        .filter_map(|v| Value::try_from(v).ok()?.as_str().map(str::to_string))
        .collect()
}

impl Range {
    /// A real number in `(0, max]`: learning rates, temperatures, β.
    pub const fn positive(max: f64) -> Self {
        Range::Real {
            min: 0.0,
            open_min: true,
            max,
        }
    }

    /// One of the variants of `T`, by the names serde gives them.
    pub fn choice<T: Variants>() -> Self {
        Range::Choice(variant_names::<T>)
    }

    /// Whether `value` lies in the range (integers only for [`Range::Int`]).
    pub fn admits(&self, value: &Value) -> bool {
        match (*self, value) {
            (Range::Int(lo, hi), Value::Integer(v)) => (lo..=hi).contains(v),
            (Range::Real { min, open_min, max }, Value::Integer(_) | Value::Float(_)) => {
                let v = value.as_float().or(value.as_integer().map(|i| i as f64));
                v.is_some_and(|v| v.is_finite() && v <= max && (v > min || (!open_min && v == min)))
            }
            (Range::Choice(names), Value::String(v)) => names().contains(v),
            _ => false,
        }
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Range::Int(lo, hi) => write!(f, "an integer in {lo}..={hi}"),
            Range::Real { min, open_min, max } => {
                let open = if open_min { '(' } else { '[' };
                let (min, max) = (crate::error::number(min), crate::error::number(max));
                write!(f, "a number in {open}{min}, {max}]")
            }
            Range::Choice(names) => write!(f, "one of {}", names().join(", ")),
        }
    }
}

/// One leaf of a configuration: its dotted name, what it means, and what it accepts.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// Dotted path (`model.hidden`).
    pub path: &'static str,
    /// One line on what it sets.
    pub doc: &'static str,
    /// The values it accepts.
    pub range: Range,
}

impl Key {
    /// A key with its documentation and range.
    pub const fn new(path: &'static str, doc: &'static str, range: Range) -> Self {
        Key { path, doc, range }
    }

    /// Checks one value against the range; the error names the key and its range.
    pub fn check(&self, value: &Value) -> Result<()> {
        if self.range.admits(value) {
            Ok(())
        } else {
            let shown = match value {
                Value::Float(x) => crate::error::number(*x),
                other => other.to_string(),
            };
            Err(Error::InvalidArgument(format!(
                "{} must be {}, got {}",
                self.path,
                self.range,
                crate::error::quote(&shown)
            )))
        }
    }
}

/// An experiment configuration: serde, documented defaults, and a range for every key.
pub trait Settings: Serialize + DeserializeOwned + Default + Clone {
    /// Every leaf key, in the order of the serialized struct.
    fn keys() -> Vec<Key>;

    /// The keys [`Settings::memory_bytes`] depends on, as an error names them.
    const MEMORY_KEYS: &'static str = "the configuration's sizes";

    /// About how many bytes a run with this configuration needs (`None` on overflow);
    /// configurations whose sizes are all small keep the default, 0.
    fn memory_bytes(&self) -> Option<u128> {
        Some(0)
    }

    /// The configuration as `(dotted key, value)` pairs, in key order.
    fn flat(&self) -> Result<Vec<(String, Value)>> {
        let value = Value::try_from(self)
            .map_err(|e| Error::InvalidArgument(format!("configuration: {e}")))?;
        let mut out = Vec::new();
        flatten("", &value, &mut out);
        Ok(out)
    }

    /// Checks what no single key's range can: keys that must fit together (none by
    /// default).
    ///
    /// # Errors
    /// Naming the keys and the conflict.
    fn check_together(&self) -> Result<()> {
        Ok(())
    }

    /// Checks every key against its range, then the keys together.
    fn validate(&self) -> Result<()> {
        let keys = Self::keys();
        for (path, value) in self.flat()? {
            key_named(&keys, &path)?.check(&value)?;
        }
        self.check_together()
    }
}

/// Appends the leaves of `value` under `prefix` as dotted paths.
pub fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Table(table) => {
            for (k, v) in table {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, v, out);
            }
        }
        leaf => out.push((prefix.to_string(), leaf.clone())),
    }
}

/// The key called `path`; the error for an unknown one lists the known keys.
pub fn key_named<'a>(keys: &'a [Key], path: &str) -> Result<&'a Key> {
    keys.iter()
        .find(|k| k.path == path)
        .ok_or_else(|| Error::Unknown {
            kind: "configuration key",
            name: path.into(),
            expected: keys.iter().map(|k| k.path).collect::<Vec<_>>().join(", "),
        })
}

/// A configuration whose every key has been checked against its range
/// ([`Settings::validate`]): the one place validation happens, and the only form in
/// which an experiment receives its configuration (it reads through as `&C`).
#[derive(Clone, Debug)]
pub struct Valid<C>(C);

impl<C: Settings> Valid<C> {
    /// Checks `config`.
    ///
    /// # Errors
    /// The first key out of its range, named with its range.
    pub fn new(config: C) -> Result<Self> {
        config.validate()?;
        Ok(Valid(config))
    }
}

impl<C> std::ops::Deref for Valid<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.0
    }
}

/// One key, or the keys of a flattened part of a configuration, as `world_settings!`
/// lists them.
pub trait Keys {
    /// The keys, in order.
    fn keys(self) -> Vec<Key>;
}

impl Keys for Key {
    fn keys(self) -> Vec<Key> {
        vec![self]
    }
}

impl<const N: usize> Keys for [Key; N] {
    fn keys(self) -> Vec<Key> {
        self.into()
    }
}
