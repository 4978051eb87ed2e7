//! `open_enum!`: string enums that keep values this version does not know. The service adds values to its enums
//! without notice, so an unknown value is data to keep, never an error.

/// Declares an open string enum: known values as unit variants, anything else kept verbatim in `Other`.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+ }
    ) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The value as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Other(other) => other,
                }
            }

            /// Reads a wire value; unknown values become `Other`, kept verbatim. Known values match ignoring ASCII
            /// case: the metadata document writes `wav` and `unmixed` where the event writes `Wav` and `Unmixed`.
            pub fn parse(value: &str) -> Self {
                $( if value.eq_ignore_ascii_case($text) { return Self::$variant; } )+
                Self::Other(value.to_owned())
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::parse(value)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    Self::Other(other) => write!(f, "{}::Other({:?})", stringify!($name), other),
                    known => write!(f, "{}::{}", stringify!($name), known.as_str()),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct OpenVisitor;
                impl serde::de::Visitor<'_> for OpenVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<$name, E> {
                        Ok($name::parse(value))
                    }
                }
                deserializer.deserialize_str(OpenVisitor)
            }
        }
    };
}

/// Other modules of the crate (the Call Automation model) declare their open enums with the same macro.
pub(crate) use open_enum;
