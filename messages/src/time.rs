//! Points in time, in one format that cannot be got wrong.
//!
//! The systems artel replaces lost worker events because a `datetime` was serialized by one
//! service and not understood by the next (the seeds' backlog: "Fix datetime serialization in
//! worker events forwarding"). Here every time field in the catalog is a [`Timestamp`], and a
//! `Timestamp` has exactly one wire form: RFC 3339, UTC, microseconds, `Z` — for example
//! `2026-11-23T19:51:07.123456Z`. Reading accepts any RFC 3339 string with an offset and
//! normalizes it to UTC; a naive date-time without an offset is refused, never guessed.

use crate::error::{Classify, ErrorClass};
use chrono::{DateTime, NaiveDateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::fmt;
use std::str::FromStr;

/// A point in time, UTC, with microsecond precision.
///
/// The precision is Postgres `timestamptz`'s, and sub-microsecond digits are dropped on
/// construction, so a `Timestamp` survives every round trip (JSON, database) unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::timestamp_schema()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timestamp {}

/// A string that is not an RFC 3339 timestamp with an offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// A date and time without a UTC offset: which zone it meant is unknowable.
    #[error(
        "timestamp `{input}` has no UTC offset; artel requires RFC 3339 with an offset, \
         e.g. `2026-11-23T19:51:07.123456Z`"
    )]
    MissingOffset {
        /// The string that was given.
        input: String,
    },
    /// Not a date and time at all.
    #[error("`{input}` is not an RFC 3339 timestamp: {reason}")]
    Invalid {
        /// The string that was given.
        input: String,
        /// What the parser objected to.
        reason: String,
    },
    /// A year RFC 3339 cannot write (it allows 0000 to 9999).
    #[error("timestamp {0:?} is outside the years 0000-9999 that RFC 3339 can write")]
    OutOfRange(DateTime<Utc>),
}

impl Classify for TimestampError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Fatal
    }
}

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self::from_datetime(Utc::now())
    }

    /// A timestamp at `datetime`, truncated to whole microseconds.
    pub fn from_datetime(datetime: DateTime<Utc>) -> Self {
        Self(datetime.trunc_subsecs(6))
    }

    /// The chrono value, for arithmetic and formatting beyond the wire form.
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    /// Parses an RFC 3339 string with an offset, normalized to UTC.
    pub fn parse(input: &str) -> Result<Self, TimestampError> {
        match DateTime::parse_from_rfc3339(input) {
            Ok(parsed) => Ok(Self::from_datetime(parsed.with_timezone(&Utc))),
            Err(err) => {
                let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                    .iter()
                    .any(|format| NaiveDateTime::parse_from_str(input, format).is_ok());
                if naive {
                    Err(TimestampError::MissingOffset {
                        input: input.to_owned(),
                    })
                } else {
                    Err(TimestampError::Invalid {
                        input: input.to_owned(),
                        reason: err.to_string(),
                    })
                }
            }
        }
    }

    /// The wire form: RFC 3339, UTC, microseconds, `Z`.
    ///
    /// Fails only for years outside 0000–9999, which RFC 3339 cannot write.
    pub fn to_rfc3339(&self) -> Result<String, TimestampError> {
        if (0..=9999).contains(&chrono::Datelike::year(&self.0)) {
            Ok(self.0.to_rfc3339_opts(SecondsFormat::Micros, true))
        } else {
            Err(TimestampError::OutOfRange(self.0))
        }
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(datetime: DateTime<Utc>) -> Self {
        Self::from_datetime(datetime)
    }
}

impl fmt::Display for Timestamp {
    /// The wire form; a year outside 0000–9999 prints in chrono's extended form instead.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.to_rfc3339().map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Rfc3339;

        impl de::Visitor<'_> for Rfc3339 {
            type Value = Timestamp;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp with a UTC offset")
            }

            fn visit_str<E: de::Error>(self, input: &str) -> Result<Timestamp, E> {
                Timestamp::parse(input).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(Rfc3339)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, TimeZone};
    use proptest::prelude::*;

    /// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in microseconds.
    const FIRST_MICROS: i64 = -62_167_219_200_000_000;
    const LAST_MICROS: i64 = 253_402_300_799_999_999;

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_datetime(DateTime::from_timestamp_micros(micros).unwrap())
    }

    #[test]
    fn serializes_as_utc_microseconds_with_z() {
        let ts = Timestamp::parse("2026-11-23T19:51:07.123456Z").unwrap();
        assert_eq!(
            serde_json::to_string(&ts).unwrap(),
            r#""2026-11-23T19:51:07.123456Z""#
        );
        let whole = Timestamp::parse("2026-11-23T19:51:07Z").unwrap();
        assert_eq!(whole.to_string(), "2026-11-23T19:51:07.000000Z");
    }

    #[test]
    fn offsets_are_normalized_to_utc() {
        let ts: Timestamp = serde_json::from_str(r#""2026-11-23T22:51:07.5+03:00""#).unwrap();
        assert_eq!(ts.to_string(), "2026-11-23T19:51:07.500000Z");
        let west: Timestamp = "2026-11-23T14:51:07.5-05:00".parse().unwrap();
        assert_eq!(west, ts);
    }

    #[test]
    fn naive_datetimes_are_refused_with_a_clear_error() {
        for naive in ["2026-11-23T19:51:07.123456", "2026-11-23 19:51:07"] {
            let err = Timestamp::parse(naive).unwrap_err();
            assert_eq!(
                err,
                TimestampError::MissingOffset {
                    input: naive.into()
                }
            );
            assert!(err.to_string().contains("has no UTC offset"), "{err}");
            let json = format!("\"{naive}\"");
            let serde_err = serde_json::from_str::<Timestamp>(&json).unwrap_err();
            assert!(serde_err.to_string().contains("has no UTC offset"));
        }
    }

    #[test]
    fn garbage_and_non_strings_are_refused() {
        assert!(matches!(
            Timestamp::parse("yesterday"),
            Err(TimestampError::Invalid { .. })
        ));
        assert!(serde_json::from_str::<Timestamp>("1700000000").is_err());
    }

    #[test]
    fn nanoseconds_are_truncated_so_round_trips_are_exact() {
        let precise = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
        let ts = Timestamp::from_datetime(precise);
        assert_eq!(ts.as_datetime().timestamp_subsec_nanos(), 123_456_000);
        let back: Timestamp = serde_json::from_str(&serde_json::to_string(&ts).unwrap()).unwrap();
        assert_eq!(back, ts);
        let now = Timestamp::now();
        assert_eq!(now.as_datetime().timestamp_subsec_nanos() % 1_000, 0);
    }

    #[test]
    fn years_rfc3339_cannot_write_fail_to_serialize() {
        let far = Timestamp::from_datetime(Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap());
        assert!(matches!(
            far.to_rfc3339(),
            Err(TimestampError::OutOfRange(_))
        ));
        assert!(serde_json::to_string(&far).is_err());
    }

    proptest! {
        #[test]
        fn any_timestamp_round_trips_and_ends_with_z(micros in FIRST_MICROS..=LAST_MICROS) {
            let ts = at(micros);
            let json = serde_json::to_string(&ts).unwrap();
            prop_assert!(json.ends_with("Z\""), "{}", json);
            prop_assert_eq!(json.len(), r#""2026-11-23T19:51:07.123456Z""#.len());
            let back: Timestamp = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, ts);
            prop_assert_eq!(ts.to_string().parse::<Timestamp>().unwrap(), ts);
        }

        #[test]
        fn any_offset_reads_as_the_same_instant(
            micros in (FIRST_MICROS + 86_400_000_000)..=(LAST_MICROS - 86_400_000_000),
            offset_minutes in -(23 * 60 + 59)..=(23 * 60 + 59),
        ) {
            let ts = at(micros);
            let offset = FixedOffset::east_opt(offset_minutes * 60).unwrap();
            let local = ts.as_datetime().with_timezone(&offset).to_rfc3339();
            prop_assert_eq!(Timestamp::parse(&local).unwrap(), ts);
        }
    }
}
