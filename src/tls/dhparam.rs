//! Diffie-Hellman parameters: the RFC 7919 groups, written instead of
//! generated. `openssl dhparam 2048` spends seconds of CPU to produce a group
//! no better than these published, verified ones.
//!
//! The PEM files are OpenSSL's built-in `ffdhe*` groups as written by
//! `openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdheN`; the tests
//! check them against that command and with `openssl dhparam -check`.

use crate::playbook::DhGroup;

/// The PEM (`BEGIN DH PARAMETERS`) of an RFC 7919 group.
pub fn rfc7919_pem(group: DhGroup) -> &'static str {
    match group {
        DhGroup::Ffdhe2048 => include_str!("ffdhe2048.pem"),
        DhGroup::Ffdhe3072 => include_str!("ffdhe3072.pem"),
        DhGroup::Ffdhe4096 => include_str!("ffdhe4096.pem"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::test_support::openssl;

    #[test]
    fn every_group_is_openssls_own_and_passes_its_check() {
        for (group, name, bits) in [
            (DhGroup::Ffdhe2048, "ffdhe2048", 2048),
            (DhGroup::Ffdhe3072, "ffdhe3072", 3072),
            (DhGroup::Ffdhe4096, "ffdhe4096", 4096),
        ] {
            let pem = rfc7919_pem(group);
            let reference = openssl(
                &[
                    "genpkey",
                    "-genparam",
                    "-algorithm",
                    "DH",
                    "-pkeyopt",
                    &format!("group:{name}"),
                ],
                "",
            );
            assert_eq!(
                pem, reference,
                "{name} differs from openssl's built-in group"
            );
            let check = openssl(&["dhparam", "-check", "-noout"], pem);
            assert!(
                check.contains("DH parameters appear to be ok"),
                "{name}: {check}"
            );
            let text = openssl(&["dhparam", "-text", "-noout"], pem);
            assert!(text.contains(&format!("({bits} bit)")), "{name}: {text}");
        }
    }
}
