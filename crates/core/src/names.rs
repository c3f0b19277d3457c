//! One mechanism for every enum that has a name on the wire or in the database.
//!
//! [`named_enum!`] declares the enum with each variant's name beside it, once, and derives from
//! that one table `as_str`, `ALL`, `Display`, `FromStr` and serde's `Serialize`/`Deserialize`.
//! What is stored, what is sent and what is parsed therefore agree by construction: there is no
//! second spelling (a serde `rename_all` beside a hand-written `match`) to drift apart.

/// Declares an enum whose variants each have a fixed name (see the module documentation).
///
/// ```
/// countersign_core::named_enum! {
///     /// A colour.
///     pub enum Colour: "colour" {
///         Red = "red",
///         DarkBlue = "darkBlue",
///     }
/// }
/// assert_eq!(Colour::DarkBlue.as_str(), "darkBlue");
/// assert_eq!("red".parse::<Colour>(), Ok(Colour::Red));
/// assert_eq!(serde_json::to_string(&Colour::DarkBlue).unwrap(), "\"darkBlue\"");
/// ```
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $kind:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$( $text ),+].len()] = [ $( $name::$variant ),+ ];

            /// The variant's one name, as stored and sent.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            /// Refuses an unknown name, saying which would have been accepted.
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    other => Err(format!(
                        "unknown {} '{}'; expected one of {}",
                        $kind,
                        other,
                        [$( $text ),+].join(", ")
                    )),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::named_enum! {
        enum Fruit: "fruit" {
            Apple = "apple",
            BloodOrange = "bloodOrange",
        }
    }

    #[test]
    fn every_name_round_trips_through_str_and_serde() {
        for fruit in Fruit::ALL {
            assert_eq!(fruit.as_str().parse::<Fruit>(), Ok(fruit));
            let json = serde_json::to_string(&fruit).unwrap();
            assert_eq!(json, format!("\"{fruit}\""));
            assert_eq!(serde_json::from_str::<Fruit>(&json).unwrap(), fruit);
        }
    }

    #[test]
    fn an_unknown_name_says_what_would_have_been_accepted() {
        let error = "pear".parse::<Fruit>().unwrap_err();
        assert_eq!(error, "unknown fruit 'pear'; expected one of apple, bloodOrange");
        assert!(serde_json::from_str::<Fruit>("\"Apple\"").is_err(), "names are case-sensitive");
        assert!(serde_json::from_str::<Fruit>("1").is_err());
    }
}
