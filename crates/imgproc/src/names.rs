//! Enums whose values users type: parsed once at the edge (CLI flags, model cards) with an
//! error that names the bad value and lists the accepted ones.

/// Define an enum with canonical names, aliases, `ALL`, `name()`, `Display` and `FromStr`
/// (case-insensitive, spaces ignored).
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident, $kind:literal {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal $(| $alias:literal)*),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            const COUNT: usize = [$($text),+].len();
            /// Every value, in declaration order.
            pub const ALL: [$name; $name::COUNT] = [$($name::$variant),+];
            /// The canonical (lower-case) name, as accepted by `FromStr`.
            pub const fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::Error;
            fn from_str(s: &str) -> $crate::Result<Self> {
                let key: String = s.chars().filter(|c| !c.is_whitespace()).collect();
                match key.to_ascii_lowercase().as_str() {
                    $($text $(| $alias)* => Ok($name::$variant),)+
                    _ => Err($crate::Error::UnknownName {
                        kind: $kind,
                        value: s.to_string(),
                        accepted: [$($text),+].join(", "),
                    }),
                }
            }
        }
    };
}
pub(crate) use named_enum;
