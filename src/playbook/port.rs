//! TCP ports as a playbook writes them: a whole number from 1 to 65535.
//!
//! serde's own `u16` answer to `70000` ("invalid value: integer `70000`,
//! expected u16") names a Rust type, not the rule, and it lets `0` through;
//! these deserializers say the rule once for every port field.

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error, Visitor};

/// Checks inside the visitor, not after it returns: toml only attaches the
/// value's position to errors raised while it is deserializing that value.
struct PortVisitor;

impl Visitor<'_> for PortVisitor {
    type Value = u16;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a port number (1-65535)")
    }

    fn visit_i64<E: Error>(self, value: i64) -> Result<u16, E> {
        match u16::try_from(value) {
            Ok(port) if port != 0 => Ok(port),
            _ => Err(E::custom(format!("port {value} is out of range (1-65535)"))),
        }
    }

    fn visit_u64<E: Error>(self, value: u64) -> Result<u16, E> {
        self.visit_i64(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

/// One port; used by `#[serde(deserialize_with)]` and by [`ports`].
pub(crate) fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    d.deserialize_i64(PortVisitor)
}

/// A list element that goes through [`port`], so an error still names its index.
struct Port(u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        port(d).map(Port)
    }
}

/// An optional list of ports (`[firewall] ports`).
pub(crate) fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u16>>, D::Error> {
    let list = Option::<Vec<Port>>::deserialize(d)?;
    Ok(list.map(|ports| ports.into_iter().map(|Port(p)| p).collect()))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct One {
        #[serde(deserialize_with = "super::port")]
        port: u16,
    }

    fn parse(text: &str) -> Result<u16, String> {
        toml::from_str::<One>(text)
            .map(|o| o.port)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn ports_outside_1_to_65535_are_refused_with_the_rule() {
        assert_eq!(parse("port = 443"), Ok(443));
        assert_eq!(parse("port = 65535"), Ok(65535));
        for bad in [0, -1, 65536, 70000] {
            assert_eq!(
                parse(&format!("port = {bad}")),
                Err(format!("port {bad} is out of range (1-65535)"))
            );
        }
    }
}
