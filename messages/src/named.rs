//! Closed sets of names: enums whose variants have one stable snake_case spelling.
//!
//! Statuses, kinds and runtimes appear in JSON, in Postgres columns, in logs and on the command
//! line. Each such enum is declared with the crate-private `named_enum!` macro, which derives serde with exactly the
//! spelling [`as_str`](crate::lifecycle::WorkerStatus::as_str) returns, a `Display` that prints
//! it, a `FromStr` that accepts only it, and an `ALL` list — so the four can never disagree.

use crate::error::{Classify, ErrorClass};

/// A string that names no variant of a closed set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{input}`; expected one of: {expected}")]
pub struct UnknownName {
    /// Which set was parsed, e.g. `worker status`.
    pub what: &'static str,
    /// The string that was given.
    pub input: String,
    /// The accepted names, comma-separated.
    pub expected: String,
}

impl Classify for UnknownName {
    fn class(&self) -> ErrorClass {
        ErrorClass::Fatal
    }
}

/// Declares a `Copy` enum with a stable snake_case name per variant.
///
/// ```ignore
/// named_enum! {
///     /// Doc.
///     pub enum Colour("colour") {
///         /// Doc.
///         Red = "red",
///     }
/// }
/// ```
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stable snake_case name used in JSON, the database, logs and the CLI.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::openapi::names_schema($what, &[$($text),+])
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::named::UnknownName;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str() == input)
                    .ok_or_else(|| $crate::named::UnknownName {
                        what: $what,
                        input: input.to_owned(),
                        expected: Self::ALL
                            .iter()
                            .map(|value| value.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            }
        }
    };
}

pub(crate) use named_enum;

#[cfg(test)]
mod tests {
    named_enum! {
        /// A test set.
        pub enum Colour("colour") {
            /// Red.
            Red = "red",
            /// Dark blue.
            DarkBlue = "dark_blue",
        }
    }

    #[test]
    fn names_agree_across_serde_display_and_from_str() {
        for colour in Colour::ALL {
            let json = serde_json::to_string(colour).unwrap();
            assert_eq!(json, format!("\"{}\"", colour.as_str()));
            assert_eq!(colour.to_string(), colour.as_str());
            assert_eq!(colour.as_str().parse::<Colour>().unwrap(), *colour);
        }
    }

    #[test]
    fn unknown_names_are_refused_with_the_choices() {
        let err = "green".parse::<Colour>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown colour `green`; expected one of: red, dark_blue"
        );
    }
}
